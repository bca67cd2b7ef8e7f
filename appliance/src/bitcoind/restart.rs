//! When to start bitcoind again after it exited on its own: exponential backoff from 1 s
//! doubling to 5 minutes, and a crash-loop verdict after 5 exits within 10 minutes, which
//! stops the hammering until the user retries.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
pub const CRASH_LOOP_EXITS: usize = 5;
pub const CRASH_LOOP_WINDOW: Duration = Duration::from_secs(10 * 60);
/// A run this long counts as healthy: the next exit starts the backoff from the beginning.
const STABLE_RUN: Duration = Duration::from_secs(10 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartDecision {
    RestartAfter(Duration),
    /// Too many exits: stop restarting and tell the user.
    GiveUp {
        exits: u32,
        window: Duration,
    },
}

#[derive(Debug, Default)]
pub struct RestartPolicy {
    recent_exits: VecDeque<Instant>,
    consecutive_restarts: u32,
}

impl RestartPolicy {
    /// Records an unexpected exit at `now` of a process that ran for `ran_for`.
    pub fn on_exit(&mut self, now: Instant, ran_for: Duration) -> RestartDecision {
        if ran_for >= STABLE_RUN {
            self.consecutive_restarts = 0;
        }
        self.recent_exits.push_back(now);
        while let Some(&oldest) = self.recent_exits.front() {
            if now.duration_since(oldest) > CRASH_LOOP_WINDOW {
                self.recent_exits.pop_front();
            } else {
                break;
            }
        }
        if self.recent_exits.len() >= CRASH_LOOP_EXITS {
            return RestartDecision::GiveUp {
                exits: self.recent_exits.len() as u32,
                window: CRASH_LOOP_WINDOW,
            };
        }
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << self.consecutive_restarts.min(16))
            .min(MAX_BACKOFF);
        self.consecutive_restarts += 1;
        RestartDecision::RestartAfter(delay)
    }

    /// The user asked to try again: forget the history.
    pub fn reset(&mut self) {
        *self = RestartPolicy::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_millis(50);

    #[test]
    fn backoff_doubles_then_a_quick_crash_loop_gives_up() {
        let mut policy = RestartPolicy::default();
        let mut now = Instant::now();
        let mut delays = Vec::new();
        loop {
            match policy.on_exit(now, QUICK) {
                RestartDecision::RestartAfter(delay) => {
                    delays.push(delay.as_secs());
                    now += delay + QUICK;
                }
                RestartDecision::GiveUp { exits, window } => {
                    assert_eq!(exits, 5);
                    assert_eq!(window, CRASH_LOOP_WINDOW);
                    break;
                }
            }
        }
        assert_eq!(delays, vec![1, 2, 4, 8]);
    }

    #[test]
    fn backoff_is_capped_at_five_minutes_and_slow_crashes_never_give_up() {
        let mut policy = RestartPolicy::default();
        let mut now = Instant::now();
        let mut last = Duration::ZERO;
        // Each run lasts 4 minutes: 5 exits never fit into 10 minutes.
        for _ in 0..20 {
            now += Duration::from_secs(4 * 60);
            match policy.on_exit(now, Duration::from_secs(4 * 60)) {
                RestartDecision::RestartAfter(delay) => {
                    assert!(delay >= last && delay <= MAX_BACKOFF);
                    last = delay;
                    now += delay;
                }
                RestartDecision::GiveUp { .. } => panic!("slow exits are not a crash loop"),
            }
        }
        assert_eq!(last, MAX_BACKOFF);
    }

    #[test]
    fn a_long_healthy_run_resets_the_backoff() {
        let mut policy = RestartPolicy::default();
        let now = Instant::now();
        policy.on_exit(now, QUICK);
        policy.on_exit(now + Duration::from_secs(1), QUICK);
        let later = now + Duration::from_secs(3600);
        assert_eq!(
            policy.on_exit(later, Duration::from_secs(3600)),
            RestartDecision::RestartAfter(FIRST_BACKOFF)
        );
    }

    #[test]
    fn retry_forgets_the_crash_loop() {
        let mut policy = RestartPolicy::default();
        let now = Instant::now();
        for _ in 0..5 {
            policy.on_exit(now, QUICK);
        }
        policy.reset();
        assert_eq!(
            policy.on_exit(now, QUICK),
            RestartDecision::RestartAfter(FIRST_BACKOFF)
        );
    }
}
