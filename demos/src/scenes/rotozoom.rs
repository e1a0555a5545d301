//! `rotozoom`: a rotating, zooming texture, computed per pixel in fixed point.
//!
//! Screen pixel `(x, y)` samples texture coordinates `(u, v)` = `M · (x − cx, y − cy) + (u0, v0)`,
//! where `M` is a rotation by `θ(t)` scaled by `zoom(t)` in Q16 (from the integer sine table) and
//! `(u0, v0)` drifts with time. `u` and `v` advance by constant steps along a row (per-frame
//! tables of `x·du/dx`, `x·dv/dx`), so each row is two additions per pixel plus the procedural texel: an XOR pattern shaded per channel,
//! `r = u ^ v`, `g = u`, `b = 255 − (u ^ v)` on the texel's 8-bit coordinates, with a dark checker
//! every 32 texels. No lookup per pixel; wrapping integer arithmetic throughout.

extern crate alloc;

use alloc::vec::Vec;

use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::{Point, Size};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::primitives::Rectangle;

use crate::fixed::{cos_q14, mul_div, sin_q14, TURN_Q16};
use crate::SceneInput;

/// The texel at integer texture coordinates (only the low 8 bits matter), as `0x00RRGGBB`.
#[inline(always)]
pub fn texel(u: u32, v: u32) -> u32 {
    let (u, v) = (u & 0xFF, v & 0xFF);
    let x = u ^ v;
    let pixel = (x << 16) | (u << 8) | (255 - x);
    // Halve every channel on dark checker squares; branch-free (all-ones mask when dark), with
    // constant shifts only, so the row loop vectorises with plain SSE2.
    let dark = (((u ^ v) >> 5) & 1).wrapping_neg();
    (pixel & !dark) | ((pixel >> 1) & 0x7F_7F_7F & dark)
}

/// Draws frame `frame` of the rotozoom.
pub fn draw<D>(frame: u64, target: &mut D, input: &SceneInput<'_>) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let area = target.bounding_box();
    let (w, h) = (area.size.width, area.size.height);
    if w == 0 || h == 0 {
        return Ok(());
    }
    let tick = mul_div(frame, 60, u64::from(input.fps()));
    // One turn every 20 s; zoom breathes between 0.5 and 2.5 texels per 1/360 of the height…
    let angle = ((tick % 1200) * u64::from(TURN_Q16) / 1200) as u32;
    let breathe = ((tick % 420) * u64::from(TURN_Q16) / 420) as u32;
    // Texels per pixel in Q16, scaled so the picture looks alike at every height:
    // (1.5 + sin) · 360 / h.
    let zoom_q16 = ((i64::from(3 << 14) + i64::from(sin_q14(breathe))) << 2) * 360 / i64::from(h);
    let (sin, cos) = (i64::from(sin_q14(angle)), i64::from(cos_q14(angle)));
    // Per-pixel steps (Q16): d(u,v)/dx = zoom·(cos, sin), d(u,v)/dy = zoom·(−sin, cos).
    let du_dx = ((zoom_q16 * cos) >> 14) as i32;
    let dv_dx = ((zoom_q16 * sin) >> 14) as i32;
    let (du_dy, dv_dy) = (-dv_dx, du_dx);
    // Drift: the texture centre moves 40 texels per second along u and 25 along v.
    let u0 = (tick as i64).wrapping_mul(40 << 16) / 60;
    let v0 = (tick as i64).wrapping_mul(25 << 16) / 60;
    let (cx, cy) = (i64::from(w / 2), i64::from(h / 2));
    // Per-frame column offsets x·du/dx and x·dv/dx, so each row is one pass of sequential loads,
    // adds and the texel arithmetic (vectorisable, no multiply per pixel) fed straight into
    // `fill_contiguous`.
    let du: Vec<i32> = (0..w as i32).map(|x| x.wrapping_mul(du_dx)).collect();
    let dv: Vec<i32> = (0..w as i32).map(|x| x.wrapping_mul(dv_dx)).collect();
    for y in 0..h {
        let dy = i64::from(y) - cy;
        // Texture coordinate of pixel (0, y), wrapping (the texture tiles every 256 texels).
        let u = u0
            .wrapping_sub(cx.wrapping_mul(i64::from(du_dx)))
            .wrapping_add(dy.wrapping_mul(i64::from(du_dy))) as i32;
        let v = v0
            .wrapping_sub(cx.wrapping_mul(i64::from(dv_dx)))
            .wrapping_add(dy.wrapping_mul(i64::from(dv_dy))) as i32;
        let pixels = du.iter().zip(&dv).map(|(&a, &b)| {
            let p = texel(
                (u.wrapping_add(a) >> 16) as u32,
                (v.wrapping_add(b) >> 16) as u32,
            );
            Rgb888::new((p >> 16) as u8, (p >> 8) as u8, p as u8)
        });
        target.fill_contiguous(
            &Rectangle::new(area.top_left + Point::new(0, y as i32), Size::new(w, 1)),
            pixels,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texel_pattern() {
        // Light square (u, v < 32): r = u ^ v, g = u, b = 255 − (u ^ v).
        assert_eq!(texel(3, 5), (6 << 16) | (3 << 8) | 249);
        // Dark square: every channel halved.
        assert_eq!(
            texel(40, 0),
            ((40 >> 1) << 16) | ((40 >> 1) << 8) | ((255 - 40) >> 1)
        );
        // The texture tiles every 256 texels.
        assert_eq!(texel(3 + 256, 5 + 512), texel(3, 5));
    }
}
