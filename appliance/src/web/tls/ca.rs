//! The box's own certificate authority (StartOS does the same): an ECDSA P-256 key made on
//! first start and kept in the secrets directory (0600), and its self-signed certificate,
//! which each device installs once. It stays the same across restarts, so a device that
//! trusts the box keeps trusting it.
//!
//! Its name constraints limit it to local names (`.local`, `localhost`, `home.arpa`,
//! `.internal`) and private addresses: someone with a copy of the key (a stolen SD card)
//! could impersonate the box to a device that trusts it, but never a bank.

use super::TlsError;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, GeneralSubtree,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// The CA's private key (PKCS#8 PEM, 0600) in the secrets directory.
pub const KEY_FILE: &str = "web-ca.key";
/// The CA's certificate (PEM), what devices install.
pub const CERT_FILE: &str = "web-ca.crt";

/// About ten years, like StartOS's root: a new CA means trusting it again on every device.
const VALIDITY: Duration = Duration::days(10 * 365);

/// Certificates never start before this: a Pi has no clock battery, and one that booted
/// without the network may think it is 1970.
pub(super) fn earliest_start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_735_689_600).expect("2025-01-01 is a valid time")
}

/// Names the box's certificates may carry (DNS suffixes). See the module docs.
pub const PERMITTED_DNS: &[&str] = &["local", "localhost", "home.arpa", "internal"];

/// Address ranges the box's certificates may carry: private, carrier-grade NAT (also
/// Tailscale), link-local and loopback.
const PERMITTED_V4: &[([u8; 4], u8)] = &[
    ([10, 0, 0, 0], 8),
    ([172, 16, 0, 0], 12),
    ([192, 168, 0, 0], 16),
    ([100, 64, 0, 0], 10),
    ([169, 254, 0, 0], 16),
    ([127, 0, 0, 0], 8),
];
const PERMITTED_V6: &[([u16; 8], u8)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 1], 128),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
];

/// Whether a certificate from the box's CA may name `ip` (see [`PERMITTED_V4`]).
pub fn permits_ip(ip: IpAddr) -> bool {
    fn within(value: u128, net: u128, prefix: u8, bits: u32) -> bool {
        let shift = bits - u32::from(prefix);
        prefix == 0 || (value >> shift) == (net >> shift)
    }
    match ip {
        IpAddr::V4(v4) => PERMITTED_V4.iter().any(|(net, prefix)| {
            within(
                u32::from(v4).into(),
                u32::from_be_bytes(*net).into(),
                *prefix,
                32,
            )
        }),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => permits_ip(IpAddr::V4(v4)),
            None => PERMITTED_V6.iter().any(|(net, prefix)| {
                within(
                    u128::from(v6),
                    u128::from(std::net::Ipv6Addr::from(*net)),
                    *prefix,
                    128,
                )
            }),
        },
    }
}

/// Whether a certificate from the box's CA may name `dns` (see [`PERMITTED_DNS`]).
pub fn permits_dns(dns: &str) -> bool {
    PERMITTED_DNS
        .iter()
        .any(|suffix| dns == *suffix || dns.ends_with(&format!(".{suffix}")))
}

/// The box's certificate authority. `Debug` shows its name and fingerprint, never the key.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    fingerprint: String,
    name: String,
}

impl CertificateAuthority {
    /// Loads the CA from `secrets_dir`, or makes one there on first start.
    ///
    /// A key without its certificate gets a new certificate for the same key (devices that
    /// trusted the old one keep working: they match the name and key); a certificate
    /// without its key is replaced by a new CA, which devices must trust again.
    pub fn load_or_create(
        secrets_dir: &Path,
        now: OffsetDateTime,
    ) -> Result<CertificateAuthority, TlsError> {
        let key_path = secrets_dir.join(KEY_FILE);
        let cert_path = secrets_dir.join(CERT_FILE);
        crate::fsutil::ensure_private_dir(secrets_dir, 0o700).map_err(|source| TlsError::Io {
            path: secrets_dir.to_path_buf(),
            source,
        })?;
        let key_pem = read_optional(&key_path)?;
        let cert_pem = read_optional(&cert_path)?;
        match (key_pem, cert_pem) {
            (Some(key_pem), Some(cert_pem)) => {
                let key = KeyPair::from_pem(&key_pem).map_err(|err| damaged(&key_path, err))?;
                Self::from_parts(key, cert_pem, &cert_path)
            }
            (Some(key_pem), None) => {
                let key = KeyPair::from_pem(&key_pem).map_err(|err| damaged(&key_path, err))?;
                tracing::warn!(
                    "{} was missing: made a new CA certificate for the existing key",
                    cert_path.display()
                );
                Self::create(key, &key_path, &cert_path, now, false)
            }
            (None, cert) => {
                if cert.is_some() {
                    tracing::warn!(
                        "the CA key {} is missing: making a new CA; devices that trusted the \
                         old one must trust the new one",
                        key_path.display()
                    );
                }
                let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                    .map_err(TlsError::Certificate)?;
                Self::create(key, &key_path, &cert_path, now, true)
            }
        }
    }

    /// A new self-signed certificate for `key`, stored (with the key when it is new).
    fn create(
        key: KeyPair,
        key_path: &Path,
        cert_path: &Path,
        now: OffsetDateTime,
        new_key: bool,
    ) -> Result<CertificateAuthority, TlsError> {
        let params = ca_params(&key, now);
        let cert = params.self_signed(&key).map_err(TlsError::Certificate)?;
        let write = |path: &Path, bytes: &[u8], mode| {
            crate::fsutil::write_atomic(path, bytes, mode).map_err(|source| TlsError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        // The key first: a crash between the two leaves a key, from which the next start
        // makes the certificate again.
        if new_key {
            write(key_path, key.serialize_pem().as_bytes(), 0o600)?;
        }
        // Public, but it lives with the key in the 0700 directory.
        write(cert_path, cert.pem().as_bytes(), 0o644)?;
        Ok(Self::assemble(
            Issuer::new(params, key),
            cert.der().clone(),
            cert.pem(),
        ))
    }

    fn from_parts(
        key: KeyPair,
        cert_pem: String,
        cert_path: &Path,
    ) -> Result<CertificateAuthority, TlsError> {
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|err| damaged(cert_path, err))?;
        // The certificate must be the key's, or every server certificate would fail.
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        rustls::sign::CertifiedKey::from_der(vec![der.clone()], key_der, &super::provider())
            .map_err(|err| damaged(cert_path, err))?;
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|err| damaged(cert_path, err))?;
        Ok(Self::assemble(issuer, der, cert_pem))
    }

    fn assemble(
        issuer: Issuer<'static, KeyPair>,
        cert_der: CertificateDer<'static>,
        cert_pem: String,
    ) -> CertificateAuthority {
        let fingerprint = fingerprint(&cert_der);
        let name = common_name(issuer.key());
        CertificateAuthority {
            issuer,
            cert_der,
            cert_pem,
            fingerprint,
            name,
        }
    }

    /// What signs the server certificates.
    pub(super) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// The certificate devices install (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The certificate devices install (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// SHA-256 of the certificate, `AB:CD:…` as browsers and phones show it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Its name in trust stores, e.g. "plugnode CA 3F5A9C12".
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CertificateAuthority({:?}, fingerprint {}, key: ***)",
            self.name, self.fingerprint
        )
    }
}

/// SHA-256 of `der` as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// "plugnode CA " and the start of the key's hash: two boxes are two entries in a trust
/// store, and the name stays when the certificate is made again for the same key.
fn common_name(key: &KeyPair) -> String {
    let hash = Sha256::digest(key.public_key_raw());
    format!("plugnode CA {}", hex::encode_upper(&hash[..4]))
}

fn ca_params(key: &KeyPair, now: OffsetDateTime) -> CertificateParams {
    let start = now.max(earliest_start());
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name(key));
    name.push(DnType::OrganizationName, "plugnode");
    params.distinguished_name = name;
    params.not_before = start - Duration::days(1);
    params.not_after = start + VALIDITY;
    params.serial_number = Some(random_serial());
    // It signs server certificates only, no intermediate CAs.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let mut permitted: Vec<GeneralSubtree> = PERMITTED_DNS
        .iter()
        .map(|dns| GeneralSubtree::DnsName((*dns).into()))
        .collect();
    permitted.extend(
        PERMITTED_V4.iter().map(|(net, prefix)| {
            GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(*net, *prefix))
        }),
    );
    permitted.extend(PERMITTED_V6.iter().map(|(net, prefix)| {
        GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
            std::net::Ipv6Addr::from(*net).octets(),
            *prefix,
        ))
    }));
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: Vec::new(),
    });
    params
}

/// 16 random bytes: no two certificates of one CA share a serial (Firefox refuses a
/// reused issuer and serial). The first byte is kept in 0x01..=0x7f, so the number is
/// positive and its encoding keeps all 16 bytes.
pub(super) fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f).max(1);
    SerialNumber::from_slice(&bytes)
}

fn read_optional(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn damaged(path: &Path, why: impl fmt::Display) -> TlsError {
    TlsError::Damaged {
        path: PathBuf::from(path),
        why: why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn first_start_makes_a_ca_with_a_private_key_and_restarts_keep_it() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        let ca = CertificateAuthority::load_or_create(&secrets, now()).unwrap();
        let mode = |name: &str| {
            std::fs::metadata(secrets.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(KEY_FILE), 0o600, "the CA key is for plugnode alone");
        assert_eq!(
            std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(ca.fingerprint().len(), 32 * 3 - 1);
        assert!(ca
            .fingerprint()
            .split(':')
            .all(|byte| byte.len() == 2 && byte.chars().all(|c| c.is_ascii_hexdigit())));
        assert!(ca.name().starts_with("plugnode CA "), "{}", ca.name());

        let again = CertificateAuthority::load_or_create(&secrets, now()).unwrap();
        assert_eq!(
            again.cert_der(),
            ca.cert_der(),
            "the same CA after a restart"
        );
        assert_eq!(again.fingerprint(), ca.fingerprint());
    }

    #[test]
    fn the_ca_is_a_constrained_ten_year_root() {
        let dir = tempfile::tempdir().unwrap();
        let at = now();
        let ca = CertificateAuthority::load_or_create(dir.path(), at).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
        assert_eq!(cert.subject(), cert.issuer(), "self-signed");
        let basic = cert.basic_constraints().unwrap().unwrap().value;
        assert!(basic.ca);
        assert_eq!(basic.path_len_constraint, Some(0));
        let days = (cert.validity().not_after.to_datetime()
            - cert.validity().not_before.to_datetime())
        .whole_days();
        assert!((3640..=3660).contains(&days), "{days} days");
        assert!(cert.validity().not_before.to_datetime() < at);
        let constraints = cert.name_constraints().unwrap().unwrap();
        assert!(constraints.critical);
        let permitted = constraints.value.permitted_subtrees.as_ref().unwrap();
        assert_eq!(
            permitted.len(),
            PERMITTED_DNS.len() + PERMITTED_V4.len() + PERMITTED_V6.len()
        );
    }

    #[test]
    fn a_clock_stuck_in_1970_still_gives_a_usable_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca =
            CertificateAuthority::load_or_create(dir.path(), OffsetDateTime::UNIX_EPOCH).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
        assert!(cert.validity().not_after.to_datetime() > earliest_start() + Duration::days(3000));
    }

    #[test]
    fn a_lost_certificate_is_made_again_for_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path(), now()).unwrap();
        std::fs::remove_file(dir.path().join(CERT_FILE)).unwrap();
        let again = CertificateAuthority::load_or_create(dir.path(), now()).unwrap();
        assert_eq!(again.name(), ca.name(), "same key, same name");
        assert_ne!(again.cert_der(), ca.cert_der());
        assert!(dir.path().join(CERT_FILE).exists());
    }

    #[test]
    fn a_lost_key_makes_a_new_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path(), now()).unwrap();
        std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        let again = CertificateAuthority::load_or_create(dir.path(), now()).unwrap();
        assert_ne!(again.fingerprint(), ca.fingerprint());
        assert_ne!(again.name(), ca.name());
    }

    #[test]
    fn damaged_or_mismatched_files_are_named_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path(), now()).unwrap();
        let other = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(other.path(), now()).unwrap();
        // Another box's certificate next to this box's key.
        std::fs::copy(other.path().join(CERT_FILE), dir.path().join(CERT_FILE)).unwrap();
        let err = CertificateAuthority::load_or_create(dir.path(), now()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(CERT_FILE) && text.contains("move"), "{text}");

        std::fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        let text = CertificateAuthority::load_or_create(dir.path(), now())
            .unwrap_err()
            .to_string();
        assert!(text.contains(KEY_FILE), "{text}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap(),
            "not a key",
            "a damaged CA is never silently replaced"
        );
    }

    #[test]
    fn debug_shows_the_fingerprint_never_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path(), now()).unwrap();
        let key = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        let debug = format!("{ca:?}");
        assert!(debug.contains(ca.fingerprint()), "{debug}");
        assert!(!debug.contains(&body[..24]), "{debug}");
        assert!(!debug.contains("PRIVATE"), "{debug}");
    }

    #[test]
    fn permitted_names_and_addresses() {
        for ip in [
            "192.168.1.23",
            "10.1.2.3",
            "172.20.0.1",
            "100.100.1.1",
            "127.0.0.1",
            "::1",
            "fd12::1",
            "fe80::2",
            "::ffff:192.168.1.2",
        ] {
            assert!(permits_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!permits_ip(ip.parse().unwrap()), "{ip}");
        }
        for dns in [
            "plugnode.local",
            "localhost",
            "box.home.arpa",
            "node.internal",
        ] {
            assert!(permits_dns(dns), "{dns}");
        }
        for dns in [
            "example.com",
            "notlocal",
            "evil-local",
            "bank.com.local.evil",
        ] {
            assert!(!permits_dns(dns), "{dns}");
        }
    }
}
