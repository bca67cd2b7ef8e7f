//! regtest-sim: a bitcoind stand-in for tests and the demo.
//!
//! It speaks bitcoind's command line, `bitcoin.conf` and JSON-RPC over HTTP for the calls
//! plugnode's supervisor (`bitcoincore-rpc`) and ldk-node (`lightning-block-sync`) make,
//! with Bitcoin Core v30's field names, HTTP statuses, error codes and messages. Behind
//! the RPC it keeps a real regtest block chain (rust-bitcoin blocks from the real regtest
//! genesis, valid proof of work, merkle roots, BIP34 heights, witness commitments) in its
//! data directory, a UTXO set and a mempool.
//!
//! # What it does NOT check
//!
//! **No script or signature is ever verified**: any transaction whose inputs exist and
//! are unspent is accepted, whoever signed it. There is no P2P networking, no reorgs or
//! forks, no package relay, no TRUC (v3) rules, no sigop limits and no fee estimation
//! (`estimatesmartfee` answers like a fresh Core node with no data). It only runs
//! regtest. It is test and demo equipment and never ships in the appliance image.
//!
//! # Entry points
//!
//! - [`main_with_args`]: the whole program (the `regtest-sim` binary and plugnode's
//!   multi-call mode).
//! - [`SimNode`]: spawns a regtest-sim process for a test and talks to it.
//!
//! # Upstream mode
//!
//! With `-simupstream=<host>:<port>` a sim keeps no chain and forwards authenticated RPC
//! to another sim, so several "bitcoinds" (one per plugnode box in end-to-end tests) share
//! one chain; see `upstream.rs` and testkit's README.

mod args;
mod auth;
mod chain;
mod http;
mod jsonrpc;
mod log;
mod mempool;
mod node;
mod policy;
mod process;
mod rpc;
mod run;
mod script;
mod settings;
mod store;
mod upstream;

pub use auth::rpcauth_line;
pub use process::{SimNode, SimNodeBuilder, SimNodeError};
pub use settings::{default_mining_script, DEFAULT_P2P_PORT, DEFAULT_RPC_PORT};

/// The software Core names itself in answers ("Bitcoin Core stopping").
pub const CLIENT_NAME: &str = "Bitcoin Core";
/// The Bitcoin Core version the sim imitates (`getnetworkinfo.version`).
pub const CLIENT_VERSION: u32 = 300_000;
/// The same as text.
pub const CLIENT_VERSION_STRING: &str = "30.0.0";
/// P2P protocol version Core v30 reports.
pub const PROTOCOL_VERSION: u32 = 70016;

/// Runs regtest-sim with `args` (`args[0]` is the program name, like `std::env::args()`)
/// and returns the process exit code: 0 after a clean shutdown, 1 for a start-up error
/// (printed on stderr as `Error: …`, like bitcoind). It builds its own tokio runtime, so
/// call it from a plain thread (`main`), not from inside a runtime.
pub fn main_with_args(args: Vec<String>) -> i32 {
    let argv = args.get(1..).unwrap_or(&[]);
    let settings = match settings::from_args(argv) {
        Ok(settings::Invocation::Run(settings)) => settings,
        Ok(settings::Invocation::Print(text)) => {
            print!("{text}");
            return 0;
        }
        Err(message) => {
            eprintln!("Error: {message}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("regtest-sim")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("Error: cannot start the async runtime: {err}");
            return 1;
        }
    };
    let code = runtime.block_on(run::run(*settings));
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}
