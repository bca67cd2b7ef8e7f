//! The HAT's keys: raw edges from a [`Buttons`] source, turned into clean key-down,
//! key-up and long-press events by a [`KeyDecoder`] (debounce and hold timing as a pure
//! state machine) and [`KeyEvents`] (the same, driven by tokio time).

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The four keys of the 2.7" HAT, top to bottom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Key1,
    Key2,
    Key3,
    Key4,
}

impl Key {
    pub const ALL: [Key; 4] = [Key::Key1, Key::Key2, Key::Key3, Key::Key4];

    fn index(self) -> usize {
        self as usize
    }

    /// "KEY1" … "KEY4", as printed on the board.
    pub fn label(self) -> &'static str {
        match self {
            Key::Key1 => "KEY1",
            Key::Key2 => "KEY2",
            Key::Key3 => "KEY3",
            Key::Key4 => "KEY4",
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A level change as a key source saw it (may bounce).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyEdge {
    pub key: Key,
    pub pressed: bool,
}

/// What a key did, after debouncing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEventKind {
    Down,
    /// Held for the long-press time; sent once, while still held.
    LongPress,
    /// Released. `long` tells whether a [`KeyEventKind::LongPress`] came before, so a
    /// long press does not also count as a click.
    Up {
        long: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyEvent {
    pub key: Key,
    pub kind: KeyEventKind,
}

impl KeyEvent {
    /// A short press that was released: what "pressing a key" means on screens.
    pub fn is_click(&self) -> bool {
        matches!(self.kind, KeyEventKind::Up { long: false })
    }
}

/// Timing of the key decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyTiming {
    /// Level changes closer together than this are bounce.
    pub debounce: Duration,
    /// Holding a key this long is a long press.
    pub long_press: Duration,
}

impl Default for KeyTiming {
    fn default() -> Self {
        KeyTiming {
            debounce: Duration::from_millis(30),
            long_press: Duration::from_secs(3),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct KeyState {
    /// The level the source reported last.
    raw: bool,
    /// The accepted (debounced) level.
    stable: bool,
    /// When `stable` last changed.
    changed_at: Option<Duration>,
    long_sent: bool,
}

/// Debounce and long-press detection as a pure state machine: feed it edges and the
/// time (any monotonic clock, as a duration since some start), poll it at
/// [`KeyDecoder::next_deadline`], and it returns events.
///
/// Debounce: a level change is accepted at once unless the key changed less than
/// `debounce` ago; then it is re-checked when the window ends, so a quick tap is never
/// lost and bounces never count twice.
#[derive(Clone, Debug)]
pub struct KeyDecoder {
    timing: KeyTiming,
    keys: [KeyState; 4],
}

impl KeyDecoder {
    pub fn new(timing: KeyTiming) -> Self {
        KeyDecoder {
            timing,
            keys: [KeyState::default(); 4],
        }
    }

    pub fn timing(&self) -> KeyTiming {
        self.timing
    }

    /// A raw edge at time `now`.
    pub fn edge(&mut self, edge: KeyEdge, now: Duration) -> Vec<KeyEvent> {
        self.keys[edge.key.index()].raw = edge.pressed;
        self.poll(now)
    }

    /// Events that became due by `now` (debounced releases, long presses).
    pub fn poll(&mut self, now: Duration) -> Vec<KeyEvent> {
        let mut events = Vec::new();
        for key in Key::ALL {
            let timing = self.timing;
            let state = &mut self.keys[key.index()];
            // A key held for the long-press time is a long press, even when its release
            // is reported in the same instant.
            if state.stable && !state.long_sent {
                if let Some(at) = state.changed_at {
                    if now >= at + timing.long_press {
                        state.long_sent = true;
                        events.push(KeyEvent {
                            key,
                            kind: KeyEventKind::LongPress,
                        });
                    }
                }
            }
            let settled = state
                .changed_at
                .is_none_or(|at| now >= at + timing.debounce);
            if state.raw != state.stable && settled {
                state.stable = state.raw;
                state.changed_at = Some(now);
                if state.stable {
                    state.long_sent = false;
                    events.push(KeyEvent {
                        key,
                        kind: KeyEventKind::Down,
                    });
                } else {
                    events.push(KeyEvent {
                        key,
                        kind: KeyEventKind::Up {
                            long: state.long_sent,
                        },
                    });
                }
            }
        }
        events
    }

    /// When [`KeyDecoder::poll`] may have something new, if ever.
    pub fn next_deadline(&self) -> Option<Duration> {
        let mut next: Option<Duration> = None;
        let mut consider = |t: Duration| next = Some(next.map_or(t, |n| n.min(t)));
        for state in &self.keys {
            let Some(at) = state.changed_at else {
                continue;
            };
            if state.raw != state.stable {
                consider(at + self.timing.debounce);
            }
            if state.stable && !state.long_sent {
                consider(at + self.timing.long_press);
            }
        }
        next
    }

    /// Whether a key is held down (debounced).
    pub fn is_down(&self, key: Key) -> bool {
        self.keys[key.index()].stable
    }
}

/// Where key edges come from: the HAT's GPIO lines, or a simulation.
pub trait Buttons: Send {
    /// Starts reading: edges arrive on the returned channel until the receiver is dropped.
    fn start(self: Box<Self>) -> Result<mpsc::UnboundedReceiver<KeyEdge>, ButtonsError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ButtonsError {
    #[error(
        "cannot read the keys on {chip} (lines {lines:?}): {detail}. Check the GPIO chip and \
         key pins in the [display] config and that no other program holds the lines"
    )]
    Gpio {
        chip: String,
        lines: Vec<u32>,
        detail: String,
    },
}

/// Keys pressed by code: tests, and the demo's clickable keys.
pub struct SimButtons {
    rx: mpsc::UnboundedReceiver<KeyEdge>,
}

/// The pressing end of [`SimButtons`]. Cheap to clone.
#[derive(Clone)]
pub struct SimKeys {
    tx: mpsc::UnboundedSender<KeyEdge>,
}

impl SimButtons {
    pub fn new() -> (SimButtons, SimKeys) {
        let (tx, rx) = mpsc::unbounded_channel();
        (SimButtons { rx }, SimKeys { tx })
    }
}

impl Buttons for SimButtons {
    fn start(self: Box<Self>) -> Result<mpsc::UnboundedReceiver<KeyEdge>, ButtonsError> {
        Ok(self.rx)
    }
}

impl SimKeys {
    /// Sends one raw edge. Returns false once nobody listens any more.
    pub fn edge(&self, key: Key, pressed: bool) -> bool {
        self.tx.send(KeyEdge { key, pressed }).is_ok()
    }

    pub fn press(&self, key: Key) -> bool {
        self.edge(key, true)
    }

    pub fn release(&self, key: Key) -> bool {
        self.edge(key, false)
    }
}

/// Decoded key events from a [`Buttons`] source, timed with tokio's clock (so tests can
/// pause and advance it).
pub struct KeyEvents {
    rx: mpsc::UnboundedReceiver<KeyEdge>,
    decoder: KeyDecoder,
    epoch: Instant,
    queue: VecDeque<KeyEvent>,
    closed: bool,
}

impl KeyEvents {
    pub fn new(rx: mpsc::UnboundedReceiver<KeyEdge>, timing: KeyTiming) -> Self {
        KeyEvents {
            rx,
            decoder: KeyDecoder::new(timing),
            epoch: Instant::now(),
            queue: VecDeque::new(),
            closed: false,
        }
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }

    /// The next event; `None` once the source is gone and nothing is pending.
    /// Cancel-safe: nothing is lost when the future is dropped.
    pub async fn next(&mut self) -> Option<KeyEvent> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            let deadline = self.decoder.next_deadline();
            if self.closed && deadline.is_none() {
                return None;
            }
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(self.epoch + d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                edge = self.rx.recv(), if !self.closed => match edge {
                    Some(edge) => {
                        let now = self.now();
                        let events = self.decoder.edge(edge, now);
                        self.queue.extend(events);
                    }
                    None => self.closed = true,
                },
                _ = sleep => {
                    let now = self.now();
                    let events = self.decoder.poll(now);
                    self.queue.extend(events);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn down(key: Key) -> KeyEvent {
        KeyEvent {
            key,
            kind: KeyEventKind::Down,
        }
    }
    fn up(key: Key, long: bool) -> KeyEvent {
        KeyEvent {
            key,
            kind: KeyEventKind::Up { long },
        }
    }

    #[test]
    fn bounces_count_once() {
        let mut d = KeyDecoder::new(KeyTiming::default());
        let press = KeyEdge {
            key: Key::Key1,
            pressed: true,
        };
        let release = KeyEdge {
            key: Key::Key1,
            pressed: false,
        };
        let mut events = d.edge(press, MS(0));
        events.extend(d.edge(release, MS(2)));
        events.extend(d.edge(press, MS(4)));
        events.extend(d.edge(release, MS(5)));
        events.extend(d.edge(press, MS(7)));
        assert_eq!(events, vec![down(Key::Key1)]);
        // After the window, the key is still down: nothing more.
        assert_eq!(d.poll(MS(40)), vec![]);
        // The release bounces too.
        let mut events = d.edge(release, MS(200));
        events.extend(d.edge(press, MS(201)));
        events.extend(d.edge(release, MS(203)));
        assert_eq!(events, vec![up(Key::Key1, false)]);
        assert_eq!(d.poll(MS(300)), vec![]);
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn a_quick_tap_is_not_lost() {
        let mut d = KeyDecoder::new(KeyTiming::default());
        let events = d.edge(
            KeyEdge {
                key: Key::Key2,
                pressed: true,
            },
            MS(100),
        );
        assert_eq!(events, vec![down(Key::Key2)]);
        // Released 10 ms later: inside the debounce window, so decided when it ends.
        let events = d.edge(
            KeyEdge {
                key: Key::Key2,
                pressed: false,
            },
            MS(110),
        );
        assert!(events.is_empty());
        assert_eq!(d.next_deadline(), Some(MS(130)));
        assert_eq!(d.poll(MS(130)), vec![up(Key::Key2, false)]);
    }

    #[test]
    fn holding_makes_one_long_press() {
        let mut d = KeyDecoder::new(KeyTiming::default());
        d.edge(
            KeyEdge {
                key: Key::Key4,
                pressed: true,
            },
            MS(0),
        );
        assert_eq!(d.next_deadline(), Some(MS(3000)));
        assert_eq!(d.poll(MS(2999)), vec![]);
        assert_eq!(
            d.poll(MS(3000)),
            vec![KeyEvent {
                key: Key::Key4,
                kind: KeyEventKind::LongPress
            }]
        );
        assert_eq!(d.poll(MS(9000)), vec![]);
        let events = d.edge(
            KeyEdge {
                key: Key::Key4,
                pressed: false,
            },
            MS(9500),
        );
        assert_eq!(events, vec![up(Key::Key4, true)]);
        assert!(!events[0].is_click());
    }

    #[test]
    fn a_release_at_the_long_press_moment_is_still_a_long_press() {
        let mut d = KeyDecoder::new(KeyTiming::default());
        let key = Key::Key4;
        d.edge(KeyEdge { key, pressed: true }, MS(0));
        let events = d.edge(
            KeyEdge {
                key,
                pressed: false,
            },
            MS(3000),
        );
        assert_eq!(
            events,
            vec![
                KeyEvent {
                    key,
                    kind: KeyEventKind::LongPress
                },
                up(key, true)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn key_events_follow_tokio_time() {
        let (buttons, keys) = SimButtons::new();
        let rx = Box::new(buttons).start().unwrap();
        let mut events = KeyEvents::new(rx, KeyTiming::default());
        keys.press(Key::Key4);
        assert_eq!(events.next().await, Some(down(Key::Key4)));
        let start = Instant::now();
        assert_eq!(
            events.next().await.map(|e| e.kind),
            Some(KeyEventKind::LongPress)
        );
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        keys.release(Key::Key4);
        assert_eq!(events.next().await, Some(up(Key::Key4, true)));
        drop(keys);
        assert_eq!(events.next().await, None);
    }
}
