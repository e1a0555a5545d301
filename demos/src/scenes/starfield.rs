//! `starfield`: stars flying towards the viewer.
//!
//! Star `i` has a fixed direction `(x, y)` and a starting depth derived from a hash of `i`; its
//! depth at tick `t` (`frame × 60 / fps`) is `(z0 − t · SPEED) mod DEPTH`, so frame `n` is
//! computed directly. Stars are projected with a focal length proportional to the screen height
//! and drawn as squares that grow and brighten as they approach.

use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::{Point, Size};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::primitives::Rectangle;

use crate::fixed::mul_div;
use crate::SceneInput;

/// Number of stars.
pub const STARS: u32 = 600;
/// Depth range in world units; stars wrap from 0 back to `DEPTH`.
pub const DEPTH: u32 = 4096;
/// Depth travelled per tick.
pub const SPEED: u32 = 24;
/// Closest depth drawn (avoids division by tiny depths).
const NEAR: u32 = 64;

/// A 32-bit integer hash (the "lowbias32" mixer): deterministic pseudo-randomness.
pub fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^= x >> 16;
    x
}

/// Screen position, side and brightness of star `i` at `tick`, or `None` when too close or off
/// screen.
pub fn star(i: u32, tick: u64, w: u32, h: u32) -> Option<(Point, u32, u8)> {
    let a = hash32(i.wrapping_mul(3));
    let b = hash32(i.wrapping_mul(3) + 1);
    let c = hash32(i.wrapping_mul(3) + 2);
    // Direction in world units: −2048..2047 on each axis; depth 0..DEPTH.
    let x = (a & 0xFFF) as i64 - 2048;
    let y = (b & 0xFFF) as i64 - 2048;
    let travelled = (tick % u64::from(DEPTH)) * u64::from(SPEED) % u64::from(DEPTH);
    let z = ((u64::from(c % DEPTH) + u64::from(DEPTH) - travelled) % u64::from(DEPTH)) as i64;
    if z < i64::from(NEAR) {
        return None;
    }
    let focal = i64::from(h) / 2;
    let sx = i64::from(w / 2) + x * focal / z;
    let sy = i64::from(h / 2) + y * focal / z;
    if sx < 0 || sy < 0 || sx >= i64::from(w) || sy >= i64::from(h) {
        return None;
    }
    let closeness = (i64::from(DEPTH) - z) as u64; // 0 (far) .. DEPTH (near)
    let side = 1 + (closeness * u64::from((h / 180).max(2)) / u64::from(DEPTH)) as u32;
    let brightness = (48 + closeness * 207 / u64::from(DEPTH)) as u8;
    Some((Point::new(sx as i32, sy as i32), side, brightness))
}

/// Draws frame `frame` of the star field.
pub fn draw<D>(frame: u64, target: &mut D, input: &SceneInput<'_>) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let area = target.bounding_box();
    let (w, h) = (area.size.width, area.size.height);
    target.fill_solid(&area, Rgb888::new(0, 0, 8))?;
    let tick = mul_div(frame, 60, u64::from(input.fps()));
    for i in 0..STARS {
        if let Some((p, side, v)) = star(i, tick, w, h) {
            // A slight blue tint for far stars, white near ones.
            let color = Rgb888::new(v, v, v.saturating_add(24));
            target.fill_solid(
                &Rectangle::new(area.top_left + p, Size::new_equal(side)),
                color,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_fixed() {
        assert_eq!(hash32(0), 0);
        assert_ne!(hash32(1), hash32(2));
        assert_eq!(hash32(1), hash32(1));
    }

    #[test]
    fn stars_approach_and_spread() {
        // Over consecutive ticks a visible star moves away from the centre and grows.
        let (w, h) = (1280, 720);
        let mut checked = 0;
        for i in 0..STARS {
            let (Some((p0, s0, v0)), Some((p1, s1, v1))) = (star(i, 100, w, h), star(i, 101, w, h))
            else {
                continue;
            };
            let d0 = (p0.x - 640).abs() + (p0.y - 360).abs();
            let d1 = (p1.x - 640).abs() + (p1.y - 360).abs();
            if d0 > 4 {
                assert!(d1 >= d0, "star {i} moved inwards");
            }
            assert!(s1 >= s0 && v1 >= v0);
            checked += 1;
        }
        assert!(checked > STARS / 4, "only {checked} stars visible");
    }
}
