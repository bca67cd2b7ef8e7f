//! One stop signal for the whole supervisor.
//!
//! Ctrl-C, SIGTERM, the web page's "shut down" button and the display's shutdown key all
//! trigger the same [`Shutdown`]; services wait on it and stop in the order written down
//! in `supervisor` (web → display → Lightning → final backup flush → bitcoind).

use std::sync::Arc;
use tokio::sync::watch;

/// A cloneable stop signal. Triggering is idempotent; waiting returns at once when it was
/// already triggered.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Shutdown {
    pub fn new() -> Self {
        let (sender, _) = watch::channel(false);
        Shutdown {
            sender: Arc::new(sender),
        }
    }

    /// Asks everything to stop.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// Completes once the shutdown was triggered.
    pub async fn wait(&self) {
        let mut receiver = self.sender.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = receiver.wait_for(|stop| *stop).await;
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
}
