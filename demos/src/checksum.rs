//! The frame checksum: CRC-32 of the visible XRGB8888 bytes, row-major.
//!
//! Definition (shared with the dom0 backend, which checksums the frames it captures from granted
//! buffers): CRC-32 (IEEE 802.3 polynomial, as computed by `crc32fast`) over, for each row
//! `y = 0..height` in order, the `width * 4` bytes of that row's visible pixels, each pixel
//! `0x00RRGGBB` stored little-endian (bytes B, G, R, X). Stride padding between rows is not
//! included, so a buffer's checksum does not depend on its stride.
//!
//! Neighbours: `xen_display::framebuffer::Framebuffer::rows` yields exactly the rows to feed in;
//! the host tool `demo-render` prints this checksum and the golden tests pin it per scene;
//! [`render_crc32`] renders and checksums in one call (for a guest-side check).

extern crate alloc;

use alloc::vec;

use xen_display::framebuffer::{Framebuffer, FramebufferError};

use crate::{render, Scene, SceneInput};

/// Renders frame `frame` of `scene` at `width × height` into a fresh packed buffer (allocated,
/// `width · height · 4` bytes) and returns its checksum: what `demo-render` prints, for a guest
/// to prove it draws the same pixels as the host.
pub fn render_crc32(
    scene: Scene,
    frame: u64,
    width: u32,
    height: u32,
    input: &SceneInput<'_>,
) -> Result<u32, FramebufferError> {
    let len =
        (width as usize)
            .checked_mul(height as usize)
            .ok_or(FramebufferError::BufferTooSmall {
                needed_pixels: None,
                len_pixels: 0,
            })?;
    let mut pixels = vec![0u32; len];
    let mut fb = Framebuffer::try_new_packed(&mut pixels, width, height)?;
    let Ok(()) = render(scene, frame, &mut fb, input);
    Ok(frame_crc32(fb.rows()))
}

/// Bytes hashed per `crc32fast` update: a chunk of pixels converted to little-endian bytes.
const CHUNK_PIXELS: usize = 256;

/// Incremental frame checksum: feed visible rows top to bottom, then [`FrameCrc32::finish`].
#[derive(Debug, Clone, Default)]
pub struct FrameCrc32 {
    hasher: crc32fast::Hasher,
}

impl FrameCrc32 {
    /// A checksum of zero rows so far.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one row of visible pixels (`0x00RRGGBB` values, `width` of them).
    pub fn update_row(&mut self, row: &[u32]) {
        let mut bytes = [0u8; CHUNK_PIXELS * 4];
        for chunk in row.chunks(CHUNK_PIXELS) {
            for (dst, pixel) in bytes.chunks_exact_mut(4).zip(chunk) {
                dst.copy_from_slice(&pixel.to_le_bytes());
            }
            self.hasher.update(&bytes[..chunk.len() * 4]);
        }
    }

    /// The CRC-32 of everything fed so far.
    pub fn finish(self) -> u32 {
        self.hasher.finalize()
    }
}

/// The checksum of a frame given as its visible rows, top to bottom.
pub fn frame_crc32<'a>(rows: impl IntoIterator<Item = &'a [u32]>) -> u32 {
    let mut crc = FrameCrc32::new();
    for row in rows {
        crc.update_row(row);
    }
    crc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_crc32_of_little_endian_bytes() {
        // "123456789" is the standard CRC-32 check input: 0xCBF43926.
        let mut crc = crc32fast::Hasher::new();
        crc.update(b"123456789");
        assert_eq!(crc.finalize(), 0xCBF4_3926);

        let rows: [&[u32]; 2] = [&[0x0011_2233, 0x0044_5566], &[0x00FF_FFFF]];
        let bytes = [
            0x33, 0x22, 0x11, 0, 0x66, 0x55, 0x44, 0, 0xFF, 0xFF, 0xFF, 0,
        ];
        assert_eq!(frame_crc32(rows), crc32fast::hash(&bytes));
    }

    #[test]
    fn render_crc32_matches_a_framebuffer_render() {
        let input = SceneInput::default();
        let mut px = vec![7u32; 100 * 60];
        let mut fb = Framebuffer::try_new_packed(&mut px, 100, 60).unwrap();
        let Ok(()) = render(Scene::Testcard, 9, &mut fb, &input);
        let crc = frame_crc32(fb.rows());
        assert_eq!(render_crc32(Scene::Testcard, 9, 100, 60, &input), Ok(crc));
        assert_eq!(
            render_crc32(Scene::Testcard, 9, 0, 60, &input),
            Err(FramebufferError::EmptyGeometry)
        );
    }

    #[test]
    fn long_rows_are_chunked_transparently() {
        let row: Vec<u32> = (0..1000u32).map(|i| i.wrapping_mul(0x9E37_79B9)).collect();
        let bytes: Vec<u8> = row.iter().flat_map(|p| p.to_le_bytes()).collect();
        assert_eq!(frame_crc32([row.as_slice()]), crc32fast::hash(&bytes));
        assert_eq!(frame_crc32(core::iter::empty()), crc32fast::hash(&[]));
    }
}
