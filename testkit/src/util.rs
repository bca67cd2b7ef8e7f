//! Small helpers for tests that run real processes.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Ports this process already handed out, so parallel tests in one process never get the
/// same one.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that was free a moment ago and that this process never handed out
/// before. Panics when none is left (see [`try_free_port`]).
pub fn free_port() -> u16 {
    try_free_port().expect("a free TCP port on 127.0.0.1")
}

/// [`free_port`], with an error instead of a panic.
///
/// The port is taken from *below* the kernel's ephemeral range: ports in that range are
/// also the local ends of outgoing connections (RPC clients, Lightning peers), and one
/// could take the port between this check and the bind that uses it. Each process starts
/// its scan at its own place, so two processes picking at once rarely meet, and a port
/// some process holds fails the bind and is skipped.
pub fn try_free_port() -> std::io::Result<u16> {
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed = handed.get_or_insert_with(HashSet::new);
    let (below, start) = ports_below_ephemeral_range();
    let span = below.len() as u32;
    if span > 0 {
        for i in 0..span {
            let port = below.start + ((start + i) % span) as u16;
            if handed.contains(&port) {
                continue;
            }
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                handed.insert(port);
                return Ok(port);
            }
        }
    }
    // No room below the ephemeral range on this machine: let the OS pick.
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if handed.insert(port) {
            return Ok(port);
        }
    }
}

/// The ports from 10000 up to the start of the kernel's ephemeral range, and where this
/// process starts scanning them.
fn ports_below_ephemeral_range() -> (std::ops::Range<u16>, u32) {
    const LOWEST: u16 = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let below = LOWEST..ephemeral_start.max(LOWEST);
    let start = std::process::id().wrapping_mul(7_919) % (below.len().max(1) as u32);
    (below, start)
}

/// Polls `condition` every 50 ms until it is true (returns true) or `timeout` passes
/// (returns false). Use generous timeouts: test machines can be slow and loaded.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_not_handed_out_twice() {
        let ports: HashSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
    }

    #[test]
    fn a_port_is_never_one_an_outgoing_connection_could_take() {
        let (below, _) = ports_below_ephemeral_range();
        if below.is_empty() {
            return; // this machine's ephemeral range starts too low: the OS picks
        }
        let port = free_port();
        assert!(below.contains(&port), "{port} not in {below:?}");
    }

    #[test]
    fn a_port_someone_holds_is_skipped() {
        let port = free_port();
        let _held = TcpListener::bind(("127.0.0.1", port + 1)).ok();
        let next = free_port();
        assert_ne!(next, port);
        if _held.is_some() {
            assert_ne!(next, port + 1, "a held port was handed out");
        }
    }

    #[test]
    fn wait_until_reports_success_and_timeout() {
        let mut n = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            n += 1;
            n == 3
        }));
        assert!(!wait_until(Duration::from_millis(120), || false));
    }
}
