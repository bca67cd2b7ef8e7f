//! regtest-sim's behaviour, tested against real `regtest-sim` processes.
//!
//! One test binary (modules below) keeps link time down; tests run in parallel, each with
//! its own data directory and ports.

mod chain;
mod clients;
mod common;
mod http;
mod mempool;
mod process;
mod samples;
mod upstream;
