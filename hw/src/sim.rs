//! A panel without glass: keeps the picture in memory, counts refreshes, and can write
//! every new picture to a PNG file. Used by tests, by `plugnode demo`, and by the web
//! page's screen mirror.

use crate::frame::Frame;
use crate::panel::{check_size, Panel, PanelError};
use embedded_graphics_core::geometry::Size;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// How often each panel operation ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefreshCounts {
    pub full: u64,
    pub partial: u64,
    pub clear: u64,
    pub sleep: u64,
    /// Partial refreshes asked for while the panel had no picture to compare with.
    pub partial_without_base: u64,
}

impl RefreshCounts {
    /// Every time the glass was driven.
    pub fn refreshes(&self) -> u64 {
        self.full + self.partial + self.clear
    }
}

/// One thing the simulated panel did, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimOp {
    Full,
    Partial,
    Clear,
    Sleep,
}

#[derive(Debug)]
struct SimState {
    frame: Frame,
    has_picture: bool,
    awake: bool,
    counts: RefreshCounts,
    ops: Vec<SimOp>,
    fail: bool,
}

/// The simulated panel. Create it, take a [`SimMonitor`] with [`SimPanel::monitor`], and
/// hand the panel to the display service.
pub struct SimPanel {
    size: Size,
    png_path: Option<PathBuf>,
    state: Arc<Mutex<SimState>>,
}

/// A window onto a [`SimPanel`] that stays with the test or web server after the panel
/// itself moved into the display service.
#[derive(Clone)]
pub struct SimMonitor {
    state: Arc<Mutex<SimState>>,
}

impl SimPanel {
    pub fn new(size: Size) -> Self {
        SimPanel {
            size,
            png_path: None,
            state: Arc::new(Mutex::new(SimState {
                frame: Frame::new(size),
                has_picture: false,
                awake: false,
                counts: RefreshCounts::default(),
                ops: Vec::new(),
                fail: false,
            })),
        }
    }

    /// Also writes each new picture to `path` (atomically, as a 1-bit PNG).
    pub fn with_png_output(mut self, path: impl Into<PathBuf>) -> Self {
        self.png_path = Some(path.into());
        self
    }

    pub fn monitor(&self) -> SimMonitor {
        SimMonitor {
            state: self.state.clone(),
        }
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        lock(&self.state)
    }

    fn show(&mut self, frame: &Frame, op: SimOp) -> Result<(), PanelError> {
        check_size(frame, self.size)?;
        {
            let mut state = self.state();
            if state.fail {
                return Err(PanelError::Simulated);
            }
            match op {
                SimOp::Full => state.counts.full += 1,
                SimOp::Partial => {
                    if !state.has_picture {
                        state.counts.partial_without_base += 1;
                    }
                    state.counts.partial += 1
                }
                SimOp::Clear => state.counts.clear += 1,
                SimOp::Sleep => {}
            }
            state.ops.push(op);
            state.frame = frame.clone();
            state.has_picture = true;
            state.awake = true;
        }
        if let Some(path) = &self.png_path {
            frame.write_png(path).map_err(|source| PanelError::Png {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }
}

fn lock(state: &Mutex<SimState>) -> MutexGuard<'_, SimState> {
    // A panicking test thread must not hide the panel from the others.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Panel for SimPanel {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn size(&self) -> Size {
        self.size
    }

    fn full_refresh(&mut self, frame: &Frame) -> Result<(), PanelError> {
        self.show(frame, SimOp::Full)
    }

    fn partial_refresh(&mut self, frame: &Frame) -> Result<(), PanelError> {
        self.show(frame, SimOp::Partial)
    }

    fn clear(&mut self) -> Result<(), PanelError> {
        let white = Frame::new(self.size);
        self.show(&white, SimOp::Clear)
    }

    fn sleep(&mut self) -> Result<(), PanelError> {
        let mut state = self.state();
        if state.fail {
            return Err(PanelError::Simulated);
        }
        state.counts.sleep += 1;
        state.ops.push(SimOp::Sleep);
        state.awake = false;
        Ok(())
    }
}

impl SimMonitor {
    /// What the glass shows now (white before the first refresh).
    pub fn frame(&self) -> Frame {
        lock(&self.state).frame.clone()
    }

    /// The picture on the glass as a PNG.
    pub fn png(&self) -> Vec<u8> {
        self.frame().to_png()
    }

    pub fn counts(&self) -> RefreshCounts {
        lock(&self.state).counts
    }

    /// Every operation so far, in order.
    pub fn ops(&self) -> Vec<SimOp> {
        lock(&self.state).ops.clone()
    }

    /// Whether the panel is awake (it should sleep between updates).
    pub fn is_awake(&self) -> bool {
        lock(&self.state).awake
    }

    /// Makes every following operation fail (or work again), to test error handling.
    pub fn set_failing(&self, fail: bool) {
        lock(&self.state).fail = fail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_keeps_the_picture() {
        let mut panel = SimPanel::new(Size::new(16, 8));
        let monitor = panel.monitor();
        let mut frame = Frame::new(Size::new(16, 8));
        frame.set(1, 1, true);
        panel.partial_refresh(&frame).unwrap();
        panel.full_refresh(&frame).unwrap();
        panel.sleep().unwrap();
        let counts = monitor.counts();
        assert_eq!((counts.full, counts.partial, counts.sleep), (1, 1, 1));
        assert_eq!(counts.partial_without_base, 1);
        assert_eq!(monitor.frame(), frame);
        assert!(!monitor.is_awake());
        assert!(panel.full_refresh(&Frame::new(Size::new(8, 8))).is_err());
    }

    #[test]
    fn writes_png_files() {
        let dir = std::env::temp_dir().join(format!("plugnode-sim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("screen.png");
        let mut panel = SimPanel::new(Size::new(10, 10)).with_png_output(&path);
        let mut frame = Frame::new(Size::new(10, 10));
        frame.set(5, 5, true);
        panel.full_refresh(&frame).unwrap();
        let back = Frame::from_png(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, frame);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
