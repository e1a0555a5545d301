//! A 128-byte EDID 1.4 base block describing one virtual connector.
//!
//! Answer to displif `GET_EDID` (protocol v2): its preferred detailed timing is
//! the connector's `resolution` at the emulated refresh rate, so a frontend that
//! trusts EDID gets the same mode it would read from xenstore. Layout from
//! VESA E-EDID 1.4 (header, vendor/product, basic parameters, chromaticity,
//! four 18-byte descriptors, extension count, checksum).

/// Size of the base block.
pub const EDID_BLOCK_LEN: usize = 128;

/// Why no EDID can describe a resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unrepresentable;

/// Timing parameters (a CVT reduced-blanking-like layout).
const H_BLANK: u32 = 160;
const H_FRONT: u32 = 48;
const H_SYNC: u32 = 32;
const V_FRONT: u32 = 3;
const V_SYNC: u32 = 5;
const V_BACK: u32 = 15;
/// Assumed pixel density for the physical size fields (96 dpi).
const DOTS_PER_METRE: u32 = 3780;

/// Build the EDID for a `width` x `height` connector refreshed at `refresh_hz`
/// (clamped so the pixel clock fits the 16-bit, 10 kHz field), naming the
/// connector `unique_id` in the serial-number descriptor.
pub fn build(
    width: u32,
    height: u32,
    refresh_hz: u32,
    unique_id: &str,
) -> Result<[u8; EDID_BLOCK_LEN], Unrepresentable> {
    let v_blank = V_FRONT + V_SYNC + V_BACK;
    if width == 0 || height == 0 || width > 0xfff || height > 0xfff {
        return Err(Unrepresentable);
    }
    let h_total = u64::from(width + H_BLANK);
    let v_total = u64::from(height + v_blank);
    let max_clock_10khz = u64::from(u16::MAX);
    let mut refresh = u64::from(refresh_hz.clamp(1, 240));
    while refresh > 1 && (h_total * v_total * refresh).div_ceil(10_000) > max_clock_10khz {
        refresh -= 1;
    }
    let clock_10khz = (h_total * v_total * refresh).div_ceil(10_000);
    if clock_10khz > max_clock_10khz {
        return Err(Unrepresentable);
    }

    let mut e = [0u8; EDID_BLOCK_LEN];
    e[0..8].copy_from_slice(&[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]);
    // Manufacturer "XEN" (three 5-bit letters, big-endian), product 0xd15b, serial 1.
    let letter = |c: u8| u16::from(c - b'A' + 1);
    let vendor = (letter(b'X') << 10) | (letter(b'E') << 5) | letter(b'N');
    e[8..10].copy_from_slice(&vendor.to_be_bytes());
    e[10..12].copy_from_slice(&0xd15bu16.to_le_bytes());
    e[12..16].copy_from_slice(&1u32.to_le_bytes());
    e[16] = 0; // week unspecified
    e[17] = 36; // model year 2026 - 1990
    e[18] = 1; // EDID 1.4
    e[19] = 4;
    e[20] = 0x80 | 0x20; // digital input, 8 bits per colour
    let width_mm = width * 1000 / DOTS_PER_METRE;
    let height_mm = height * 1000 / DOTS_PER_METRE;
    e[21] = (width_mm / 10).clamp(1, 255) as u8;
    e[22] = (height_mm / 10).clamp(1, 255) as u8;
    e[23] = 120; // gamma 2.2
    e[24] = 0x06; // RGB 4:4:4, sRGB default, preferred timing is native
                  // sRGB chromaticity.
    e[25..35].copy_from_slice(&[0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54]);
    // No established timings (35..38); standard timings unused.
    for i in 0..8 {
        e[38 + 2 * i] = 0x01;
        e[39 + 2 * i] = 0x01;
    }
    // Descriptor 1: preferred detailed timing.
    let d = &mut e[54..72];
    d[0..2].copy_from_slice(&(clock_10khz as u16).to_le_bytes());
    d[2] = width as u8;
    d[3] = H_BLANK as u8;
    d[4] = (((width >> 8) & 0xf) << 4 | ((H_BLANK >> 8) & 0xf)) as u8;
    d[5] = height as u8;
    d[6] = v_blank as u8;
    d[7] = (((height >> 8) & 0xf) << 4 | ((v_blank >> 8) & 0xf)) as u8;
    d[8] = H_FRONT as u8;
    d[9] = H_SYNC as u8;
    d[10] = (((V_FRONT & 0xf) << 4) | (V_SYNC & 0xf)) as u8;
    d[11] = (((H_FRONT >> 8) & 3) << 6
        | ((H_SYNC >> 8) & 3) << 4
        | ((V_FRONT >> 4) & 3) << 2
        | ((V_SYNC >> 4) & 3)) as u8;
    let width_mm = width_mm.min(0xfff);
    let height_mm = height_mm.min(0xfff);
    d[12] = width_mm as u8;
    d[13] = height_mm as u8;
    d[14] = (((width_mm >> 8) & 0xf) << 4 | ((height_mm >> 8) & 0xf)) as u8;
    d[17] = 0x1e; // digital separate sync, +hsync, +vsync
                  // Descriptor 2: display name; 3: serial = connector unique-id; 4: dummy.
    text_descriptor(&mut e[72..90], 0xfc, "pvdispl");
    text_descriptor(&mut e[90..108], 0xff, unique_id);
    e[108..126].copy_from_slice(&[0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e[126] = 0; // no extension blocks
    let sum = e[..127].iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
    e[127] = sum.wrapping_neg();
    Ok(e)
}

/// An 18-byte display descriptor with up to 13 printable ASCII characters.
fn text_descriptor(d: &mut [u8], tag: u8, text: &str) {
    d[..5].copy_from_slice(&[0, 0, 0, tag, 0]);
    let bytes = text
        .bytes()
        .filter(|b| (0x20..0x7f).contains(b))
        .take(13)
        .peekable();
    let mut i = 5;
    for b in bytes {
        d[i] = b;
        i += 1;
    }
    if i < 18 {
        d[i] = 0x0a;
        i += 1;
    }
    for b in &mut d[i..18] {
        *b = 0x20;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preferred_mode(e: &[u8; EDID_BLOCK_LEN]) -> (u32, u32, u32) {
        let d = &e[54..72];
        let clock_hz = u64::from(u16::from_le_bytes([d[0], d[1]])) * 10_000;
        let w = u32::from(d[2]) | (u32::from(d[4] >> 4) << 8);
        let hb = u32::from(d[3]) | (u32::from(d[4] & 0xf) << 8);
        let h = u32::from(d[5]) | (u32::from(d[7] >> 4) << 8);
        let vb = u32::from(d[6]) | (u32::from(d[7] & 0xf) << 8);
        let refresh = (clock_hz as f64 / f64::from((w + hb) * (h + vb))).round() as u32;
        (w, h, refresh)
    }

    #[test]
    fn valid_block_with_connector_mode() {
        for (w, h) in [
            (640, 480),
            (1024, 768),
            (1920, 1080),
            (3840, 2160),
            (4095, 2047),
        ] {
            let e = build(w, h, 60, "conn-0").unwrap();
            assert_eq!(&e[..8], &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
            assert_eq!(e.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0, "checksum");
            assert_eq!((e[18], e[19]), (1, 4));
            let (mw, mh, refresh) = preferred_mode(&e);
            assert_eq!((mw, mh), (w, h));
            assert_eq!(refresh, 60, "{w}x{h}");
            assert_eq!(&e[95..102], b"conn-0\n");
        }
    }

    #[test]
    fn huge_modes_lower_the_refresh_or_fail() {
        let e = build(4095, 4095, 240, "x").unwrap();
        let (_, _, refresh) = preferred_mode(&e);
        assert!(refresh < 240 && refresh > 0);
        assert_eq!(build(0, 10, 60, "x"), Err(Unrepresentable));
        assert_eq!(build(4096, 10, 60, "x"), Err(Unrepresentable));
    }
}
