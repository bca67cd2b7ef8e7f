//! Facts about the box itself: host name, addresses, data disk, memory, power supply.

pub mod disk;
pub mod monitor;
pub mod power;
