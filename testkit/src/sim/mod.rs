//! regtest-sim: a bitcoind stand-in for tests and the demo. (Being built.)

/// Entry point shared by the `regtest-sim` binary and `plugnode`'s multi-call mode.
pub fn main_with_args(_args: Vec<String>) -> i32 {
    eprintln!("regtest-sim: not built yet");
    1
}
