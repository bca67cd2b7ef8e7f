//! Where to reach the box, in the words several screens use.

use crate::status::Status;

pub(super) fn web_name(status: &Status) -> String {
    let host = status.system.hostname.trim();
    if host.is_empty() {
        "plugnode.local".to_string()
    } else if host.contains('.') {
        host.to_string()
    } else {
        format!("{host}.local")
    }
}

pub(super) fn ip_address(status: &Status) -> Option<&str> {
    let ips = &status.system.ip_addresses;
    ips.iter()
        .find(|ip| ip.contains('.') && !ip.starts_with("127."))
        .or_else(|| ips.iter().find(|ip| *ip != "::1"))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_name_adds_local() {
        let mut s = Status::default();
        assert_eq!(web_name(&s), "plugnode.local");
        s.system.hostname = "mynode".into();
        assert_eq!(web_name(&s), "mynode.local");
        s.system.ip_addresses = vec!["::1".into(), "fe80::1".into(), "192.168.1.7".into()];
        assert_eq!(ip_address(&s), Some("192.168.1.7"));
    }
}
