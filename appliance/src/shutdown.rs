//! One stop signal for the whole supervisor.
//!
//! Ctrl-C, SIGTERM, the web page's "shut down" button and the display's shutdown key all
//! trigger the same [`Shutdown`]; services wait on it and stop in the order written down
//! in `supervisor` (web → display → Lightning → final backup flush → bitcoind).

use std::sync::Arc;
use tokio::sync::watch;

/// Why plugnode stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    /// Ctrl-C, SIGTERM (systemd stopping the service).
    Stop,
    /// The user asked to turn the box off (web page, or KEY4 on the device): after the
    /// clean stop, plugnode exits with [`EXIT_POWER_OFF`] and the service unit powers off.
    PowerOff,
    /// A system update was written to the other slot: after the clean stop, plugnode exits
    /// with [`EXIT_UPDATE`] and the service unit reboots into it (the firmware's one-shot
    /// `tryboot`).
    Update,
}

/// Exit code that tells the service unit to power the box off.
pub const EXIT_POWER_OFF: u8 = 100;
/// Exit code that tells the service unit to reboot into the new system slot once.
pub const EXIT_UPDATE: u8 = 101;

/// A cloneable stop signal. Triggering is idempotent (the first reason wins); waiting
/// returns at once when it was already triggered.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: Arc<watch::Sender<Option<ShutdownReason>>>,
}

impl Shutdown {
    pub fn new() -> Self {
        let (sender, _) = watch::channel(None);
        Shutdown {
            sender: Arc::new(sender),
        }
    }

    /// Asks everything to stop.
    pub fn trigger(&self) {
        self.trigger_with(ShutdownReason::Stop);
    }

    /// Asks everything to stop and the box to power off afterwards.
    pub fn power_off(&self) {
        self.trigger_with(ShutdownReason::PowerOff);
    }

    /// Asks everything to stop and the box to restart into the update just written.
    pub fn restart_for_update(&self) {
        self.trigger_with(ShutdownReason::Update);
    }

    fn trigger_with(&self, reason: ShutdownReason) {
        self.sender.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub fn is_triggered(&self) -> bool {
        self.sender.borrow().is_some()
    }

    /// Why the shutdown was triggered, once it was.
    pub fn reason(&self) -> Option<ShutdownReason> {
        *self.sender.borrow()
    }

    /// Completes once the shutdown was triggered.
    pub async fn wait(&self) {
        let mut receiver = self.sender.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = receiver.wait_for(|reason| reason.is_some()).await;
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waiters_wake_on_trigger_and_after_it() {
        let shutdown = Shutdown::new();
        let waiter = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        shutdown.trigger();
        waiter.await.unwrap();
        // A late waiter returns at once.
        tokio::time::timeout(Duration::from_secs(1), shutdown.wait())
            .await
            .unwrap();
        assert!(shutdown.is_triggered());
    }

    #[test]
    fn the_first_reason_wins() {
        let shutdown = Shutdown::new();
        assert_eq!(shutdown.reason(), None);
        shutdown.power_off();
        shutdown.trigger();
        assert_eq!(shutdown.reason(), Some(ShutdownReason::PowerOff));
    }
}
