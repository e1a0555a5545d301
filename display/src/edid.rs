//! EDID base-block parser: header, checksum and the preferred detailed timing.
//!
//! With protocol version 2 the frontend asks the backend for each connector's
//! EDID (`XENDISPL_OP_GET_EDID`, `xen/include/public/io/displif.h`); a valid
//! EDID overrides the `resolution` from xenstore. Only what the frontend needs
//! is decoded (VESA E-EDID 1.4, section 3): the 8-byte header, the block
//! checksum, and the first 18-byte detailed timing descriptor at offset 54,
//! which is the preferred timing mode. Anything else is left alone, and any
//! inconsistency is an [`EdidError`], never a panic or an out-of-bounds read.

use core::fmt;

use crate::config::Resolution;

/// Size of one EDID block (`XENDISPL_EDID_BLOCK_SIZE`).
pub const EDID_BLOCK_SIZE: usize = 128;

/// The fixed header every base block starts with.
pub const EDID_HEADER: [u8; 8] = [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];

/// Offset of the first detailed timing descriptor (the preferred mode).
const FIRST_DTD_OFFSET: usize = 54;

/// The preferred mode found in an EDID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreferredMode {
    /// Active pixels.
    pub resolution: Resolution,
    /// Pixel clock in kHz.
    pub pixel_clock_khz: u32,
    /// Vertical refresh in millihertz, when the blanking makes it computable.
    pub refresh_mhz: Option<u32>,
}

/// Why an EDID was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdidError {
    /// Fewer than 128 bytes.
    TooShort(usize),
    /// The header is not `00 ff ff ff ff ff ff 00`.
    BadHeader,
    /// The 128 bytes do not sum to 0 mod 256.
    BadChecksum(u8),
    /// The first descriptor is a display descriptor, not a timing.
    NoPreferredTiming,
    /// The preferred timing has zero active pixels.
    ZeroSize,
}

impl fmt::Display for EdidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EdidError::TooShort(n) => write!(f, "EDID of {n} bytes, a base block is 128"),
            EdidError::BadHeader => f.write_str("EDID header is not 00 ff ff ff ff ff ff 00"),
            EdidError::BadChecksum(s) => write!(f, "EDID checksum off by {s:#04x}"),
            EdidError::NoPreferredTiming => f.write_str("EDID has no preferred detailed timing"),
            EdidError::ZeroSize => f.write_str("EDID preferred timing has zero size"),
        }
    }
}

/// Parse an EDID and return its preferred mode.
pub fn parse_preferred_mode(edid: &[u8]) -> Result<PreferredMode, EdidError> {
    let Some(block) = edid.get(..EDID_BLOCK_SIZE) else {
        return Err(EdidError::TooShort(edid.len()));
    };
    if block[..8] != EDID_HEADER {
        return Err(EdidError::BadHeader);
    }
    let sum = block.iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
    if sum != 0 {
        return Err(EdidError::BadChecksum(sum));
    }
    let d = &block[FIRST_DTD_OFFSET..FIRST_DTD_OFFSET + 18];
    let clock_10khz = u32::from(u16::from_le_bytes([d[0], d[1]]));
    if clock_10khz == 0 {
        return Err(EdidError::NoPreferredTiming);
    }
    let h_active = u32::from(d[2]) | (u32::from(d[4] >> 4) << 8);
    let h_blank = u32::from(d[3]) | (u32::from(d[4] & 0xf) << 8);
    let v_active = u32::from(d[5]) | (u32::from(d[7] >> 4) << 8);
    let v_blank = u32::from(d[6]) | (u32::from(d[7] & 0xf) << 8);
    let resolution = Resolution::try_new(h_active, v_active).ok_or(EdidError::ZeroSize)?;
    let total = u64::from(h_active + h_blank) * u64::from(v_active + v_blank);
    let pixel_clock_hz = u64::from(clock_10khz) * 10_000;
    let refresh_mhz = (pixel_clock_hz * 1000)
        .checked_div(total)
        .and_then(|r| u32::try_from(r).ok());
    Ok(PreferredMode {
        resolution,
        pixel_clock_khz: clock_10khz * 10,
        refresh_mhz,
    })
}

/// Build a minimal valid EDID 1.4 base block whose preferred timing is
/// `width`x`height` at 60 Hz with CVT-RB-like blanking. Used by tests on both
/// sides of the protocol (our backend's EDID must parse here).
pub fn build_base_block(width: u16, height: u16) -> [u8; EDID_BLOCK_SIZE] {
    let mut b = [0u8; EDID_BLOCK_SIZE];
    b[..8].copy_from_slice(&EDID_HEADER);
    b[18] = 1; // EDID version 1
    b[19] = 4; // revision 4
    let (h_blank, v_blank) = (160u32, 30u32);
    let total = (u32::from(width) + h_blank) * (u32::from(height) + v_blank);
    let clock_10khz = (total * 60).div_ceil(10_000).min(u32::from(u16::MAX)) as u16;
    let d = &mut b[FIRST_DTD_OFFSET..FIRST_DTD_OFFSET + 18];
    d[..2].copy_from_slice(&clock_10khz.to_le_bytes());
    d[2] = width as u8;
    d[3] = h_blank as u8;
    d[4] = (((width >> 8) & 0xf) as u8) << 4 | ((h_blank >> 8) & 0xf) as u8;
    d[5] = height as u8;
    d[6] = v_blank as u8;
    d[7] = (((height >> 8) & 0xf) as u8) << 4 | ((v_blank >> 8) & 0xf) as u8;
    let sum = b[..127].iter().fold(0u8, |acc, x| acc.wrapping_add(*x));
    b[127] = 0u8.wrapping_sub(sum);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_builds() {
        for (w, h) in [(1920u16, 1080u16), (800, 600), (4095, 2047), (1, 1)] {
            let m = parse_preferred_mode(&build_base_block(w, h)).unwrap();
            assert_eq!(
                m.resolution,
                Resolution::try_new(w.into(), h.into()).unwrap()
            );
            let hz = m.refresh_mhz.unwrap();
            assert!((59_000..=61_000).contains(&hz), "{w}x{h}: {hz} mHz");
        }
    }

    #[test]
    fn real_monitor_block() {
        // A Dell U2410 base block's first DTD: 1920x1200, 154 MHz.
        let mut b = build_base_block(1, 1);
        let dtd = [
            0x28, 0x3c, 0x80, 0xa0, 0x70, 0xb0, 0x23, 0x40, 0x30, 0x20, 0x36, 0x00, 0x06, 0x44,
            0x21, 0x00, 0x00, 0x1a,
        ];
        b[54..72].copy_from_slice(&dtd);
        let sum = b[..127].iter().fold(0u8, |acc, x| acc.wrapping_add(*x));
        b[127] = 0u8.wrapping_sub(sum);
        let m = parse_preferred_mode(&b).unwrap();
        assert_eq!(
            m.resolution,
            Resolution {
                width: 1920,
                height: 1200
            }
        );
        assert_eq!(m.pixel_clock_khz, 154_000);
        assert_eq!(m.refresh_mhz, Some(59_950));
    }

    #[test]
    fn rejects_broken_blocks() {
        let good = build_base_block(640, 480);
        assert_eq!(
            parse_preferred_mode(&good[..127]),
            Err(EdidError::TooShort(127))
        );
        assert_eq!(parse_preferred_mode(&[]), Err(EdidError::TooShort(0)));
        let mut b = good;
        b[1] = 0;
        assert_eq!(parse_preferred_mode(&b), Err(EdidError::BadHeader));
        let mut b = good;
        b[100] ^= 1;
        assert!(matches!(
            parse_preferred_mode(&b),
            Err(EdidError::BadChecksum(_))
        ));
        let mut b = good;
        b[54] = 0;
        b[55] = 0;
        let sum = b[..127].iter().fold(0u8, |acc, x| acc.wrapping_add(*x));
        b[127] = 0u8.wrapping_sub(sum);
        assert_eq!(parse_preferred_mode(&b), Err(EdidError::NoPreferredTiming));
        let mut b = good;
        b[56] = 0;
        b[58] &= 0x0f;
        let sum = b[..127].iter().fold(0u8, |acc, x| acc.wrapping_add(*x));
        b[127] = 0u8.wrapping_sub(sum);
        assert_eq!(parse_preferred_mode(&b), Err(EdidError::ZeroSize));
        // Trailing extension bytes are allowed and ignored.
        let mut long = [0u8; 256];
        long[..128].copy_from_slice(&good);
        assert!(parse_preferred_mode(&long).is_ok());
    }
}
