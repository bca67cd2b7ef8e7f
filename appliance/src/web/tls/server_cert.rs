//! The server certificate: signed by the box's CA for every name a browser on the home
//! network may use, valid 397 days (Apple accepts at most 825 from user-installed roots,
//! browsers 398 from public ones), renewed 30 days before it ends.

use super::ca::{self, CertificateAuthority};
use super::TlsError;
use crate::system::monitor::HostNames;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// How long a server certificate is valid, counted from its issue.
pub const VALIDITY: Duration = Duration::days(397);
/// A certificate is replaced this long before it ends.
pub const RENEW_BEFORE: Duration = Duration::days(30);
/// It starts a day early, so a phone whose clock is behind accepts it too.
const BACKDATE: Duration = Duration::days(1);

/// The name a box answers at whatever its host name is.
pub const BOX_NAME: &str = "plugnode.local";

/// The names and addresses a server certificate covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectNames {
    pub dns: BTreeSet<String>,
    pub ips: BTreeSet<IpAddr>,
}

impl SubjectNames {
    /// `plugnode.local`, `<hostname>.local` (and the host name itself when it is a local
    /// domain name), `localhost`, the box's addresses and loopback: only what the CA's
    /// name constraints permit, since one name outside them would fail the whole
    /// certificate (a public address of the box is left out).
    pub fn for_box(names: &HostNames) -> SubjectNames {
        let mut dns = BTreeSet::from([BOX_NAME.to_string(), "localhost".to_string()]);
        let hostname = names
            .hostname
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if let Some(first) = hostname.split('.').next().filter(|l| is_dns_label(l)) {
            dns.insert(format!("{first}.local"));
        }
        if hostname.contains('.')
            && hostname.split('.').all(is_dns_label)
            && ca::permits_dns(&hostname)
        {
            dns.insert(hostname);
        }
        let mut ips = BTreeSet::from([
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);
        ips.extend(
            names
                .addresses
                .iter()
                .copied()
                .filter(|ip| ca::permits_ip(*ip)),
        );
        SubjectNames { dns, ips }
    }

    /// The subject's common name: the name the user types.
    fn common_name(&self) -> &str {
        self.dns
            .iter()
            .find(|name| name.ends_with(".local") && *name != BOX_NAME)
            .map(String::as_str)
            .unwrap_or(BOX_NAME)
    }
}

impl fmt::Display for SubjectNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .dns
            .iter()
            .cloned()
            .chain(self.ips.iter().map(ToString::to_string))
            .collect();
        f.write_str(&names.join(", "))
    }
}

fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Why a certificate must be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// The box's names or addresses changed.
    NamesChanged,
    /// It ends within [`RENEW_BEFORE`] (or has ended).
    Expiring,
    /// The clock is before its start (it was set back, or it was wrong at issue).
    NotYetValid,
}

/// A server certificate with its key, ready for rustls.
pub struct ServerCert {
    pub certified: Arc<CertifiedKey>,
    pub names: SubjectNames,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl ServerCert {
    /// A fresh key and a certificate for `names`, signed by `ca`.
    pub fn issue(
        ca: &CertificateAuthority,
        names: SubjectNames,
        now: OffsetDateTime,
    ) -> Result<ServerCert, TlsError> {
        let start = now.max(ca::earliest_start());
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, names.common_name());
        subject.push(DnType::OrganizationName, "plugnode");
        params.distinguished_name = subject;
        params.not_before = start - BACKDATE;
        params.not_after = start + VALIDITY;
        params.serial_number = Some(ca::random_serial());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Apple requires serverAuth in the extended key usage.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        for dns in &names.dns {
            let name = dns.as_str().try_into().map_err(TlsError::Certificate)?;
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        params
            .subject_alt_names
            .extend(names.ips.iter().map(|ip| SanType::IpAddress(*ip)));

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(TlsError::Certificate)?;
        let cert = params
            .signed_by(&key, ca.issuer())
            .map_err(TlsError::Certificate)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        // The CA goes along: a browser that does not trust it yet shows it (name and
        // fingerprint) in its certificate viewer, to compare with the box's screen.
        let chain = vec![cert.der().clone(), ca.cert_der().clone()];
        let certified =
            CertifiedKey::from_der(chain, key_der, &super::provider()).map_err(TlsError::Rustls)?;
        Ok(ServerCert {
            certified: Arc::new(certified),
            names,
            not_before: params.not_before,
            not_after: params.not_after,
        })
    }

    /// Whether this certificate must be replaced for `names` at `now`, and why.
    pub fn renewal(&self, names: &SubjectNames, now: OffsetDateTime) -> Option<Renewal> {
        if self.names != *names {
            Some(Renewal::NamesChanged)
        } else if now < self.not_before {
            Some(Renewal::NotYetValid)
        } else if now >= self.not_after - RENEW_BEFORE {
            Some(Renewal::Expiring)
        } else {
            None
        }
    }
}

impl fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServerCert({}, {} to {}, key: ***)",
            self.names, self.not_before, self.not_after
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    fn names() -> HostNames {
        HostNames {
            hostname: "kitchen-node".into(),
            addresses: vec![
                "192.168.1.23".parse().unwrap(),
                "fd00::23".parse().unwrap(),
                "2001:db8::23".parse().unwrap(),
                "203.0.113.9".parse().unwrap(),
            ],
        }
    }

    fn ca(dir: &std::path::Path) -> CertificateAuthority {
        CertificateAuthority::load_or_create(dir, OffsetDateTime::now_utc()).unwrap()
    }

    /// A browser that trusts only `ca` accepts `cert` for `name` at `now`.
    fn verifies(
        ca: &CertificateAuthority,
        cert: &ServerCert,
        name: &str,
        now: OffsetDateTime,
    ) -> bool {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(super::super::provider()),
        )
        .build()
        .unwrap();
        let time =
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.unix_timestamp() as u64));
        verifier
            .verify_server_cert(
                &cert.certified.cert[0],
                &cert.certified.cert[1..],
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                time,
            )
            .is_ok()
    }

    #[test]
    fn the_certificate_names_every_local_way_to_the_box_and_nothing_public() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let wanted = SubjectNames::for_box(&names());
        let now = OffsetDateTime::now_utc();
        let cert = ServerCert::issue(&ca, wanted.clone(), now).unwrap();

        let (_, parsed) = x509_parser::parse_x509_certificate(&cert.certified.cert[0]).unwrap();
        let sans: Vec<String> = parsed
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => dns.to_string(),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap()).to_string(),
                    _ => IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap()).to_string(),
                },
                other => format!("{other:?}"),
            })
            .collect();
        for expected in [
            "plugnode.local",
            "kitchen-node.local",
            "localhost",
            "192.168.1.23",
            "fd00::23",
            "127.0.0.1",
            "::1",
        ] {
            assert!(
                sans.contains(&expected.to_string()),
                "{expected} missing from {sans:?}"
            );
        }
        assert_eq!(sans.len(), 7, "nothing else: {sans:?}");
        assert!(parsed.subject().to_string().contains("kitchen-node.local"));
        let eku = parsed.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth, "Apple requires serverAuth");
        assert!(!parsed.basic_constraints().unwrap().unwrap().value.ca);

        for name in [
            "plugnode.local",
            "kitchen-node.local",
            "localhost",
            "192.168.1.23",
            "fd00::23",
            "127.0.0.1",
            "::1",
        ] {
            assert!(verifies(&ca, &cert, name, now), "{name}");
        }
        for name in ["example.com", "192.168.1.24", "203.0.113.9"] {
            assert!(!verifies(&ca, &cert, name, now), "{name}");
        }
    }

    #[test]
    fn a_certificate_lasts_397_days_and_is_renewed_30_days_before_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let wanted = SubjectNames::for_box(&names());
        let now = OffsetDateTime::now_utc();
        let cert = ServerCert::issue(&ca, wanted.clone(), now).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert.certified.cert[0]).unwrap();
        let validity = parsed.validity();
        let days =
            (validity.not_after.to_datetime() - validity.not_before.to_datetime()).whole_days();
        assert_eq!(days, 398, "397 days from now, plus the day it is backdated");
        assert!(days <= 825, "Apple's limit for user-installed roots");
        assert!(validity.not_before.to_datetime() < now - Duration::hours(23));

        assert_eq!(cert.renewal(&wanted, now), None);
        assert_eq!(cert.renewal(&wanted, now + Duration::days(366)), None);
        assert_eq!(
            cert.renewal(&wanted, now + Duration::days(368)),
            Some(Renewal::Expiring)
        );
        assert_eq!(
            cert.renewal(&wanted, now + Duration::days(500)),
            Some(Renewal::Expiring)
        );
        assert_eq!(
            cert.renewal(&wanted, now - Duration::days(2)),
            Some(Renewal::NotYetValid)
        );
        assert!(verifies(
            &ca,
            &cert,
            "plugnode.local",
            now + Duration::days(396)
        ));
        assert!(!verifies(
            &ca,
            &cert,
            "plugnode.local",
            now + Duration::days(398)
        ));

        // Renewed on the day it is due, the new one is valid another 397 days.
        let due = now + Duration::days(368);
        let renewed = ServerCert::issue(&ca, wanted.clone(), due).unwrap();
        assert_eq!(renewed.renewal(&wanted, due), None);
        assert!(verifies(
            &ca,
            &renewed,
            "plugnode.local",
            due + Duration::days(300)
        ));
    }

    #[test]
    fn a_new_address_or_host_name_needs_a_new_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let now = OffsetDateTime::now_utc();
        let cert = ServerCert::issue(&ca, SubjectNames::for_box(&names()), now).unwrap();

        let mut moved = names();
        moved.addresses[0] = "192.168.1.77".parse().unwrap();
        let wanted = SubjectNames::for_box(&moved);
        assert_eq!(cert.renewal(&wanted, now), Some(Renewal::NamesChanged));
        let renewed = ServerCert::issue(&ca, wanted, now).unwrap();
        assert!(verifies(&ca, &renewed, "192.168.1.77", now));
        assert!(!verifies(&ca, &renewed, "192.168.1.23", now));

        let mut renamed = names();
        renamed.hostname = "attic".into();
        assert_eq!(
            cert.renewal(&SubjectNames::for_box(&renamed), now),
            Some(Renewal::NamesChanged)
        );
        // A public address coming or going changes nothing: it is never in the certificate.
        let mut public = names();
        public.addresses.push("198.51.100.1".parse().unwrap());
        assert_eq!(cert.renewal(&SubjectNames::for_box(&public), now), None);
    }

    #[test]
    fn odd_host_names_never_break_the_certificate() {
        for (hostname, extra) in [
            ("", None),
            ("Plugnode", Some("plugnode.local")),
            ("node.home.arpa", Some("node.home.arpa")),
            ("node.example.com", Some("node.local")),
            ("bad_name", None),
        ] {
            let names = SubjectNames::for_box(&HostNames {
                hostname: hostname.into(),
                addresses: Vec::new(),
            });
            assert!(
                names.dns.iter().all(|d| ca::permits_dns(d)),
                "{hostname}: {names}"
            );
            if let Some(extra) = extra {
                assert!(names.dns.contains(extra), "{hostname}: {names}");
            }
            assert!(!names
                .dns
                .iter()
                .any(|d| d.contains("example.com") || d.contains('_')));
        }
    }

    #[test]
    fn the_ca_cannot_vouch_for_other_sites_even_if_asked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let now = OffsetDateTime::now_utc();
        let mut names = SubjectNames::default();
        names.dns.insert("bank.example.com".into());
        let forged = ServerCert::issue(&ca, names, now).unwrap();
        assert!(
            !verifies(&ca, &forged, "bank.example.com", now),
            "the name constraints stop a stolen CA key from impersonating other sites"
        );
    }
}
