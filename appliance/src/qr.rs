//! QR encoding, one for the whole box: the e-ink screen and the page's `/api/qr` turn text
//! into modules here and only differ in how they draw them (pixels on the panel, SVG on
//! the page).

use qrcode::{EcLevel, QrCode};

/// Longest text the page asks a QR code for (a BOLT11 invoice with route hints, or an
/// offer, is well below).
pub const MAX_TEXT: usize = 2000;

/// Codes wider than this get low error correction on the page: beyond it a phone camera
/// at arm's length no longer resolves the modules.
const MAX_MEDIUM_WIDTH: usize = 101;

/// The text does not fit in a QR code the page draws.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("That text is too long for a QR code (at most {MAX_TEXT} characters).")]
pub struct TooLong;

/// A QR code as a square of modules, without its quiet zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modules {
    width: usize,
    /// Row by row, `true` for a dark module.
    dark: Vec<bool>,
}

impl Modules {
    fn from_code(code: &QrCode) -> Self {
        let dark = code
            .to_colors()
            .into_iter()
            .map(|color| color == qrcode::Color::Dark)
            .collect();
        Modules {
            width: code.width(),
            dark,
        }
    }

    /// Modules on a side.
    pub fn width(&self) -> usize {
        self.width
    }

    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.width + x]
    }

    /// The dark modules' `(x, y)`, row by row.
    pub fn dark_modules(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let width = self.width;
        self.dark
            .iter()
            .enumerate()
            .filter(|(_, dark)| **dark)
            .map(move |(i, _)| (i % width, i / width))
    }
}

/// The code for the e-ink panel, or `None` when no QR code holds `text`. Always low error
/// correction: the panel is small, and the fewest modules make each one the most pixels.
pub fn for_screen(text: &str) -> Option<Modules> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L).ok()?;
    Some(Modules::from_code(&code))
}

/// The code for the page: at most [`MAX_TEXT`] bytes. Medium error correction while the
/// code stays small enough for a phone camera at arm's length; low beyond that (a screen
/// is clean, unlike a printed code).
pub fn for_page(text: &str) -> Result<Modules, TooLong> {
    if text.len() > MAX_TEXT {
        return Err(TooLong);
    }
    let code = match QrCode::with_error_correction_level(text, EcLevel::M) {
        Ok(code) if code.width() <= MAX_MEDIUM_WIDTH => code,
        _ => QrCode::with_error_correction_level(text, EcLevel::L).map_err(|_| TooLong)?,
    };
    Ok(Modules::from_code(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the modules back with a QR decoder, four pixels a module, quiet zone of four.
    fn read_back(modules: &Modules) -> String {
        const SCALE: usize = 4;
        const QUIET: usize = 4;
        let side = modules.width() + 2 * QUIET;
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(side * SCALE, side * SCALE, |x, y| {
                let (x, y) = (x / SCALE, y / SCALE);
                let inside = (QUIET..QUIET + modules.width()).contains(&x)
                    && (QUIET..QUIET + modules.width()).contains(&y);
                if inside && modules.is_dark(x - QUIET, y - QUIET) {
                    0
                } else {
                    255
                }
            });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the picture");
        grids[0].decode().unwrap().1
    }

    #[test]
    fn screen_and_page_codes_read_back_as_the_text() {
        let uri = "nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?relay=ws%3A%2F%2Fplugnode.local%3A7777&secret=71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c";
        assert_eq!(read_back(&for_screen(uri).unwrap()), uri);
        assert_eq!(read_back(&for_page(uri).unwrap()), uri);
        let address = "bitcoin:bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        assert_eq!(read_back(&for_page(address).unwrap()), address);
    }

    #[test]
    fn the_page_trades_error_correction_for_size_only_past_its_width() {
        // Medium keeps a short text's code small enough, so it stays medium: more
        // modules than the screen's low-correction code of the same text.
        let short = "bitcoin:bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        assert!(for_page(short).unwrap().width() > for_screen(short).unwrap().width());
        // A long invoice would pass the width at medium: it falls back to low.
        let invoice = format!(
            "LIGHTNING:LNBCRT{}",
            "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".repeat(40)
        );
        let medium = QrCode::with_error_correction_level(&invoice, EcLevel::M).unwrap();
        assert!(medium.width() > MAX_MEDIUM_WIDTH);
        assert_eq!(for_page(&invoice).unwrap(), for_screen(&invoice).unwrap());
    }

    #[test]
    fn the_page_refuses_more_than_its_limit_and_says_how_much_fits() {
        assert!(for_page(&"A".repeat(MAX_TEXT)).is_ok());
        let err = for_page(&"A".repeat(MAX_TEXT + 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "That text is too long for a QR code (at most 2000 characters)."
        );
        // The screen has no limit of its own: only what a QR code can hold.
        assert!(for_screen(&"A".repeat(MAX_TEXT + 1)).is_some());
        assert!(for_screen(&"\u{1F600}".repeat(1000)).is_none());
    }

    #[test]
    fn dark_modules_are_the_dark_ones() {
        let modules = for_screen("plugnode").unwrap();
        let listed: Vec<_> = modules.dark_modules().collect();
        let expected: Vec<_> = (0..modules.width())
            .flat_map(|y| (0..modules.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| modules.is_dark(x, y))
            .collect();
        assert_eq!(listed, expected);
        // A finder pattern's corner is dark.
        assert!(modules.is_dark(0, 0));
    }
}
