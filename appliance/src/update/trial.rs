//! The "mark good" rule: when a new version, booted once on trial, has proven itself.
//!
//! Proven means: bitcoind answers RPC (ready, or still catching up with blocks), the
//! Lightning node runs (or waits only for the user to set up a wallet), and the backup has
//! not failed, all at the same time and without a break for [`SETTLE`], within the trial
//! limit (`update.trial_limit_secs`). Anything else by the limit is a failed trial, and the
//! reason names what was not healthy.

use crate::lightning::NO_WALLET_YET;
use crate::status::{BackupState, BitcoindState, LightningState, Status};
use crate::text::capitalized;
use std::time::{Duration, Instant};

/// How long everything must stay healthy in one stretch: a service that starts and falls
/// over a minute later has not proven anything.
pub const SETTLE: Duration = Duration::from_secs(60);

/// What is not healthy yet in `status`, in words for the page ("bitcoind", …); empty when
/// everything is.
pub fn not_healthy(status: &Status) -> Vec<String> {
    let mut missing = Vec::new();
    if !matches!(
        status.bitcoind.state,
        BitcoindState::Ready | BitcoindState::Syncing
    ) {
        missing.push("bitcoind".to_string());
    }
    let lightning_ok = match &status.lightning.state {
        LightningState::Running | LightningState::Disabled => true,
        // A box nobody has set a wallet up on yet has no node to prove.
        LightningState::Waiting { reason } => reason == NO_WALLET_YET,
        _ => false,
    };
    if !lightning_ok {
        missing.push("the Lightning node".to_string());
    }
    if matches!(status.backup.state, BackupState::Failed { .. }) {
        missing.push("the channel backup".to_string());
    }
    missing
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not yet: `waiting_for` is what is not healthy (empty while settling).
    Waiting { waiting_for: Vec<String> },
    /// Healthy for [`SETTLE`] in one stretch: make this version the default.
    Proven,
    /// The limit passed first.
    Failed { reason: String },
}

/// One trial boot, fed with observations.
pub struct Trial {
    started: Instant,
    limit: Duration,
    settle: Duration,
    healthy_since: Option<Instant>,
}

impl Trial {
    pub fn new(started: Instant, limit: Duration) -> Trial {
        Trial {
            started,
            limit,
            settle: SETTLE,
            healthy_since: None,
        }
    }

    /// The verdict after seeing `missing` (from [`not_healthy`]) at `now`.
    pub fn observe(&mut self, missing: &[String], now: Instant) -> Verdict {
        if missing.is_empty() {
            let since = *self.healthy_since.get_or_insert(now);
            if now.duration_since(since) >= self.settle {
                return Verdict::Proven;
            }
        } else {
            self.healthy_since = None;
        }
        if now.duration_since(self.started) >= self.limit {
            let reason = if missing.is_empty() {
                format!(
                    "bitcoind, Lightning and the backup were healthy, but not for {} s in one \
                     stretch within {} minutes.",
                    self.settle.as_secs(),
                    self.limit.as_secs() / 60
                )
            } else {
                format!(
                    "{} did not become healthy within {} minutes.",
                    capitalized(&missing.join(", ")),
                    self.limit.as_secs() / 60
                )
            };
            return Verdict::Failed { reason };
        }
        Verdict::Waiting {
            waiting_for: missing.to_vec(),
        }
    }

    /// When the trial ends at the latest.
    pub fn deadline(&self) -> Instant {
        self.started + self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(900);

    fn healthy() -> Status {
        let mut status = Status::default();
        status.bitcoind.state = BitcoindState::Ready;
        status.lightning.state = LightningState::Running;
        status.backup.state = BackupState::Mirroring;
        status
    }

    #[test]
    fn what_counts_as_healthy() {
        assert!(not_healthy(&healthy()).is_empty());
        let mut catching_up = healthy();
        catching_up.bitcoind.state = BitcoindState::Syncing;
        assert!(not_healthy(&catching_up).is_empty());
        let mut no_wallet_yet = healthy();
        no_wallet_yet.lightning.state = LightningState::Waiting {
            reason: NO_WALLET_YET.into(),
        };
        no_wallet_yet.backup.state = BackupState::NoStick;
        assert!(not_healthy(&no_wallet_yet).is_empty());

        let mut broken = healthy();
        broken.bitcoind.state = BitcoindState::Starting {
            message: "waiting for RPC".into(),
        };
        broken.lightning.state = LightningState::Failed {
            message: "x".into(),
        };
        broken.backup.state = BackupState::Failed {
            message: "x".into(),
        };
        assert_eq!(
            not_healthy(&broken),
            vec!["bitcoind", "the Lightning node", "the channel backup"]
        );
        let mut waiting_for_bitcoind = healthy();
        waiting_for_bitcoind.lightning.state = LightningState::Waiting {
            reason: "waiting for bitcoind's initial sync".into(),
        };
        assert_eq!(
            not_healthy(&waiting_for_bitcoind),
            vec!["the Lightning node"]
        );
    }

    #[test]
    fn proven_after_a_settled_stretch_of_health() {
        let start = Instant::now();
        let mut trial = Trial::new(start, LIMIT);
        let at = |secs| start + Duration::from_secs(secs);
        let bitcoind = vec!["bitcoind".to_string()];
        assert_eq!(
            trial.observe(&bitcoind, at(10)),
            Verdict::Waiting {
                waiting_for: bitcoind.clone()
            }
        );
        assert_eq!(
            trial.observe(&[], at(100)),
            Verdict::Waiting {
                waiting_for: vec![]
            }
        );
        assert!(matches!(
            trial.observe(&[], at(159)),
            Verdict::Waiting { .. }
        ));
        assert_eq!(trial.observe(&[], at(160)), Verdict::Proven);
    }

    #[test]
    fn a_break_in_health_starts_the_stretch_again() {
        let start = Instant::now();
        let mut trial = Trial::new(start, LIMIT);
        let at = |secs| start + Duration::from_secs(secs);
        trial.observe(&[], at(0));
        trial.observe(&["the Lightning node".to_string()], at(50));
        assert!(matches!(
            trial.observe(&[], at(70)),
            Verdict::Waiting { .. }
        ));
        assert!(matches!(
            trial.observe(&[], at(120)),
            Verdict::Waiting { .. }
        ));
        assert_eq!(trial.observe(&[], at(130)), Verdict::Proven);
    }

    #[test]
    fn the_limit_fails_the_trial_and_names_what_was_missing() {
        let start = Instant::now();
        let mut trial = Trial::new(start, LIMIT);
        let missing = vec!["the Lightning node".to_string()];
        let Verdict::Failed { reason } = trial.observe(&missing, start + LIMIT) else {
            panic!("the trial must fail at its limit");
        };
        assert_eq!(
            reason,
            "The Lightning node did not become healthy within 15 minutes."
        );
        // Healthy only at the very end is not enough either.
        let mut late = Trial::new(start, LIMIT);
        let Verdict::Failed { reason } = late.observe(&[], start + LIMIT) else {
            panic!("a stretch that just began does not count");
        };
        assert!(reason.contains("not for 60 s in one stretch"), "{reason}");
    }
}
