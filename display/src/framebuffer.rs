//! XRGB8888 framebuffer over a borrowed pixel slice, an embedded-graphics target.
//!
//! [`Framebuffer`] wraps `&mut [u32]` holding `height` rows of `stride` pixels each (the last row
//! may stop after `width` pixels). Each pixel is `0x00RRGGBB`, which on little-endian x86 is the
//! byte sequence B, G, R, X in memory: the layout of `DRM_FORMAT_XRGB8888`, the pixel format the
//! frontend attaches with `XENDISPL_OP_FB_ATTACH` (`xen/include/public/io/displif.h`).
//!
//! It implements embedded-graphics 0.8's [`DrawTarget`] with `Color = Rgb888` and
//! [`OriginDimensions`]. `fill_solid`, `fill_contiguous` and `clear` work on whole row spans (slice
//! `fill` and zipped iterators), not pixel by pixel; pixels outside the visible `width × height`
//! area are clipped, and no input (negative or huge rectangles, short iterators) can panic.
//! The stride padding (pixels `width..stride` of a row) is never written.
//!
//! Neighbours: the frontend hands a granted buffer to this type to draw a frame; the `demos` crate
//! draws scenes into any `DrawTarget<Color = Rgb888>` and defines the frame checksum over
//! [`Framebuffer::rows`].

use core::convert::Infallible;

use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::{OriginDimensions, Size};
use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::Pixel;

/// Bytes per XRGB8888 pixel.
pub const BYTES_PER_PIXEL: usize = 4;

/// Packs a colour into an XRGB8888 pixel value `0x00RRGGBB`.
#[inline(always)]
pub fn xrgb8888(color: Rgb888) -> u32 {
    ((color.r() as u32) << 16) | ((color.g() as u32) << 8) | (color.b() as u32)
}

/// Unpacks an XRGB8888 pixel value (the X byte is ignored).
#[inline(always)]
pub const fn rgb888_from_xrgb8888(pixel: u32) -> Rgb888 {
    Rgb888::new((pixel >> 16) as u8, (pixel >> 8) as u8, pixel as u8)
}

/// Why a pixel slice cannot back a framebuffer of the requested geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramebufferError {
    /// Width or height is zero.
    EmptyGeometry,
    /// The stride (pixels per line) is smaller than the width.
    StrideTooSmall {
        /// Requested width in pixels.
        width: u32,
        /// Requested stride in pixels.
        stride_pixels: u32,
    },
    /// The geometry needs more pixels than the slice holds (or overflows `usize`).
    BufferTooSmall {
        /// Pixels needed: `(height - 1) * stride + width`.
        needed_pixels: Option<usize>,
        /// Pixels the slice holds.
        len_pixels: usize,
    },
}

impl core::fmt::Display for FramebufferError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::EmptyGeometry => write!(f, "framebuffer width and height must be non-zero"),
            Self::StrideTooSmall {
                width,
                stride_pixels,
            } => write!(
                f,
                "framebuffer stride {stride_pixels} pixels is smaller than width {width}"
            ),
            Self::BufferTooSmall {
                needed_pixels: Some(needed),
                len_pixels,
            } => write!(
                f,
                "framebuffer needs {needed} pixels but the buffer holds {len_pixels}"
            ),
            Self::BufferTooSmall {
                needed_pixels: None,
                len_pixels,
            } => write!(
                f,
                "framebuffer geometry overflows (buffer holds {len_pixels} pixels)"
            ),
        }
    }
}

/// An XRGB8888 framebuffer drawing into a borrowed `&mut [u32]`.
///
/// Invariant: `width > 0`, `height > 0`, `stride >= width`, and
/// `(height - 1) * stride + width <= pixels.len()`, so every visible row
/// `pixels[y * stride..y * stride + width]` is in bounds.
#[derive(Debug)]
pub struct Framebuffer<'a> {
    pixels: &'a mut [u32],
    width: usize,
    height: usize,
    stride: usize,
}

/// A clipped rectangle: half-open pixel ranges inside the visible area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clip {
    x0: usize,
    x1: usize,
    y0: usize,
    y1: usize,
}

impl<'a> Framebuffer<'a> {
    /// A framebuffer whose rows are `stride_pixels` apart (`stride_pixels >= width`).
    pub fn try_new(
        pixels: &'a mut [u32],
        width: u32,
        height: u32,
        stride_pixels: u32,
    ) -> Result<Self, FramebufferError> {
        if width == 0 || height == 0 {
            return Err(FramebufferError::EmptyGeometry);
        }
        if stride_pixels < width {
            return Err(FramebufferError::StrideTooSmall {
                width,
                stride_pixels,
            });
        }
        let (width, height, stride) = (width as usize, height as usize, stride_pixels as usize);
        let needed = (height - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(width));
        match needed {
            Some(needed) if needed <= pixels.len() => Ok(Self {
                pixels,
                width,
                height,
                stride,
            }),
            _ => Err(FramebufferError::BufferTooSmall {
                needed_pixels: needed,
                len_pixels: pixels.len(),
            }),
        }
    }

    /// A framebuffer with tightly packed rows (stride equals width).
    pub fn try_new_packed(
        pixels: &'a mut [u32],
        width: u32,
        height: u32,
    ) -> Result<Self, FramebufferError> {
        Self::try_new(pixels, width, height, width)
    }

    /// Visible width in pixels.
    pub fn width(&self) -> u32 {
        self.width as u32
    }

    /// Visible height in pixels.
    pub fn height(&self) -> u32 {
        self.height as u32
    }

    /// Distance between the starts of two rows, in pixels.
    pub fn stride_pixels(&self) -> u32 {
        self.stride as u32
    }

    /// Visible row `y` (`width` pixels), or `None` when `y >= height`.
    pub fn row(&self, y: u32) -> Option<&[u32]> {
        let y = y as usize;
        (y < self.height).then(|| {
            let start = y * self.stride;
            &self.pixels[start..start + self.width]
        })
    }

    /// Visible row `y` (`width` pixels) for writing, or `None` when `y >= height`.
    pub fn row_mut(&mut self, y: u32) -> Option<&mut [u32]> {
        let y = y as usize;
        (y < self.height).then(|| {
            let start = y * self.stride;
            &mut self.pixels[start..start + self.width]
        })
    }

    /// The visible rows, top to bottom, `width` pixels each (stride padding excluded).
    pub fn rows(&self) -> impl Iterator<Item = &[u32]> + '_ {
        (0..self.height).map(move |y| {
            let start = y * self.stride;
            &self.pixels[start..start + self.width]
        })
    }

    /// The pixel at `(x, y)`, or `None` outside the visible area.
    pub fn pixel(&self, x: u32, y: u32) -> Option<u32> {
        self.row(y).and_then(|row| row.get(x as usize).copied())
    }

    /// Sets the pixel at `(x, y)`; returns `false` (and writes nothing) outside the visible area.
    pub fn set_pixel(&mut self, x: u32, y: u32, pixel: u32) -> bool {
        match self.row_mut(y).and_then(|row| row.get_mut(x as usize)) {
            Some(slot) => {
                *slot = pixel;
                true
            }
            None => false,
        }
    }

    /// Copies `pixels` into row `y` starting at column `x`, clipped to the visible area.
    ///
    /// Returns how many pixels were written.
    pub fn write_span(&mut self, x: u32, y: u32, pixels: &[u32]) -> usize {
        let width = self.width;
        let Some(row) = self.row_mut(y) else {
            return 0;
        };
        let x = x as usize;
        if x >= width {
            return 0;
        }
        let n = pixels.len().min(width - x);
        row[x..x + n].copy_from_slice(&pixels[..n]);
        n
    }

    /// The whole backing slice, stride padding included.
    pub fn as_slice(&self) -> &[u32] {
        self.pixels
    }

    /// Intersects `area` with the visible area; `None` when nothing is left.
    fn clip(&self, area: &Rectangle) -> Option<Clip> {
        // i64 arithmetic: an i32 corner plus a u32 size cannot overflow it.
        let left = i64::from(area.top_left.x);
        let top = i64::from(area.top_left.y);
        let right = left + i64::from(area.size.width);
        let bottom = top + i64::from(area.size.height);
        let x0 = left.clamp(0, self.width as i64);
        let x1 = right.clamp(0, self.width as i64);
        let y0 = top.clamp(0, self.height as i64);
        let y1 = bottom.clamp(0, self.height as i64);
        (x0 < x1 && y0 < y1).then_some(Clip {
            x0: x0 as usize,
            x1: x1 as usize,
            y0: y0 as usize,
            y1: y1 as usize,
        })
    }

    fn fill_clip(&mut self, clip: Clip, pixel: u32) {
        if clip.x0 == 0 && clip.x1 == self.width && self.stride == self.width {
            // Full-width rows with no padding are one contiguous run.
            self.pixels[clip.y0 * self.stride..(clip.y1 - 1) * self.stride + self.width]
                .fill(pixel);
            return;
        }
        for y in clip.y0..clip.y1 {
            let start = y * self.stride;
            self.pixels[start + clip.x0..start + clip.x1].fill(pixel);
        }
    }
}

/// Discards up to `n` items of `iter`; returns `false` if it ran out first.
fn skip_items<I: Iterator>(iter: &mut I, mut n: u64) -> bool {
    while n > 0 {
        let step = n.min(usize::MAX as u64) as usize;
        if iter.nth(step - 1).is_none() {
            return false;
        }
        n -= step as u64;
    }
    true
}

impl OriginDimensions for Framebuffer<'_> {
    fn size(&self) -> Size {
        Size::new(self.width as u32, self.height as u32)
    }
}

impl DrawTarget for Framebuffer<'_> {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, color) in pixels {
            if let (Ok(x), Ok(y)) = (usize::try_from(point.x), usize::try_from(point.y)) {
                if x < self.width && y < self.height {
                    self.pixels[y * self.stride + x] = xrgb8888(color);
                }
            }
        }
        Ok(())
    }

    fn fill_contiguous<I>(&mut self, area: &Rectangle, colors: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Self::Color>,
    {
        let Some(clip) = self.clip(area) else {
            return Ok(());
        };
        // `colors` covers `area` row-major; skip the items of clipped rows and columns.
        let area_width = u64::from(area.size.width);
        let left = i64::from(area.top_left.x);
        let top = i64::from(area.top_left.y);
        let skip_left = (clip.x0 as i64 - left) as u64;
        let skip_right = area_width - skip_left - (clip.x1 - clip.x0) as u64;
        let mut colors = colors.into_iter();
        if clip.y1 - clip.y0 == 1 && clip.y0 as i64 == top && skip_left == 0 {
            // One unclipped-on-the-left row (how per-pixel scenes draw): zip the span with the
            // iterator itself, not `by_ref()`, so slice-backed iterators compile to a counted,
            // vectorisable loop.
            let start = clip.y0 * self.stride;
            for (dst, color) in self.pixels[start + clip.x0..start + clip.x1]
                .iter_mut()
                .zip(colors)
            {
                *dst = xrgb8888(color);
            }
            return Ok(());
        }
        if !skip_items(&mut colors, (clip.y0 as i64 - top) as u64 * area_width) {
            return Ok(());
        }
        for y in clip.y0..clip.y1 {
            if !skip_items(&mut colors, skip_left) {
                return Ok(());
            }
            let start = y * self.stride;
            let span = &mut self.pixels[start + clip.x0..start + clip.x1];
            let mut written = 0;
            for (dst, color) in span.iter_mut().zip(colors.by_ref()) {
                *dst = xrgb8888(color);
                written += 1;
            }
            if written < clip.x1 - clip.x0 {
                return Ok(());
            }
            // The last visible row needs no skip: nothing after it is drawn.
            if y + 1 < clip.y1 && !skip_items(&mut colors, skip_right) {
                return Ok(());
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        if let Some(clip) = self.clip(area) {
            self.fill_clip(clip, xrgb8888(color));
        }
        Ok(())
    }

    fn clear(&mut self, color: Self::Color) -> Result<(), Self::Error> {
        let all = Clip {
            x0: 0,
            x1: self.width,
            y0: 0,
            y1: self.height,
        };
        self.fill_clip(all, xrgb8888(color));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::geometry::Point;
    use embedded_graphics::prelude::*;
    use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};

    const PAD: u32 = 0xDEAD_BEEF;

    /// A 6×4 framebuffer with stride 8, padding pre-filled with `PAD`.
    fn buffer() -> Vec<u32> {
        vec![PAD; 8 * 3 + 6 + 2]
    }

    fn assert_padding_untouched(pixels: &[u32]) {
        for y in 0..4 {
            for x in 6..8 {
                if let Some(p) = pixels.get(y * 8 + x) {
                    assert_eq!(*p, PAD, "padding at ({x},{y}) written");
                }
            }
        }
    }

    #[test]
    fn packs_xrgb8888_le() {
        let p = xrgb8888(Rgb888::new(0x12, 0x34, 0x56));
        assert_eq!(p, 0x0012_3456);
        assert_eq!(p.to_le_bytes(), [0x56, 0x34, 0x12, 0x00]);
        assert_eq!(
            rgb888_from_xrgb8888(0xFF12_3456),
            Rgb888::new(0x12, 0x34, 0x56)
        );
    }

    #[test]
    fn rejects_bad_geometry() {
        let mut px = vec![0u32; 100];
        assert_eq!(
            Framebuffer::try_new(&mut px, 0, 10, 10).unwrap_err(),
            FramebufferError::EmptyGeometry
        );
        assert_eq!(
            Framebuffer::try_new(&mut px, 10, 10, 9).unwrap_err(),
            FramebufferError::StrideTooSmall {
                width: 10,
                stride_pixels: 9
            }
        );
        assert_eq!(
            Framebuffer::try_new(&mut px, 10, 11, 10).unwrap_err(),
            FramebufferError::BufferTooSmall {
                needed_pixels: Some(110),
                len_pixels: 100
            }
        );
        // The last row may be short of the stride.
        assert!(Framebuffer::try_new(&mut px, 10, 9, 11).is_ok());
        assert!(Framebuffer::try_new(&mut px, 10, 10, 10).is_ok());
        let err = Framebuffer::try_new(&mut px, u32::MAX, u32::MAX, u32::MAX).unwrap_err();
        assert!(matches!(err, FramebufferError::BufferTooSmall { .. }));
        assert!(!err.to_string().is_empty());
    }

    #[test]
    fn draw_iter_clips_and_respects_stride() {
        let mut px = buffer();
        let mut fb = Framebuffer::try_new(&mut px, 6, 4, 8).unwrap();
        fb.clear(Rgb888::BLACK).unwrap();
        let red = Rgb888::RED;
        let points = [
            (0, 0),
            (5, 3),
            (6, 0),
            (-1, 0),
            (0, 4),
            (i32::MIN, i32::MAX),
            (2, 1),
        ];
        fb.draw_iter(points.iter().map(|&(x, y)| Pixel(Point::new(x, y), red)))
            .unwrap();
        assert_eq!(fb.pixel(0, 0), Some(0xFF0000));
        assert_eq!(fb.pixel(5, 3), Some(0xFF0000));
        assert_eq!(fb.pixel(2, 1), Some(0xFF0000));
        let lit = fb.rows().flatten().filter(|&&p| p == 0xFF0000).count();
        assert_eq!(lit, 3);
        assert_eq!(fb.pixel(6, 0), None);
        assert_padding_untouched(&px);
        assert_eq!(px[8 + 2], 0xFF0000, "row 1 starts at the stride");
    }

    #[test]
    fn fill_solid_clips() {
        let mut px = buffer();
        let mut fb = Framebuffer::try_new(&mut px, 6, 4, 8).unwrap();
        fb.clear(Rgb888::BLACK).unwrap();
        fb.fill_solid(
            &Rectangle::new(Point::new(-2, 2), Size::new(4, 100)),
            Rgb888::GREEN,
        )
        .unwrap();
        fb.fill_solid(
            &Rectangle::new(Point::new(i32::MAX, 0), Size::new(u32::MAX, u32::MAX)),
            Rgb888::BLUE,
        )
        .unwrap();
        fb.fill_solid(
            // Ends exactly at x = 0, y = 0 (exclusive): nothing visible.
            &Rectangle::new(Point::new(i32::MIN, i32::MIN), Size::new(1 << 31, 1 << 31)),
            Rgb888::BLUE,
        )
        .unwrap();
        for y in 0..4 {
            for x in 0..6 {
                let want = if y >= 2 && x < 2 { 0x00FF00 } else { 0 };
                assert_eq!(fb.pixel(x, y), Some(want), "({x},{y})");
            }
        }
        assert_padding_untouched(&px);
    }

    #[test]
    fn fill_solid_covering_everything_matches_clear() {
        let mut a = buffer();
        let mut b = buffer();
        let mut fa = Framebuffer::try_new(&mut a, 6, 4, 8).unwrap();
        let mut fbuf = Framebuffer::try_new(&mut b, 6, 4, 8).unwrap();
        fa.clear(Rgb888::CYAN).unwrap();
        fbuf.fill_solid(
            &Rectangle::new(Point::new(-100, -100), Size::new(1000, 1000)),
            Rgb888::CYAN,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_padding_untouched(&a);
        // Packed buffers take the single-run path.
        let mut c = vec![1u32; 24];
        Framebuffer::try_new_packed(&mut c, 6, 4)
            .unwrap()
            .clear(Rgb888::CYAN)
            .unwrap();
        assert!(c.iter().all(|&p| p == 0x00FFFF));
    }

    /// Reference: what `fill_contiguous` must do, pixel by pixel.
    fn reference_contiguous(area: Rectangle, colors: &[Rgb888]) -> Vec<Option<u32>> {
        let mut out = vec![None; 24];
        let mut it = colors.iter();
        for dy in 0..area.size.height as i64 {
            for dx in 0..area.size.width as i64 {
                let Some(&c) = it.next() else {
                    return out;
                };
                let x = i64::from(area.top_left.x) + dx;
                let y = i64::from(area.top_left.y) + dy;
                if (0..6).contains(&x) && (0..4).contains(&y) {
                    out[(y * 6 + x) as usize] = Some(xrgb8888(c));
                }
            }
        }
        out
    }

    #[test]
    fn fill_contiguous_matches_reference_when_clipped() {
        let colors: Vec<Rgb888> = (0..200u32).map(|i| Rgb888::new(i as u8, 1, 2)).collect();
        let cases = [
            (-2, -1, 5, 3),
            (3, 2, 5, 5),
            (0, 0, 6, 4),
            (-3, 1, 12, 2),
            (1, 1, 2, 2),
            (6, 0, 3, 3),
            (-5, -5, 3, 3),
            (2, 3, 1, 1),
            // Single rows: the fast path (left edge visible) and the general path.
            (0, 1, 9, 1),
            (4, 0, 5, 1),
            (-2, 2, 5, 1),
            (1, 3, 3, 1),
            (0, -1, 6, 1),
        ];
        for &(x, y, w, h) in &cases {
            for len in [0usize, 1, 4, 7, (w * h) as usize, 200] {
                let area = Rectangle::new(Point::new(x, y), Size::new(w, h));
                let mut px = buffer();
                let mut fb = Framebuffer::try_new(&mut px, 6, 4, 8).unwrap();
                fb.clear(Rgb888::BLACK).unwrap();
                fb.fill_contiguous(&area, colors[..len].iter().copied())
                    .unwrap();
                let want = reference_contiguous(area, &colors[..len]);
                for (i, w) in want.iter().enumerate() {
                    let got = fb.pixel(i as u32 % 6, i as u32 / 6).unwrap();
                    assert_eq!(got, w.unwrap_or(0), "area {area:?} len {len} pixel {i}");
                }
                assert_padding_untouched(&px);
            }
        }
    }

    #[test]
    fn fill_contiguous_huge_area_terminates() {
        let mut px = buffer();
        let mut fb = Framebuffer::try_new(&mut px, 6, 4, 8).unwrap();
        let area = Rectangle::new(
            Point::new(i32::MIN, i32::MIN),
            Size::new(u32::MAX, u32::MAX),
        );
        // A short iterator over an area whose visible part is far away: nothing drawn, no panic.
        fb.fill_contiguous(&area, core::iter::repeat_n(Rgb888::RED, 1000))
            .unwrap();
        assert!(fb.rows().flatten().all(|&p| p == PAD));
    }

    #[test]
    fn primitives_draw_through_the_fast_paths() {
        let mut px = vec![0u32; 16 * 16];
        let mut fb = Framebuffer::try_new_packed(&mut px, 16, 16).unwrap();
        Rectangle::new(Point::new(-4, 10), Size::new(40, 40))
            .into_styled(PrimitiveStyle::with_fill(Rgb888::WHITE))
            .draw(&mut fb)
            .unwrap();
        assert_eq!(fb.pixel(0, 9), Some(0));
        assert_eq!(fb.pixel(0, 10), Some(0xFFFFFF));
        assert_eq!(fb.pixel(15, 15), Some(0xFFFFFF));
        assert_eq!(fb.size(), Size::new(16, 16));
    }

    #[test]
    fn spans_and_rows() {
        let mut px = buffer();
        let mut fb = Framebuffer::try_new(&mut px, 6, 4, 8).unwrap();
        fb.clear(Rgb888::BLACK).unwrap();
        assert_eq!(fb.write_span(4, 1, &[1, 2, 3, 4]), 2);
        assert_eq!(fb.write_span(6, 1, &[1]), 0);
        assert_eq!(fb.write_span(0, 4, &[1]), 0);
        assert_eq!(fb.row(1).unwrap(), &[0, 0, 0, 0, 1, 2]);
        assert!(fb.row(4).is_none());
        assert!(fb.set_pixel(5, 3, 9));
        assert!(!fb.set_pixel(6, 3, 9));
        assert_eq!(fb.rows().count(), 4);
        assert_eq!(fb.stride_pixels(), 8);
        assert_eq!((fb.width(), fb.height()), (6, 4));
        assert_padding_untouched(fb.as_slice());
    }
}
