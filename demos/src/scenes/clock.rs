//! `clock`: an analog clock showing the time elapsed since frame 0.
//!
//! The hands are driven by the frame number and the configured frame rate only: at frame `n` and
//! `fps` frames per second the seconds hand has swept `(n mod 60·fps) / (60·fps)` of a turn (it
//! moves smoothly, one step per frame), the minute hand `(n mod 3600·fps) / (3600·fps)` and the
//! hour hand `(n mod 43200·fps) / (43200·fps)`. At frame 0 all hands point to 12. A digital
//! read-out of the elapsed time (`HH:MM:SS.ff`, `ff` = frame within the second) sits under the
//! centre.

use core::fmt::Write;

use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::Point;
use embedded_graphics::mono_font::ascii::FONT_10X20;
use embedded_graphics::pixelcolor::Rgb888;

use crate::fixed::TURN_Q16;
use crate::shapes::{disc, half_width, radial_quad, ring, span};
use crate::text::{draw_text, Anchor, TextBuf};
use crate::SceneInput;

/// Background colour.
pub const BACKGROUND: Rgb888 = Rgb888::new(0x10, 0x14, 0x24);
/// Dial colour.
pub const FACE: Rgb888 = Rgb888::new(0xF0, 0xEC, 0xE0);
/// Hour and minute hands, ticks and rim.
pub const INK: Rgb888 = Rgb888::new(0x20, 0x20, 0x28);
/// Seconds hand.
pub const SECONDS: Rgb888 = Rgb888::new(0xD0, 0x20, 0x20);

/// Angles of the hands, in [`TURN_Q16`] units clockwise from 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hands {
    /// Hour hand.
    pub hour: u32,
    /// Minute hand.
    pub minute: u32,
    /// Seconds hand.
    pub second: u32,
}

/// Hand angles at `frame` for `fps` frames per second (0 is treated as 1).
pub fn hands(frame: u64, fps: u32) -> Hands {
    let fps = u64::from(fps.max(1));
    let angle = |period_s: u64| {
        let period = period_s * fps;
        ((frame % period) * u64::from(TURN_Q16) / period) as u32
    };
    Hands {
        hour: angle(12 * 3600),
        minute: angle(3600),
        second: angle(60),
    }
}

/// Centre and radius of the dial for a `w × h` target.
pub fn dial(w: u32, h: u32) -> (Point, u32) {
    (
        Point::new((w / 2) as i32, (h / 2) as i32),
        w.min(h) * 9 / 20,
    )
}

/// A hand from `tail` behind the centre to `length`, `width` wide at the centre, tapering to
/// half of that at the tip.
fn hand<D>(
    target: &mut D,
    c: Point,
    turn: u32,
    tail: i32,
    length: i32,
    width: u32,
    color: Rgb888,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let half = (width as i32 / 2).max(1);
    radial_quad(
        target,
        c,
        turn,
        -tail,
        half,
        length,
        (half / 2).max(1),
        color,
    )
}

/// Draws frame `frame` of the clock.
pub fn draw<D>(frame: u64, target: &mut D, input: &SceneInput<'_>) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let area = target.bounding_box();
    let (w, h) = (area.size.width, area.size.height);
    let (centre, radius) = dial(w, h);
    if radius < 8 {
        return target.fill_solid(&area, BACKGROUND);
    }
    let c = area.top_left + centre;
    let r = radius as i32;

    // Background and dial in one pass: each row is background, face, background.
    let (left, right) = (
        i64::from(area.top_left.x),
        i64::from(area.top_left.x) + i64::from(w) - 1,
    );
    for y in area.rows() {
        let (y, dy) = (i64::from(y), i64::from(y) - i64::from(c.y));
        match half_width(radius, dy) {
            Some(half) => {
                let (x0, x1) = (
                    i64::from(c.x) - i64::from(half),
                    i64::from(c.x) + i64::from(half),
                );
                span(target, left, x0 - 1, y, BACKGROUND)?;
                span(target, x0, x1, y, FACE)?;
                span(target, x1 + 1, right, y, BACKGROUND)?;
            }
            None => span(target, left, right, y, BACKGROUND)?,
        }
    }
    ring(target, c, radius, (radius / 40).max(1), INK)?;

    for i in 0..60u32 {
        let turn = i * TURN_Q16 / 60;
        let is_hour = i % 5 == 0;
        let inner = if is_hour { r * 80 / 100 } else { r * 88 / 100 };
        let half = if is_hour { radius / 80 } else { radius / 240 };
        let half = half.max(1) as i32;
        radial_quad(target, c, turn, inner, half, r * 94 / 100, half, INK)?;
    }

    // Digital read-out of the elapsed time.
    let fps = u64::from(input.fps());
    let seconds = frame / fps;
    let mut line = TextBuf::<32>::new();
    let _ = write!(
        line,
        "{:02}:{:02}:{:02}.{:02}",
        seconds / 3600 % 100,
        seconds / 60 % 60,
        seconds % 60,
        frame % fps
    );
    let scale = (radius / 160).max(1);
    draw_text(
        target,
        line.as_str(),
        c + Point::new(0, r * 30 / 100),
        Anchor::TopCenter,
        &FONT_10X20,
        scale,
        INK,
        None,
    )?;
    let mut rate = TextBuf::<16>::new();
    let _ = write!(rate, "{fps} fps");
    draw_text(
        target,
        rate.as_str(),
        c - Point::new(0, r * 45 / 100),
        Anchor::TopCenter,
        &FONT_10X20,
        scale,
        INK,
        None,
    )?;

    let a = hands(frame, input.fps());
    hand(target, c, a.hour, r / 10, r * 50 / 100, radius / 14, INK)?;
    hand(target, c, a.minute, r / 10, r * 75 / 100, radius / 22, INK)?;
    hand(
        target,
        c,
        a.second,
        r * 15 / 100,
        r * 86 / 100,
        radius / 90,
        SECONDS,
    )?;
    disc(target, c, (radius / 24).max(2), SECONDS)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_angles() {
        assert_eq!(
            hands(0, 60),
            Hands {
                hour: 0,
                minute: 0,
                second: 0
            }
        );
        assert_eq!(hands(15 * 60, 60).second, TURN_Q16 / 4);
        assert_eq!(hands(30 * 25, 25).second, TURN_Q16 / 2);
        assert_eq!(hands(60 * 60, 60).second, 0);
        assert_eq!(hands(60 * 60, 60).minute, TURN_Q16 / 60);
        assert_eq!(hands(3 * 3600 * 60, 60).hour, TURN_Q16 / 4);
        // One frame moves the seconds hand by 1/(60·fps) turn.
        assert_eq!(hands(1, 60).second, TURN_Q16 / 3600);
        assert_eq!(hands(1, 0), hands(1, 1));
    }
}
