//! `stats`: figures of the running guest as text and a frame-interval graph.
//!
//! Everything shown comes from [`FrameStats`] and the configured rate in [`SceneInput`]: the frame
//! number, target and measured rate, completed flips, late frames (count and share), and a bar
//! graph of the most recent frame intervals. The graph's vertical scale is fixed at twice the
//! target interval (the dashed reference line is the target, half-way up); a bar is green up to
//! 125 % of the target, amber up to 200 %, and red (clipped at the top) beyond. [`GraphLayout`]
//! says where the bars are, for tests.

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::{Point, Size};
use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_5X8, FONT_6X10, FONT_7X13, FONT_9X15};
use embedded_graphics::mono_font::MonoFont;
use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::primitives::Rectangle;

use crate::pixel::{pack, unpack};
use crate::text::{draw_text, Anchor, TextBuf};
use crate::{FrameStats, SceneInput};

/// Background colour.
pub const BACKGROUND: Rgb888 = Rgb888::new(0x08, 0x10, 0x18);
/// Graph panel colour.
pub const PANEL: Rgb888 = Rgb888::new(0x14, 0x20, 0x2C);
/// A bar within 125 % of the target interval.
pub const ON_TIME: Rgb888 = Rgb888::new(0x40, 0xD0, 0x60);
/// A bar between 125 % and 200 % of the target interval.
pub const SLOW: Rgb888 = Rgb888::new(0xF0, 0xB0, 0x30);
/// A bar beyond 200 % of the target interval.
pub const LATE: Rgb888 = Rgb888::new(0xF0, 0x40, 0x40);
/// Text colour.
pub const TEXT: Rgb888 = Rgb888::new(0xD8, 0xE0, 0xE8);

/// Text rows above the graph: title, a blank row, five figures, the graph caption.
const TEXT_ROWS: u32 = 8;
/// Characters in the widest line (the caption with three-digit counts and 99.999 ms).
const WIDEST_LINE: u32 = 52;

/// The font, its integer scale and the row pitch of the text above the graph.
#[derive(Debug, Clone, Copy)]
pub struct TextLayout {
    /// The font.
    pub font: &'static MonoFont<'static>,
    /// Integer scale (pixel doubling) of the font.
    pub scale: u32,
    /// Distance between text rows, pixels.
    pub line_h: u32,
}

impl TextLayout {
    /// The largest font whose [`TEXT_ROWS`] rows fit between the top margin
    /// and the graph panel of a `w × h` target and whose widest line fits the
    /// width; the smallest font when none does (rows that do not fit are then
    /// left out by `draw`). From 1080 rows up the 10x20 font is scaled.
    pub fn new(w: u32, h: u32) -> Self {
        let margin = (w / 40).max(2);
        let pad = margin / 2;
        let g = GraphLayout::new(w, h);
        let room_h = (g.plot.top_left.y as u32).saturating_sub(pad + margin);
        let room_w = w.saturating_sub(2 * margin);
        let big = (h / 540).max(1);
        let candidates: [(&'static MonoFont<'static>, u32, u32); 5] = [
            (&FONT_10X20, big, 4 * big),
            (&FONT_9X15, 1, 3),
            (&FONT_7X13, 1, 2),
            (&FONT_6X10, 1, 2),
            (&FONT_5X8, 1, 1),
        ];
        let fit = |&(font, scale, gap): &(&'static MonoFont<'static>, u32, u32)| {
            let size = font.character_size;
            let line_h = size.height * scale + gap;
            TEXT_ROWS * line_h <= room_h && WIDEST_LINE * size.width * scale <= room_w
        };
        let (font, scale, gap) = candidates
            .iter()
            .copied()
            .find(|c| fit(c))
            .unwrap_or(candidates[candidates.len() - 1]);
        Self {
            font,
            scale,
            line_h: font.character_size.height * scale + gap,
        }
    }
}

/// Where the graph is drawn for a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphLayout {
    /// The panel's inner plotting area.
    pub plot: Rectangle,
    /// Width of one bar slot (bar plus gap).
    pub slot: u32,
    /// Number of bars that fit.
    pub bars: usize,
}

impl GraphLayout {
    /// The layout for a `w × h` target.
    pub fn new(w: u32, h: u32) -> Self {
        let margin = (w / 40).max(2);
        let top = h / 2;
        let plot_h = (h - top).saturating_sub(2 * margin).max(1);
        let plot_w = w.saturating_sub(2 * margin).max(1);
        let slot = (w / 240).max(2);
        Self {
            plot: Rectangle::new(
                Point::new(margin as i32, top as i32),
                Size::new(plot_w, plot_h),
            ),
            slot,
            bars: (plot_w / slot) as usize,
        }
    }

    /// Bar height in pixels for `interval_us` against `target_us` (full height = 2 × target).
    pub fn bar_height(&self, interval_us: u32, target_us: u32) -> u32 {
        let full = u64::from(self.plot.size.height);
        let scale = 2 * u64::from(target_us.max(1));
        (u64::from(interval_us) * full / scale).min(full) as u32
    }
}

/// The colour of a bar for `interval_us` against `target_us`.
pub fn bar_color(interval_us: u32, target_us: u32) -> Rgb888 {
    let (i, t) = (u64::from(interval_us), u64::from(target_us));
    if 4 * i <= 5 * t {
        ON_TIME
    } else if i <= 2 * t {
        SLOW
    } else {
        LATE
    }
}

/// Fills `outer` minus `inner` (`inner` inside `outer`): bands above and below, sides between.
fn fill_around<D>(
    target: &mut D,
    outer: &Rectangle,
    inner: &Rectangle,
    color: Rgb888,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let (ox0, oy0) = (i64::from(outer.top_left.x), i64::from(outer.top_left.y));
    let (ox1, oy1) = (
        ox0 + i64::from(outer.size.width),
        oy0 + i64::from(outer.size.height),
    );
    let ix0 = i64::from(inner.top_left.x).clamp(ox0, ox1);
    let iy0 = i64::from(inner.top_left.y).clamp(oy0, oy1);
    let ix1 = (i64::from(inner.top_left.x) + i64::from(inner.size.width)).clamp(ix0, ox1);
    let iy1 = (i64::from(inner.top_left.y) + i64::from(inner.size.height)).clamp(iy0, oy1);
    let mut fill = |x0: i64, y0: i64, x1: i64, y1: i64| {
        if x1 > x0 && y1 > y0 {
            target.fill_solid(
                &Rectangle::new(
                    Point::new(x0 as i32, y0 as i32),
                    Size::new((x1 - x0) as u32, (y1 - y0) as u32),
                ),
                color,
            )
        } else {
            Ok(())
        }
    };
    fill(ox0, oy0, ox1, iy0)?;
    fill(ox0, iy0, ix0, iy1)?;
    fill(ix1, iy0, ox1, iy1)?;
    fill(ox0, iy1, ox1, oy1)
}

/// Draws frame `frame` of the stats scene.
pub fn draw<D>(frame: u64, target: &mut D, input: &SceneInput<'_>) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let area = target.bounding_box();
    let (w, h) = (area.size.width, area.size.height);
    if w < 16 || h < 16 {
        return target.fill_solid(&area, BACKGROUND);
    }
    let o = area.top_left;
    let margin = (w / 40).max(2);
    let g = GraphLayout::new(w, h);
    let plot = Rectangle::new(o + g.plot.top_left, g.plot.size);
    let pad = (margin / 2) as i32;
    let panel = Rectangle::new(
        plot.top_left - Point::new(pad, pad),
        plot.size + Size::new_equal(2 * pad as u32),
    );
    // Background around the panel, then the panel: every pixel written once.
    fill_around(target, &area, &panel, BACKGROUND)?;
    fill_around(target, &panel, &plot, PANEL)?;
    let stats: &FrameStats<'_> = &input.stats;
    let fps = input.fps();
    let target_us = 1_000_000 / fps;
    let TextLayout {
        font,
        scale,
        line_h,
    } = TextLayout::new(w, h);
    // Rows must end above the caption, which sits just above the panel.
    let caption_y = panel.top_left.y - line_h as i32;
    let fits = |row: u32| (margin + (row + 1) * line_h) as i32 <= caption_y;

    if fits(0) {
        draw_text(
            target,
            "pvdispl guest stats",
            o + Point::new(margin as i32, margin as i32),
            Anchor::TopLeft,
            font,
            scale,
            Rgb888::WHITE,
            None,
        )?;
    }
    let mut lines: [TextBuf<64>; 5] = Default::default();
    let _ = write!(lines[0], "frame     {frame}");
    let nanos = 1_000_000_000 / u64::from(fps);
    let _ = write!(
        lines[1],
        "target    {fps} fps ({}.{:03} ms)",
        nanos / 1_000_000,
        nanos / 1000 % 1000
    );
    if stats.measured_fps_milli == 0 {
        let _ = write!(lines[2], "measured  -");
    } else {
        let m = stats.measured_fps_milli;
        let _ = write!(lines[2], "measured  {}.{:03} fps", m / 1000, m % 1000);
    }
    let _ = write!(lines[3], "flips     {}", stats.flips_completed);
    let total = stats.flips_completed + stats.late_frames;
    // Share of late frames in hundredths of a percent.
    let share = (u128::from(stats.late_frames) * 10_000)
        .checked_div(u128::from(total))
        .unwrap_or(0);
    let _ = write!(
        lines[4],
        "late      {} ({}.{:02} %)",
        stats.late_frames,
        share / 100,
        share % 100
    );
    for (i, line) in lines.iter().enumerate() {
        if !fits(i as u32 + 2) {
            break;
        }
        let color = if i == 4 && stats.late_frames > 0 {
            LATE
        } else {
            TEXT
        };
        draw_text(
            target,
            line.as_str(),
            o + Point::new(margin as i32, (margin + (i as u32 + 2) * line_h) as i32),
            Anchor::TopLeft,
            font,
            scale,
            color,
            None,
        )?;
    }

    // Graph.
    let bottom = plot.top_left.y + plot.size.height as i32;
    let samples = stats.frame_intervals_us;
    let shown = &samples[samples.len().saturating_sub(g.bars)..];
    let bar_w = (g.slot - g.slot / 4).max(1) as usize;
    let (max_us, sum_us) = shown
        .iter()
        .fold((0u32, 0u64), |(m, s), &i| (m.max(i), s + u64::from(i)));
    // The plot row by row: a row buffer starts as panel; going down, each bar's span takes its
    // colour at the bar's top row and keeps it (bars stand on the bottom). Every plot pixel is
    // written once, by a vectorisable copy, instead of one narrow fill per bar and row.
    let mut tops: Vec<(i32, usize)> = shown
        .iter()
        .enumerate()
        .map(|(i, &interval)| (bottom - g.bar_height(interval, target_us) as i32, i))
        .collect();
    tops.sort_unstable();
    let mut row = vec![pack(PANEL); plot.size.width as usize];
    let mut next = 0;
    for y in plot.top_left.y..bottom {
        while let Some(&(_, i)) = tops.get(next).filter(|(top, _)| *top <= y) {
            let x0 = i * g.slot as usize;
            if let Some(span) = row.get_mut(x0..x0 + bar_w) {
                span.fill(pack(bar_color(shown[i], target_us)));
            }
            next += 1;
        }
        target.fill_contiguous(
            &Rectangle::new(
                Point::new(plot.top_left.x, y),
                Size::new(plot.size.width, 1),
            ),
            row.iter().map(|&p| unpack(p)),
        )?;
    }
    // Dashed reference line at the target interval (half-way up).
    let ref_y = bottom - g.bar_height(target_us, target_us) as i32;
    let dash = (g.slot * 4).max(4);
    let mut x = 0;
    while x < plot.size.width {
        let len = dash.min(plot.size.width - x);
        target.fill_solid(
            &Rectangle::new(
                Point::new(plot.top_left.x + x as i32, ref_y),
                Size::new(len, scale),
            ),
            TEXT,
        )?;
        x += 2 * dash;
    }
    let mut caption = TextBuf::<96>::new();
    if shown.is_empty() {
        let _ = write!(caption, "frame intervals: no samples yet");
    } else {
        let mean = sum_us / shown.len() as u64;
        let is_narrow = WIDEST_LINE * font.character_size.width * scale > w - 2 * margin;
        if is_narrow {
            // The short form (at most 17 characters) where the full caption is clipped.
            let _ = write!(caption, "mean {}.{:03} ms", mean / 1000, mean % 1000);
        } else {
            let _ = write!(
                caption,
                "last {} intervals: mean {}.{:03} ms  max {}.{:03} ms",
                shown.len(),
                mean / 1000,
                mean % 1000,
                max_us / 1000,
                max_us % 1000
            );
        }
    }
    draw_text(
        target,
        caption.as_str(),
        Point::new(plot.top_left.x, caption_y),
        Anchor::TopLeft,
        font,
        scale,
        TEXT,
        None,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_around_covers_the_frame_once() {
        use embedded_graphics::mock_display::MockDisplay;
        // MockDisplay panics on overdraw, so this also proves no pixel is written twice.
        let mut d = MockDisplay::<Rgb888>::new();
        let outer = Rectangle::new(Point::new(2, 3), Size::new(20, 15));
        let inner = Rectangle::new(Point::new(5, 6), Size::new(7, 4));
        fill_around(&mut d, &outer, &inner, LATE).unwrap();
        for y in 0..64 {
            for x in 0..64 {
                let p = Point::new(x, y);
                let want = (outer.contains(p) && !inner.contains(p)).then_some(LATE);
                assert_eq!(d.get_pixel(p), want, "({x},{y})");
            }
        }
    }

    #[test]
    fn bar_colours_and_heights() {
        assert_eq!(bar_color(16_666, 16_666), ON_TIME);
        assert_eq!(bar_color(20_832, 16_666), ON_TIME);
        assert_eq!(bar_color(20_834, 16_666), SLOW);
        assert_eq!(bar_color(33_332, 16_666), SLOW);
        assert_eq!(bar_color(33_333, 16_666), LATE);
        let g = GraphLayout::new(1280, 720);
        let full = g.plot.size.height;
        assert_eq!(g.bar_height(16_666, 16_666), full / 2);
        assert_eq!(g.bar_height(1_000_000, 16_666), full);
        assert_eq!(g.bar_height(0, 16_666), 0);
        assert_eq!(g.bar_height(5, 0), full);
        assert!(g.bars > 100);
    }
}
