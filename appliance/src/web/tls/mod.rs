//! HTTPS for the web page: the box's own certificate authority ([`ca`]), the server
//! certificate it signs ([`server_cert`]), and [`Https`], which keeps that certificate
//! current while the server runs. A rustls [`ResolvesServerCert`] hands every handshake
//! the certificate of the moment, so a reissue (the box's names or addresses changed, the
//! certificate nears its end, the clock jumped) never restarts the server.
//!
//! TLS is rustls with *ring*, the same rustls 0.23 and crypto provider that ldk-node and
//! reqwest already build.

pub mod ca;
pub mod server_cert;

pub use ca::CertificateAuthority;
pub use server_cert::{ServerCert, SubjectNames};

use crate::system::monitor::HostNames;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

/// How often the certificate's dates are checked against the wall clock (which can jump
/// when the network time arrives: a Pi has no clock battery).
const CHECK_EVERY: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is damaged or does not belong with its key ({why}). If the SD card is fine, \
         move web-ca.key and web-ca.crt out of that folder and restart: plugnode makes a new \
         certificate authority, which every device must then trust again"
    )]
    Damaged { path: PathBuf, why: String },
    #[error("cannot make a certificate: {0}")]
    Certificate(#[source] rcgen::Error),
    #[error("rustls refused the certificate: {0}")]
    Rustls(#[source] rustls::Error),
}

/// The crypto provider: *ring*, already in the build for ldk-node's TLS.
pub(crate) fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The box's HTTPS identity while it runs: its CA and the current server certificate.
pub struct Https {
    ca: Arc<CertificateAuthority>,
    current: Arc<CurrentCert>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Https {
    /// Loads (or on first start makes) the CA in `secrets_dir`, issues a server
    /// certificate for the names in `names`, and keeps it current: reissued when `names`
    /// changes and before it ends. Needs a tokio runtime.
    pub fn start(
        secrets_dir: &Path,
        mut names: watch::Receiver<HostNames>,
    ) -> Result<Https, TlsError> {
        let now = OffsetDateTime::now_utc();
        let ca = Arc::new(CertificateAuthority::load_or_create(secrets_dir, now)?);
        let wanted = SubjectNames::for_box(&names.borrow_and_update());
        let first = ServerCert::issue(&ca, wanted, now)?;
        info!(
            "HTTPS: {} signs the certificate for {} (SHA-256 {})",
            ca.name(),
            first.names,
            ca.fingerprint()
        );
        let current = Arc::new(CurrentCert(watch::channel(Arc::new(first)).0));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(keep_current(ca.clone(), current.clone(), names, stopped));
        Ok(Https {
            ca,
            current,
            stop,
            task,
        })
    }

    pub fn ca(&self) -> &Arc<CertificateAuthority> {
        &self.ca
    }

    /// The certificate served now, and every one that replaces it.
    pub fn certificates(&self) -> watch::Receiver<Arc<ServerCert>> {
        self.current.0.subscribe()
    }

    /// A rustls server config that always presents the current certificate.
    pub fn server_config(&self) -> rustls::ServerConfig {
        rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .expect("ring offers TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.current.clone())
    }

    /// Stops watching for changes (after the web server stopped).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The certificate of the moment; a `watch` channel, so tests and logs can follow swaps.
#[derive(Debug)]
struct CurrentCert(watch::Sender<Arc<ServerCert>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.borrow().certified.clone())
    }
}

/// Reissues the certificate when the box's names change or its dates say so.
async fn keep_current(
    ca: Arc<CertificateAuthority>,
    current: Arc<CurrentCert>,
    mut names: watch::Receiver<HostNames>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut names_open = true;
    loop {
        tokio::select! {
            changed = names.changed(), if names_open => names_open = changed.is_ok(),
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = &mut stopped => return,
        }
        let wanted = SubjectNames::for_box(&names.borrow_and_update());
        let now = OffsetDateTime::now_utc();
        let Some(why) = current.0.borrow().renewal(&wanted, now) else {
            continue;
        };
        match ServerCert::issue(&ca, wanted, now) {
            Ok(cert) => {
                info!(
                    "HTTPS: new certificate ({why:?}) for {}, valid until {}",
                    cert.names,
                    cert.not_after.date()
                );
                current.0.send_replace(Arc::new(cert));
            }
            // The old certificate stays; the next change or check tries again.
            Err(err) => warn!("HTTPS: could not renew the certificate ({why:?}): {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_address_swaps_the_certificate_under_the_running_server() {
        let dir = tempfile::tempdir().unwrap();
        let first = HostNames {
            hostname: "plugnode".into(),
            addresses: vec!["192.168.1.23".parse().unwrap()],
        };
        let (names, receiver) = watch::channel(first);
        let https = Https::start(dir.path(), receiver).unwrap();
        let config = Arc::new(https.server_config());
        let mut certificates = https.certificates();
        let before = certificates.borrow_and_update().certified.clone();
        assert!(certificates
            .borrow()
            .names
            .ips
            .contains(&"192.168.1.23".parse().unwrap()));

        names.send_replace(HostNames {
            hostname: "plugnode".into(),
            addresses: vec!["192.168.1.77".parse().unwrap()],
        });
        let swapped = certificates
            .wait_for(|cert| cert.names.ips.contains(&"192.168.1.77".parse().unwrap()))
            .await
            .unwrap()
            .certified
            .clone();
        assert!(!Arc::ptr_eq(&before, &swapped));
        // The same server config now presents the new certificate.
        let presented = handshake(config.clone(), https.ca(), "192.168.1.77");
        assert_eq!(presented, swapped.cert);
        assert_eq!(presented.len(), 2, "the server certificate and the CA");
        assert_eq!(&presented[1], https.ca().cert_der());
        assert_eq!(
            https.ca().cert_der(),
            CertificateAuthority::load_or_create(dir.path(), OffsetDateTime::now_utc())
                .unwrap()
                .cert_der(),
            "the CA stays"
        );
        https.stop().await;
    }

    /// A TLS handshake in memory with a client that trusts only `ca`; returns the
    /// certificates the server presented.
    fn handshake(
        server: Arc<rustls::ServerConfig>,
        ca: &CertificateAuthority,
        name: &str,
    ) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        let mut server = rustls::ServerConnection::new(server).unwrap();
        for _ in 0..10 {
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).unwrap();
            server.read_tls(&mut bytes.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            let mut bytes = Vec::new();
            server.write_tls(&mut bytes).unwrap();
            client.read_tls(&mut bytes.as_slice()).unwrap();
            client
                .process_new_packets()
                .expect("the client trusts the certificate");
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
        }
        assert!(!client.is_handshaking(), "the handshake finished");
        client.peer_certificates().unwrap().to_vec()
    }
}
