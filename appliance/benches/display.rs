//! Display figures: how long rendering and diffing one screen takes on this machine, and
//! how often the panel is driven on a simulated day of typical activity.
//!
//! `cargo bench -p plugnode --bench display` — prints figures, asserts nothing.

use plugnode::display::policy::{RefreshPolicy, RefreshRules};
use plugnode::display::render::render;
use plugnode::display::samples::{self, gallery};
use plugnode::display::ui::Urgency;
use plugnode::display::{self, DisplaySettings, PanelKind};
use plugnode::shutdown::Shutdown;
use plugnode::status::StatusHandle;
use plugnode_hw::epd::pack_for_controller;
use plugnode_hw::{Frame, SimPanel, WaveshareModel};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Runs `f` for about `budget`, returns the mean time per call.
fn time_it(budget: Duration, mut f: impl FnMut()) -> Duration {
    // Warm up.
    for _ in 0..10 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        for _ in 0..10 {
            f();
        }
        n += 10;
    }
    start.elapsed() / n
}

fn micros(d: Duration) -> String {
    format!("{:8.1} µs", d.as_secs_f64() * 1e6)
}

fn render_figures() {
    println!("== render and diff one screen (mean per call)");
    println!(
        "{:<24} {:>10} {:>12} {:>12} {:>12}",
        "screen", "panel", "render", "diff+decide", "pack for SPI"
    );
    // `cargo test --all-targets` also runs this (unoptimised): keep it short there.
    let budget = if cfg!(debug_assertions) {
        Duration::from_millis(5)
    } else {
        Duration::from_millis(150)
    };
    for model in [WaveshareModel::Epd2in7V2, WaveshareModel::Epd2in13V4] {
        let size = model.size();
        let panel = format!("{}x{}", size.width, size.height);
        for sample in gallery().into_iter().filter(|s| {
            [
                "home",
                "lightning",
                "alerts-crash-loop",
                "pairing-qr",
                "seed-1",
            ]
            .contains(&s.name)
        }) {
            let view = sample.view(model.has_keys());
            let mut frame = Frame::new(size);
            let render_time = time_it(budget, || {
                render(black_box(&view), &mut frame);
            });
            // The diff the service does for every status change: compare with what the
            // glass shows and let the policy decide.
            let mut policy = RefreshPolicy::new(RefreshRules::default());
            let mut shown = Frame::new(size);
            render(&samples::gallery()[0].view(model.has_keys()), &mut shown);
            let now = tokio::time::Instant::now();
            policy.record(now, &shown, plugnode::display::Decision::Full);
            let diff_time = time_it(budget, || {
                black_box(policy.decide(now, black_box(&frame), Urgency::Immediate));
                black_box(frame.diff_pixels(&shown));
            });
            let pack_time = time_it(budget, || {
                black_box(pack_for_controller(model, black_box(&frame), false));
            });
            println!(
                "{:<24} {:>10} {} {} {}",
                sample.name,
                panel,
                micros(render_time),
                micros(diff_time),
                micros(pack_time)
            );
        }
    }
}

fn day_figures() {
    println!();
    println!("== panel refreshes on a simulated day of typical activity");
    println!("   (a block every 10 min, 3 payments with backup writes, a 5-min alert,");
    println!("    4 key presses; tokio clock paused, so the day takes no real time)");
    println!("   the keyless 2.13\" also rotates its status screens every 5 minutes");
    for model in [WaveshareModel::Epd2in7V2, WaveshareModel::Epd2in13V4] {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        let started = Instant::now();
        let counts = runtime.block_on(async {
            let settings = DisplaySettings {
                panel: PanelKind::Simulated,
                simulate: model,
                utc_offset_secs: Some(0),
                ..DisplaySettings::default()
            };
            let panel = SimPanel::new(model.size());
            let monitor = panel.monitor();
            let status = StatusHandle::with_initial(samples::running());
            // The 2.7" has keys (nobody presses them here but the script); the 2.13" has
            // none, so its status screens rotate every 5 minutes.
            let (buttons, _keys) = if model.has_keys() {
                let (buttons, keys) = plugnode_hw::SimButtons::new();
                (
                    Some(Box::new(buttons) as Box<dyn plugnode_hw::Buttons>),
                    Some(keys),
                )
            } else {
                (None, None)
            };
            let handle = display::spawn(
                Box::new(panel),
                buttons,
                status.subscribe(),
                Shutdown::new(),
                &settings,
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            let before = monitor.counts();
            samples::typical_day(&status, &handle).await;
            let after = monitor.counts();
            handle.finish().await.expect("finish");
            (
                after.full - before.full,
                after.partial - before.partial,
                after.sleep - before.sleep,
            )
        });
        let (full, partial, sleeps) = counts;
        println!(
            "{:<20} {:>4} refreshes: {:>3} full + {:>3} partial, {:>3} sleeps  (simulated in {:.2} s)",
            model.name(),
            full + partial,
            full,
            partial,
            sleeps,
            started.elapsed().as_secs_f64()
        );
    }
}

fn main() {
    render_figures();
    day_figures();
}
