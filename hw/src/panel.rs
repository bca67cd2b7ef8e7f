//! What every e-ink panel can do, real or simulated.

use crate::frame::Frame;
use embedded_graphics_core::geometry::Size;

/// An e-ink panel in landscape orientation.
///
/// Calls block until the panel is done (a full refresh takes a few seconds on real glass);
/// async callers run them on a blocking thread. The panel remembers the last picture it
/// showed, which a partial refresh needs.
pub trait Panel: Send {
    /// A short name for logs and the web page ("waveshare-2in7-v2", "simulated").
    fn name(&self) -> &'static str;

    /// Width × height in pixels as the user looks at it.
    fn size(&self) -> Size;

    /// Shows `frame` with a full refresh: the panel flashes black and white and every
    /// pixel is driven, which removes ghosting.
    fn full_refresh(&mut self, frame: &Frame) -> Result<(), PanelError>;

    /// Shows `frame` with a partial refresh: only changed pixels are driven, no flashing,
    /// but faint ghosts build up, so callers do a full refresh every few partials. Without
    /// a previous picture this falls back to a full refresh.
    fn partial_refresh(&mut self, frame: &Frame) -> Result<(), PanelError>;

    /// Paints the panel white with a full refresh.
    fn clear(&mut self) -> Result<(), PanelError>;

    /// Puts the panel into deep sleep (and cuts its power where the HAT can): the picture
    /// stays, the panel draws no current. The next refresh wakes it.
    fn sleep(&mut self) -> Result<(), PanelError>;
}

impl<P: Panel + ?Sized> Panel for Box<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn size(&self) -> Size {
        (**self).size()
    }
    fn full_refresh(&mut self, frame: &Frame) -> Result<(), PanelError> {
        (**self).full_refresh(frame)
    }
    fn partial_refresh(&mut self, frame: &Frame) -> Result<(), PanelError> {
        (**self).partial_refresh(frame)
    }
    fn clear(&mut self) -> Result<(), PanelError> {
        (**self).clear()
    }
    fn sleep(&mut self) -> Result<(), PanelError> {
        (**self).sleep()
    }
}

/// Why a panel could not be opened or could not draw. Each message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum PanelError {
    #[error(
        "cannot open the e-ink panel's {what} at {path}: {source}. Check that SPI is enabled \
         (dtparam=spi=on), that the HAT is seated, and that plugnode may use the device"
    )]
    Open {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot use GPIO line {line} ({role}) on {chip}: {detail}. Check the pin numbers in \
         the [display] config and that no other program holds the line"
    )]
    Gpio {
        chip: String,
        line: u32,
        role: &'static str,
        detail: String,
    },
    #[error("SPI write to the e-ink panel failed: {0}. Check the HAT's connection")]
    Spi(String),
    #[error("setting the panel's {pin} pin failed: {detail}")]
    Pin { pin: &'static str, detail: String },
    #[error(
        "the e-ink panel stayed busy for {waited_ms} ms during {during}. Check that the HAT \
         is seated and that the panel model in the [display] config is right"
    )]
    BusyTimeout {
        during: &'static str,
        waited_ms: u32,
    },
    #[error("frame is {got_w}x{got_h} but the panel is {want_w}x{want_h}")]
    WrongSize {
        got_w: u32,
        got_h: u32,
        want_w: u32,
        want_h: u32,
    },
    #[error("cannot write the simulated panel's picture to {path}: {source}")]
    Png {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the simulated panel was told to fail")]
    Simulated,
}

pub(crate) fn check_size(frame: &Frame, size: Size) -> Result<(), PanelError> {
    if frame.size() != size {
        return Err(PanelError::WrongSize {
            got_w: frame.width(),
            got_h: frame.height(),
            want_w: size.width,
            want_h: size.height,
        });
    }
    Ok(())
}
