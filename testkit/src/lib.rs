//! Test and demo equipment for plugnode. Never shipped in the appliance image.
//!
//! - [`sim`]: `regtest-sim`, a bitcoind stand-in that speaks bitcoind's command line,
//!   `bitcoin.conf` and JSON-RPC for the calls plugnode and ldk-node make, on top of a real
//!   regtest block chain. **It checks no scripts and no signatures.**
//! - [`rpc`]: a small blocking JSON-RPC client exposing HTTP statuses and RPC errors.
//! - [`free_port`] and [`wait_until`]: helpers for tests that run real processes.

pub mod rpc;
pub mod sim;
mod util;

pub use util::{free_port, try_free_port, wait_until};
