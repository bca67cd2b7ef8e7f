//! Where plugnode's log goes.
//!
//! On the box (`plugnode run`) everything the filter lets through (`RUST_LOG`, default
//! `info`) goes to stderr, which systemd hands to journald. The demo calls
//! `send_details_to` once it knows its directory: from then on the full log goes to that
//! file, and the terminal shows only warnings and errors, without the ones ldk-node raises
//! in the demo although nothing is wrong (`HARMLESS_IN_DEMO`). A newcomer reads every line
//! on the terminal as trouble.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the log for this process: call once, before anything logs.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Also kept in memory: diagnostic mode shows the last lines.
    let terminal = fmt::layer().with_writer(crate::log_tail::TeeToStderr::default);
    #[cfg(feature = "demo")]
    let (terminal, details) = {
        use tracing_subscriber::Layer;
        (
            terminal.with_filter(demo::Terminal),
            fmt::layer()
                .with_ansi(false)
                .with_writer(|| demo::DetailsFile)
                .with_filter(demo::Details),
        )
    };
    let registry = tracing_subscriber::registry().with(filter).with(terminal);
    #[cfg(feature = "demo")]
    let registry = registry.with(details);
    registry.init();
}

#[cfg(feature = "demo")]
pub use demo::send_details_to;

/// What ldk-node logs at ERROR in the demo although nothing is wrong, as (target, words the
/// message contains). Each stays in the log file.
#[cfg(feature = "demo")]
pub const HARMLESS_IN_DEMO: &[(&str, &[&str])] = &[
    // A fresh regtest chain has no fee history, so `estimatesmartfee` finds no rate and
    // ldk-node uses 1 sat/vB, which is right there. (On mainnet ldk-node words it without
    // "Falling back" and fails: that one is not matched.)
    (
        "ldk_node::chain::bitcoind",
        &[
            "Failed to retrieve fee rate estimates",
            "Falling back to default",
        ],
    ),
    // The demo's liquidity provider runs ldk-node's LSPS2 service, which is told of every
    // channel that becomes ready; the ordinary channel from the demo's peer is none of its
    // just-in-time channels, so it has no state for that peer.
    (
        "ldk_node::liquidity",
        &[
            "LSPS2 service failed to handle ChannelReady event",
            "No counterparty state",
        ],
    ),
];

/// Whether a line with this target and message is one of [`HARMLESS_IN_DEMO`].
#[cfg(feature = "demo")]
pub fn harmless_in_demo(target: &str, message: &str) -> bool {
    HARMLESS_IN_DEMO.iter().any(|(known_target, words)| {
        target == *known_target && words.iter().all(|word| message.contains(word))
    })
}

#[cfg(feature = "demo")]
mod demo {
    use std::fmt::Write as _;
    use std::fs::File;
    use std::io::Write;
    use std::path::Path;
    use std::sync::OnceLock;
    use tracing::field::{Field, Visit};
    use tracing::{Event, Level, Metadata};
    use tracing_subscriber::layer::{Context, Filter};

    /// The demo's log file, once it has one. A global like the subscriber itself, which is
    /// installed before the demo knows its directory.
    static DETAILS: OnceLock<File> = OnceLock::new();

    /// From now on the full log goes to `path` (appended), and the terminal keeps only what
    /// a newcomer must see. A second call keeps the first file.
    pub fn send_details_to(path: &Path) -> std::io::Result<()> {
        let file = File::options().create(true).append(true).open(path)?;
        let _ = DETAILS.set(file);
        Ok(())
    }

    fn in_demo() -> bool {
        DETAILS.get().is_some()
    }

    /// The terminal: everything until the demo has its file, then warnings and errors
    /// without the harmless ones. The answer changes at run time, so the filter keeps the
    /// trait's `Interest::sometimes()` (no cached decisions).
    pub struct Terminal;

    impl<S> Filter<S> for Terminal {
        fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
            !in_demo() || *meta.level() <= Level::WARN
        }

        fn event_enabled(&self, event: &Event<'_>, _: &Context<'_, S>) -> bool {
            if !in_demo() {
                return true;
            }
            let mut fields = MessageAndTarget::default();
            event.record(&mut fields);
            // ldk-node logs through the `log` crate: its target arrives as a field.
            let target = fields
                .log_target
                .as_deref()
                .unwrap_or(event.metadata().target());
            !super::harmless_in_demo(target, &fields.message)
        }
    }

    /// The log file: everything, once there is one.
    pub struct Details;

    impl<S> Filter<S> for Details {
        fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
            in_demo()
        }
    }

    /// Writes to the demo's log file (nothing before there is one; [`Details`] lets no
    /// line through then anyway).
    pub struct DetailsFile;

    impl Write for DetailsFile {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            match DETAILS.get() {
                Some(mut file) => file.write(buf),
                None => Ok(buf.len()),
            }
        }

        fn flush(&mut self) -> std::io::Result<()> {
            match DETAILS.get() {
                Some(mut file) => file.flush(),
                None => Ok(()),
            }
        }
    }

    #[derive(Default)]
    struct MessageAndTarget {
        message: String,
        log_target: Option<String>,
    }

    impl Visit for MessageAndTarget {
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "message" => self.message.push_str(value),
                "log.target" => self.log_target = Some(value.to_string()),
                _ => {}
            }
        }

        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.message, "{value:?}");
            }
        }
    }
}

#[cfg(all(test, feature = "demo"))]
mod tests {
    use super::harmless_in_demo;

    #[test]
    fn only_the_known_harmless_lines_leave_the_demo_terminal() {
        assert!(harmless_in_demo(
            "ldk_node::chain::bitcoind",
            "Failed to retrieve fee rate estimates: [\"Insufficient data or no feerate \
             found\"]. Falling back to default of 1 sat/vb."
        ));
        assert!(harmless_in_demo(
            "ldk_node::liquidity",
            "LSPS2 service failed to handle ChannelReady event: Misuse error: No \
             counterparty state for: 02ab…"
        ));
        // On mainnet the same failure stops ldk-node: a real problem.
        assert!(!harmless_in_demo(
            "ldk_node::chain::bitcoind",
            "Failed to retrieve fee rate estimates: connection refused"
        ));
        // A just-in-time channel the service knows and still fails on.
        assert!(!harmless_in_demo(
            "ldk_node::liquidity",
            "LSPS2 service failed to handle ChannelReady event: APIMisuseError"
        ));
        // The same words from another source are not waved through.
        assert!(!harmless_in_demo(
            "plugnode::lightning::service",
            "Failed to retrieve fee rate estimates. Falling back to default"
        ));
    }
}
