//! Turns Nagle's algorithm off on the Lightning node's peer connections.
//!
//! `lightning-net-tokio` 0.2 (ldk-node's network layer) leaves `TCP_NODELAY` off, so a
//! small message written while the previous one is unacknowledged waits for the peer's
//! delayed ACK (40 ms on Linux, up to 200 ms elsewhere). A payment is several such
//! exchanges: measured with the pairing bench, an NWC payment took 2.3× the time of the
//! same payment through the web API only because of where those waits fell; with the
//! waits gone (ACKs sent at once on loopback) it was 1.05×. ldk-node does not hand us its
//! sockets, so the node's loop calls [`set_on_every_tcp_socket`] now and then: it sets
//! `TCP_NODELAY` on every TCP socket of this process. That is harmless for the others
//! (the web server and HTTP clients set it themselves or send whole requests at once).

use nix::libc;
use std::os::fd::RawFd;

/// Sets `TCP_NODELAY` on every TCP socket this process has open that lacks it; returns
/// how many it changed.
pub fn set_on_every_tcp_socket() -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .filter(|&fd| is_tcp_socket(fd) && !option_is_set(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY))
        .filter(|&fd| set_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY))
        .count()
}

/// Whether `fd` is a TCP socket. An fd that was closed (or reused) since the directory
/// was read just fails or answers for what it is now: nothing is ever changed on a
/// non-socket.
fn is_tcp_socket(fd: RawFd) -> bool {
    int_option(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL) == Some(libc::IPPROTO_TCP)
        && int_option(fd, libc::SOL_SOCKET, libc::SO_TYPE) == Some(libc::SOCK_STREAM)
}

fn option_is_set(fd: RawFd, level: libc::c_int, name: libc::c_int) -> bool {
    int_option(fd, level, name).is_some_and(|value| value != 0)
}

fn int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt only writes `length` bytes into `value`, which is that large; on
    // an fd that is not a socket (or not open) it fails without side effects.
    let result = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut length,
        )
    };
    (result == 0).then_some(value)
}

fn set_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> bool {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `one`; called only on fds
    // just seen to be TCP sockets.
    let result = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    result == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn every_tcp_connection_of_the_process_gets_nodelay_and_nothing_else_is_touched() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let outbound = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (inbound, _) = listener.accept().unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(!outbound.nodelay().unwrap() && !inbound.nodelay().unwrap());

        assert!(set_on_every_tcp_socket() >= 2);

        assert!(outbound.nodelay().unwrap(), "the connection we made");
        assert!(inbound.nodelay().unwrap(), "the connection we accepted");
        use std::os::fd::AsRawFd;
        assert!(!is_tcp_socket(udp.as_raw_fd()));
        assert!(!is_tcp_socket(std::io::stdin().as_raw_fd()));
    }
}
