//! Pixel formats the backend accepts and their conversion to `0x00RRGGBB`.
//!
//! Formats are DRM fourccs (Linux `include/uapi/drm/drm_fourcc.h`), as carried by
//! displif `FB_ATTACH.pixel_format`; the set is what Linux's `xen_drm_front`
//! offers (`xen_drm_front_conn.c`). Checksums and snapshots are computed on the
//! converted `0x00RRGGBB` value so that an X/alpha byte never changes a frame's
//! identity.

/// Build a DRM fourcc code from its four characters.
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    (code[0] as u32) | ((code[1] as u32) << 8) | ((code[2] as u32) << 16) | ((code[3] as u32) << 24)
}

/// A supported pixel format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// `DRM_FORMAT_XRGB8888`.
    Xrgb8888,
    /// `DRM_FORMAT_ARGB8888`.
    Argb8888,
    /// `DRM_FORMAT_RGB888` (bytes B, G, R).
    Rgb888,
    /// `DRM_FORMAT_RGB565`.
    Rgb565,
    /// `DRM_FORMAT_XRGB4444`.
    Xrgb4444,
    /// `DRM_FORMAT_ARGB4444`.
    Argb4444,
    /// `DRM_FORMAT_XRGB1555`.
    Xrgb1555,
    /// `DRM_FORMAT_ARGB1555`.
    Argb1555,
    /// `DRM_FORMAT_YUYV` (Y0 Cb Y1 Cr per pixel pair, BT.601 limited range).
    Yuyv,
}

impl PixelFormat {
    /// Every supported format.
    pub const ALL: [PixelFormat; 9] = [
        PixelFormat::Xrgb8888,
        PixelFormat::Argb8888,
        PixelFormat::Rgb888,
        PixelFormat::Rgb565,
        PixelFormat::Xrgb4444,
        PixelFormat::Argb4444,
        PixelFormat::Xrgb1555,
        PixelFormat::Argb1555,
        PixelFormat::Yuyv,
    ];

    /// The DRM fourcc.
    pub const fn fourcc(self) -> u32 {
        match self {
            PixelFormat::Xrgb8888 => fourcc(b"XR24"),
            PixelFormat::Argb8888 => fourcc(b"AR24"),
            PixelFormat::Rgb888 => fourcc(b"RG24"),
            PixelFormat::Rgb565 => fourcc(b"RG16"),
            PixelFormat::Xrgb4444 => fourcc(b"XR12"),
            PixelFormat::Argb4444 => fourcc(b"AR12"),
            PixelFormat::Xrgb1555 => fourcc(b"XR15"),
            PixelFormat::Argb1555 => fourcc(b"AR15"),
            PixelFormat::Yuyv => fourcc(b"YUYV"),
        }
    }

    /// The format with this fourcc, if supported.
    pub fn from_fourcc(code: u32) -> Option<PixelFormat> {
        PixelFormat::ALL.into_iter().find(|f| f.fourcc() == code)
    }

    /// Bits per pixel.
    pub const fn bpp(self) -> u32 {
        match self {
            PixelFormat::Xrgb8888 | PixelFormat::Argb8888 => 32,
            PixelFormat::Rgb888 => 24,
            _ => 16,
        }
    }

    /// Bytes per pixel.
    pub const fn bytes_per_pixel(self) -> usize {
        (self.bpp() / 8) as usize
    }

    /// Convert one row of `out.len()` pixels from `src` (at least
    /// `out.len() * bytes_per_pixel()` bytes) into `0x00RRGGBB`.
    pub fn row_to_rgb(self, src: &[u8], out: &mut [u32]) {
        let bpp = self.bytes_per_pixel();
        assert!(src.len() >= out.len() * bpp, "row source too short");
        match self {
            PixelFormat::Xrgb8888 | PixelFormat::Argb8888 => {
                for (o, s) in out.iter_mut().zip(src.chunks_exact(4)) {
                    *o = u32::from_le_bytes([s[0], s[1], s[2], 0]);
                }
            }
            PixelFormat::Rgb888 => {
                for (o, s) in out.iter_mut().zip(src.chunks_exact(3)) {
                    *o = u32::from_le_bytes([s[0], s[1], s[2], 0]);
                }
            }
            PixelFormat::Yuyv => {
                for (i, o) in out.iter_mut().enumerate() {
                    let pair = &src[(i / 2) * 4..(i / 2) * 4 + 4];
                    let y = if i % 2 == 0 { pair[0] } else { pair[2] };
                    *o = yuv_to_rgb(y, pair[1], pair[3]);
                }
            }
            _ => {
                for (o, s) in out.iter_mut().zip(src.chunks_exact(2)) {
                    *o = self.rgb_from_u16(u16::from_le_bytes([s[0], s[1]]));
                }
            }
        }
    }

    fn rgb_from_u16(self, v: u16) -> u32 {
        let v = u32::from(v);
        let (r, g, b) = match self {
            PixelFormat::Rgb565 => (expand5(v >> 11), expand6(v >> 5), expand5(v)),
            PixelFormat::Xrgb4444 | PixelFormat::Argb4444 => {
                ((v >> 8 & 0xf) * 17, (v >> 4 & 0xf) * 17, (v & 0xf) * 17)
            }
            _ => (expand5(v >> 10), expand5(v >> 5), expand5(v)),
        };
        (r << 16) | (g << 8) | b
    }
}

fn expand5(v: u32) -> u32 {
    let v = v & 0x1f;
    (v << 3) | (v >> 2)
}

fn expand6(v: u32) -> u32 {
    let v = v & 0x3f;
    (v << 2) | (v >> 4)
}

/// BT.601 limited-range YCbCr to RGB, integer form.
fn yuv_to_rgb(y: u8, cb: u8, cr: u8) -> u32 {
    let c = i32::from(y) - 16;
    let d = i32::from(cb) - 128;
    let e = i32::from(cr) - 128;
    let clip = |v: i32| (v.clamp(0, 255 << 8) >> 8) as u32;
    let r = clip(298 * c + 409 * e + 128);
    let g = clip(298 * c - 100 * d - 208 * e + 128);
    let b = clip(298 * c + 516 * d + 128);
    (r.min(255) << 16) | (g.min(255) << 8) | b.min(255)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_codes_match_drm() {
        // Values from drm_fourcc.h, e.g. DRM_FORMAT_XRGB8888 = 0x34325258.
        assert_eq!(PixelFormat::Xrgb8888.fourcc(), 0x3432_5258);
        assert_eq!(PixelFormat::Rgb565.fourcc(), 0x3631_4752);
        assert_eq!(PixelFormat::Yuyv.fourcc(), 0x5659_5559);
        assert_eq!(
            PixelFormat::from_fourcc(0x3432_5241),
            Some(PixelFormat::Argb8888)
        );
        assert_eq!(PixelFormat::from_fourcc(fourcc(b"NV12")), None);
    }

    #[test]
    fn conversions() {
        let mut out = [0u32; 2];
        PixelFormat::Xrgb8888.row_to_rgb(&[0x11, 0x22, 0x33, 0xff, 1, 2, 3, 4], &mut out);
        assert_eq!(out, [0x0033_2211, 0x0003_0201]);
        PixelFormat::Rgb888.row_to_rgb(&[0x11, 0x22, 0x33, 1, 2, 3], &mut out);
        assert_eq!(out, [0x0033_2211, 0x0003_0201]);
        PixelFormat::Rgb565.row_to_rgb(&0xf800u16.to_le_bytes().repeat(2), &mut out);
        assert_eq!(out, [0x00ff_0000; 2]);
        PixelFormat::Rgb565.row_to_rgb(&[0xe0, 0x07, 0x1f, 0x00], &mut out);
        assert_eq!(out, [0x0000_ff00, 0x0000_00ff]);
        PixelFormat::Argb1555.row_to_rgb(&[0x00, 0xfc, 0xff, 0x83], &mut out);
        assert_eq!(out, [0x00ff_0000, 0x0000_ffff]);
        PixelFormat::Xrgb4444.row_to_rgb(&[0x0f, 0x0f, 0xf0, 0x00], &mut out);
        assert_eq!(out, [0x00ff_00ff, 0x0000_ff00]);
        // YUYV: black (16,128,128) and white (235,128,128).
        PixelFormat::Yuyv.row_to_rgb(&[16, 128, 235, 128], &mut out);
        assert_eq!(out, [0x0000_0000, 0x00ff_ffff]);
    }
}
