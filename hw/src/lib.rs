//! Hardware access for plugnode: e-ink panels, their keys, and simulated stand-ins.
//!
//! - [`Panel`]: what a panel can do (size, full/partial refresh, clear, sleep), with the
//!   Waveshare drivers in [`epd`] (generic over `embedded-hal`, so tests record their bus
//!   traffic) and a [`SimPanel`] that keeps the picture in memory and writes PNGs.
//! - [`Frame`]: the 1-bit picture screens draw on (an `embedded-graphics` `DrawTarget`).
//! - [`Buttons`]: where key edges come from (GPIO lines or [`SimButtons`]), and
//!   [`KeyEvents`]/[`KeyDecoder`] that turn them into key-down, key-up and long-press events.
//!
//! Nothing touches hardware at import time: devices are opened by explicit calls
//! ([`linux::open_waveshare`], [`linux::CdevButtons`]).

pub mod epd;
pub mod frame;
pub mod keys;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod panel;
pub mod sim;

pub use embedded_graphics_core::geometry::Size;
pub use epd::WaveshareModel;
pub use frame::{Frame, PngError};
pub use keys::{
    Buttons, ButtonsError, Key, KeyDecoder, KeyEdge, KeyEvent, KeyEventKind, KeyEvents, KeyTiming,
    SimButtons, SimKeys,
};
pub use panel::{Panel, PanelError};
pub use sim::{RefreshCounts, SimMonitor, SimOp, SimPanel};
