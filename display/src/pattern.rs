//! A built-in test pattern that changes every frame, predictable on the host.
//!
//! Until a demo scene is plugged in, the frontend shows this pattern. Each
//! pixel is a pure function of the frame number, the resolution and its
//! position, so the backend's checksum of flip `n` can be recomputed on the
//! host by rendering [`TestPattern`] frame `n` at the same resolution. Pixel
//! (0, 0) carries the low 24 bits of the frame number, so a captured frame names
//! itself. The picture: a red/green gradient whose blue channel steps with the
//! frame number, and a white vertical bar that moves 4 pixels per frame.

use alloc::vec;

use crate::{FrameSource, FrameTarget};

/// Width of the moving bar in pixels.
const BAR_WIDTH: u32 = 16;
/// Bar movement per frame in pixels.
const BAR_STEP: u64 = 4;

/// Fill one row `y` (of `width` pixels) of frame `frame` at `width`x`height`.
///
/// Pixel (x, y) is `0x00ffffff` inside the bar (columns `bar_start ..
/// bar_start + 16`, wrapping at `width`, with `bar_start = frame * 4 mod width`),
/// otherwise `red << 16 | green << 8 | blue` with `red = x * 255 / width`,
/// `green = y * 255 / height`, `blue = frame * 3 mod 256`; then pixel (0, 0)
/// is replaced by the frame number's low 24 bits. No division per pixel: this
/// runs once per frame on every pixel, under TCG.
pub fn pattern_row(frame: u64, width: u32, height: u32, y: u32, row: &mut [u32]) {
    let w = u64::from(width.max(1));
    let green = (u64::from(y) * 255 / u64::from(height.max(1))) as u32;
    let blue = (frame.wrapping_mul(3) & 0xff) as u32;
    let background = (green << 8) | blue;
    let bar_start = frame.wrapping_mul(BAR_STEP) % w;
    let bar_end = bar_start + u64::from(BAR_WIDTH);
    // Columns below this are in the part of the bar that wrapped around.
    let wrapped_end = bar_end.saturating_sub(w);
    // red = floor(x * 255 / w), kept as quotient + remainder.
    let (mut red, mut rem) = (0u64, 0u64);
    for (x, px) in (0u64..).zip(row.iter_mut().take(width as usize)) {
        let in_bar = (x >= bar_start && x < bar_end) || x < wrapped_end;
        *px = if in_bar {
            0x00ff_ffff
        } else {
            ((red as u32) << 16) | background
        };
        rem += 255;
        if rem >= w {
            red += rem / w;
            rem %= w;
        }
    }
    if y == 0 {
        if let Some(first) = row.first_mut() {
            *first = (frame & 0x00ff_ffff) as u32;
        }
    }
}

/// The pattern as a [`FrameSource`]: every connector shows it at its own
/// resolution.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestPattern;

impl FrameSource for TestPattern {
    fn render(&mut self, _connector: usize, frame: u64, target: &mut FrameTarget<'_>) {
        let (width, height) = (target.width(), target.height());
        let mut row = vec![0; width as usize];
        for y in 0..height {
            pattern_row(frame, width, height, y, &mut row);
            target.write_row(y, &row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_every_frame_and_names_itself() {
        let (w, h) = (64u32, 8u32);
        let render = |n: u64| {
            let mut px = vec![0u32; (w * h) as usize];
            for y in 0..h {
                let row = &mut px[(y * w) as usize..((y + 1) * w) as usize];
                pattern_row(n, w, h, y, row);
            }
            px
        };
        let a = render(1);
        let b = render(2);
        assert_ne!(a, b);
        assert_eq!(a, render(1));
        assert_eq!(a[0], 1);
        assert_eq!(render(0x1234567)[0], 0x234567);
        // Bar of frame 1 starts at x = 4.
        assert_eq!(a[4 + w as usize], 0x00ff_ffff);
        assert_ne!(a[3 + w as usize], 0x00ff_ffff);
        // The incremental red channel equals the defining division.
        for w in [1u32, 3, 254, 255, 256, 640, 1920] {
            let mut row = vec![0u32; w as usize];
            pattern_row(1000, w, 2, 1, &mut row);
            let bar_start = (1000 * 4) % u64::from(w);
            for (x, px) in row.iter().enumerate() {
                let x = x as u64;
                let in_bar = (x + u64::from(w) - bar_start) % u64::from(w) < 16;
                let want = if in_bar {
                    0x00ff_ffff
                } else {
                    (((x * 255 / u64::from(w)) as u32) << 16) | (127 << 8) | ((3000 & 0xff) as u32)
                };
                assert_eq!(*px, want, "w {w} x {x}");
            }
        }
        // Tiny and odd sizes do not panic.
        let mut one = [0u32; 1];
        pattern_row(5, 1, 1, 0, &mut one);
        pattern_row(5, 3, 1, 0, &mut one);
    }
}
