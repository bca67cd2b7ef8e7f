//! The real HAT on Linux: SPI through spidev (`linux-embedded-hal`), GPIO lines and keys
//! through the GPIO character device (`gpiocdev`, with the kernel's debounce). Nothing
//! here touches hardware until one of the `open` functions is called.

use crate::epd::{Epd, WaveshareModel};
use crate::keys::{Buttons, ButtonsError, Key, KeyEdge};
use crate::panel::{Panel, PanelError};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use gpiocdev::line::{Bias, EdgeDetection, EdgeKind, Value};
use gpiocdev::Request;
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::SpidevDevice;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// BCM numbers of the panel's control lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PanelPins {
    pub rst: u32,
    pub dc: u32,
    pub busy: u32,
    pub pwr: u32,
}

impl Default for PanelPins {
    /// The Waveshare HATs: RST 17, DC 25, BUSY 24, PWR 18 (CS is the SPI device's CE0,
    /// BCM 8).
    fn default() -> Self {
        PanelPins {
            rst: 17,
            dc: 25,
            busy: 24,
            pwr: 18,
        }
    }
}

/// SPI speed Waveshare uses.
pub const SPI_HZ: u32 = 4_000_000;

/// One GPIO line driven by us.
pub struct CdevOutput {
    request: Request,
    line: u32,
}

/// One GPIO line we read.
pub struct CdevInput {
    request: Request,
    line: u32,
}

/// A gpiocdev error as an `embedded-hal` error.
#[derive(Debug)]
pub struct CdevError(pub gpiocdev::Error);

impl embedded_hal::digital::Error for CdevError {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

impl CdevOutput {
    pub fn open(
        chip: &Path,
        line: u32,
        role: &'static str,
        initial_high: bool,
    ) -> Result<Self, PanelError> {
        let value = if initial_high {
            Value::Active
        } else {
            Value::Inactive
        };
        let request = Request::builder()
            .on_chip(chip)
            .with_consumer(format!("plugnode-epd-{role}"))
            .with_line(line)
            .as_output(value)
            .request()
            .map_err(|e| gpio_error(chip, line, role, e))?;
        Ok(CdevOutput { request, line })
    }
}

impl CdevInput {
    pub fn open(chip: &Path, line: u32, role: &'static str) -> Result<Self, PanelError> {
        let request = Request::builder()
            .on_chip(chip)
            .with_consumer(format!("plugnode-epd-{role}"))
            .with_line(line)
            .as_input()
            .request()
            .map_err(|e| gpio_error(chip, line, role, e))?;
        Ok(CdevInput { request, line })
    }
}

fn gpio_error(chip: &Path, line: u32, role: &'static str, e: gpiocdev::Error) -> PanelError {
    PanelError::Gpio {
        chip: chip.display().to_string(),
        line,
        role,
        detail: e.to_string(),
    }
}

impl ErrorType for CdevOutput {
    type Error = CdevError;
}

impl OutputPin for CdevOutput {
    fn set_low(&mut self) -> Result<(), CdevError> {
        self.request
            .set_value(self.line, Value::Inactive)
            .map_err(CdevError)
    }
    fn set_high(&mut self) -> Result<(), CdevError> {
        self.request
            .set_value(self.line, Value::Active)
            .map_err(CdevError)
    }
}

impl ErrorType for CdevInput {
    type Error = CdevError;
}

impl InputPin for CdevInput {
    fn is_high(&mut self) -> Result<bool, CdevError> {
        Ok(self.request.value(self.line).map_err(CdevError)? == Value::Active)
    }
    fn is_low(&mut self) -> Result<bool, CdevError> {
        self.is_high().map(|high| !high)
    }
}

/// Sleeps the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadDelay;

impl DelayNs for ThreadDelay {
    fn delay_ns(&mut self, ns: u32) {
        std::thread::sleep(Duration::from_nanos(ns as u64));
    }
}

/// The real panel's concrete driver type.
pub type LinuxEpd = Epd<SpidevDevice, CdevOutput, CdevOutput, CdevOutput, CdevInput, ThreadDelay>;

/// Opens a Waveshare HAT: the SPI device (mode 0, 4 MHz) and the control lines. Sends
/// nothing to the panel yet.
pub fn open_waveshare(
    model: WaveshareModel,
    spi_path: &Path,
    gpio_chip: &Path,
    pins: PanelPins,
    upside_down: bool,
) -> Result<LinuxEpd, PanelError> {
    let mut spi = SpidevDevice::open(spi_path).map_err(|e| PanelError::Open {
        what: "SPI device",
        path: spi_path.display().to_string(),
        source: std::io::Error::other(format!("{e:?}")),
    })?;
    let options = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(SPI_HZ)
        .mode(SpiModeFlags::SPI_MODE_0)
        .build();
    spi.configure(&options).map_err(|source| PanelError::Open {
        what: "SPI device",
        path: spi_path.display().to_string(),
        source,
    })?;
    let rst = CdevOutput::open(gpio_chip, pins.rst, "rst", true)?;
    let dc = CdevOutput::open(gpio_chip, pins.dc, "dc", false)?;
    let pwr = CdevOutput::open(gpio_chip, pins.pwr, "pwr", false)?;
    let busy = CdevInput::open(gpio_chip, pins.busy, "busy")?;
    Ok(Epd::new(model, spi, rst, dc, pwr, busy, ThreadDelay).upside_down(upside_down))
}

/// [`open_waveshare`], boxed as a [`Panel`].
pub fn open_waveshare_panel(
    model: WaveshareModel,
    spi_path: &Path,
    gpio_chip: &Path,
    pins: PanelPins,
    upside_down: bool,
) -> Result<Box<dyn Panel>, PanelError> {
    Ok(Box::new(open_waveshare(
        model,
        spi_path,
        gpio_chip,
        pins,
        upside_down,
    )?))
}

/// BCM numbers of KEY1..KEY4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPins(pub [u32; 4]);

impl Default for KeyPins {
    /// The 2.7" HAT: KEY1 = 5, KEY2 = 6, KEY3 = 13, KEY4 = 19.
    fn default() -> Self {
        KeyPins([5, 6, 13, 19])
    }
}

/// The HAT's keys on GPIO lines (active low, pull-up), debounced by the kernel.
pub struct CdevButtons {
    chip: PathBuf,
    pins: KeyPins,
    debounce: Duration,
}

impl CdevButtons {
    pub fn new(chip: impl Into<PathBuf>, pins: KeyPins, debounce: Duration) -> Self {
        CdevButtons {
            chip: chip.into(),
            pins,
            debounce,
        }
    }
}

impl Buttons for CdevButtons {
    fn start(self: Box<Self>) -> Result<mpsc::UnboundedReceiver<KeyEdge>, ButtonsError> {
        let lines = self.pins.0;
        let error = |detail: String| ButtonsError::Gpio {
            chip: self.chip.display().to_string(),
            lines: lines.to_vec(),
            detail,
        };
        let request = Request::builder()
            .on_chip(&self.chip)
            .with_consumer("plugnode-keys")
            .with_lines(&lines)
            .as_input()
            .as_active_low()
            .with_bias(Bias::PullUp)
            .with_edge_detection(EdgeDetection::BothEdges)
            .with_debounce_period(self.debounce)
            .request()
            .map_err(|e| error(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("plugnode-keys".into())
            .spawn(move || read_keys(request, lines, tx))
            .map_err(|e| error(e.to_string()))?;
        Ok(rx)
    }
}

fn read_keys(request: Request, lines: [u32; 4], tx: mpsc::UnboundedSender<KeyEdge>) {
    loop {
        if tx.is_closed() {
            return;
        }
        match request.wait_edge_event(Duration::from_millis(250)) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                tracing::error!("reading the keys failed, they stop working: {e}");
                return;
            }
        }
        let event = match request.read_edge_event() {
            Ok(event) => event,
            Err(e) => {
                tracing::error!("reading a key event failed, the keys stop working: {e}");
                return;
            }
        };
        let Some(index) = lines.iter().position(|l| *l == event.offset) else {
            continue;
        };
        let edge = KeyEdge {
            key: Key::ALL[index],
            // Active low: the line becoming active is the key going down.
            pressed: event.kind == EdgeKind::Rising,
        };
        if tx.send(edge).is_err() {
            return;
        }
    }
}
