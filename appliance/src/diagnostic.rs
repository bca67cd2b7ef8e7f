//! Diagnostic mode: when the appliance cannot start for a reason a restart will not fix
//! (the data disk missing or full, a store that does not open, a port taken), plugnode
//! does not exit into systemd's restart loop, which would only repeat the failure with
//! nobody told. It keeps the screen and a small page up that say what is wrong and what
//! to do, with the last lines of the log, and offer Retry and Shut down (as StartOS
//! does). Nothing of the node runs meanwhile: no store is open, so nothing can be lost.

use crate::app::{Face, StartProblem};
use crate::config::Config;
use crate::sd_notify::Systemd;
use crate::shutdown::Shutdown;
use crate::status::{Phase, StartFailure};
use crate::system::monitor::HostNames;
use crate::web::auth::Auth;
use crate::web::diagnostic::{DiagnosticPage, DiagnosticServer};
use crate::web::guard::OwnNames;
use crate::web::tls::Https;
use std::net::{SocketAddr, TcpListener};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// What the user chose.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Start again (the config is read again too).
    Retry,
    /// The box stops (Shut down, KEY4, or SIGTERM).
    Stop,
}

/// What the page and the screen say about `err`, a failed start.
pub fn failure_of(err: &anyhow::Error) -> StartFailure {
    let full = io_kinds(err);
    if full.contains(&std::io::ErrorKind::StorageFull) {
        return StartFailure {
            problem: "The data disk is full".into(),
            detail: format!(
                "{}. Free up space on the data disk, or move plugnode's data to a larger \
                 one.",
                causes(err)
            ),
        };
    }
    let problem = err
        .downcast_ref::<StartProblem>()
        .map(|p| p.0.to_string())
        .unwrap_or_else(|| "plugnode cannot start".into());
    StartFailure {
        problem,
        detail: format!("{}.", causes(err).trim_end_matches('.')),
    }
}

/// The error's causes below its headline, joined as a sentence.
fn causes(err: &anyhow::Error) -> String {
    let skip = usize::from(err.downcast_ref::<StartProblem>().is_some());
    let mut text = err
        .chain()
        .skip(skip)
        .map(|cause| cause.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    if let Some(first) = text.get(..1) {
        text = first.to_uppercase() + &text[1..];
    }
    text
}

fn io_kinds(err: &anyhow::Error) -> Vec<std::io::ErrorKind> {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
        .collect()
}

/// Shows `err` on `face` and serves the diagnostic page until the user presses Retry or
/// the box is to stop. When it stops, the screen's last words are drawn here.
/// `attempt` counts the failed starts (1 for the first), so the page tells a Retry that
/// failed again from the first failure.
pub async fn run(
    config: &Config,
    face: &Face,
    err: &anyhow::Error,
    attempt: u32,
    shutdown: &Shutdown,
) -> Next {
    let failure = failure_of(err);
    warn!(
        "diagnostic mode: {}: {} (Retry and Shut down on the web page)",
        failure.problem, failure.detail
    );
    // The port that failed may still be taken: serve on whichever binds.
    let bind = |address: SocketAddr| {
        TcpListener::bind(address)
            .map_err(|err| warn!("diagnostic page: cannot listen on {address}: {err}"))
            .ok()
    };
    let plain = bind(config.web.listen);
    let plain_port = plain.as_ref().and_then(|l| l.local_addr().ok());
    let secrets_dir = config.data.secrets_dir();
    let (_names, names_changed) = tokio::sync::watch::channel(HostNames::current());
    let https = bind(config.web.https_listen).and_then(|listener| {
        let address = listener.local_addr().ok()?;
        match Https::start(&secrets_dir, names_changed) {
            Ok(https) => Some((listener, https, address)),
            Err(err) => {
                warn!("diagnostic page: no HTTPS ({err:#}); plain HTTP only");
                None
            }
        }
    });
    let (https_listener, https) = match https {
        Some((listener, https, address)) => (Some(listener), Some((https, address))),
        None => (None, None),
    };
    let https_url = https
        .as_ref()
        .map(|(_, address)| url("https", "plugnode.local", address.port(), 443));
    face.status.update(|s| {
        s.phase = Phase::Diagnostic;
        s.system.start_failure = Some(failure.clone());
        s.system.https_url = https_url.clone();
        s.system.web_url = plain_port.map(|a| url("http", "plugnode.local", a.port(), 80));
        s.system.ca_fingerprint = https
            .as_ref()
            .map(|(https, _)| https.ca().fingerprint().to_string());
    });
    // The password guards Shut down when it can be read; the store may be the fault.
    let auth = Auth::load(&secrets_dir, None)
        .map_err(|err| warn!("diagnostic page: the password store does not open: {err:#}"))
        .ok();
    let (retry, mut retried) = mpsc::unbounded_channel();
    let server = DiagnosticServer::start(
        DiagnosticPage {
            failure,
            attempt,
            auth,
            shutdown: shutdown.clone(),
            retry,
            https_url,
        },
        OwnNames {
            status: face.status.clone(),
            allowed_hosts: config.web.allowed_hosts.clone(),
        },
        plain,
        https_listener.zip(https.as_ref().map(|(https, _)| https)),
    )
    .map_err(|err| warn!("the diagnostic page cannot be served: {err}"))
    .ok();
    // Ready for systemd: plugnode is up, in its diagnostic mode (no restart loop).
    let systemd = Systemd::ready(face.status.clone());
    let next = tokio::select! {
        Some(()) = retried.recv() => Next::Retry,
        _ = shutdown.wait() => Next::Stop,
    };
    if next == Next::Stop {
        systemd.stopping();
        face.status.update(|s| s.phase = Phase::ShuttingDown);
    }
    if let Some(server) = server {
        server.stop().await;
    }
    if let Some((https, _)) = https {
        https.stop().await;
    }
    match next {
        Next::Retry => info!("diagnostic mode: starting again"),
        Next::Stop => {
            face.status.update(|s| s.phase = Phase::Stopped);
            face.finish().await;
            info!("plugnode stopped in diagnostic mode; safe to unplug");
        }
    }
    next
}

fn url(scheme: &str, host: &str, port: u16, default_port: u16) -> String {
    if port == default_port {
        format!("{scheme}://{host}/")
    } else {
        format!("{scheme}://{host}:{port}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_full_disk_is_named_whatever_step_met_it() {
        let err = Err::<(), _>(std::io::Error::from(std::io::ErrorKind::StorageFull))
            .context("cannot read or create the RPC credentials in /var/lib/plugnode/secrets")
            .context(StartProblem("The data disk cannot be written"))
            .unwrap_err();
        let failure = failure_of(&err);
        assert_eq!(failure.problem, "The data disk is full");
        assert!(
            failure
                .detail
                .starts_with("Cannot read or create the RPC credentials"),
            "{}",
            failure.detail
        );
        assert!(
            failure.detail.contains("Free up space"),
            "{}",
            failure.detail
        );
    }

    #[test]
    fn the_headline_is_the_step_and_the_detail_its_causes() {
        let err = Err::<(), _>(std::io::Error::from(std::io::ErrorKind::AddrInUse))
            .context(
                "cannot listen on 0.0.0.0:443 (web.https_listen): another program may use the port",
            )
            .context(StartProblem("A network port plugnode needs is taken"))
            .unwrap_err();
        let failure = failure_of(&err);
        assert_eq!(failure.problem, "A network port plugnode needs is taken");
        assert!(
            failure.detail.starts_with("Cannot listen on 0.0.0.0:443"),
            "{}",
            failure.detail
        );
        assert!(
            !failure.detail.contains("needs is taken"),
            "{}",
            failure.detail
        );

        let plain = anyhow::anyhow!("something unforeseen");
        assert_eq!(failure_of(&plain).problem, "plugnode cannot start");
        assert_eq!(failure_of(&plain).detail, "Something unforeseen.");
    }
}
