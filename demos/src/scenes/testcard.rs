//! `testcard`: a display-path test card — bars, ramps, grid, geometry circle, frame code, text.
//!
//! Layout for a `w × h` target (all integer fractions of the size, see [`Layout`]):
//! - black background (drawn only where nothing else goes) with a grey grid of square cells ([`Layout::cell`]) centred on the screen,
//!   and a 1-pixel white border on the outermost pixels (shows cropping or overscan);
//! - eight full-intensity colour bars ([`BARS`]) across the band `h/6 .. h/2`, bar `i` spanning
//!   `x = i·w/8 .. (i+1)·w/8`;
//! - under them a grey ramp (0..=255 left to right) and red, green and blue ramps;
//! - a white circle of diameter `5h/6` centred on the screen (shows a wrong aspect ratio) and a
//!   centre cross;
//! - the title, the resolution and the frame number as text;
//! - the frame number's low [`FRAME_BITS`] bits as white (1) / black (0) squares along the bottom,
//!   most significant first, so a captured frame can be identified without reading text, and a
//!   marker that steps one cell per frame.

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::{Point, Size};
use embedded_graphics::mono_font::ascii::FONT_10X20;
use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::prelude::Primitive;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use embedded_graphics::Drawable;

use crate::pixel::{pack, unpack};
use crate::shapes::ring;
use crate::text::{draw_text, Anchor, TextBuf};
use crate::SceneInput;

/// The colour bars, left to right.
pub const BARS: [Rgb888; 8] = [
    Rgb888::WHITE,
    Rgb888::YELLOW,
    Rgb888::CYAN,
    Rgb888::GREEN,
    Rgb888::MAGENTA,
    Rgb888::RED,
    Rgb888::BLUE,
    Rgb888::BLACK,
];

/// Frame-number bits drawn as squares along the bottom.
pub const FRAME_BITS: u32 = 16;

/// Grid line colour.
pub const GRID: Rgb888 = Rgb888::new(0x60, 0x60, 0x60);

/// Where everything goes for a given size; public so tests can probe known pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Target width.
    pub w: u32,
    /// Target height.
    pub h: u32,
    /// Grid cell size (square).
    pub cell: u32,
    /// Top of the colour bars.
    pub bars_top: u32,
    /// Bottom (exclusive) of the colour bars.
    pub bars_bottom: u32,
    /// Height of each ramp band (grey, then red, green, blue).
    pub ramp_height: u32,
    /// Side of one frame-bit square.
    pub bit_size: u32,
    /// Top-left corner of the most significant frame bit.
    pub bits_origin: Point,
    /// Text magnification.
    pub text_scale: u32,
}

impl Layout {
    /// The layout for a `w × h` target.
    pub fn new(w: u32, h: u32) -> Self {
        let cell = (h / 12).max(4);
        let bars_top = h / 6;
        let bars_bottom = h / 2;
        let ramp_height = (h / 24).max(1);
        let bit_size = (w / (2 * FRAME_BITS + 8)).min(h / 16).max(1);
        let bits_y = h.saturating_sub(h / 12 + bit_size / 2);
        let bits_x = (w.saturating_sub(FRAME_BITS * bit_size)) / 2;
        Self {
            w,
            h,
            cell,
            bars_top,
            bars_bottom,
            ramp_height,
            bit_size,
            bits_origin: Point::new(bits_x as i32, bits_y as i32),
            text_scale: (h / 360).max(1),
        }
    }

    /// Horizontal extent `x0..x1` of bar `i`.
    pub fn bar_span(&self, i: u32) -> (u32, u32) {
        (
            (u64::from(i) * u64::from(self.w) / 8) as u32,
            (u64::from(i + 1) * u64::from(self.w) / 8) as u32,
        )
    }

    /// Top-left corner of frame bit `bit` (0 = least significant).
    pub fn bit_origin(&self, bit: u32) -> Point {
        let slot = FRAME_BITS - 1 - bit;
        self.bits_origin + Point::new((slot * self.bit_size) as i32, 0)
    }
}

/// Draws frame `frame` of the test card.
pub fn draw<D>(frame: u64, target: &mut D, _input: &SceneInput<'_>) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let area = target.bounding_box();
    let (w, h) = (area.size.width, area.size.height);
    if w == 0 || h == 0 {
        return Ok(());
    }
    let l = Layout::new(w, h);
    let origin = area.top_left;
    let at = |x: u32, y: u32| origin + Point::new(x as i32, y as i32);
    let rect = |x: u32, y: u32, rw: u32, rh: u32| Rectangle::new(at(x, y), Size::new(rw, rh));

    // Background and grid only where bars and ramps do not cover (each pixel written once),
    // row by row: grid rows are solid grey, the others copy one prepared row (black with grey
    // at the grid columns), so no pixel-wide column is filled row by row.
    let ramps_bottom = (l.bars_bottom + 4 * l.ramp_height).min(h);
    let bands = [(0, l.bars_top), (ramps_bottom, h)];
    // Grid, centred: lines at cx ± k·cell.
    let (cx, cy) = (w / 2, h / 2);
    let grid = pack(GRID);
    let mut grid_row = vec![0u32; w as usize];
    for x in (cx % l.cell..w).step_by(l.cell as usize) {
        grid_row[x as usize] = grid;
    }
    for &(top, bottom) in &bands {
        for y in top..bottom {
            if y % l.cell == cy % l.cell {
                target.fill_solid(&rect(0, y, w, 1), GRID)?;
            } else {
                target.fill_contiguous(&rect(0, y, w, 1), grid_row.iter().map(|&p| unpack(p)))?;
            }
        }
    }

    // Colour bars.
    for (i, &color) in BARS.iter().enumerate() {
        let (x0, x1) = l.bar_span(i as u32);
        target.fill_solid(
            &rect(x0, l.bars_top, x1 - x0, l.bars_bottom - l.bars_top),
            color,
        )?;
    }

    // Ramps: grey, red, green, blue; value = x · 255 / (w - 1).
    let step_q16 = if w > 1 {
        (255u64 << 16) / u64::from(w - 1)
    } else {
        0
    };
    // Round to nearest so the last pixel reaches 255 exactly. Computed once, copied per row.
    let grey: Vec<u32> = (0..u64::from(w))
        .map(|x| ((x * step_q16 + (1 << 15)) >> 16) as u32 * 0x01_01_01)
        .collect();
    let masks = [0xFF_FF_FFu32, 0xFF_00_00, 0x00_FF_00, 0x00_00_FF];
    for (band, &mask) in masks.iter().enumerate() {
        let top = l.bars_bottom + band as u32 * l.ramp_height;
        for y in top..(top + l.ramp_height).min(h) {
            let ramp = grey.iter().map(|&p| unpack(p & mask));
            target.fill_contiguous(&rect(0, y, w, 1), ramp)?;
        }
    }

    // Geometry: circle and centre cross.
    let stroke = (h / 360).max(1);
    let diameter = h * 5 / 6;
    ring(target, at(cx, cy), diameter / 2, stroke, Rgb888::WHITE)?;
    let arm = (h / 24) as i32;
    let c = at(cx, cy);
    let cross = PrimitiveStyle::with_stroke(Rgb888::WHITE, stroke);
    Line::new(c - Point::new(arm, 0), c + Point::new(arm, 0))
        .into_styled(cross)
        .draw(target)?;
    Line::new(c - Point::new(0, arm), c + Point::new(0, arm))
        .into_styled(cross)
        .draw(target)?;

    // Border on the outermost pixels.
    for border in [
        rect(0, 0, w, 1),
        rect(0, h - 1, w, 1),
        rect(0, 0, 1, h),
        rect(w - 1, 0, 1, h),
    ] {
        target.fill_solid(&border, Rgb888::WHITE)?;
    }

    // Text.
    let font = &FONT_10X20;
    let s = l.text_scale;
    let bg = Some(Rgb888::BLACK);
    let text_y = l.bars_top.saturating_sub(font.character_size.height * s) / 2;
    draw_text(
        target,
        "pvdispl test card",
        at(cx, text_y),
        Anchor::TopCenter,
        font,
        s,
        Rgb888::WHITE,
        bg,
    )?;
    let mut line = TextBuf::<48>::new();
    let _ = write!(line, "{w}x{h}  frame {frame:06}");
    let info_y = l.bars_bottom + 4 * l.ramp_height + l.cell / 2;
    draw_text(
        target,
        line.as_str(),
        at(cx, info_y),
        Anchor::TopCenter,
        font,
        s,
        Rgb888::YELLOW,
        bg,
    )?;

    // Frame code and the stepping marker.
    let b = l.bit_size;
    target.fill_solid(
        &Rectangle::new(
            l.bits_origin - Point::new(1, 1),
            Size::new(FRAME_BITS * b + 2, b + 2),
        ),
        GRID,
    )?;
    for bit in 0..FRAME_BITS {
        let on = (frame >> bit) & 1 == 1;
        let color = if on { Rgb888::WHITE } else { Rgb888::BLACK };
        target.fill_solid(
            &Rectangle::new(l.bit_origin(bit), Size::new_equal(b)),
            color,
        )?;
    }
    let slots = u64::from((w / b).max(1));
    let marker_x = (frame % slots) as u32 * b;
    let marker_y = (l.bits_origin.y as u32).saturating_sub(2 * b);
    target.fill_solid(&rect(marker_x, marker_y, b, b), Rgb888::GREEN)?;
    Ok(())
}
