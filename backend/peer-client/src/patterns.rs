//! The two test patterns and their checksum, defined independently of the backend.
//!
//! Pixels are `0x00RRGGBB`; the checksum is the CRC-32 (IEEE 802.3, reflected,
//! init and final XOR 0xFFFFFFFF) of every visible pixel written row by row as a
//! little-endian u32 — what the dom0 backend reports for a frame. This file
//! carries its own bitwise CRC-32 so the guest shares no code with the backend.

/// Pattern of frame 0 (shown by SET_CONFIG): eight vertical colour bars.
pub fn bars(x: u32, _y: u32, width: u32) -> u32 {
    const COLOURS: [u32; 8] = [
        0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000,
    ];
    COLOURS[(u64::from(x) * 8 / u64::from(width.max(1))) as usize % 8]
}

/// Pattern of the flipped-in buffer: 32-pixel checker of a red/green ramp and grey.
pub fn checker(x: u32, y: u32, width: u32, height: u32) -> u32 {
    if (x / 32 + y / 32) % 2 == 0 {
        let r = x * 255 / width.saturating_sub(1).max(1);
        let g = y * 255 / height.saturating_sub(1).max(1);
        (r << 16) | (g << 8) | 0x40
    } else {
        0x202020
    }
}

/// Running CRC-32 (IEEE), bitwise.
#[derive(Clone, Copy)]
pub struct Crc32(u32);

impl Crc32 {
    /// A fresh CRC.
    pub fn new() -> Crc32 {
        Crc32(0xffff_ffff)
    }

    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u32::from(b);
            for _ in 0..8 {
                let mask = (self.0 & 1).wrapping_neg();
                self.0 = (self.0 >> 1) ^ (0xedb8_8320 & mask);
            }
        }
    }

    /// The final value.
    pub fn finish(self) -> u32 {
        !self.0
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Crc32::new()
    }
}

/// CRC-32 of a `width` x `height` frame given by `pixel`.
pub fn frame_crc(width: u32, height: u32, pixel: impl Fn(u32, u32) -> u32) -> u32 {
    let mut crc = Crc32::new();
    let mut row = Vec::with_capacity(width as usize * 4);
    for y in 0..height {
        row.clear();
        for x in 0..width {
            row.extend_from_slice(&(pixel(x, y) & 0x00ff_ffff).to_le_bytes());
        }
        crc.update(&row);
    }
    crc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        let mut crc = Crc32::new();
        crc.update(b"123456789");
        assert_eq!(crc.finish(), 0xcbf4_3926);
    }

    #[test]
    fn patterns_cover_their_colours() {
        assert_eq!(bars(0, 0, 800), 0xffffff);
        assert_eq!(bars(799, 0, 800), 0x000000);
        assert_eq!(bars(100, 5, 800), 0xffff00);
        assert_eq!(checker(0, 0, 64, 64), 0x40);
        assert_eq!(checker(32, 0, 64, 64), 0x202020);
        assert_eq!(checker(63, 63, 64, 64), 0xffff40);
        assert_ne!(
            frame_crc(64, 48, |x, _| bars(x, 0, 64)),
            frame_crc(64, 48, |x, y| checker(x, y, 64, 48))
        );
    }
}
