//! `bounce`: shapes flying across the screen and bouncing off its edges.
//!
//! Each [`Sprite`] moves in a straight line at a fixed speed (a fraction of the screen per second,
//! so motion looks the same at any resolution and frame rate) and is reflected by the edges: its
//! position at frame `n` is computed in closed form with [`crate::fixed::bounce`], never by
//! stepping through earlier frames. Every wall hit advances the sprite's colour through
//! [`PALETTE`]. [`sprite_box`] gives a sprite's bounding box at a frame, for tests and captures.

use core::fmt::Write;

use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::{Point, Size};
use embedded_graphics::mono_font::ascii::FONT_10X20;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::Primitive;
use embedded_graphics::primitives::{
    CornerRadii, PrimitiveStyle, Rectangle, RoundedRectangle, Triangle,
};
use embedded_graphics::Drawable;

use crate::fixed::{bounce, mul_div};
use crate::shapes::{disc, ring};
use crate::text::{draw_text, Anchor, TextBuf};
use crate::SceneInput;

/// Background colour.
pub const BACKGROUND: Rgb888 = Rgb888::new(0x0C, 0x10, 0x30);

/// Colours a sprite cycles through, one step per wall hit.
pub const PALETTE: [Rgb888; 8] = [
    Rgb888::new(0xFF, 0x55, 0x55),
    Rgb888::new(0xFF, 0xAA, 0x33),
    Rgb888::new(0xFF, 0xEE, 0x44),
    Rgb888::new(0x66, 0xDD, 0x66),
    Rgb888::new(0x44, 0xCC, 0xFF),
    Rgb888::new(0x88, 0x77, 0xFF),
    Rgb888::new(0xEE, 0x66, 0xEE),
    Rgb888::new(0xF0, 0xF0, 0xF0),
];

/// Shape of a sprite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Filled circle.
    Circle,
    /// Filled square.
    Square,
    /// Filled triangle pointing up.
    Triangle,
    /// Outlined circle.
    Ring,
    /// Filled rounded square.
    Rounded,
}

/// One moving shape; sizes and speeds are in thousandths of the screen height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sprite {
    /// Shape drawn in the sprite's square box.
    pub shape: Shape,
    /// Side of the box, ‰ of the height.
    pub size_permille: u32,
    /// Start position of the box's corner, ‰ of the free range on each axis.
    pub start_permille: (u32, u32),
    /// Speed on each axis, ‰ of the height per second.
    pub speed_permille: (u32, u32),
    /// Index of the first colour in [`PALETTE`].
    pub first_color: usize,
}

/// The sprites, drawn in this order.
pub const SPRITES: [Sprite; 6] = [
    Sprite {
        shape: Shape::Circle,
        size_permille: 160,
        start_permille: (100, 200),
        speed_permille: (330, 250),
        first_color: 0,
    },
    Sprite {
        shape: Shape::Square,
        size_permille: 120,
        start_permille: (700, 100),
        speed_permille: (410, 370),
        first_color: 1,
    },
    Sprite {
        shape: Shape::Triangle,
        size_permille: 180,
        start_permille: (400, 800),
        speed_permille: (270, 450),
        first_color: 2,
    },
    Sprite {
        shape: Shape::Ring,
        size_permille: 200,
        start_permille: (900, 600),
        speed_permille: (190, 210),
        first_color: 4,
    },
    Sprite {
        shape: Shape::Rounded,
        size_permille: 100,
        start_permille: (250, 500),
        speed_permille: (520, 310),
        first_color: 5,
    },
    Sprite {
        shape: Shape::Circle,
        size_permille: 70,
        start_permille: (550, 300),
        speed_permille: (610, 560),
        first_color: 6,
    },
];

/// Bounding box and colour of `sprite` at `frame` on a `w × h` screen at `fps`.
pub fn sprite_box(sprite: &Sprite, frame: u64, w: u32, h: u32, fps: u32) -> (Rectangle, Rgb888) {
    let side = (h * sprite.size_permille / 1000).max(2).min(w).min(h);
    let (range_x, range_y) = (u64::from(w - side), u64::from(h - side));
    let fps = u64::from(fps.max(1));
    // Distance travelled in pixels: speed (‰ of h per second) · h · frame / fps.
    let travel = |speed: u32| mul_div(frame, u64::from(speed) * u64::from(h), 1000 * fps);
    let start = |permille: u32, range: u64| range * u64::from(permille) / 1000;
    let (x, hits_x) = bounce(
        start(sprite.start_permille.0, range_x) + travel(sprite.speed_permille.0),
        range_x,
    );
    let (y, hits_y) = bounce(
        start(sprite.start_permille.1, range_y) + travel(sprite.speed_permille.1),
        range_y,
    );
    let color =
        PALETTE[(sprite.first_color + (hits_x + hits_y) as usize % PALETTE.len()) % PALETTE.len()];
    (
        Rectangle::new(Point::new(x as i32, y as i32), Size::new_equal(side)),
        color,
    )
}

/// Draws frame `frame` of the bounce scene.
pub fn draw<D>(frame: u64, target: &mut D, input: &SceneInput<'_>) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let area = target.bounding_box();
    let (w, h) = (area.size.width, area.size.height);
    target.fill_solid(&area, BACKGROUND)?;
    if w < 4 || h < 4 {
        return Ok(());
    }
    for sprite in &SPRITES {
        let (bbox, color) = sprite_box(sprite, frame, w, h, input.fps());
        let bbox = Rectangle::new(bbox.top_left + area.top_left, bbox.size);
        let side = bbox.size.width;
        let centre = bbox.top_left + Point::new_equal((side / 2) as i32);
        let fill = PrimitiveStyle::with_fill(color);
        match sprite.shape {
            Shape::Circle => disc(target, centre, side / 2, color)?,
            Shape::Square => bbox.into_styled(fill).draw(target)?,
            Shape::Triangle => {
                let p = bbox.top_left;
                let s = side as i32 - 1;
                Triangle::new(
                    p + Point::new(s / 2, 0),
                    p + Point::new(0, s),
                    p + Point::new(s, s),
                )
                .into_styled(fill)
                .draw(target)?
            }
            Shape::Ring => ring(target, centre, side / 2, (side / 8).max(1), color)?,
            Shape::Rounded => {
                RoundedRectangle::new(bbox, CornerRadii::new(Size::new_equal(side / 4)))
                    .into_styled(fill)
                    .draw(target)?
            }
        }
    }
    let mut label = TextBuf::<32>::new();
    let _ = write!(label, "frame {frame}");
    let scale = (h / 540).max(1);
    draw_text(
        target,
        label.as_str(),
        area.top_left + Point::new(8, 8),
        Anchor::TopLeft,
        &FONT_10X20,
        scale,
        Rgb888::new(0x90, 0x98, 0xC0),
        None,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sprites_stay_on_screen_and_bounce() {
        for frame in (0..20_000).step_by(7) {
            for s in &SPRITES {
                let (b, _) = sprite_box(s, frame, 1280, 720, 60);
                assert!(b.top_left.x >= 0 && b.top_left.y >= 0);
                assert!(b.top_left.x as u32 + b.size.width <= 1280);
                assert!(b.top_left.y as u32 + b.size.height <= 720);
            }
        }
    }

    #[test]
    fn motion_is_per_second_not_per_frame() {
        let s = &SPRITES[0];
        assert_eq!(
            sprite_box(s, 60, 1280, 720, 60),
            sprite_box(s, 30, 1280, 720, 30)
        );
        // Circle: side 115, range x 1165; starts at 116, moves 0.33·720 = 237.6 px/s.
        let (b0, c0) = sprite_box(s, 0, 1280, 720, 60);
        assert_eq!(b0.top_left, Point::new(116, 121));
        assert_eq!(b0.size, Size::new_equal(115));
        assert_eq!(c0, PALETTE[0]);
        let (b1, _) = sprite_box(s, 60, 1280, 720, 60);
        assert_eq!(b1.top_left.x - b0.top_left.x, 237);
    }

    #[test]
    fn colour_changes_at_a_wall() {
        // Sprite 0 on x: reaches the right wall (1165) after (1165 - 116) / 237.6 s ≈ 4.41 s.
        let s = &SPRITES[0];
        let (before, c_before) = sprite_box(s, 264, 1280, 720, 60);
        let (after, c_after) = sprite_box(s, 266, 1280, 720, 60);
        assert!(before.top_left.x < 1165 && after.top_left.x < 1165);
        assert_ne!(c_before, c_after);
    }
}
