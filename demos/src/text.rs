//! Text helpers: a fixed-capacity string for `write!`, and a pixel-scaling draw target.
//!
//! [`TextBuf`] formats numbers without `alloc` (output beyond its capacity is dropped, never a
//! panic). [`Scaled`] turns every pixel drawn into it into an `s × s` block of the parent target
//! via `fill_solid` (merging horizontal runs of one colour into one block), so the 10×20 mono
//! font stays readable at 1080p.

use core::fmt;

use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::{Dimensions, Point, Size};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle, MonoTextStyleBuilder};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::primitives::{PointsIter, Rectangle};
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};
use embedded_graphics::{Drawable, Pixel};

/// A string of at most `N` bytes built with `write!`; excess output is silently truncated.
#[derive(Clone)]
pub struct TextBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> TextBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only whole `str`s (or their char-boundary prefixes) are ever copied in.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Default for TextBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for TextBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for TextBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A draw target that magnifies: pixel `(x, y)` becomes the block
/// `origin + (x·s, y·s) .. + (s, s)` of the parent.
pub struct Scaled<'a, D> {
    parent: &'a mut D,
    scale: u32,
}

impl<'a, D: DrawTarget<Color = Rgb888>> Scaled<'a, D> {
    /// Magnifies by `scale` (0 is treated as 1).
    pub fn new(parent: &'a mut D, scale: u32) -> Self {
        Self {
            parent,
            scale: scale.max(1),
        }
    }

    /// Fills the parent block of `len` source pixels starting at `start` on one row.
    fn fill_run(&mut self, start: Point, len: u32, color: Rgb888) -> Result<(), D::Error> {
        let top_left = self.block(start).top_left;
        let size = Size::new(len.saturating_mul(self.scale), self.scale);
        self.parent
            .fill_solid(&Rectangle::new(top_left, size), color)
    }

    fn block(&self, p: Point) -> Rectangle {
        let s = self.scale as i32;
        Rectangle::new(
            Point::new(p.x.saturating_mul(s), p.y.saturating_mul(s)),
            Size::new_equal(self.scale),
        )
    }
}

impl<D: DrawTarget<Color = Rgb888>> Dimensions for Scaled<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        let parent = self.parent.bounding_box();
        Rectangle::new(
            parent.top_left / self.scale as i32,
            parent.size / self.scale,
        )
    }
}

impl<D: DrawTarget<Color = Rgb888>> DrawTarget for Scaled<'_, D> {
    type Color = Rgb888;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        // Glyphs arrive row by row: merge horizontal runs of one colour into one block.
        let mut run: Option<(Point, u32, Rgb888)> = None;
        for Pixel(p, color) in pixels {
            if let Some((start, len, c)) = run.as_mut() {
                let next_x = i64::from(start.x) + i64::from(*len);
                if *c == color && start.y == p.y && next_x == i64::from(p.x) {
                    *len += 1;
                    continue;
                }
                self.fill_run(*start, *len, *c)?;
            }
            run = Some((p, 1, color));
        }
        if let Some((start, len, c)) = run {
            self.fill_run(start, len, c)?;
        }
        Ok(())
    }

    fn fill_contiguous<I>(&mut self, area: &Rectangle, colors: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Self::Color>,
    {
        // Row-major colours (glyph cells with a background): reuse the run merging above.
        self.draw_iter(area.points().zip(colors).map(|(p, c)| Pixel(p, c)))
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        let top_left = self.block(area.top_left).top_left;
        let size = Size::new(
            area.size.width.saturating_mul(self.scale),
            area.size.height.saturating_mul(self.scale),
        );
        self.parent
            .fill_solid(&Rectangle::new(top_left, size), color)
    }
}

/// Where a text block is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// `at` is the top-left corner of the text.
    TopLeft,
    /// `at` is the top-centre of the text.
    TopCenter,
    /// `at` is the top-right corner of the text.
    TopRight,
}

/// Draws `text` with `font` magnified `scale` times, `at` a point of the parent target.
///
/// With `background` set, glyph cells are filled (opaque text box).
#[allow(clippy::too_many_arguments)]
pub fn draw_text<D: DrawTarget<Color = Rgb888>>(
    target: &mut D,
    text: &str,
    at: Point,
    anchor: Anchor,
    font: &MonoFont<'_>,
    scale: u32,
    color: Rgb888,
    background: Option<Rgb888>,
) -> Result<(), D::Error> {
    let scale = scale.max(1);
    let mut builder = MonoTextStyleBuilder::new().font(font).text_color(color);
    if let Some(bg) = background {
        builder = builder.background_color(bg);
    }
    let style: MonoTextStyle<'_, Rgb888> = builder.build();
    let alignment = match anchor {
        Anchor::TopLeft => Alignment::Left,
        Anchor::TopCenter => Alignment::Center,
        Anchor::TopRight => Alignment::Right,
    };
    let text_style = TextStyleBuilder::new()
        .alignment(alignment)
        .baseline(Baseline::Top)
        .build();
    let at = at / scale as i32;
    let mut scaled = Scaled::new(target, scale);
    Text::with_text_style(text, at, style, text_style).draw(&mut scaled)?;
    Ok(())
}

/// Width in parent pixels of `chars` characters of `font` at `scale`.
pub fn text_width(font: &MonoFont<'_>, chars: usize, scale: u32) -> u32 {
    let advance = font.character_size.width + font.character_spacing;
    (chars as u32)
        .saturating_mul(advance)
        .saturating_mul(scale.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;
    use embedded_graphics::mock_display::MockDisplay;
    use embedded_graphics::pixelcolor::RgbColor;

    #[test]
    fn textbuf_truncates_on_char_boundaries() {
        let mut t = TextBuf::<5>::new();
        write!(t, "ab{}", 123).unwrap();
        assert_eq!(t.as_str(), "ab123");
        write!(t, "more").unwrap();
        assert_eq!(t.as_str(), "ab123");
        let mut u = TextBuf::<3>::new();
        write!(u, "aé€").unwrap();
        assert_eq!(u.as_str(), "aé");
    }

    #[test]
    fn scaled_draws_blocks() {
        let mut display = MockDisplay::<Rgb888>::new();
        let mut scaled = Scaled::new(&mut display, 3);
        assert_eq!(scaled.bounding_box().size, Size::new(21, 21));
        scaled
            .draw_iter([Pixel(Point::new(1, 2), Rgb888::RED)])
            .unwrap();
        // A run of three, then a pixel of another colour, then a gap, then a new row.
        scaled
            .draw_iter([
                Pixel(Point::new(10, 10), Rgb888::GREEN),
                Pixel(Point::new(11, 10), Rgb888::GREEN),
                Pixel(Point::new(12, 10), Rgb888::GREEN),
                Pixel(Point::new(13, 10), Rgb888::BLUE),
                Pixel(Point::new(15, 10), Rgb888::BLUE),
                Pixel(Point::new(16, 11), Rgb888::BLUE),
            ])
            .unwrap();
        for y in 0..64 {
            for x in 0..64 {
                let (sx, sy) = (x / 3, y / 3);
                let want = match (sx, sy) {
                    (1, 2) => Some(Rgb888::RED),
                    (10..=12, 10) => Some(Rgb888::GREEN),
                    (13 | 15, 10) | (16, 11) => Some(Rgb888::BLUE),
                    _ => None,
                };
                assert_eq!(display.get_pixel(Point::new(x, y)), want, "({x},{y})");
            }
        }
    }
}
