//! plugnode: the supervisor of the plugnode appliance.
//!
//! One folder per concern (see `DESIGN.md` in the project docs); each service owns its
//! state, publishes its part of [`status::Status`], and takes commands through a handle.

pub mod app;
pub mod backup;
pub mod bitcoind;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod diagnostic;
pub mod display;
pub mod essential;
pub mod fsutil;
pub mod lightning;
pub mod log_tail;
pub mod logging;
pub mod pairing;
pub mod panic_log;
pub mod qr;
pub mod sd_notify;
pub mod secret;
pub mod shutdown;
pub mod status;
pub mod system;
pub mod text;
pub mod update;
pub mod web;
