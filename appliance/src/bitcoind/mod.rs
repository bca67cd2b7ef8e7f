//! bitcoind, run as a child of the supervisor: its config, its process, its health.

pub mod conf;
pub mod credentials;
pub mod process;
pub mod restart;
pub mod rpc;
pub mod run_as;
pub mod sizing;
pub mod supervisor;

pub use credentials::{RpcCredentials, RpcUser};
pub use supervisor::{BitcoindHandle, BitcoindSettings};
