//! A 1-bit framebuffer in the orientation the user sees (landscape), that screens draw on
//! with `embedded-graphics` and panels ship to the glass.

use embedded_graphics_core::draw_target::DrawTarget;
use embedded_graphics_core::geometry::{Dimensions, OriginDimensions, Size};
use embedded_graphics_core::pixelcolor::BinaryColor;
use embedded_graphics_core::primitives::Rectangle;
use embedded_graphics_core::Pixel;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::path::Path;

/// A black-and-white picture. `BinaryColor::On` is black ink, `Off` is white paper.
///
/// Rows are packed most significant bit first; padding bits at the end of a row are always
/// zero, so two frames are equal exactly when their pixels are.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    stride: usize,
    bits: Vec<u8>,
}

/// What went wrong reading a PNG into a [`Frame`].
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error("cannot decode the PNG: {0}")]
    Decode(#[from] png::DecodingError),
    #[error("cannot encode the PNG: {0}")]
    Encode(#[from] png::EncodingError),
    #[error("unsupported PNG pixel format {0:?}/{1:?}: use grayscale, RGB or indexed")]
    Format(png::ColorType, png::BitDepth),
}

impl Frame {
    /// An all-white frame.
    pub fn new(size: Size) -> Self {
        let stride = size.width.div_ceil(8) as usize;
        Frame {
            width: size.width,
            height: size.height,
            stride,
            bits: vec![0; stride * size.height as usize],
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }

    /// True where the pixel is black. Outside the frame is white.
    pub fn is_black(&self, x: u32, y: u32) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        let byte = self.bits[y as usize * self.stride + (x / 8) as usize];
        byte & (0x80 >> (x % 8)) != 0
    }

    /// Sets one pixel; outside the frame nothing happens.
    pub fn set(&mut self, x: u32, y: u32, black: bool) {
        if x >= self.width || y >= self.height {
            return;
        }
        let index = y as usize * self.stride + (x / 8) as usize;
        let mask = 0x80 >> (x % 8);
        if black {
            self.bits[index] |= mask;
        } else {
            self.bits[index] &= !mask;
        }
    }

    /// Paints the whole frame white (`false`) or black (`true`).
    pub fn fill(&mut self, black: bool) {
        if !black {
            self.bits.fill(0);
            return;
        }
        for y in 0..self.height {
            for x in 0..self.width {
                self.set(x, y, true);
            }
        }
    }

    /// How many pixels differ between two frames of the same size (all of them when the
    /// sizes differ).
    pub fn diff_pixels(&self, other: &Frame) -> usize {
        if self.size() != other.size() {
            return (self.width * self.height).max(other.width * other.height) as usize;
        }
        self.bits
            .iter()
            .zip(&other.bits)
            .map(|(a, b)| (a ^ b).count_ones() as usize)
            .sum()
    }

    /// The number of black pixels.
    pub fn black_pixels(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// The packed rows (MSB first, 1 = black, `stride()` bytes a row).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The frame as a 1-bit grayscale PNG (black ink on white paper).
    pub fn to_png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        // PNG grayscale: 0 is black; our bits: 1 is black.
        let rows: Vec<u8> = self.bits.iter().map(|b| !b).collect();
        // Clear the padding bits again so the PNG bytes are deterministic.
        let mut rows = rows;
        let pad = (self.stride * 8) as u32 - self.width;
        if pad > 0 {
            let keep = 0xffu8 << pad;
            for row in rows.chunks_mut(self.stride) {
                if let Some(last) = row.last_mut() {
                    *last &= keep;
                }
            }
        }
        // Writing to a Vec cannot fail, and the header matches the data by construction.
        let mut writer = encoder
            .write_header()
            .expect("PNG header for an in-memory frame");
        writer
            .write_image_data(&rows)
            .expect("PNG data for an in-memory frame");
        writer.finish().expect("PNG end for an in-memory frame");
        out
    }

    /// Reads a PNG: dark pixels (below half brightness) become black.
    pub fn from_png(bytes: &[u8]) -> Result<Frame, PngError> {
        let mut decoder = png::Decoder::new(io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info()?;
        let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let info = reader.next_frame(&mut buf)?;
        let channels = match info.color_type {
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => return Err(PngError::Format(other, info.bit_depth)),
        };
        if info.bit_depth != png::BitDepth::Eight {
            return Err(PngError::Format(info.color_type, info.bit_depth));
        }
        let mut frame = Frame::new(Size::new(info.width, info.height));
        for y in 0..info.height {
            let row = &buf[y as usize * info.line_size..][..info.line_size];
            for x in 0..info.width {
                let px = &row[x as usize * channels..][..channels];
                let luma = if channels >= 3 {
                    (px[0] as u32 + px[1] as u32 + px[2] as u32) / 3
                } else {
                    px[0] as u32
                };
                frame.set(x, y, luma < 128);
            }
        }
        Ok(frame)
    }

    /// Writes the frame as PNG to `path` atomically (temporary file, then rename), so a
    /// reader never sees half a picture.
    pub fn write_png(&self, path: &Path) -> io::Result<()> {
        let png = self.to_png();
        let tmp = path.with_extension("png.tmp");
        std::fs::write(&tmp, &png)?;
        std::fs::rename(&tmp, path)
    }

    /// A copy enlarged `factor` times in both directions (for people looking at a mirror).
    pub fn scaled(&self, factor: u32) -> Frame {
        let factor = factor.max(1);
        let mut out = Frame::new(Size::new(self.width * factor, self.height * factor));
        for y in 0..out.height {
            for x in 0..out.width {
                if self.is_black(x / factor, y / factor) {
                    out.set(x, y, true);
                }
            }
        }
        out
    }

    /// The frame as lines of `#` (black) and `.` (white), for test failure messages.
    pub fn to_ascii(&self) -> String {
        let mut s = String::with_capacity(((self.width + 1) * self.height) as usize);
        for y in 0..self.height {
            for x in 0..self.width {
                s.push(if self.is_black(x, y) { '#' } else { '.' });
            }
            s.push('\n');
        }
        s
    }
}

/// Deliberately says nothing about the pixels: a frame may show a secret (seed words, a
/// pairing code), and a `{:?}` in a log line must not leak it.
impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

impl OriginDimensions for Frame {
    fn size(&self) -> Size {
        Frame::size(self)
    }
}

impl DrawTarget for Frame {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, color) in pixels {
            if point.x >= 0 && point.y >= 0 {
                self.set(point.x as u32, point.y as u32, color.is_on());
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        let area = area.intersection(&self.bounding_box());
        let Some(bottom_right) = area.bottom_right() else {
            return Ok(());
        };
        for y in area.top_left.y..=bottom_right.y {
            for x in area.top_left.x..=bottom_right.x {
                self.set(x as u32, y as u32, color.is_on());
            }
        }
        Ok(())
    }

    fn clear(&mut self, color: Self::Color) -> Result<(), Self::Error> {
        self.fill(color.is_on());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_round_trip_through_png() {
        let mut frame = Frame::new(Size::new(13, 5));
        frame.set(0, 0, true);
        frame.set(12, 4, true);
        frame.set(7, 2, true);
        let back = Frame::from_png(&frame.to_png()).unwrap();
        assert_eq!(back, frame);
        assert_eq!(back.black_pixels(), 3);
    }

    #[test]
    fn diff_counts_changed_pixels_only() {
        let a = Frame::new(Size::new(20, 3));
        let mut b = a.clone();
        assert_eq!(a.diff_pixels(&b), 0);
        b.set(19, 2, true);
        b.set(3, 0, true);
        assert_eq!(a.diff_pixels(&b), 2);
        // Out of range writes are ignored, padding stays clean.
        b.set(20, 0, true);
        assert_eq!(a.diff_pixels(&b), 2);
    }

    #[test]
    fn debug_does_not_show_pixels() {
        let frame = Frame::new(Size::new(8, 8));
        assert_eq!(format!("{frame:?}"), "Frame(8x8)");
    }

    #[test]
    fn fill_black_keeps_padding_zero() {
        let mut frame = Frame::new(Size::new(10, 2));
        frame.fill(true);
        assert_eq!(frame.black_pixels(), 20);
        assert_eq!(frame.as_bytes(), &[0xff, 0xc0, 0xff, 0xc0]);
    }
}
