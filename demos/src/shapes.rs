//! Fast filled discs and rings drawn as horizontal spans (one `fill_solid` per span).
//!
//! embedded-graphics' circles are exact but test every scanline point; at 1080p a large ring
//! costs a third of a memset. These integer versions compute each row's half-width with an
//! integer square root: row `dy` of a disc of radius `r` centred on pixel `(cx, cy)` spans
//! `cx − ⌊√(r² − dy²)⌋ ..= cx + ⌊√(r² − dy²)⌋`. Pure integer arithmetic, so identical everywhere.
//! [`convex_polygon`] fills convex polygons the same way; [`radial_quad`] uses it for clock hands
//! and ticks (embedded-graphics' thick lines plot pixel by pixel, and its triangles walk each edge
//! with Bresenham for every scanline).

use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::{Point, Size};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::primitives::Rectangle;

use crate::fixed::{polar, TURN_Q16};

/// Half-width of row `dy` of a disc of radius `r`, or `None` outside the disc.
pub fn half_width(r: u32, dy: i64) -> Option<u32> {
    let dy = dy.unsigned_abs();
    let r = u64::from(r);
    // r ≤ u32::MAX, so r² fits in a u64; dy ≤ r below.
    (dy <= r).then(|| (r * r - dy * dy).isqrt() as u32)
}

/// The rows `cy − r ..= cy + r` that fall inside the target's bounding box.
fn visible_rows<D: DrawTarget<Color = Rgb888>>(
    target: &D,
    cy: i64,
    r: u32,
) -> core::ops::RangeInclusive<i64> {
    let area = target.bounding_box();
    let top = i64::from(area.top_left.y);
    let bottom = top + i64::from(area.size.height) - 1;
    (cy - i64::from(r)).max(top)..=(cy + i64::from(r)).min(bottom)
}

/// Fills the horizontal span `x0 ..= x1` of row `y` (nothing if `x1 < x0`).
pub fn span<D: DrawTarget<Color = Rgb888>>(
    target: &mut D,
    x0: i64,
    x1: i64,
    y: i64,
    color: Rgb888,
) -> Result<(), D::Error> {
    // Targets address pixels with i32 coordinates, so clamping loses nothing visible.
    let clamp = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
    let (x0, x1) = (clamp(x0), clamp(x1));
    if x1 < x0 || y != clamp(y) {
        return Ok(());
    }
    let width = (x1 - x0 + 1).min(i64::from(u32::MAX)) as u32;
    target.fill_solid(
        &Rectangle::new(Point::new(x0 as i32, y as i32), Size::new(width, 1)),
        color,
    )
}

/// A filled disc of radius `r` centred on pixel `c`.
pub fn disc<D: DrawTarget<Color = Rgb888>>(
    target: &mut D,
    c: Point,
    r: u32,
    color: Rgb888,
) -> Result<(), D::Error> {
    let (cx, cy) = (i64::from(c.x), i64::from(c.y));
    for y in visible_rows(target, cy, r) {
        if let Some(half) = half_width(r, y - cy) {
            let half = i64::from(half);
            span(target, cx - half, cx + half, y, color)?;
        }
    }
    Ok(())
}

/// A ring: the disc of radius `r` minus the disc of radius `r − width` (`width ≥ r` fills it).
pub fn ring<D: DrawTarget<Color = Rgb888>>(
    target: &mut D,
    c: Point,
    r: u32,
    width: u32,
    color: Rgb888,
) -> Result<(), D::Error> {
    let inner = r.saturating_sub(width);
    let (cx, cy) = (i64::from(c.x), i64::from(c.y));
    for y in visible_rows(target, cy, r) {
        let Some(outer) = half_width(r, y - cy) else {
            continue;
        };
        let outer = i64::from(outer);
        match half_width(inner, y - cy).filter(|_| width < r) {
            Some(hole) => {
                let hole = i64::from(hole);
                span(target, cx - outer, cx - hole - 1, y, color)?;
                span(target, cx + hole + 1, cx + outer, y, color)?;
            }
            None => span(target, cx - outer, cx + outer, y, color)?,
        }
    }
    Ok(())
}

/// A filled quadrilateral along direction `turn` (clock convention, see [`polar`]) from `c`:
/// from radius `r0` with half-width `half0` to radius `r1` with half-width `half1` — a clock hand
/// (tapered when the half-widths differ) or a tick mark. Drawn with [`convex_polygon`].
#[allow(clippy::too_many_arguments)]
pub fn radial_quad<D: DrawTarget<Color = Rgb888>>(
    target: &mut D,
    c: Point,
    turn: u32,
    r0: i32,
    half0: i32,
    r1: i32,
    half1: i32,
    color: Rgb888,
) -> Result<(), D::Error> {
    let axis = |r: i32| {
        let (x, y) = polar(c.x, c.y, r, turn);
        Point::new(x, y)
    };
    let across = |half: i32| {
        let (x, y) = polar(0, 0, half, turn.wrapping_add(TURN_Q16 / 4));
        Point::new(x, y)
    };
    let (a, b) = (axis(r0), axis(r1));
    let (o0, o1) = (across(half0), across(half1));
    convex_polygon(target, &[a + o0, b + o1, b - o1, a - o0], color)
}

/// Fills a convex polygon (vertices in order, either winding) row by row: each visible row's
/// span runs between the leftmost and rightmost points where the edges cross it (rounded to the
/// nearest pixel). Integer arithmetic only; one `fill_solid` per row.
pub fn convex_polygon<D: DrawTarget<Color = Rgb888>>(
    target: &mut D,
    vertices: &[Point],
    color: Rgb888,
) -> Result<(), D::Error> {
    let Some(first) = vertices.first() else {
        return Ok(());
    };
    let (mut top, mut bottom) = (i64::from(first.y), i64::from(first.y));
    for v in vertices {
        top = top.min(i64::from(v.y));
        bottom = bottom.max(i64::from(v.y));
    }
    let area = target.bounding_box();
    let (area_top, area_bottom) = (
        i64::from(area.top_left.y),
        i64::from(area.top_left.y) + i64::from(area.size.height) - 1,
    );
    for y in top.max(area_top)..=bottom.min(area_bottom) {
        let (mut left, mut right) = (i64::MAX, i64::MIN);
        for (i, a) in vertices.iter().enumerate() {
            let b = vertices[(i + 1) % vertices.len()];
            let (mut p, mut q) = (
                (i64::from(a.x), i64::from(a.y)),
                (i64::from(b.x), i64::from(b.y)),
            );
            if p.1 > q.1 {
                core::mem::swap(&mut p, &mut q);
            }
            if y < p.1 || y > q.1 {
                continue;
            }
            let (x0, x1) = if p.1 == q.1 {
                (p.0.min(q.0), p.0.max(q.0))
            } else {
                // x at row y, rounded to nearest: p.x + (q.x − p.x)·(y − p.y)/(q.y − p.y).
                let dy = q.1 - p.1;
                let x = p.0 + ((q.0 - p.0) * (y - p.1) * 2 + dy).div_euclid(2 * dy);
                (x, x)
            };
            left = left.min(x0);
            right = right.max(x1);
        }
        if left <= right {
            span(target, left, right, y, color)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::mock_display::MockDisplay;
    use embedded_graphics::pixelcolor::RgbColor;

    fn lit(display: &MockDisplay<Rgb888>) -> Vec<(i32, i32)> {
        let mut v = Vec::new();
        for y in 0..64 {
            for x in 0..64 {
                if display.get_pixel(Point::new(x, y)).is_some() {
                    v.push((x, y));
                }
            }
        }
        v
    }

    #[test]
    fn disc_is_symmetric_and_bounded() {
        let mut d = MockDisplay::<Rgb888>::new();
        disc(&mut d, Point::new(20, 20), 10, Rgb888::RED).unwrap();
        let pixels = lit(&d);
        for &(x, y) in &pixels {
            let (dx, dy) = (x - 20, y - 20);
            assert!(dx * dx + dy * dy <= 100, "({x},{y}) outside");
            assert!(pixels.contains(&(20 - dx, 20 - dy)));
            assert!(pixels.contains(&(20 + dy, 20 + dx)), "not 90° symmetric");
        }
        // Every pixel with centre distance ≤ r is in (x, y integers).
        let expected = (-10i32..=10)
            .flat_map(|dy| (-10i32..=10).map(move |dx| (dx, dy)))
            .filter(|(dx, dy)| dx * dx + dy * dy <= 100)
            .count();
        assert_eq!(pixels.len(), expected);
    }

    #[test]
    fn ring_leaves_the_hole() {
        let mut d = MockDisplay::<Rgb888>::new();
        ring(&mut d, Point::new(30, 30), 20, 3, Rgb888::WHITE).unwrap();
        let pixels = lit(&d);
        for &(x, y) in &pixels {
            let r2 = (x - 30).pow(2) + (y - 30).pow(2);
            assert!(r2 <= 400);
            // Nothing strictly inside the inner radius (17) except rounding at the inner edge.
            assert!(r2 > 16 * 16, "({x},{y}) inside the hole");
        }
        assert!(pixels.contains(&(30, 10)) && pixels.contains(&(50, 30)));
        assert!(!pixels.contains(&(30, 30)));
        // A ring thicker than its radius is a disc.
        let mut full = MockDisplay::<Rgb888>::new();
        ring(&mut full, Point::new(30, 30), 5, 9, Rgb888::WHITE).unwrap();
        let mut solid = MockDisplay::<Rgb888>::new();
        disc(&mut solid, Point::new(30, 30), 5, Rgb888::WHITE).unwrap();
        assert_eq!(lit(&full), lit(&solid));
    }

    #[test]
    fn radial_quad_points_along_its_turn() {
        let mut d = MockDisplay::<Rgb888>::new();
        d.set_allow_overdraw(true);
        // Pointing right (a quarter turn) from (10, 30): radii 0..40, half-width 2.
        radial_quad(
            &mut d,
            Point::new(10, 30),
            TURN_Q16 / 4,
            0,
            2,
            40,
            2,
            Rgb888::RED,
        )
        .unwrap();
        let pixels = lit(&d);
        assert!(pixels.contains(&(30, 30)) && pixels.contains(&(49, 30)));
        assert!(pixels.contains(&(30, 28)) && pixels.contains(&(30, 32)));
        for &(x, y) in &pixels {
            assert!(
                (10..=50).contains(&x) && (28..=32).contains(&y),
                "({x},{y})"
            );
        }
    }

    #[test]
    fn convex_polygon_fills_triangles_and_squares() {
        let mut d = MockDisplay::<Rgb888>::new();
        let square = [
            Point::new(2, 2),
            Point::new(6, 2),
            Point::new(6, 6),
            Point::new(2, 6),
        ];
        convex_polygon(&mut d, &square, Rgb888::RED).unwrap();
        let pixels = lit(&d);
        assert_eq!(pixels.len(), 25);
        assert!(pixels
            .iter()
            .all(|&(x, y)| (2..=6).contains(&x) && (2..=6).contains(&y)));
        // Right triangle (0,10) (10,10) (0,20): row 10 + k spans x = 0 ..= 10 − k.
        let mut t = MockDisplay::<Rgb888>::new();
        let tri = [Point::new(0, 10), Point::new(10, 10), Point::new(0, 20)];
        convex_polygon(&mut t, &tri, Rgb888::RED).unwrap();
        for k in 0..=10 {
            for x in 0..=12 {
                let want = (x <= 10 - k).then_some(Rgb888::RED);
                assert_eq!(t.get_pixel(Point::new(x, 10 + k)), want, "({x},{})", 10 + k);
            }
        }
        // Degenerate inputs draw at most a line and never panic.
        convex_polygon(&mut MockDisplay::<Rgb888>::new(), &[], Rgb888::RED).unwrap();
        let mut one = MockDisplay::<Rgb888>::new();
        convex_polygon(&mut one, &[Point::new(3, 3)], Rgb888::RED).unwrap();
        assert_eq!(lit(&one), vec![(3, 3)]);
    }

    #[test]
    fn spans_clip_without_panicking() {
        let mut px = vec![0u32; 16];
        let mut fb = xen_display::framebuffer::Framebuffer::try_new_packed(&mut px, 4, 4).unwrap();
        // A huge ring whose band lies far off-screen: nothing drawn.
        ring(&mut fb, Point::new(i32::MIN, 0), u32::MAX, 7, Rgb888::RED).unwrap();
        assert!(fb.rows().flatten().all(|&p| p == 0));
        // A huge disc centred far away still covers the screen.
        disc(
            &mut fb,
            Point::new(i32::MAX, i32::MIN),
            u32::MAX,
            Rgb888::BLUE,
        )
        .unwrap();
        assert!(fb.rows().flatten().all(|&p| p == 0x0000FF));
        span(&mut fb, i64::MIN / 2, i64::MAX / 2, 1, Rgb888::RED).unwrap();
        assert_eq!(fb.row(1).unwrap(), &[0xFF0000; 4]);
    }
}
