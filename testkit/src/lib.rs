//! Test and demo equipment for plugnode.
//!
//! - [`sim`]: `regtest-sim`, a bitcoind stand-in that speaks bitcoind's command line and
//!   JSON-RPC for the calls plugnode and ldk-node make.

pub mod sim;
