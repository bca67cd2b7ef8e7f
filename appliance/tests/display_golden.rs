//! Every screen, rendered from a fixed status, equals its picture in `tests/golden/`.
//!
//! On a mismatch (or a missing picture) the test writes `<name>.new.png` next to the
//! golden one and fails, so a reviewer can look at both. After checking the new pictures,
//! accept them with `UPDATE_GOLDEN=1 cargo test -p plugnode --test display_golden`.

use plugnode::display::render::render;
use plugnode::display::samples::{self, gallery};
use plugnode::display::Screen;
use plugnode_hw::{Frame, WaveshareModel};
use std::path::PathBuf;

fn golden_dir(model: WaveshareModel) -> PathBuf {
    let name = match model {
        WaveshareModel::Epd2in7V2 => "2in7",
        WaveshareModel::Epd2in13V4 => "2in13",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check_model(model: WaveshareModel) {
    let dir = golden_dir(model);
    std::fs::create_dir_all(&dir).unwrap();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for sample in gallery() {
        let mut frame = Frame::new(model.size());
        render(&sample.view(model.has_keys()), &mut frame);
        let golden = dir.join(format!("{}.png", sample.name));
        let fresh = dir.join(format!("{}.new.png", sample.name));
        let expected = std::fs::read(&golden)
            .ok()
            .and_then(|bytes| Frame::from_png(&bytes).ok());
        if expected.as_ref() == Some(&frame) {
            let _ = std::fs::remove_file(&fresh);
            continue;
        }
        if update {
            frame.write_png(&golden).unwrap();
            let _ = std::fs::remove_file(&fresh);
            continue;
        }
        frame.write_png(&fresh).unwrap();
        let why = match &expected {
            None => "no golden picture yet".to_string(),
            Some(e) => format!("{} pixels differ", e.diff_pixels(&frame)),
        };
        failures.push(format!("{}: {why}, see {}", sample.name, fresh.display()));
    }
    assert!(
        failures.is_empty(),
        "screens changed:\n{}\n(accept with UPDATE_GOLDEN=1 after looking at them)",
        failures.join("\n")
    );
}

#[test]
fn screens_on_the_2in7_panel_match_their_golden_pictures() {
    check_model(WaveshareModel::Epd2in7V2);
}

#[test]
fn screens_on_the_2in13_panel_match_their_golden_pictures() {
    check_model(WaveshareModel::Epd2in13V4);
}

#[test]
fn the_gallery_covers_every_screen() {
    let screens: Vec<&str> = gallery().iter().map(|s| s.screen.name()).collect();
    for screen in [
        Screen::Boot,
        Screen::Home,
        Screen::Lightning,
        Screen::Backup,
        Screen::ThisBox,
        Screen::Alerts { index: 0 },
        Screen::PairingConfirm,
        Screen::WithdrawalConfirm,
        Screen::UpdateConfirm,
        Screen::UnlockCode,
        Screen::PairingQr,
        Screen::Seed { page: 0 },
        Screen::ShutdownConfirm,
        Screen::ShuttingDown,
        Screen::SafeToUnplug,
    ] {
        assert!(
            screens.contains(&screen.name()),
            "{} has no sample",
            screen.name()
        );
    }
}

#[test]
fn every_screen_draws_something_and_nothing_is_cut_off_at_the_edges() {
    for model in [WaveshareModel::Epd2in7V2, WaveshareModel::Epd2in13V4] {
        for sample in gallery() {
            let mut frame = Frame::new(model.size());
            render(&sample.view(model.has_keys()), &mut frame);
            assert!(
                frame.black_pixels() > 200,
                "{} is nearly empty",
                sample.name
            );
            // The header bar may touch the edges; text must not run off the right edge.
            let right = frame.width() - 1;
            let touching = (20..frame.height())
                .filter(|y| frame.is_black(right, *y))
                .count();
            let banner = sample.name == "home-alerts";
            assert!(
                touching == 0 || banner,
                "{} on {model:?} touches the right edge ({touching} px)",
                sample.name
            );
        }
    }
}

#[test]
fn seed_words_appear_only_on_their_page() {
    let seed = samples::seed();
    let page = |n: usize| -> Vec<&str> { seed.page(n).map(|(_, w)| w).collect() };
    assert_eq!(
        page(0),
        ["legal", "winner", "thank", "year", "wave", "sausage"]
    );
    assert_eq!(page(3).len(), 6);
    assert_eq!(page(3)[5], "title");
}
