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
/// is replaced by the frame number's low 24 bits. Written as runs of equal
/// pixels (slice fills), not pixel by pixel: it runs on every pixel of every
/// frame, under TCG.
pub fn pattern_row(frame: u64, width: u32, height: u32, y: u32, row: &mut [u32]) {
    let n = row.len().min(width as usize);
    let row = &mut row[..n];
    let w = u64::from(width.max(1));
    let green = (u64::from(y) * 255 / u64::from(height.max(1))) as u32;
    let blue = (frame.wrapping_mul(3) & 0xff) as u32;
    let background = (green << 8) | blue;
    // Columns with red = r are ceil(r*w/255) .. ceil((r+1)*w/255): fill runs.
    let mut start = 0usize;
    for red in 0..=255u64 {
        let end = ((red + 1) * w).div_ceil(255).min(n as u64) as usize;
        if end > start {
            row[start..end].fill(((red as u32) << 16) | background);
            start = end;
        }
        if start >= n {
            break;
        }
    }
    let bar_start = (frame.wrapping_mul(BAR_STEP) % w) as usize;
    let bar_end = bar_start + BAR_WIDTH as usize;
    if bar_start < n {
        row[bar_start..bar_end.min(n)].fill(0x00ff_ffff);
    }
    // The part of the bar that wraps around to the left edge.
    let wrapped_end = bar_end.saturating_sub(w as usize).min(n);
    row[..wrapped_end].fill(0x00ff_ffff);
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
        // The run-length fill equals the defining formula, bar wrap included.
        for (w, frame) in [
            (1u32, 1000u64),
            (3, 1000),
            (254, 1000),
            (255, 1000),
            (256, 1000),
            (640, 1000),
            (640, 158),
            (640, 159),
            (1920, 1000),
            (1920, 479),
            (20, 4),
        ] {
            let mut row = vec![0u32; w as usize];
            pattern_row(frame, w, 2, 1, &mut row);
            let bar_start = (frame * 4) % u64::from(w);
            for (x, px) in row.iter().enumerate() {
                let x = x as u64;
                let in_bar = (x + u64::from(w) - bar_start) % u64::from(w) < 16;
                let want = if in_bar {
                    0x00ff_ffff
                } else {
                    (((x * 255 / u64::from(w)) as u32) << 16)
                        | (127 << 8)
                        | ((frame * 3) & 0xff) as u32
                };
                assert_eq!(*px, want, "w {w} frame {frame} x {x}");
            }
        }
        // Tiny and odd sizes do not panic.
        let mut one = [0u32; 1];
        pattern_row(5, 1, 1, 0, &mut one);
        pattern_row(5, 3, 1, 0, &mut one);
    }
}
