//! The display service end to end, on a simulated panel with simulated keys and tokio's
//! clock paused (a simulated day runs in well under a second): the refresh policy over a
//! day, secrets leaving the screen, key handling and navigation, pairing questions,
//! shutdown.

use plugnode::display::render::{render, View};
use plugnode::display::samples::{self, typical_day};
use plugnode::display::{
    self, DisplayError, DisplayHandle, DisplaySettings, PairingAnswer, PanelKind, Screen,
};
use plugnode::shutdown::Shutdown;
use plugnode::status::{BackupState, Status, StatusHandle};
use plugnode_hw::{
    Frame, Key, Panel, PanelError, SimButtons, SimKeys, SimMonitor, SimOp, SimPanel, Size,
    WaveshareModel,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A simulated panel that also notes when each operation happened.
struct TimedPanel {
    inner: SimPanel,
    log: Arc<Mutex<Vec<(Instant, SimOp)>>>,
}

impl Panel for TimedPanel {
    fn name(&self) -> &'static str {
        "timed"
    }
    fn size(&self) -> Size {
        self.inner.size()
    }
    fn full_refresh(&mut self, frame: &Frame) -> Result<(), PanelError> {
        self.inner.full_refresh(frame)?;
        self.log.lock().unwrap().push((Instant::now(), SimOp::Full));
        Ok(())
    }
    fn partial_refresh(&mut self, frame: &Frame) -> Result<(), PanelError> {
        self.inner.partial_refresh(frame)?;
        self.log
            .lock()
            .unwrap()
            .push((Instant::now(), SimOp::Partial));
        Ok(())
    }
    fn clear(&mut self) -> Result<(), PanelError> {
        self.inner.clear()
    }
    fn sleep(&mut self) -> Result<(), PanelError> {
        self.inner.sleep()?;
        self.log
            .lock()
            .unwrap()
            .push((Instant::now(), SimOp::Sleep));
        Ok(())
    }
}

struct Rig {
    status: StatusHandle,
    shutdown: Shutdown,
    display: DisplayHandle,
    monitor: SimMonitor,
    keys: Option<SimKeys>,
    log: Arc<Mutex<Vec<(Instant, SimOp)>>>,
    model: WaveshareModel,
}

fn rig(model: WaveshareModel, initial: Status) -> Rig {
    rig_as(PanelKind::Simulated, model, initial)
}

/// A rig whose settings name `panel`; it still draws on a simulated panel with simulated
/// keys (a Waveshare kind here = a box with real keys, whose web page cannot confirm).
fn rig_as(panel: PanelKind, model: WaveshareModel, initial: Status) -> Rig {
    let settings = DisplaySettings {
        panel,
        simulate: model,
        utc_offset_secs: Some(0),
        ..DisplaySettings::default()
    };
    let inner = SimPanel::new(model.size());
    let monitor = inner.monitor();
    let log = Arc::new(Mutex::new(Vec::new()));
    let panel = TimedPanel {
        inner,
        log: log.clone(),
    };
    let (buttons, keys) = if model.has_keys() {
        let (b, k) = SimButtons::new();
        (Some(Box::new(b) as Box<dyn plugnode_hw::Buttons>), Some(k))
    } else {
        (None, None)
    };
    let status = StatusHandle::with_initial(initial);
    let shutdown = Shutdown::new();
    let display = display::spawn(
        Box::new(panel),
        buttons,
        status.subscribe(),
        shutdown.clone(),
        &settings,
    );
    Rig {
        status,
        shutdown,
        display,
        monitor,
        keys,
        log,
        model,
    }
}

/// Lets the service catch up (virtual time; the clock does not move while the panel
/// draws on its blocking thread).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

impl Rig {
    async fn click(&self, key: Key) {
        let keys = self.keys.as_ref().expect("this panel has keys");
        keys.press(key);
        tokio::time::sleep(Duration::from_millis(80)).await;
        keys.release(key);
        settle().await;
    }

    async fn hold(&self, key: Key, secs: u64) {
        let keys = self.keys.as_ref().expect("this panel has keys");
        keys.press(key);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        keys.release(key);
        settle().await;
    }

    fn screen(&self) -> Screen {
        self.display.state().screen
    }

    /// What the panel shows, rendered independently from the same state.
    fn expected(&self, screen: Screen, status: &Status) -> Frame {
        let mut frame = Frame::new(self.model.size());
        let view = View {
            has_keys: self.model.has_keys(),
            utc_offset_secs: 0,
            ..View::new(screen, status, plugnode::status::unix_now())
        };
        render(&view, &mut frame);
        frame
    }

    fn ops(&self) -> Vec<SimOp> {
        self.log.lock().unwrap().iter().map(|(_, op)| *op).collect()
    }
}

fn decode_qr(frame: &Frame) -> Vec<String> {
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(
        frame.width() as usize,
        frame.height() as usize,
        |x, y| {
            if frame.is_black(x as u32, y as u32) {
                0
            } else {
                255
            }
        },
    );
    image
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, s)| s))
        .collect()
}

/// Checks the rules over a refresh log: every refresh followed by sleep, at most five
/// partials in a row, and a full refresh at least every 24 hours.
fn check_rules(log: &[(Instant, SimOp)], start: Instant, end: Instant) {
    let mut partials = 0;
    let mut last_full = start;
    let mut expect_sleep = false;
    for (at, op) in log {
        match op {
            SimOp::Sleep => {
                assert!(expect_sleep, "sleep without an update before it");
                expect_sleep = false;
                continue;
            }
            _ => assert!(!expect_sleep, "two updates without sleep in between"),
        }
        expect_sleep = true;
        match op {
            SimOp::Partial => {
                partials += 1;
                assert!(partials <= 5, "more than 5 partial refreshes in a row");
            }
            SimOp::Full | SimOp::Clear => {
                partials = 0;
                assert!(*at - last_full <= Duration::from_secs(24 * 3600) || last_full == start);
                last_full = *at;
            }
            SimOp::Sleep => unreachable!(),
        }
    }
    assert!(!expect_sleep, "the panel was left awake");
    assert!(
        end - last_full <= Duration::from_secs(24 * 3600),
        "no full refresh for a day"
    );
}

#[tokio::test(start_paused = true)]
async fn a_simulated_day_keeps_the_refresh_rules() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    let start = Instant::now();
    typical_day(&rig.status, &rig.display).await;
    // A second, quiet day: only the health checks change (invisible on screen).
    for _ in 0..(24 * 120) {
        rig.status
            .update(|s| s.bitcoind.last_checked = Some(s.bitcoind.last_checked.unwrap_or(0) + 30));
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let end = Instant::now();
    let log = rig.log.lock().unwrap().clone();
    check_rules(&log, start, end);

    let day = start + Duration::from_secs(24 * 3600);
    let first_day: Vec<_> = log
        .iter()
        .filter(|(at, op)| *at < day && *op != SimOp::Sleep)
        .collect();
    let second_day: Vec<_> = log
        .iter()
        .filter(|(at, op)| *at >= day && *op != SimOp::Sleep)
        .collect();
    let fulls = first_day
        .iter()
        .filter(|(_, op)| *op == SimOp::Full)
        .count();
    let partials = first_day
        .iter()
        .filter(|(_, op)| *op == SimOp::Partial)
        .count();
    eprintln!("typical day: {fulls} full + {partials} partial refreshes");
    // 144 blocks, 3 payments with backups, an alert coming and going, 4 key presses: each
    // a change, none lost, none drawn twice.
    assert!(
        (150..=175).contains(&first_day.len()),
        "{} refreshes on a typical day",
        first_day.len()
    );
    assert!(
        fulls >= first_day.len() / 6,
        "a full refresh after at most 5 partials"
    );
    // The quiet day: nothing changes on screen, so only the daily full refresh (and the
    // block that came at the very end of the first day).
    assert!(
        !second_day.is_empty() && second_day.len() <= 2,
        "quiet day refreshes: {second_day:?}"
    );
    assert!(second_day.iter().any(|(_, op)| *op == SimOp::Full));

    // Idle updates at most every 3 minutes: refreshes closer together than that are the
    // immediate ones (the alert at 14:00, its end, the key presses at 20:00).
    let updates: Vec<Instant> = first_day.iter().map(|(at, _)| *at).collect();
    let close: Vec<u64> = updates
        .windows(2)
        .filter(|w| w[1] - w[0] < Duration::from_secs(180))
        .map(|w| (w[1] - start).as_secs())
        .collect();
    for t in &close {
        let immediate =
            (14 * 3600..14 * 3600 + 400).contains(t) || (20 * 3600..20 * 3600 + 60).contains(t);
        assert!(
            immediate,
            "idle refresh less than 3 min after the previous one at t={t}s"
        );
    }
    // The day ends where it started: home, with the panel asleep.
    assert_eq!(rig.screen(), Screen::Home);
    assert!(!rig.monitor.is_awake());
}

#[tokio::test(start_paused = true)]
async fn no_refresh_without_a_visible_change() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    let before = rig.monitor.counts();
    assert_eq!(before.full, 1, "the first picture is a full refresh");
    for i in 0..500 {
        rig.status.update(|s| {
            s.bitcoind.last_checked = Some(i);
            s.bitcoind.restarts = 0;
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    assert_eq!(rig.monitor.counts().refreshes(), before.refreshes());
    // The same screen asked for again by a key that goes nowhere: nothing either.
    rig.click(Key::Key3).await;
    assert_eq!(rig.monitor.counts().refreshes(), before.refreshes());
}

#[tokio::test(start_paused = true)]
async fn seed_words_leave_the_screen_after_two_minutes_with_a_full_refresh() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    let words: Vec<String> = samples::seed().words().to_vec();
    rig.display.show_seed_words(words.clone()).await.unwrap();
    assert_eq!(rig.screen(), Screen::Seed { page: 0 });
    let status = rig.status.snapshot();
    let mut seed_view = Frame::new(rig.model.size());
    render(
        &View {
            seed: Some(&samples::seed()),
            ..View::new(Screen::Seed { page: 0 }, &status, 0)
        },
        &mut seed_view,
    );
    assert_eq!(
        rig.monitor.frame(),
        seed_view,
        "the words are on the device"
    );
    // …but never in the web mirror.
    let mirror = rig.display.latest_frame().unwrap();
    assert_ne!(*mirror, seed_view);
    let mut redacted = Frame::new(rig.model.size());
    render(
        &View {
            redact_secrets: true,
            ..View::new(Screen::Seed { page: 0 }, &status, 0)
        },
        &mut redacted,
    );
    assert_eq!(*mirror, redacted);

    // A page turn keeps them another two minutes.
    tokio::time::sleep(Duration::from_secs(60)).await;
    rig.click(Key::Key1).await;
    assert_eq!(rig.screen(), Screen::Seed { page: 1 });
    tokio::time::sleep(Duration::from_secs(119)).await;
    assert_eq!(rig.screen(), Screen::Seed { page: 1 });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rig.screen(), Screen::Home);
    assert_eq!(rig.monitor.frame(), rig.expected(Screen::Home, &status));
    let ops = rig.ops();
    assert_eq!(&ops[ops.len() - 2..], &[SimOp::Full, SimOp::Sleep]);
}

#[tokio::test(start_paused = true)]
async fn the_pairing_qr_shows_at_once_decodes_to_the_uri_and_leaves_after_two_minutes() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    let code = samples::pairing();
    rig.display
        .show_pairing_qr(code.label.clone(), code.uri())
        .await
        .unwrap();
    assert_eq!(rig.screen(), Screen::PairingQr);
    assert_eq!(
        decode_qr(&rig.monitor.frame()),
        vec![code.uri().to_string()]
    );
    assert!(
        decode_qr(&rig.display.latest_frame().unwrap()).is_empty(),
        "not in the mirror"
    );
    tokio::time::sleep(Duration::from_secs(119)).await;
    assert_eq!(rig.screen(), Screen::PairingQr);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rig.screen(), Screen::Home);
    assert!(decode_qr(&rig.monitor.frame()).is_empty());
    assert!(
        rig.ops().ends_with(&[SimOp::Full, SimOp::Sleep]),
        "no ghost of the code stays"
    );
}

#[tokio::test(start_paused = true)]
async fn keyless_panels_show_pairing_at_once_and_clear_on_request() {
    let rig = rig(WaveshareModel::Epd2in13V4, samples::running());
    settle().await;
    assert!(!rig.display.state().has_keys);
    let code = samples::pairing();
    rig.display
        .show_pairing_qr(code.label.clone(), code.uri())
        .await
        .unwrap();
    assert_eq!(
        decode_qr(&rig.monitor.frame()),
        vec![code.uri().to_string()]
    );
    rig.display.clear_secrets().await.unwrap();
    assert!(decode_qr(&rig.monitor.frame()).is_empty());
    assert_eq!(rig.screen(), Screen::Home);
    // No keys: nobody can answer a question here, the page must ask for the password.
    let err = rig
        .display
        .confirm(samples::pairing_question())
        .await
        .unwrap_err();
    assert!(matches!(err, DisplayError::NoKeys), "{err}");
    assert!(err.to_string().contains("web password"), "{err}");
    assert_eq!(rig.screen(), Screen::Home);
}

/// Asks the pairing question in the background, as the pairing service would.
fn ask(rig: &Rig) -> tokio::task::JoinHandle<Result<PairingAnswer, DisplayError>> {
    let display = rig.display.clone();
    tokio::spawn(async move { display.confirm(samples::pairing_question()).await })
}

#[tokio::test(start_paused = true)]
async fn a_pairing_question_is_answered_with_key2_on_the_box() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    let answer = ask(&rig);
    settle().await;
    assert_eq!(rig.screen(), Screen::PairingConfirm);
    let question = samples::pairing_question().into();
    let mut asked = Frame::new(rig.model.size());
    render(
        &View {
            question: Some(&question),
            ..View::new(Screen::PairingConfirm, &rig.status.snapshot(), 0)
        },
        &mut asked,
    );
    assert_eq!(rig.monitor.frame(), asked, "the question is on the glass");
    assert_eq!(
        *rig.display.latest_frame().unwrap(),
        asked,
        "and in the mirror"
    );
    assert!(!answer.is_finished(), "drawn, but not answered yet");
    rig.click(Key::Key2).await;
    assert_eq!(answer.await.unwrap().unwrap(), PairingAnswer::Confirmed);
    assert_eq!(rig.screen(), Screen::Home);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_pairing_question_times_out_after_two_minutes() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    let answer = ask(&rig);
    tokio::time::sleep(Duration::from_secs(119)).await;
    assert!(!answer.is_finished());
    assert_eq!(rig.screen(), Screen::PairingConfirm);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(answer.await.unwrap().unwrap(), PairingAnswer::TimedOut);
    assert_eq!(rig.screen(), Screen::Home);
    assert_eq!(
        rig.monitor.frame(),
        rig.expected(Screen::Home, &rig.status.snapshot())
    );
}

#[tokio::test(start_paused = true)]
async fn a_pairing_question_gives_way_and_its_asker_hears_refused() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    // Another question replaces it.
    let first = ask(&rig);
    settle().await;
    let second = ask(&rig);
    assert_eq!(first.await.unwrap().unwrap(), PairingAnswer::Refused);
    // The pairing code replaces that one.
    settle().await;
    assert!(!second.is_finished());
    let code = samples::pairing();
    rig.display
        .show_pairing_qr(code.label.clone(), code.uri())
        .await
        .unwrap();
    assert_eq!(second.await.unwrap().unwrap(), PairingAnswer::Refused);
    rig.display.clear_secrets().await.unwrap();

    // Whoever asked went away: the question leaves the screen.
    let gone = ask(&rig);
    settle().await;
    assert_eq!(rig.screen(), Screen::PairingConfirm);
    gone.abort();
    settle().await;
    assert_eq!(rig.screen(), Screen::Home);

    // Shutdown while asking.
    let last = ask(&rig);
    settle().await;
    rig.shutdown.trigger();
    assert_eq!(last.await.unwrap().unwrap(), PairingAnswer::Refused);
    assert_eq!(rig.screen(), Screen::ShuttingDown);
    assert_eq!(
        rig.display
            .confirm(samples::pairing_question())
            .await
            .unwrap(),
        PairingAnswer::Refused,
        "nothing is asked while shutting down"
    );
    rig.display.finish().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_pages_key2_cannot_confirm_on_a_box_with_real_keys() {
    let rig = rig_as(
        PanelKind::Waveshare2in7V2,
        WaveshareModel::Epd2in7V2,
        samples::running(),
    );
    settle().await;
    let answer = ask(&rig);
    settle().await;
    let err = rig.display.press_key(Key::Key2).await.unwrap_err();
    assert!(matches!(err, DisplayError::NeedsKeyOnBox), "{err}");
    assert_eq!(err.kind(), "needs_key_on_box");
    settle().await;
    assert!(!answer.is_finished());
    assert_eq!(rig.screen(), Screen::PairingConfirm, "still asking");
    // Refusing from the page is fine.
    rig.display.press_key(Key::Key3).await.unwrap();
    assert_eq!(answer.await.unwrap().unwrap(), PairingAnswer::Refused);

    // Nor can it prepare a stick, though it can go to the backup screen.
    let mut requests = rig.display.device_requests();
    rig.status.update(|s| {
        s.backup.state = BackupState::NeedsConfirmation {
            stick: "sda SanDisk (16 GB)".into(),
            reason: "This stick is empty. Prepare it for backups?".into(),
        }
    });
    settle().await;
    rig.display.press_key(Key::Key1).await.unwrap();
    rig.display.press_key(Key::Key1).await.unwrap();
    assert_eq!(rig.screen(), Screen::Backup);
    assert!(matches!(
        rig.display.press_key(Key::Key2).await,
        Err(DisplayError::NeedsKeyOnBox)
    ));
    assert!(requests.try_recv().is_err());
    // The key on the box does.
    let answer = ask(&rig);
    settle().await;
    rig.click(Key::Key2).await;
    assert_eq!(answer.await.unwrap().unwrap(), PairingAnswer::Confirmed);
}

#[tokio::test(start_paused = true)]
async fn on_the_simulated_panel_the_pages_key2_confirms() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    let answer = ask(&rig);
    settle().await;
    rig.display.press_key(Key::Key2).await.unwrap();
    assert_eq!(answer.await.unwrap().unwrap(), PairingAnswer::Confirmed);
}

#[tokio::test(start_paused = true)]
async fn keyless_panels_rotate_through_the_status_screens() {
    let rig = rig(WaveshareModel::Epd2in13V4, samples::running());
    settle().await;
    let mut seen = vec![rig.screen()];
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(300)).await;
        seen.push(rig.screen());
    }
    assert_eq!(
        seen,
        vec![
            Screen::Home,
            Screen::Lightning,
            Screen::Backup,
            Screen::ThisBox,
            Screen::Home
        ]
    );
    assert_eq!(
        rig.monitor.frame(),
        rig.expected(Screen::Home, &rig.status.snapshot())
    );
}

#[tokio::test(start_paused = true)]
async fn bouncing_keys_count_once_and_navigation_goes_everywhere_and_back() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::with_alerts());
    settle().await;
    // Two alerts are new: the alert screen comes up by itself.
    assert_eq!(rig.screen(), Screen::Alerts { index: 0 });
    rig.click(Key::Key2).await;
    assert_eq!(rig.screen(), Screen::Home);

    // A bouncy KEY1: one step.
    let keys = rig.keys.as_ref().unwrap();
    for pressed in [true, false, true, false, true] {
        keys.edge(Key::Key1, pressed);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for pressed in [false, true, false] {
        keys.edge(Key::Key1, pressed);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    settle().await;
    assert_eq!(rig.screen(), Screen::Lightning);

    // The ring forward, through both alerts, and back again.
    let mut forward = vec![rig.screen()];
    for _ in 0..5 {
        rig.click(Key::Key1).await;
        forward.push(rig.screen());
    }
    assert_eq!(
        forward,
        vec![
            Screen::Lightning,
            Screen::Backup,
            Screen::ThisBox,
            Screen::Alerts { index: 0 },
            Screen::Alerts { index: 1 },
            Screen::Home
        ]
    );
    for _ in 0..5 {
        rig.click(Key::Key1).await;
    }
    let mut back = vec![rig.screen()];
    for _ in 0..6 {
        rig.click(Key::Key3).await;
        back.push(rig.screen());
    }
    assert_eq!(
        back,
        vec![
            Screen::Alerts { index: 1 },
            Screen::Alerts { index: 0 },
            Screen::ThisBox,
            Screen::Backup,
            Screen::Lightning,
            Screen::Home,
            Screen::Home
        ]
    );

    // Overlays: seed words, pairing, shutdown question; each goes back where it came from.
    rig.click(Key::Key1).await;
    rig.display
        .show_seed_words(vec!["zoo".into(), "wrong".into()])
        .await
        .unwrap();
    assert_eq!(rig.screen(), Screen::Seed { page: 0 });
    rig.click(Key::Key2).await;
    assert_eq!(rig.screen(), Screen::Lightning);
    rig.display
        .show_pairing_qr("Zeus", "nostr+walletconnect://x")
        .await
        .unwrap();
    rig.click(Key::Key3).await;
    assert_eq!(rig.screen(), Screen::Lightning);
    rig.hold(Key::Key4, 3).await;
    assert_eq!(rig.screen(), Screen::ShutdownConfirm);
    rig.click(Key::Key3).await;
    assert_eq!(rig.screen(), Screen::Lightning);
    assert!(!rig.shutdown.is_triggered());
    // A short KEY4 does nothing.
    rig.click(Key::Key4).await;
    assert_eq!(rig.screen(), Screen::Lightning);
    // Every screen reached the glass as rendered.
    assert_eq!(
        rig.monitor.frame(),
        rig.expected(Screen::Lightning, &rig.status.snapshot())
    );
}

#[tokio::test(start_paused = true)]
async fn key4_held_three_seconds_then_key2_shuts_down_safely() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    rig.display
        .show_seed_words(vec!["abandon".into()])
        .await
        .unwrap();
    // Held for less than 3 s: nothing.
    rig.hold(Key::Key4, 2).await;
    assert_eq!(rig.screen(), Screen::Seed { page: 0 });
    rig.hold(Key::Key4, 3).await;
    assert_eq!(rig.screen(), Screen::ShutdownConfirm);
    assert!(
        rig.ops().ends_with(&[SimOp::Full, SimOp::Sleep]),
        "the seed left with a full refresh"
    );
    rig.click(Key::Key2).await;
    assert!(rig.shutdown.is_triggered());
    assert_eq!(rig.screen(), Screen::ShuttingDown);

    // The supervisor stops everything, then lets the display finish.
    rig.status
        .update(|s| s.phase = plugnode::status::Phase::ShuttingDown);
    settle().await;
    rig.display.finish().await.unwrap();
    let mut status = rig.status.snapshot();
    status.phase = plugnode::status::Phase::Stopped;
    assert_eq!(
        rig.monitor.frame(),
        rig.expected(Screen::SafeToUnplug, &status)
    );
    assert!(rig.ops().ends_with(&[SimOp::Full, SimOp::Sleep]));
    assert!(!rig.monitor.is_awake());
    assert!(
        rig.display.clear_secrets().await.is_err(),
        "the service has ended"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_from_elsewhere_takes_secrets_off_first() {
    let rig = rig(WaveshareModel::Epd2in13V4, samples::running());
    settle().await;
    let code = samples::pairing();
    rig.display
        .show_pairing_qr("Zeus", code.uri())
        .await
        .unwrap();
    assert_eq!(decode_qr(&rig.monitor.frame()).len(), 1);
    rig.shutdown.trigger();
    settle().await;
    assert_eq!(rig.screen(), Screen::ShuttingDown);
    assert!(decode_qr(&rig.monitor.frame()).is_empty());
    assert!(rig.ops().ends_with(&[SimOp::Full, SimOp::Sleep]));
    // A late pairing code is refused by the screen.
    let late = rig.display.show_pairing_qr("Zeus", code.uri()).await;
    assert!(matches!(late, Err(DisplayError::ShuttingDown)), "{late:?}");
    assert_eq!(rig.screen(), Screen::ShuttingDown);
    rig.display.finish().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failing_panel_is_retried_and_the_service_survives() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    rig.monitor.set_failing(true);
    rig.click(Key::Key1).await;
    assert!(rig.display.state().failing);
    assert_eq!(rig.screen(), Screen::Lightning);
    rig.monitor.set_failing(false);
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(!rig.display.state().failing);
    assert_eq!(
        rig.monitor.frame(),
        rig.expected(Screen::Lightning, &rig.status.snapshot())
    );
    // After a failure the glass state is unknown: the retry is a full refresh.
    assert!(rig.ops().ends_with(&[SimOp::Full, SimOp::Sleep]));
}

#[tokio::test(start_paused = true)]
async fn new_alerts_are_drawn_at_once_status_changes_wait() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    let drawn = rig.monitor.counts().refreshes();
    // A status change right after a refresh waits for the idle interval…
    rig.status
        .update(|s| s.lightning.balances.lightning_spendable_sat += 1);
    settle().await;
    assert_eq!(rig.monitor.counts().refreshes(), drawn);
    // …an alert does not.
    rig.status.update(|s| {
        s.backup.state = BackupState::Failed {
            message: "Gone.".into(),
        }
    });
    settle().await;
    assert_eq!(rig.monitor.counts().refreshes(), drawn + 1);
    assert_eq!(rig.screen(), Screen::Alerts { index: 0 });
    // The alert resolves: the screen goes home (after the idle interval).
    rig.status
        .update(|s| s.backup.state = BackupState::Mirroring);
    tokio::time::sleep(Duration::from_secs(181)).await;
    assert_eq!(rig.screen(), Screen::Home);
    assert_eq!(
        rig.monitor.frame(),
        rig.expected(Screen::Home, &rig.status.snapshot())
    );
}

#[tokio::test(start_paused = true)]
async fn the_mirror_png_is_the_panel_picture() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    let png = rig.display.latest_png().unwrap();
    assert_eq!(Frame::from_png(&png).unwrap(), rig.monitor.frame());
    let mut updates = rig.display.frame_updates();
    updates.mark_unchanged();
    rig.display.press_key(Key::Key1).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), updates.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rig.screen(), Screen::Lightning);
}

#[tokio::test(start_paused = true)]
async fn the_setup_code_shows_until_the_box_is_claimed() {
    let mut unclaimed = samples::running();
    unclaimed.setup.password_set = false;
    let rig = rig(WaveshareModel::Epd2in7V2, unclaimed.clone());
    settle().await;
    rig.display
        .show_setup_code(Some(plugnode::secret::Secret::new("K7PX3MWD")))
        .unwrap();
    settle().await;
    let with_code = {
        let mut frame = Frame::new(rig.model.size());
        let view = View {
            setup_code: Some("K7PX3MWD"),
            utc_offset_secs: 0,
            ..View::new(Screen::Home, &unclaimed, plugnode::status::unix_now())
        };
        render(&view, &mut frame);
        frame
    };
    assert_eq!(rig.monitor.frame(), with_code);

    // Claimed on the web page: the code leaves the screen with the next refresh.
    rig.status.update(|s| s.setup.password_set = true);
    tokio::time::sleep(Duration::from_secs(200)).await;
    let claimed = rig.status.snapshot();
    assert_eq!(rig.monitor.frame(), rig.expected(Screen::Home, &claimed));
}

#[tokio::test(start_paused = true)]
async fn a_change_of_state_is_drawn_at_once_but_new_numbers_wait() {
    let mut starting = samples::running();
    starting.bitcoind.state = plugnode::status::BitcoindState::Syncing;
    let rig = rig(WaveshareModel::Epd2in7V2, starting);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let drawn = rig.ops().len();

    // A new block soon after the last picture: waits for the idle interval.
    rig.status
        .update(|s| s.bitcoind.chain.as_mut().unwrap().blocks += 1);
    settle().await;
    assert_eq!(rig.ops().len(), drawn, "numbers wait");

    // bitcoind becomes ready: drawn now.
    rig.status
        .update(|s| s.bitcoind.state = plugnode::status::BitcoindState::Ready);
    settle().await;
    let now = rig.status.snapshot();
    assert_eq!(rig.monitor.frame(), rig.expected(Screen::Home, &now));
    assert!(rig.ops().len() > drawn);
}

#[tokio::test(start_paused = true)]
async fn key2_on_the_backup_screen_prepares_an_empty_stick() {
    let rig = rig(WaveshareModel::Epd2in7V2, samples::running());
    settle().await;
    let mut requests = rig.display.device_requests();
    rig.status.update(|s| {
        s.backup.state = BackupState::NeedsConfirmation {
            stick: "sda SanDisk (16 GB)".into(),
            reason: "This stick is empty. Prepare it for backups?".into(),
        }
    });
    settle().await;
    while rig.screen() != Screen::Backup {
        rig.click(Key::Key1).await;
    }
    assert!(
        requests.try_recv().is_err(),
        "nothing happens without the key"
    );
    rig.click(Key::Key2).await;
    assert_eq!(
        requests.try_recv().unwrap(),
        plugnode::display::DeviceRequest::PrepareStick
    );
}
