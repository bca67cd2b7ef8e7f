//! Drivers for Waveshare's SSD1680-family e-Paper HATs, generic over `embedded-hal`.
//!
//! The command sequences follow Waveshare's published Raspberry Pi drivers
//! (`epd2in7_V2.py`, `epd2in13_V4.py`); this is our own code, written from reading them.
//! Where we differ, it is on purpose:
//!
//! - Every update starts from deep sleep, so it begins with power-on, a hardware reset,
//!   a software reset and the model's init sequence, and ends with [`Panel::sleep`].
//! - A full refresh writes the picture into both RAMs (0x24 "new" and 0x26 "old"), like
//!   Waveshare's `display_Base`, so a later partial refresh has a base to compare with.
//! - A partial refresh writes the *previous* picture into 0x26 and the new one into 0x24
//!   before the update (Waveshare relies on RAM 0x26 surviving, which it does not when the
//!   HAT's power pin is switched off between updates).
//! - The RAM address counter is set before every RAM write, and the 2.7" init also sets
//!   the X window and X counter, which its Waveshare init leaves at their reset values.
//! - Data bytes go out in one SPI write per (at most 4 KiB) chunk instead of one byte per
//!   chip-select pulse; the controller does not care, spidev's buffer is 4096 bytes.
//!
//! Chip select is the SPI device's own (CE0 = BCM 8 for `/dev/spidev0.0`), so it is not a
//! GPIO here. The BUSY line is high while the controller works.

use crate::frame::Frame;
use crate::panel::{check_size, Panel, PanelError};
use embedded_graphics_core::geometry::Size;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

/// Largest single SPI write (spidev's default `bufsiz`).
pub const SPI_CHUNK: usize = 4096;

/// SSD1680 commands we use.
pub mod cmd {
    pub const DRIVER_OUTPUT: u8 = 0x01;
    pub const DEEP_SLEEP: u8 = 0x10;
    pub const DATA_ENTRY_MODE: u8 = 0x11;
    pub const SW_RESET: u8 = 0x12;
    pub const TEMP_SENSOR: u8 = 0x18;
    pub const MASTER_ACTIVATION: u8 = 0x20;
    pub const DISPLAY_UPDATE_CONTROL_1: u8 = 0x21;
    pub const DISPLAY_UPDATE_CONTROL_2: u8 = 0x22;
    pub const WRITE_RAM_BW: u8 = 0x24;
    pub const WRITE_RAM_OLD: u8 = 0x26;
    pub const BORDER_WAVEFORM: u8 = 0x3C;
    pub const RAM_X_WINDOW: u8 = 0x44;
    pub const RAM_Y_WINDOW: u8 = 0x45;
    pub const RAM_X_COUNTER: u8 = 0x4E;
    pub const RAM_Y_COUNTER: u8 = 0x4F;

    /// Display update control 2 values.
    pub const UPDATE_FULL: u8 = 0xF7;
    pub const UPDATE_PARTIAL: u8 = 0xFF;
}

/// The Waveshare panels plugnode drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaveshareModel {
    /// 2.7" e-Paper HAT V2: 264×176, four keys.
    Epd2in7V2,
    /// 2.13" e-Paper HAT V4: 250×122, no keys.
    Epd2in13V4,
}

impl WaveshareModel {
    pub fn name(self) -> &'static str {
        match self {
            WaveshareModel::Epd2in7V2 => "waveshare-2in7-v2",
            WaveshareModel::Epd2in13V4 => "waveshare-2in13-v4",
        }
    }

    /// Size as the user sees it (landscape).
    pub fn size(self) -> Size {
        let (w, h) = self.native();
        Size::new(h, w)
    }

    /// Whether the HAT has keys.
    pub fn has_keys(self) -> bool {
        matches!(self, WaveshareModel::Epd2in7V2)
    }

    /// Width (source lines) × height (gate lines) as the controller addresses it.
    pub fn native(self) -> (u32, u32) {
        match self {
            WaveshareModel::Epd2in7V2 => (176, 264),
            WaveshareModel::Epd2in13V4 => (122, 250),
        }
    }

    /// Bytes per controller row.
    pub fn row_bytes(self) -> usize {
        self.native().0.div_ceil(8) as usize
    }

    /// Bytes of one picture in controller RAM.
    pub fn buffer_len(self) -> usize {
        self.row_bytes() * self.native().1 as usize
    }

    /// The reset pulse: high for `settle` ms, low for 2 ms, high for `settle` ms.
    fn reset_settle_ms(self) -> u32 {
        match self {
            WaveshareModel::Epd2in7V2 => 200,
            WaveshareModel::Epd2in13V4 => 20,
        }
    }

    fn busy_timeout_ms(self) -> u32 {
        // A cold full refresh of the 2.7" takes up to ~6 s; leave room.
        20_000
    }
}

/// Packs a landscape frame into the controller's portrait RAM layout (1 = white), the
/// same rotation Waveshare's drivers apply to a landscape image: user pixel (x, y) lands
/// in controller column y, row `width - 1 - x`.
pub fn pack_for_controller(model: WaveshareModel, frame: &Frame, upside_down: bool) -> Vec<u8> {
    let row_bytes = model.row_bytes();
    let mut buf = vec![0xFF; model.buffer_len()];
    let (w, h) = (frame.width(), frame.height());
    for y in 0..h {
        for x in 0..w {
            let black = if upside_down {
                frame.is_black(w - 1 - x, h - 1 - y)
            } else {
                frame.is_black(x, y)
            };
            if black {
                let nx = y as usize;
                let ny = (w - 1 - x) as usize;
                buf[ny * row_bytes + nx / 8] &= !(0x80 >> (nx % 8));
            }
        }
    }
    buf
}

/// A Waveshare e-Paper HAT on any `embedded-hal` SPI device and pins.
pub struct Epd<SPI, RST, DC, PWR, BUSY, D> {
    model: WaveshareModel,
    spi: SPI,
    rst: RST,
    dc: DC,
    pwr: PWR,
    busy: BUSY,
    delay: D,
    awake: bool,
    upside_down: bool,
    /// What the controller shows now, packed; the base for the next partial refresh.
    shown: Option<Vec<u8>>,
}

impl<SPI, RST, DC, PWR, BUSY, D> Epd<SPI, RST, DC, PWR, BUSY, D>
where
    SPI: SpiDevice,
    RST: OutputPin,
    DC: OutputPin,
    PWR: OutputPin,
    BUSY: InputPin,
    D: DelayNs,
{
    /// Takes the bus and pins; sends nothing until the first refresh.
    pub fn new(
        model: WaveshareModel,
        spi: SPI,
        rst: RST,
        dc: DC,
        pwr: PWR,
        busy: BUSY,
        delay: D,
    ) -> Self {
        Epd {
            model,
            spi,
            rst,
            dc,
            pwr,
            busy,
            delay,
            awake: false,
            upside_down: false,
            shown: None,
        }
    }

    /// Turns the picture by 180° (for a HAT mounted the other way round in its case).
    pub fn upside_down(mut self, yes: bool) -> Self {
        self.upside_down = yes;
        self
    }

    pub fn model(&self) -> WaveshareModel {
        self.model
    }

    /// Gives the bus and pins back (tests read their recordings from them).
    pub fn release(self) -> (SPI, RST, DC, PWR, BUSY, D) {
        (self.spi, self.rst, self.dc, self.pwr, self.busy, self.delay)
    }

    fn command(&mut self, command: u8) -> Result<(), PanelError> {
        self.dc.set_low().map_err(pin_err("DC"))?;
        self.spi
            .write(&[command])
            .map_err(|e| PanelError::Spi(format!("{e:?}")))
    }

    fn data(&mut self, data: &[u8]) -> Result<(), PanelError> {
        self.dc.set_high().map_err(pin_err("DC"))?;
        for chunk in data.chunks(SPI_CHUNK) {
            self.spi
                .write(chunk)
                .map_err(|e| PanelError::Spi(format!("{e:?}")))?;
        }
        Ok(())
    }

    fn send(&mut self, command: u8, data: &[u8]) -> Result<(), PanelError> {
        self.command(command)?;
        if !data.is_empty() {
            self.data(data)?;
        }
        Ok(())
    }

    fn wait_busy(&mut self, during: &'static str) -> Result<(), PanelError> {
        let timeout = self.model.busy_timeout_ms();
        let mut waited = 0;
        while self.busy.is_high().map_err(pin_err("BUSY"))? {
            if waited >= timeout {
                return Err(PanelError::BusyTimeout {
                    during,
                    waited_ms: waited,
                });
            }
            self.delay.delay_ms(10);
            waited += 10;
        }
        Ok(())
    }

    fn hardware_reset(&mut self) -> Result<(), PanelError> {
        let settle = self.model.reset_settle_ms();
        self.rst.set_high().map_err(pin_err("RST"))?;
        self.delay.delay_ms(settle);
        self.rst.set_low().map_err(pin_err("RST"))?;
        self.delay.delay_ms(2);
        self.rst.set_high().map_err(pin_err("RST"))?;
        self.delay.delay_ms(settle);
        Ok(())
    }

    fn set_window_and_cursor(&mut self) -> Result<(), PanelError> {
        let (w, h) = self.model.native();
        let x_end = ((w - 1) >> 3) as u8;
        let y_end = (h - 1) as u16;
        self.send(cmd::RAM_X_WINDOW, &[0x00, x_end])?;
        self.send(
            cmd::RAM_Y_WINDOW,
            &[0x00, 0x00, (y_end & 0xff) as u8, (y_end >> 8) as u8],
        )?;
        self.set_cursor()
    }

    fn set_cursor(&mut self) -> Result<(), PanelError> {
        self.send(cmd::RAM_X_COUNTER, &[0x00])?;
        self.send(cmd::RAM_Y_COUNTER, &[0x00, 0x00])
    }

    /// Power on, reset, and the model's init sequence.
    fn wake(&mut self) -> Result<(), PanelError> {
        if self.awake {
            return Ok(());
        }
        self.pwr.set_high().map_err(pin_err("PWR"))?;
        self.hardware_reset()?;
        self.wait_busy("reset")?;
        self.command(cmd::SW_RESET)?;
        self.wait_busy("software reset")?;
        match self.model {
            WaveshareModel::Epd2in7V2 => {
                // Waveshare's `init`: Y window 0..=263, Y counter 0, data entry X+ Y+.
                self.send(cmd::RAM_Y_WINDOW, &[0x00, 0x00, 0x07, 0x01])?;
                self.send(cmd::RAM_Y_COUNTER, &[0x00, 0x00])?;
                self.send(cmd::DATA_ENTRY_MODE, &[0x03])?;
                // Ours: X window 0..=21 (176 px) and X counter 0, explicit.
                self.send(cmd::RAM_X_WINDOW, &[0x00, 0x15])?;
                self.send(cmd::RAM_X_COUNTER, &[0x00])?;
            }
            WaveshareModel::Epd2in13V4 => {
                // Waveshare's `init`: 250 gates, data entry X+ Y+, full window, cursor 0,
                // border, update control, internal temperature sensor.
                self.send(cmd::DRIVER_OUTPUT, &[0xF9, 0x00, 0x00])?;
                self.send(cmd::DATA_ENTRY_MODE, &[0x03])?;
                self.set_window_and_cursor()?;
                self.send(cmd::BORDER_WAVEFORM, &[0x05])?;
                self.send(cmd::DISPLAY_UPDATE_CONTROL_1, &[0x00, 0x80])?;
                self.send(cmd::TEMP_SENSOR, &[0x80])?;
                self.wait_busy("init")?;
            }
        }
        self.awake = true;
        Ok(())
    }

    fn update(&mut self, mode: u8, during: &'static str) -> Result<(), PanelError> {
        self.send(cmd::DISPLAY_UPDATE_CONTROL_2, &[mode])?;
        self.command(cmd::MASTER_ACTIVATION)?;
        self.wait_busy(during)
    }

    fn show_full(&mut self, buf: Vec<u8>) -> Result<(), PanelError> {
        self.wake()?;
        self.set_cursor()?;
        self.send(cmd::WRITE_RAM_BW, &buf)?;
        self.set_cursor()?;
        self.send(cmd::WRITE_RAM_OLD, &buf)?;
        // Forget the base until the update is through: a failed refresh leaves the glass
        // in an unknown state, and the next partial must not trust it.
        self.shown = None;
        self.update(cmd::UPDATE_FULL, "full refresh")?;
        self.shown = Some(buf);
        Ok(())
    }
}

fn pin_err<E: std::fmt::Debug>(pin: &'static str) -> impl Fn(E) -> PanelError {
    move |e| PanelError::Pin {
        pin,
        detail: format!("{e:?}"),
    }
}

impl<SPI, RST, DC, PWR, BUSY, D> Panel for Epd<SPI, RST, DC, PWR, BUSY, D>
where
    SPI: SpiDevice + Send,
    RST: OutputPin + Send,
    DC: OutputPin + Send,
    PWR: OutputPin + Send,
    BUSY: InputPin + Send,
    D: DelayNs + Send,
{
    fn name(&self) -> &'static str {
        self.model.name()
    }

    fn size(&self) -> Size {
        self.model.size()
    }

    fn full_refresh(&mut self, frame: &Frame) -> Result<(), PanelError> {
        check_size(frame, self.model.size())?;
        let buf = pack_for_controller(self.model, frame, self.upside_down);
        self.show_full(buf)
    }

    fn partial_refresh(&mut self, frame: &Frame) -> Result<(), PanelError> {
        check_size(frame, self.model.size())?;
        let buf = pack_for_controller(self.model, frame, self.upside_down);
        let Some(previous) = self.shown.take() else {
            tracing::debug!("no base picture for a partial refresh: doing a full one");
            return self.show_full(buf);
        };
        self.wake()?;
        self.send(cmd::BORDER_WAVEFORM, &[0x80])?;
        self.set_window_and_cursor()?;
        self.send(cmd::WRITE_RAM_OLD, &previous)?;
        self.set_cursor()?;
        self.send(cmd::WRITE_RAM_BW, &buf)?;
        self.update(cmd::UPDATE_PARTIAL, "partial refresh")?;
        self.shown = Some(buf);
        Ok(())
    }

    fn clear(&mut self) -> Result<(), PanelError> {
        let buf = vec![0xFF; self.model.buffer_len()];
        self.show_full(buf)
    }

    fn sleep(&mut self) -> Result<(), PanelError> {
        if !self.awake {
            return Ok(());
        }
        self.send(cmd::DEEP_SLEEP, &[0x01])?;
        // Waveshare waits 2 s before switching the HAT off.
        self.delay.delay_ms(2000);
        self.rst.set_low().map_err(pin_err("RST"))?;
        self.dc.set_low().map_err(pin_err("DC"))?;
        self.pwr.set_low().map_err(pin_err("PWR"))?;
        self.awake = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_hats() {
        assert_eq!(WaveshareModel::Epd2in7V2.size(), Size::new(264, 176));
        assert_eq!(WaveshareModel::Epd2in13V4.size(), Size::new(250, 122));
        assert_eq!(WaveshareModel::Epd2in7V2.buffer_len(), 5808);
        assert_eq!(WaveshareModel::Epd2in13V4.buffer_len(), 4000);
    }

    #[test]
    fn packing_rotates_like_waveshare() {
        for model in [WaveshareModel::Epd2in7V2, WaveshareModel::Epd2in13V4] {
            let size = model.size();
            let mut frame = Frame::new(size);
            // Top-left user pixel → controller column 0, last row.
            frame.set(0, 0, true);
            let buf = pack_for_controller(model, &frame, false);
            let last_row = (model.native().1 - 1) as usize * model.row_bytes();
            assert_eq!(buf[last_row], 0x7F, "{model:?}");
            assert_eq!(buf.iter().filter(|b| **b != 0xFF).count(), 1);
            // Top-right user pixel → controller column 0, row 0.
            let mut frame = Frame::new(size);
            frame.set(size.width - 1, 0, true);
            let buf = pack_for_controller(model, &frame, false);
            assert_eq!(buf[0], 0x7F);
            // Upside down: the top-left pixel lands where the bottom-right one would.
            let mut frame = Frame::new(size);
            frame.set(0, 0, true);
            let flipped = pack_for_controller(model, &frame, true);
            let mut other = Frame::new(size);
            other.set(size.width - 1, size.height - 1, true);
            assert_eq!(flipped, pack_for_controller(model, &other, false));
        }
    }
}
