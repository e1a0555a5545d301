//! `Rgb888` ⇄ `0x00RRGGBB` packing for scenes that build rows of packed pixels.
//!
//! Scenes compute rows as packed `u32`s (cheap to add, mask and copy) and hand them to
//! `fill_contiguous` as colours; with the framebuffer packing them back, the round trip compiles
//! to a masked copy.

use embedded_graphics::pixelcolor::{Rgb888, RgbColor};

/// `0x00RRGGBB` of a colour.
#[inline(always)]
pub(crate) fn pack(c: Rgb888) -> u32 {
    (u32::from(c.r()) << 16) | (u32::from(c.g()) << 8) | u32::from(c.b())
}

/// The colour of `0x00RRGGBB` (the top byte is ignored).
#[inline(always)]
pub(crate) fn unpack(p: u32) -> Rgb888 {
    Rgb888::new((p >> 16) as u8, (p >> 8) as u8, p as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let c = Rgb888::new(0x12, 0x34, 0x56);
        assert_eq!(pack(c), 0x0012_3456);
        assert_eq!(unpack(0xFF12_3456), c);
    }
}
