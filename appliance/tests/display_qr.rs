//! The pairing screen's QR code decodes to exactly the pairing URI, on both panels, for
//! URIs of the lengths wallets use.

use plugnode::display::render::{render, View};
use plugnode::display::samples::{self, NOW};
use plugnode::display::{PairingCode, Screen};
use plugnode_hw::{Frame, WaveshareModel};

fn decode(frame: &Frame) -> Vec<String> {
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
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}

fn pairing_screen(model: WaveshareModel, code: &PairingCode) -> Frame {
    let status = samples::running();
    let view = View {
        pairing: Some(code),
        has_keys: model.has_keys(),
        ..View::new(Screen::PairingQr, &status, NOW)
    };
    let mut frame = Frame::new(model.size());
    render(&view, &mut frame);
    frame
}

#[test]
fn the_qr_code_is_exactly_the_pairing_uri() {
    let nwc = samples::pairing();
    let lndhub = PairingCode::new(
        "BlueWallet (LNDHub)",
        "lndhub://a1b2c3d4e5f60718:9f8e7d6c5b4a39281706@http://plugnode.local:3000/",
    );
    // A long NWC URI: two relays and a lud16.
    let long = PairingCode::new(
        "Alby Go",
        format!(
            "{}&relay=wss%3A%2F%2Fnos.lol&lud16=node%40plugnode.local",
            samples::pairing().uri()
        ),
    );
    for model in [WaveshareModel::Epd2in7V2, WaveshareModel::Epd2in13V4] {
        for code in [&nwc, &lndhub, &long] {
            let frame = pairing_screen(model, code);
            assert_eq!(
                decode(&frame),
                vec![code.uri().to_string()],
                "{model:?}, {}",
                code.label
            );
        }
    }
}

#[test]
fn no_other_screen_carries_a_qr_code() {
    let code = samples::pairing();
    let status = samples::running();
    for screen in [Screen::PairingConfirm, Screen::Home, Screen::PairingQr] {
        let view = View {
            pairing: Some(&code),
            // The web mirror: the code must not reach it.
            redact_secrets: true,
            ..View::new(screen, &status, NOW)
        };
        let mut frame = Frame::new(WaveshareModel::Epd2in7V2.size());
        render(&view, &mut frame);
        assert!(decode(&frame).is_empty(), "{screen:?}");
    }
}
