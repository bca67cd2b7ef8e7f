//! The e-ink display and its keys: the box tells you what it is doing.
//!
//! - [`render`]: each screen is a pure function from the [`Status`](crate::status::Status)
//!   and display-local state ([`ui::Ui`]: current screen, secrets being shown) to pixels.
//! - [`ui`]: navigation — KEY1 next, KEY2 select/confirm, KEY3 back, KEY4 held 3 s =
//!   shut down (confirm with KEY2); panels without keys rotate the status screens.
//! - [`policy`]: when to drive the glass (only on change, ≤ 5 partials then a full one,
//!   idle updates at most every 3 minutes, key presses and alerts at once, a daily full
//!   refresh, secrets leave with a full refresh).
//! - [`service`]: the task that ties it together, and the [`DisplayHandle`] other services
//!   use (pairing question and QR, seed words, web mirror, the page's keys, final "safe to
//!   unplug").
//!
//! Wiring (the supervisor):
//!
//! ```ignore
//! let display = display::start(&settings, status.subscribe(), shutdown.clone())?;
//! // … web server gets `display.clone()` for the mirror, pairing gets one for its questions …
//! // shutdown order: web → (display shows "shutting down" by itself) → Lightning →
//! // backup flush → bitcoind → then:
//! if let Some(d) = &display { d.finish().await?; }
//! ```

pub mod policy;
pub mod render;
// Fixtures for the tests and benchmarks (built with the default `demo` feature, as
// `cargo test` does): never in a real box's binary.
#[cfg(any(test, feature = "demo"))]
pub mod samples;
pub mod service;
pub mod ui;
pub mod widgets;

/// The panel as the config file names it; the display opens what it names.
pub use crate::config::PanelKind;
/// The keys, for [`DisplayHandle::press_key`].
pub use plugnode_hw::Key;
pub use policy::{Decision, RefreshPolicy, RefreshRules};
pub use render::{render, View};
pub use service::{spawn, DeviceRequest, DisplayError, DisplayHandle, DisplayState};
pub use ui::{
    PairingAnswer, PairingCode, PairingQuestion, Question, Screen, SeedWords, UiTiming,
    UpdateQuestion, WithdrawalQuestion,
};

use crate::config::DisplayConfig;
use crate::shutdown::Shutdown;
use crate::status::Status;
use plugnode_hw::{
    Buttons, Panel, PanelError, SimButtons, SimKeys, SimMonitor, SimPanel, WaveshareModel,
};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// Everything the display service needs to know, filled from the `[display]` config.
#[derive(Clone, Debug, PartialEq)]
pub struct DisplaySettings {
    pub panel: PanelKind,
    /// SPI device of the HAT (its chip select is the device's: CE0 = BCM 8).
    pub spi_device: PathBuf,
    /// GPIO character device of the 40-pin header.
    pub gpio_chip: PathBuf,
    /// BCM numbers of the panel's control lines.
    pub rst_pin: u32,
    pub dc_pin: u32,
    pub busy_pin: u32,
    pub pwr_pin: u32,
    /// BCM numbers of KEY1..KEY4 (2.7" HAT only).
    pub key_pins: [u32; 4],
    /// Debounce the kernel applies to the keys.
    pub key_debounce: Duration,
    /// How long to hold a key for a long press (KEY4 = shutdown).
    pub long_press: Duration,
    /// Which HAT the simulated panel imitates (size, keys).
    pub simulate: WaveshareModel,
    /// The simulated panel writes each picture here (a 1-bit PNG), if set.
    pub png_output: Option<PathBuf>,
    /// The HAT is mounted upside down.
    pub upside_down: bool,
    /// Let seed words and pairing codes reach the web mirror. Only for the demo, where the
    /// simulated panel is the device; never on a real box.
    pub mirror_secrets: bool,
    pub refresh: RefreshRules,
    pub timing: UiTiming,
    /// Offset of local time from UTC for the clock times on screen; `None` = the system's
    /// time zone.
    pub utc_offset_secs: Option<i32>,
}

impl Default for DisplaySettings {
    fn default() -> Self {
        DisplaySettings {
            panel: PanelKind::None,
            spi_device: "/dev/spidev0.0".into(),
            gpio_chip: "/dev/gpiochip0".into(),
            rst_pin: 17,
            dc_pin: 25,
            busy_pin: 24,
            pwr_pin: 18,
            key_pins: [5, 6, 13, 19],
            key_debounce: Duration::from_millis(10),
            long_press: Duration::from_secs(3),
            simulate: WaveshareModel::Epd2in7V2,
            png_output: None,
            upside_down: false,
            mirror_secrets: false,
            refresh: RefreshRules::default(),
            timing: UiTiming::default(),
            utc_offset_secs: None,
        }
    }
}

/// The key printed as KEY`n` on the HAT (1 to 4), for the page's key buttons; `None` for
/// any other number.
pub fn key_numbered(n: u8) -> Option<Key> {
    Key::ALL.get(usize::from(n).checked_sub(1)?).copied()
}

// Written here, not in `config`, so that the config knows nothing of the display: the
// display reads its section of the config.
impl DisplayConfig {
    /// The display service's settings for this config.
    pub fn settings(&self) -> DisplaySettings {
        DisplaySettings {
            panel: self.panel,
            spi_device: self.spi_device.clone(),
            gpio_chip: self.gpio_chip.clone(),
            key_pins: self.key_pins,
            upside_down: self.upside_down,
            ..DisplaySettings::default()
        }
    }
}

/// The simulated panel's extras: its picture and counters, and its keys.
#[derive(Clone)]
pub struct SimulatedDisplay {
    pub monitor: SimMonitor,
    /// Raw key edges (debounced and timed like real keys); `None` when imitating a HAT
    /// without keys.
    pub keys: Option<SimKeys>,
}

/// A panel and its keys, opened but not yet drawn on.
pub struct OpenedDisplay {
    pub panel: Box<dyn Panel>,
    pub buttons: Option<Box<dyn Buttons>>,
    pub simulated: Option<SimulatedDisplay>,
}

/// Why the display could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Panel(#[from] PanelError),
    #[error("the Waveshare panels need Linux (SPI and GPIO character devices)")]
    NotLinux,
}

/// Opens the panel and keys `settings` name. `Ok(None)` for `panel = "none"`. Nothing is
/// sent to the panel yet.
pub fn open(settings: &DisplaySettings) -> Result<Option<OpenedDisplay>, OpenError> {
    match settings.panel {
        PanelKind::None => Ok(None),
        PanelKind::Simulated => {
            let mut panel = SimPanel::new(settings.simulate.size());
            if let Some(path) = &settings.png_output {
                panel = panel.with_png_output(path);
            }
            let monitor = panel.monitor();
            let (buttons, keys) = if settings.simulate.has_keys() {
                let (buttons, keys) = SimButtons::new();
                (Some(Box::new(buttons) as Box<dyn Buttons>), Some(keys))
            } else {
                (None, None)
            };
            Ok(Some(OpenedDisplay {
                panel: Box::new(panel),
                buttons,
                simulated: Some(SimulatedDisplay { monitor, keys }),
            }))
        }
        PanelKind::Waveshare2in7V2 => open_waveshare(settings, WaveshareModel::Epd2in7V2),
        PanelKind::Waveshare2in13V4 => open_waveshare(settings, WaveshareModel::Epd2in13V4),
    }
}

#[cfg(target_os = "linux")]
fn open_waveshare(
    settings: &DisplaySettings,
    model: WaveshareModel,
) -> Result<Option<OpenedDisplay>, OpenError> {
    use plugnode_hw::linux::{open_waveshare_panel, CdevButtons, KeyPins, PanelPins};
    let pins = PanelPins {
        rst: settings.rst_pin,
        dc: settings.dc_pin,
        busy: settings.busy_pin,
        pwr: settings.pwr_pin,
    };
    let panel = open_waveshare_panel(
        model,
        &settings.spi_device,
        &settings.gpio_chip,
        pins,
        settings.upside_down,
    )?;
    let buttons = model.has_keys().then(|| {
        Box::new(CdevButtons::new(
            settings.gpio_chip.clone(),
            KeyPins(settings.key_pins),
            settings.key_debounce,
        )) as Box<dyn Buttons>
    });
    Ok(Some(OpenedDisplay {
        panel,
        buttons,
        simulated: None,
    }))
}

#[cfg(not(target_os = "linux"))]
fn open_waveshare(
    _settings: &DisplaySettings,
    _model: WaveshareModel,
) -> Result<Option<OpenedDisplay>, OpenError> {
    Err(OpenError::NotLinux)
}

/// [`open`] and [`spawn`] in one: `Ok(None)` when the box has no display.
pub fn start(
    settings: &DisplaySettings,
    status: watch::Receiver<Status>,
    shutdown: Shutdown,
) -> Result<Option<(DisplayHandle, Option<SimulatedDisplay>)>, OpenError> {
    let Some(opened) = open(settings)? else {
        return Ok(None);
    };
    let handle = spawn(opened.panel, opened.buttons, status, shutdown, settings);
    Ok(Some((handle, opened.simulated)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_numbered_as_printed_on_the_hat() {
        assert_eq!(key_numbered(1), Some(Key::Key1));
        assert_eq!(key_numbered(4), Some(Key::Key4));
        assert_eq!(key_numbered(0), None);
        assert_eq!(key_numbered(5), None);
    }

    #[test]
    fn none_opens_nothing_and_simulated_imitates_the_hat() {
        assert!(open(&DisplaySettings::default()).unwrap().is_none());
        let settings = DisplaySettings {
            panel: PanelKind::Simulated,
            simulate: WaveshareModel::Epd2in13V4,
            ..DisplaySettings::default()
        };
        let opened = open(&settings).unwrap().unwrap();
        assert_eq!(opened.panel.size(), plugnode_hw::Size::new(250, 122));
        assert!(opened.buttons.is_none());
        assert!(opened.simulated.unwrap().keys.is_none());
    }

    #[test]
    fn a_missing_spi_device_says_what_to_check() {
        let settings = DisplaySettings {
            panel: PanelKind::Waveshare2in7V2,
            spi_device: "/nonexistent/spidev0.0".into(),
            ..DisplaySettings::default()
        };
        let err = open(&settings).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/spidev0.0"), "{err}");
        assert!(err.contains("SPI is enabled"), "{err}");
    }
}
