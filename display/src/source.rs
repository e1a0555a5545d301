//! What the frontend draws with: [`FrameSource`] and its [`FrameTarget`].
//!
//! The frontend asks a [`FrameSource`] (the built-in
//! [`crate::pattern::TestPattern`], or a demo scene adapted by the kernel) for
//! each frame, handing it a [`FrameTarget`] over the connector's free display
//! buffer. Rows can be written straight into the shared pages, or drawn with
//! embedded-graphics into a private [`Framebuffer`] that is copied over after
//! `render` returns.

use alloc::vec::Vec;

use crate::framebuffer::{Framebuffer, FramebufferError};

/// Where a frame is drawn: a connector's display buffer.
///
/// A source either writes whole rows straight into the shared buffer with
/// [`FrameTarget::write_row`] (one pass, no copy: what the built-in pattern
/// does), or draws with embedded-graphics into [`FrameTarget::framebuffer`], a
/// private packed buffer that is copied into the shared buffer after
/// `render` returns (its contents persist between frames of the connector).
pub struct FrameTarget<'a> {
    width: u32,
    height: u32,
    scratch: &'a mut Vec<u32>,
    sink: &'a dyn PixelSink,
    is_framebuffer_used: bool,
}

/// Shared-buffer writes behind a [`FrameTarget`].
pub(crate) trait PixelSink {
    /// Write `pixels` at pixel offset `offset` (row-major, stride = width).
    fn write_pixels(&self, offset: usize, pixels: &[u32]);
}

impl<'a> FrameTarget<'a> {
    pub(crate) fn new(
        width: u32,
        height: u32,
        scratch: &'a mut Vec<u32>,
        sink: &'a dyn PixelSink,
    ) -> Self {
        FrameTarget {
            width,
            height,
            scratch,
            sink,
            is_framebuffer_used: false,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Write row `y` (at most `width` pixels are used); rows past the bottom
    /// are ignored.
    pub fn write_row(&mut self, y: u32, row: &[u32]) {
        if y < self.height {
            let n = row.len().min(self.width as usize);
            self.sink
                .write_pixels(y as usize * self.width as usize, &row[..n]);
        }
    }

    /// A framebuffer to draw into with embedded-graphics; copied to the
    /// display buffer when `render` returns.
    pub fn framebuffer(&mut self) -> Result<Framebuffer<'_>, FramebufferError> {
        let pixels = self.width as usize * self.height as usize;
        if self.scratch.len() != pixels {
            self.scratch.clear();
            self.scratch.resize(pixels, 0);
        }
        self.is_framebuffer_used = true;
        Framebuffer::try_new_packed(self.scratch, self.width, self.height)
    }

    /// Copy the framebuffer out if it was used.
    pub(crate) fn finish(self) {
        if self.is_framebuffer_used {
            self.sink.write_pixels(0, self.scratch);
        }
    }
}

/// Something that draws frames: the built-in [`crate::pattern::TestPattern`] or a demo
/// scene. Called once per frame with the connector index, the frame number
/// (0 for the frame shown by `SET_CONFIG` when a connector is configured, then
/// 1, 2, ... one per flip, continuing across reconnects) and the target at the
/// connector's resolution. A source must define every pixel it cares about:
/// the display buffer holds whatever frame it showed two flips ago.
pub trait FrameSource {
    /// Draw frame `frame` of connector `connector` into `target`.
    fn render(&mut self, connector: usize, frame: u64, target: &mut FrameTarget<'_>);
}
