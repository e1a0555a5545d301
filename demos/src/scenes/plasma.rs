//! `plasma`: a full-screen animated colour field, computed per pixel in fixed point.
//!
//! Each colour channel is a sum of four travelling sine waves (horizontal, vertical and the two
//! diagonals), each with its own spatial frequency (relative to the resolution, so the picture
//! looks the same at any size), speed and phase per channel. Because every wave is a function of
//! one of `x`, `y`, `x + y` or `x - y`, a frame is four per-frame tables of packed `0x00RRGGBB`
//! terms whose channel sums never carry into the next channel (each term ≤ 63 per channel, so a sum
//! is ≤ 252): pixel `(x, y)` = `H[x] + V[y] + D[x + y] + A[x - y + h - 1]`. The inner loop is three
//! sequential loads and adds per pixel, which vectorises; one `fill_contiguous` per row. Each
//! channel sum `s` is then folded to `252 − 2·|s − 126|` ([`fold`], branch-free SWAR), which turns
//! the soft sum into bright ridges along the waves' interference lines: the plasma look.
//!
//! Time is `frame × 60 / fps` ticks, so the motion has the same speed at every frame rate.

extern crate alloc;

use alloc::vec::Vec;

use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::{Point, Size};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::primitives::Rectangle;

use crate::fixed::{mul_div, sin_step_q14, SIN_TABLE_LEN};
use crate::SceneInput;

/// One travelling wave per channel: spatial periods across the axis and a speed per tick.
#[derive(Clone, Copy)]
struct Wave {
    /// Periods across the axis length, in 1/16 period.
    periods_x16: [u32; 3],
    /// Phase advance per tick in sine-table steps (1024 per period), per channel.
    speed: [i32; 3],
    /// Phase offset in sine-table steps, per channel.
    phase: [i32; 3],
}

const HORIZONTAL: Wave = Wave {
    periods_x16: [24, 40, 18],
    speed: [7, -5, 3],
    phase: [0, 300, 700],
};
const VERTICAL: Wave = Wave {
    periods_x16: [20, 14, 30],
    speed: [-4, 6, 5],
    phase: [512, 100, 0],
};
const DIAGONAL: Wave = Wave {
    periods_x16: [36, 22, 44],
    speed: [5, 3, -6],
    phase: [200, 900, 400],
};
const ANTIDIAGONAL: Wave = Wave {
    periods_x16: [16, 34, 26],
    speed: [-3, -7, 4],
    phase: [800, 0, 250],
};

/// A channel term in `0..=63` for a sine-table step.
#[inline]
fn term(step: i32) -> u32 {
    // (sin + 1) · 31.5, rounded down: 0..=63.
    ((sin_step_q14(step) + (1 << 14)) as u32 * 63) >> 15
}

/// The packed `0x00RRGGBB` table of `wave` over positions `0..len`, `axis_len` being the length
/// the periods are spread over.
fn wave_table(wave: &Wave, len: usize, axis_len: u32, tick: u64) -> Vec<u32> {
    let axis_len = u64::from(axis_len.max(1));
    let mut table = Vec::with_capacity(len);
    // Per channel: step(i) = i · periods · 1024 / (16 · axis_len) + speed · tick + phase, with the
    // position factor in Q16 so the per-entry work is one multiply.
    let mut step_q16 = [0u64; 3];
    let mut origin = [0i32; 3];
    for c in 0..3 {
        step_q16[c] = mul_div(
            u64::from(wave.periods_x16[c]) * SIN_TABLE_LEN as u64,
            1 << 16,
            16 * axis_len,
        );
        // Wrapping arithmetic: only the phase modulo the table length matters.
        origin[c] = (wave.speed[c] as i64)
            .wrapping_mul(tick as i64)
            .wrapping_add(i64::from(wave.phase[c])) as i32;
    }
    for i in 0..len as u64 {
        let mut packed = 0u32;
        for c in 0..3 {
            let step = ((i * step_q16[c]) >> 16) as i32;
            packed |= term(step.wrapping_add(origin[c])) << (16 - 8 * c);
        }
        table.push(packed);
    }
    table
}

/// Draws frame `frame` of the plasma.
pub fn draw<D>(frame: u64, target: &mut D, input: &SceneInput<'_>) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let area = target.bounding_box();
    let (w, h) = (area.size.width as usize, area.size.height as usize);
    if w == 0 || h == 0 {
        return Ok(());
    }
    let tick = mul_div(frame, 60, u64::from(input.fps()));
    let diagonal_len = area.size.width.saturating_add(area.size.height);
    let horizontal = wave_table(&HORIZONTAL, w, area.size.width, tick);
    let vertical = wave_table(&VERTICAL, h, area.size.height, tick);
    let diagonal = wave_table(&DIAGONAL, w + h - 1, diagonal_len, tick);
    let antidiagonal = wave_table(&ANTIDIAGONAL, w + h - 1, diagonal_len, tick);

    for (y, &v) in vertical.iter().enumerate() {
        let row = Rectangle::new(
            area.top_left + Point::new(0, y as i32),
            Size::new(area.size.width, 1),
        );
        let d = &diagonal[y..y + w];
        let a = &antidiagonal[h - 1 - y..h - 1 - y + w];
        let pixels = horizontal
            .iter()
            .zip(d)
            .zip(a)
            .map(move |((&hx, &dx), &ax)| unpack(fold(hx + dx + ax + v)));
        target.fill_contiguous(&row, pixels)?;
    }
    Ok(())
}

/// Folds each channel sum `s` (0..=252) into `252 − 2·|s − 126|`: bright ridges where the waves
/// sum to the middle, dark where they agree.
///
/// SIMD-within-a-register on the packed word, so each step is one 32-bit operation (4 pixels per
/// SSE2 instruction) and no byte ever carries or borrows into its neighbour:
/// `t = s + 2` (2..=254) has its top bit set exactly when `s ≥ 126`; then `|s − 126|` is
/// `t − 128` (= `t & 0x7F`) for those bytes and `128 − t` (= `(t ^ 0x7F) + 1`) for the others.
#[inline(always)]
fn fold(packed: u32) -> u32 {
    const LOW7: u32 = 0x7F_7F_7F;
    let t = packed + 0x02_02_02;
    let high = t & 0x80_80_80;
    let ones = high >> 7; // 0x01 in each byte with s ≥ 126
    let at_least_126 = high - ones; // 0x7F in those bytes
    let magnitude = ((t ^ (LOW7 ^ at_least_126)) & LOW7) + (0x01_01_01 ^ ones);
    0xFC_FC_FC - (magnitude << 1)
}

/// `0x00RRGGBB` to a colour (inlined; with the framebuffer's packing it folds to a mask).
#[inline(always)]
fn unpack(pixel: u32) -> Rgb888 {
    Rgb888::new((pixel >> 16) as u8, (pixel >> 8) as u8, pixel as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_matches_the_per_channel_formula() {
        let reference = |s: u32| 252 - 2 * s.abs_diff(126);
        for r in 0..=252u32 {
            for g in (0..=252u32).step_by(7) {
                let b = (r * 3 + g) % 253;
                let packed = (r << 16) | (g << 8) | b;
                let want = (reference(r) << 16) | (reference(g) << 8) | reference(b);
                assert_eq!(fold(packed), want, "{r} {g} {b}");
            }
        }
    }

    #[test]
    fn terms_stay_within_a_channel() {
        for step in 0..SIN_TABLE_LEN as i32 {
            assert!(term(step) <= 63);
        }
        assert_eq!(term(256), 63);
        assert_eq!(term(768), 0);
    }

    #[test]
    fn tables_repeat_with_the_period() {
        // Two periods across 100 positions: entry i and i + 50 agree (per channel within 1 step
        // of rounding in the position factor).
        let wave = Wave {
            periods_x16: [32, 32, 32],
            speed: [0, 0, 0],
            phase: [0, 0, 0],
        };
        let t = wave_table(&wave, 100, 100, 0);
        assert_eq!(t[0], (31 << 16) | (31 << 8) | 31);
        for i in 0..50 {
            for c in 0..3 {
                let a = (t[i] >> (8 * c)) & 0xFF;
                let b = (t[i + 50] >> (8 * c)) & 0xFF;
                assert!(a.abs_diff(b) <= 1, "entry {i} channel {c}: {a} vs {b}");
            }
        }
    }
}
