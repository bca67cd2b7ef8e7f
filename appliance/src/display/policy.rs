//! When to drive the glass: the e-ink makers' rules as one piece of logic.
//!
//! - Draw only when the picture changes.
//! - At most `max_partials` partial refreshes in a row, then a full one.
//! - Idle status updates at most every `idle_interval`; key presses, alerts and secrets
//!   leaving the screen are drawn at once.
//! - A full refresh at least every `full_every` (daily), even when nothing changed: the
//!   panel makers ask for it so the picture does not burn in.
//! - The very first picture, and a secret leaving the screen, get a full refresh.
//!
//! (Sleeping after every update is the service's part: it always calls `Panel::sleep`.)

use super::ui::Urgency;
use plugnode_hw::Frame;
use std::time::Duration;
use tokio::time::Instant;

/// The refresh rules' numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshRules {
    pub max_partials: u32,
    pub idle_interval: Duration,
    pub full_every: Duration,
}

impl Default for RefreshRules {
    fn default() -> Self {
        RefreshRules {
            max_partials: 5,
            idle_interval: Duration::from_secs(180),
            full_every: Duration::from_secs(24 * 3600),
        }
    }
}

/// What to do with a new picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to draw.
    None,
    Partial,
    Full,
    /// Something changed, but an idle update is not allowed before this time: ask again
    /// then (with the picture of that moment).
    Wait(Instant),
}

/// The refresh policy's memory: what the glass shows and when it was last driven.
#[derive(Clone, Debug)]
pub struct RefreshPolicy {
    rules: RefreshRules,
    shown: Option<Frame>,
    partials_in_a_row: u32,
    last_update: Option<Instant>,
    last_full: Option<Instant>,
}

impl RefreshPolicy {
    pub fn new(rules: RefreshRules) -> Self {
        RefreshPolicy {
            rules,
            shown: None,
            partials_in_a_row: 0,
            last_update: None,
            last_full: None,
        }
    }

    pub fn rules(&self) -> RefreshRules {
        self.rules
    }

    /// The picture on the glass, as far as we know.
    pub fn shown(&self) -> Option<&Frame> {
        self.shown.as_ref()
    }

    fn full_due(&self, now: Instant) -> bool {
        self.last_full
            .is_none_or(|t| now.saturating_duration_since(t) >= self.rules.full_every)
    }

    /// Decides what to do with `frame` at `now`.
    pub fn decide(&self, now: Instant, frame: &Frame, urgency: Urgency) -> Decision {
        let changed = self.shown.as_ref() != Some(frame);
        let full_due = self.full_due(now);
        if !changed {
            // Unchanged: only the daily maintenance refresh.
            return if full_due && self.shown.is_some() {
                Decision::Full
            } else {
                Decision::None
            };
        }
        if urgency == Urgency::Idle {
            if let Some(last) = self.last_update {
                let allowed = last + self.rules.idle_interval;
                if now < allowed {
                    return Decision::Wait(allowed);
                }
            }
        }
        let full = self.shown.is_none()
            || full_due
            || urgency == Urgency::ImmediateFull
            || self.partials_in_a_row >= self.rules.max_partials;
        if full {
            Decision::Full
        } else {
            Decision::Partial
        }
    }

    /// Records that `frame` reached the glass with `decision` (Partial or Full).
    pub fn record(&mut self, now: Instant, frame: &Frame, decision: Decision) {
        match decision {
            Decision::Full => {
                self.partials_in_a_row = 0;
                self.last_full = Some(now);
            }
            Decision::Partial => self.partials_in_a_row += 1,
            Decision::None | Decision::Wait(_) => return,
        }
        self.last_update = Some(now);
        self.shown = Some(frame.clone());
    }

    /// Forgets what the glass shows (after a failed refresh): the next picture is drawn
    /// with a full refresh.
    pub fn forget(&mut self) {
        self.shown = None;
    }

    /// When the daily full refresh falls due (to wake up for it even if nothing changes).
    pub fn next_full_due(&self) -> Option<Instant> {
        self.last_full.map(|t| t + self.rules.full_every)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugnode_hw::Size;

    fn frame(n: u32) -> Frame {
        let mut f = Frame::new(Size::new(32, 8));
        f.set(n % 32, 0, true);
        f
    }

    fn apply(p: &mut RefreshPolicy, now: Instant, f: &Frame, u: Urgency) -> Decision {
        let d = p.decide(now, f, u);
        p.record(now, f, d);
        d
    }

    #[test]
    fn first_picture_is_full_then_partials_up_to_five() {
        let mut p = RefreshPolicy::new(RefreshRules::default());
        let t0 = Instant::now();
        assert_eq!(apply(&mut p, t0, &frame(0), Urgency::Idle), Decision::Full);
        let mut decisions = Vec::new();
        for i in 1..=7 {
            decisions.push(apply(&mut p, t0, &frame(i), Urgency::Immediate));
        }
        use Decision::*;
        assert_eq!(
            decisions,
            vec![Partial, Partial, Partial, Partial, Partial, Full, Partial]
        );
    }

    #[test]
    fn no_change_no_refresh() {
        let mut p = RefreshPolicy::new(RefreshRules::default());
        let t0 = Instant::now();
        apply(&mut p, t0, &frame(1), Urgency::Immediate);
        for u in [Urgency::Idle, Urgency::Immediate, Urgency::ImmediateFull] {
            assert_eq!(
                p.decide(t0 + Duration::from_secs(3600), &frame(1), u),
                Decision::None
            );
        }
    }

    #[test]
    fn idle_updates_wait_three_minutes_key_presses_do_not() {
        let mut p = RefreshPolicy::new(RefreshRules::default());
        let t0 = Instant::now();
        apply(&mut p, t0, &frame(1), Urgency::Idle);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(
            p.decide(t1, &frame(2), Urgency::Idle),
            Decision::Wait(t0 + Duration::from_secs(180))
        );
        assert_eq!(
            p.decide(t1, &frame(2), Urgency::Immediate),
            Decision::Partial
        );
        assert_eq!(
            p.decide(t1, &frame(2), Urgency::ImmediateFull),
            Decision::Full
        );
        assert_eq!(
            p.decide(t0 + Duration::from_secs(180), &frame(2), Urgency::Idle),
            Decision::Partial
        );
    }

    #[test]
    fn a_full_refresh_at_least_daily_even_without_change() {
        let mut p = RefreshPolicy::new(RefreshRules::default());
        let t0 = Instant::now();
        apply(&mut p, t0, &frame(1), Urgency::Idle);
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(p.next_full_due(), Some(t0 + day));
        assert_eq!(
            p.decide(t0 + day - Duration::from_secs(1), &frame(1), Urgency::Idle),
            Decision::None
        );
        assert_eq!(p.decide(t0 + day, &frame(1), Urgency::Idle), Decision::Full);
        // A change on that day is a full one too.
        assert_eq!(
            p.decide(t0 + day, &frame(2), Urgency::Immediate),
            Decision::Full
        );
    }

    #[test]
    fn after_a_failure_the_next_picture_is_full() {
        let mut p = RefreshPolicy::new(RefreshRules::default());
        let t0 = Instant::now();
        apply(&mut p, t0, &frame(1), Urgency::Idle);
        apply(&mut p, t0, &frame(2), Urgency::Immediate);
        p.forget();
        assert_eq!(p.decide(t0, &frame(2), Urgency::Immediate), Decision::Full);
    }
}
