//! Keeps `status.system` current: host name, addresses, where the web page answers, data
//! disk space. Cheap reads, once a minute (and at once on start). A changed name or
//! address also goes to whoever follows [`HostNames`] (the HTTPS certificate).

use super::disk;
use crate::status::StatusHandle;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

const INTERVAL: Duration = Duration::from_secs(60);

/// The names a device on the home network reaches the box at: its host name (`<name>.local`
/// through mDNS) and its own addresses (IPv4 first, no loopback or link-local).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostNames {
    pub hostname: String,
    pub addresses: Vec<IpAddr>,
}

impl HostNames {
    /// Reads them now.
    pub fn current() -> HostNames {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_default();
        HostNames {
            hostname,
            addresses: local_addresses(),
        }
    }
}

/// Where the web page listens.
#[derive(Clone, Copy, Debug)]
pub struct WebAddresses {
    pub plain: SocketAddr,
    pub https: SocketAddr,
}

pub struct SystemMonitor {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl SystemMonitor {
    /// Refreshes `status.system` every minute and publishes changed [`HostNames`] on
    /// `names` (receivers wake only on a change).
    pub fn spawn(
        data_dir: PathBuf,
        web: WebAddresses,
        status: StatusHandle,
        names: watch::Sender<HostNames>,
    ) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                refresh(&data_dir, web, &status, &names);
                tokio::select! {
                    _ = tokio::time::sleep(INTERVAL) => {}
                    _ = &mut stopped => return,
                }
            }
        });
        SystemMonitor { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn refresh(
    data_dir: &std::path::Path,
    web: WebAddresses,
    status: &StatusHandle,
    names: &watch::Sender<HostNames>,
) {
    let current = HostNames::current();
    let plain_url = web_url("http", web.plain, &current.hostname, &current.addresses);
    let https_url = web_url("https", web.https, &current.hostname, &current.addresses);
    let space = disk::space(data_dir).ok();
    names.send_if_modified(|known| {
        let changed = *known != current;
        if changed {
            *known = current.clone();
        }
        changed
    });
    let HostNames {
        hostname,
        addresses,
    } = current;
    status.update(|s| {
        s.system.hostname = hostname;
        s.system.ip_addresses = addresses.iter().map(ToString::to_string).collect();
        s.system.web_url = Some(plain_url);
        s.system.https_url = Some(https_url);
        if let Some((total, free)) = space {
            s.system.data_disk_total_bytes = Some(total);
            s.system.data_disk_free_bytes = Some(free);
        }
    });
}

/// The box's own addresses on the home network: IPv4 first, no loopback or link-local.
fn local_addresses() -> Vec<IpAddr> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut addresses: Vec<IpAddr> = interfaces
        .filter_map(|interface| {
            let address = interface.address?;
            if let Some(v4) = address.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
            IpAddr::V6(v6) => !v6.is_loopback() && (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    addresses.sort_by_key(|ip| ip.is_ipv6());
    addresses.dedup();
    addresses
}

/// The address a user types: `http://plugnode.local/` on the box, the loopback address
/// when the page only listens there (the demo).
fn web_url(scheme: &str, listen: SocketAddr, hostname: &str, addresses: &[IpAddr]) -> String {
    let port = match (scheme, listen.port()) {
        ("http", 80) | ("https", 443) => String::new(),
        (_, port) => format!(":{port}"),
    };
    if listen.ip().is_loopback() {
        return match listen.ip() {
            IpAddr::V6(ip) => format!("{scheme}://[{ip}]{port}/"),
            ip => format!("{scheme}://{ip}{port}/"),
        };
    }
    if !hostname.is_empty() {
        return format!("{scheme}://{hostname}.local{port}/");
    }
    match addresses.first() {
        Some(IpAddr::V6(ip)) => format!("{scheme}://[{ip}]{port}/"),
        Some(ip) => format!("{scheme}://{ip}{port}/"),
        None => format!("{scheme}://{}{port}/", listen.ip()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_urls_as_users_type_them() {
        let any80: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert_eq!(
            web_url("http", any80, "plugnode", &[]),
            "http://plugnode.local/"
        );
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            web_url("http", loopback, "plugnode", &[]),
            "http://127.0.0.1:8080/"
        );
        let ip: IpAddr = "192.168.1.20".parse().unwrap();
        let any8080: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(
            web_url("http", any8080, "", &[ip]),
            "http://192.168.1.20:8080/"
        );
        let any443: SocketAddr = "0.0.0.0:443".parse().unwrap();
        assert_eq!(
            web_url("https", any443, "plugnode", &[ip]),
            "https://plugnode.local/"
        );
        let demo: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        assert_eq!(
            web_url("https", demo, "plugnode", &[]),
            "https://127.0.0.1:8443/"
        );
    }

    #[test]
    fn local_addresses_skip_loopback() {
        assert!(local_addresses().iter().all(|ip| !ip.is_loopback()));
    }
}
