//! The Waveshare drivers' bus traffic, recorded on a fake SPI bus and fake pins and
//! compared with the command sequences of Waveshare's published drivers (and our
//! documented differences, see `plugnode_hw::epd`).

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType as PinErrorType, InputPin, OutputPin};
use embedded_hal::spi::{ErrorType as SpiErrorType, Operation, SpiDevice};
use plugnode_hw::epd::{pack_for_controller, Epd, SPI_CHUNK};
use plugnode_hw::{Frame, Panel, PanelError, WaveshareModel};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

/// One thing that happened on the wires.
#[derive(Clone, Debug, PartialEq)]
enum Raw {
    Spi(Vec<u8>),
    Pin(&'static str, bool),
    BusyRead(bool),
    DelayNs(u64),
}

#[derive(Clone, Default)]
struct Wire(Arc<Mutex<Vec<Raw>>>);

impl Wire {
    fn push(&self, raw: Raw) {
        self.0.lock().unwrap().push(raw);
    }
    fn take(&self) -> Vec<Raw> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct FakeSpi(Wire);
impl SpiErrorType for FakeSpi {
    type Error = Infallible;
}
impl SpiDevice for FakeSpi {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        for op in operations {
            match op {
                Operation::Write(bytes) => self.0.push(Raw::Spi(bytes.to_vec())),
                other => panic!("the driver only writes, got {other:?}"),
            }
        }
        Ok(())
    }
}

struct FakePin(&'static str, Wire);
impl PinErrorType for FakePin {
    type Error = Infallible;
}
impl OutputPin for FakePin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.1.push(Raw::Pin(self.0, false));
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.1.push(Raw::Pin(self.0, true));
        Ok(())
    }
}

/// BUSY: reads high `busy_reads` times after each release, then low once.
struct FakeBusy {
    wire: Wire,
    busy_reads: u32,
    left: u32,
}
impl PinErrorType for FakeBusy {
    type Error = Infallible;
}
impl InputPin for FakeBusy {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        let high = self.left > 0;
        if high {
            self.left -= 1;
        } else {
            self.left = self.busy_reads;
        }
        self.wire.push(Raw::BusyRead(high));
        Ok(high)
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}

struct FakeDelay(Wire);
impl DelayNs for FakeDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.push(Raw::DelayNs(ns as u64));
    }
}

type FakeEpd = Epd<FakeSpi, FakePin, FakePin, FakePin, FakeBusy, FakeDelay>;

fn epd(model: WaveshareModel, busy_reads: u32) -> (FakeEpd, Wire) {
    let wire = Wire::default();
    let epd = Epd::new(
        model,
        FakeSpi(wire.clone()),
        FakePin("RST", wire.clone()),
        FakePin("DC", wire.clone()),
        FakePin("PWR", wire.clone()),
        FakeBusy {
            wire: wire.clone(),
            busy_reads,
            left: busy_reads,
        },
        FakeDelay(wire.clone()),
    );
    (epd, wire)
}

/// The traffic as a person reads a datasheet.
#[derive(Clone, Debug, PartialEq)]
enum Op {
    Pwr(bool),
    Rst(bool),
    DelayMs(u64),
    /// Waited for BUSY to go low.
    Busy,
    Cmd(u8),
    Data(Vec<u8>),
}

/// Turns raw wire events into [`Op`]s: SPI bytes are commands while DC is low and data
/// while it is high; busy polling (reads and 10 ms sleeps) becomes one `Busy`.
fn decode(raw: &[Raw]) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut dc = None;
    let mut in_busy = false;
    for event in raw {
        match event {
            Raw::Pin("DC", level) => dc = Some(*level),
            Raw::Pin("RST", level) => ops.push(Op::Rst(*level)),
            Raw::Pin("PWR", level) => ops.push(Op::Pwr(*level)),
            Raw::Pin(other, _) => panic!("unknown pin {other}"),
            Raw::BusyRead(high) => {
                if !in_busy {
                    ops.push(Op::Busy);
                }
                in_busy = *high;
            }
            Raw::DelayNs(ns) if in_busy => assert_eq!(*ns, 10_000_000, "busy poll interval"),
            Raw::DelayNs(ns) => ops.push(Op::DelayMs(ns / 1_000_000)),
            Raw::Spi(bytes) => match dc {
                Some(false) => {
                    assert_eq!(bytes.len(), 1, "commands are single bytes");
                    ops.push(Op::Cmd(bytes[0]));
                }
                Some(true) => match ops.last_mut() {
                    Some(Op::Data(data)) => data.extend_from_slice(bytes),
                    _ => ops.push(Op::Data(bytes.clone())),
                },
                None => panic!("SPI write before DC was set"),
            },
        }
    }
    ops
}

fn cmd(c: u8, data: &[u8]) -> Vec<Op> {
    let mut ops = vec![Op::Cmd(c)];
    if !data.is_empty() {
        ops.push(Op::Data(data.to_vec()));
    }
    ops
}

fn reset(settle_ms: u64) -> Vec<Op> {
    vec![
        Op::Pwr(true),
        Op::Rst(true),
        Op::DelayMs(settle_ms),
        Op::Rst(false),
        Op::DelayMs(2),
        Op::Rst(true),
        Op::DelayMs(settle_ms),
        Op::Busy,
        Op::Cmd(0x12),
        Op::Busy,
    ]
}

/// Waveshare `epd2in7_V2.init()` after the reset, plus our explicit X window and counter.
fn init_2in7() -> Vec<Op> {
    [
        reset(200),
        cmd(0x45, &[0x00, 0x00, 0x07, 0x01]),
        cmd(0x4F, &[0x00, 0x00]),
        cmd(0x11, &[0x03]),
        cmd(0x44, &[0x00, 0x15]),
        cmd(0x4E, &[0x00]),
    ]
    .concat()
}

/// Waveshare `epd2in13_V4.init()`.
fn init_2in13() -> Vec<Op> {
    [
        reset(20),
        cmd(0x01, &[0xF9, 0x00, 0x00]),
        cmd(0x11, &[0x03]),
        cmd(0x44, &[0x00, 0x0F]),
        cmd(0x45, &[0x00, 0x00, 0xF9, 0x00]),
        cmd(0x4E, &[0x00]),
        cmd(0x4F, &[0x00, 0x00]),
        cmd(0x3C, &[0x05]),
        cmd(0x21, &[0x00, 0x80]),
        cmd(0x18, &[0x80]),
        vec![Op::Busy],
    ]
    .concat()
}

fn init(model: WaveshareModel) -> Vec<Op> {
    match model {
        WaveshareModel::Epd2in7V2 => init_2in7(),
        WaveshareModel::Epd2in13V4 => init_2in13(),
    }
}

fn window(model: WaveshareModel) -> Vec<Op> {
    match model {
        WaveshareModel::Epd2in7V2 => [
            cmd(0x44, &[0x00, 0x15]),
            cmd(0x45, &[0x00, 0x00, 0x07, 0x01]),
        ]
        .concat(),
        WaveshareModel::Epd2in13V4 => [
            cmd(0x44, &[0x00, 0x0F]),
            cmd(0x45, &[0x00, 0x00, 0xF9, 0x00]),
        ]
        .concat(),
    }
}

fn cursor() -> Vec<Op> {
    [cmd(0x4E, &[0x00]), cmd(0x4F, &[0x00, 0x00])].concat()
}

/// `display_Base`: the picture into both RAMs, then the full update (0x22 0xF7, 0x20).
fn full(image: &[u8]) -> Vec<Op> {
    [
        cursor(),
        cmd(0x24, image),
        cursor(),
        cmd(0x26, image),
        cmd(0x22, &[0xF7]),
        cmd(0x20, &[]),
        vec![Op::Busy],
    ]
    .concat()
}

/// Partial update: border 0x80, full window, old picture into 0x26, new into 0x24, then
/// 0x22 0xFF, 0x20.
fn partial(model: WaveshareModel, old: &[u8], new: &[u8]) -> Vec<Op> {
    [
        cmd(0x3C, &[0x80]),
        window(model),
        cursor(),
        cmd(0x26, old),
        cursor(),
        cmd(0x24, new),
        cmd(0x22, &[0xFF]),
        cmd(0x20, &[]),
        vec![Op::Busy],
    ]
    .concat()
}

/// Deep sleep 0x10 0x01, 2 s, then RST, DC and the HAT's power off.
fn sleep() -> Vec<Op> {
    [
        cmd(0x10, &[0x01]),
        vec![Op::DelayMs(2000), Op::Rst(false), Op::Pwr(false)],
    ]
    .concat()
}

/// A frame with one black pixel in the user's top-left corner, and the controller bytes
/// it must become (worked out by hand: that pixel is controller column 0 of the last row).
fn corner_frame(model: WaveshareModel) -> (Frame, Vec<u8>) {
    let mut frame = Frame::new(model.size());
    frame.set(0, 0, true);
    let mut expected = vec![0xFF; model.buffer_len()];
    let last_row = (model.native().1 as usize - 1) * model.row_bytes();
    expected[last_row] = 0x7F;
    (frame, expected)
}

fn striped_frame(model: WaveshareModel) -> Frame {
    let mut frame = Frame::new(model.size());
    for y in (0..frame.height()).step_by(3) {
        for x in 0..frame.width() / 2 {
            frame.set(x, y, true);
        }
    }
    frame
}

const MODELS: [WaveshareModel; 2] = [WaveshareModel::Epd2in7V2, WaveshareModel::Epd2in13V4];

#[test]
fn full_refresh_wakes_initialises_writes_both_rams_and_updates() {
    for model in MODELS {
        let (mut epd, wire) = epd(model, 2);
        let (frame, image) = corner_frame(model);
        epd.full_refresh(&frame).unwrap();
        let expected = [init(model), full(&image)].concat();
        assert_eq!(decode(&wire.take()), expected, "{model:?}");
    }
}

#[test]
fn sleep_after_an_update_and_not_twice() {
    for model in MODELS {
        let (mut epd, wire) = epd(model, 1);
        let (frame, _) = corner_frame(model);
        epd.full_refresh(&frame).unwrap();
        wire.take();
        epd.sleep().unwrap();
        assert_eq!(decode(&wire.take()), sleep(), "{model:?}");
        // Already asleep: nothing on the wires.
        epd.sleep().unwrap();
        assert!(wire.take().is_empty());
    }
}

#[test]
fn partial_refresh_sends_old_and_new_picture() {
    for model in MODELS {
        let (mut epd, wire) = epd(model, 3);
        let (first, first_image) = corner_frame(model);
        epd.full_refresh(&first).unwrap();
        epd.sleep().unwrap();
        wire.take();

        let second = striped_frame(model);
        let second_image = pack_for_controller(model, &second, false);
        epd.partial_refresh(&second).unwrap();
        let expected = [init(model), partial(model, &first_image, &second_image)].concat();
        assert_eq!(decode(&wire.take()), expected, "{model:?}");

        // Without sleeping in between, the next partial needs no init.
        epd.partial_refresh(&first).unwrap();
        assert_eq!(
            decode(&wire.take()),
            partial(model, &second_image, &first_image)
        );
    }
}

#[test]
fn partial_without_a_base_picture_is_a_full_refresh() {
    for model in MODELS {
        let (mut epd, wire) = epd(model, 0);
        let (frame, image) = corner_frame(model);
        epd.partial_refresh(&frame).unwrap();
        assert_eq!(decode(&wire.take()), [init(model), full(&image)].concat());
    }
}

#[test]
fn clear_paints_both_rams_white() {
    for model in MODELS {
        let (mut epd, wire) = epd(model, 1);
        epd.clear().unwrap();
        let white = vec![0xFF; model.buffer_len()];
        assert_eq!(decode(&wire.take()), [init(model), full(&white)].concat());
    }
}

#[test]
fn spi_writes_fit_the_spidev_buffer() {
    let (mut epd, wire) = epd(WaveshareModel::Epd2in7V2, 0);
    epd.full_refresh(&striped_frame(WaveshareModel::Epd2in7V2))
        .unwrap();
    let sizes: Vec<usize> = wire
        .take()
        .iter()
        .filter_map(|r| match r {
            Raw::Spi(b) => Some(b.len()),
            _ => None,
        })
        .collect();
    assert!(sizes.iter().all(|s| *s <= SPI_CHUNK));
    // 5808 bytes go out as 4096 + 1712, twice (both RAMs).
    assert_eq!(sizes.iter().filter(|s| **s == 4096).count(), 2);
    assert_eq!(sizes.iter().filter(|s| **s == 1712).count(), 2);
}

#[test]
fn a_stuck_busy_line_is_an_error_not_a_hang() {
    let (mut epd, _wire) = epd(WaveshareModel::Epd2in13V4, u32::MAX);
    let (frame, _) = corner_frame(WaveshareModel::Epd2in13V4);
    let err = epd.full_refresh(&frame).unwrap_err();
    assert!(matches!(err, PanelError::BusyTimeout { .. }), "{err}");
    assert!(err.to_string().contains("HAT is seated"));
}

#[test]
fn wrong_frame_size_is_refused_before_any_traffic() {
    let (mut epd, wire) = epd(WaveshareModel::Epd2in7V2, 0);
    let frame = Frame::new(WaveshareModel::Epd2in13V4.size());
    assert!(matches!(
        epd.full_refresh(&frame),
        Err(PanelError::WrongSize { .. })
    ));
    assert!(wire.take().is_empty());
}
