//! Facts about the box itself: host name, addresses, data disk, power supply.

pub mod power;
