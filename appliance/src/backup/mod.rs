//! The USB backup of the Lightning channel state.
//!
//! - [`format`]: the encrypted files on the stick, headers in clear.
//! - [`copies`]: snapshots (written, read back, verified), finding and loading copies.
//! - [`mirror`]: the live journal every store update goes to before it is acknowledged.
//! - [`resync`]: bringing a stick up to the store, outside its lock, within time limits.
//! - [`stick`]: finding USB sticks in sysfs and naming their file systems.
//! - [`stick_files`]: reading and creating files on a stick nobody vouches for.
//! - [`mount`]: mounting them (root helper, direct, or the demo's folder).
//! - [`error`]: why a command to the service (prepare, eject, copies, restore) failed.

pub mod copies;
pub mod error;
pub mod format;
pub mod mirror;
pub mod mount;
pub mod restore;
pub mod resync;
pub mod service;
pub mod stick;
pub mod stick_files;
