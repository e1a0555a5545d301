//! pvdispl-kmstest: a tiny KMS client for the `linux-peer` scenario.
//!
//! Runs in a Linux guest whose `drm_xen_front` talks to our dom0 backend. It
//! creates two dumb buffers at the connector's mode, draws [`patterns::bars`]
//! into the first and [`patterns::checker`] into the second, shows the first
//! with SETCRTC (displif `SET_CONFIG`), then page-flips between them N times,
//! waiting for each flip's completion event (which Linux releases when the
//! backend's frame-done event arrives). It prints each pattern's CRC-32 so the
//! scenario can compare them with the backend's captured checksums.
//!
//! Usage: `kmstest [--device /dev/dri/card0] [--flips N] [--hold-ms MS]`, or
//! `kmstest --expect WxH` to print the two checksums without touching DRM.
//! DRM uapi layouts: Linux `include/uapi/drm/drm.h`, `drm_mode.h`.

mod patterns;

use std::fs::OpenOptions;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

/// `_IOWR('d', nr, size)`.
const fn drm_iowr(nr: u8, size: usize) -> libc::c_ulong {
    (3 << 30)
        | ((size as libc::c_ulong) << 16)
        | ((b'd' as libc::c_ulong) << 8)
        | nr as libc::c_ulong
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CardRes {
    fb_id_ptr: u64,
    crtc_id_ptr: u64,
    connector_id_ptr: u64,
    encoder_id_ptr: u64,
    count_fbs: u32,
    count_crtcs: u32,
    count_connectors: u32,
    count_encoders: u32,
    min_width: u32,
    max_width: u32,
    min_height: u32,
    max_height: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ModeInfo {
    clock: u32,
    hdisplay: u16,
    hsync_start: u16,
    hsync_end: u16,
    htotal: u16,
    hskew: u16,
    vdisplay: u16,
    vsync_start: u16,
    vsync_end: u16,
    vtotal: u16,
    vscan: u16,
    vrefresh: u32,
    flags: u32,
    type_: u32,
    name: [u8; 32],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct GetConnector {
    encoders_ptr: u64,
    modes_ptr: u64,
    props_ptr: u64,
    prop_values_ptr: u64,
    count_modes: u32,
    count_props: u32,
    count_encoders: u32,
    encoder_id: u32,
    connector_id: u32,
    connector_type: u32,
    connector_type_id: u32,
    connection: u32,
    mm_width: u32,
    mm_height: u32,
    subpixel: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Crtc {
    set_connectors_ptr: u64,
    count_connectors: u32,
    crtc_id: u32,
    fb_id: u32,
    x: u32,
    y: u32,
    gamma_size: u32,
    mode_valid: u32,
    mode: ModeInfo,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CreateDumb {
    height: u32,
    width: u32,
    bpp: u32,
    flags: u32,
    handle: u32,
    pitch: u32,
    size: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct MapDumb {
    handle: u32,
    pad: u32,
    offset: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct FbCmd {
    fb_id: u32,
    width: u32,
    height: u32,
    pitch: u32,
    bpp: u32,
    depth: u32,
    handle: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageFlip {
    crtc_id: u32,
    fb_id: u32,
    flags: u32,
    reserved: u32,
    user_data: u64,
}

const _: () = assert!(core::mem::size_of::<CardRes>() == 64);
const _: () = assert!(core::mem::size_of::<ModeInfo>() == 68);
const _: () = assert!(core::mem::size_of::<GetConnector>() == 80);
const _: () = assert!(core::mem::size_of::<Crtc>() == 104);
const _: () = assert!(core::mem::size_of::<CreateDumb>() == 32);
const _: () = assert!(core::mem::size_of::<FbCmd>() == 28);
const _: () = assert!(core::mem::size_of::<PageFlip>() == 24);

const DRM_IOCTL_MODE_GETRESOURCES: libc::c_ulong = drm_iowr(0xa0, 64);
const DRM_IOCTL_MODE_SETCRTC: libc::c_ulong = drm_iowr(0xa2, 104);
const DRM_IOCTL_MODE_GETCONNECTOR: libc::c_ulong = drm_iowr(0xa7, 80);
const DRM_IOCTL_MODE_ADDFB: libc::c_ulong = drm_iowr(0xae, 28);
const DRM_IOCTL_MODE_PAGE_FLIP: libc::c_ulong = drm_iowr(0xb0, 24);
const DRM_IOCTL_MODE_CREATE_DUMB: libc::c_ulong = drm_iowr(0xb2, 32);
const DRM_IOCTL_MODE_MAP_DUMB: libc::c_ulong = drm_iowr(0xb3, 16);
const DRM_MODE_PAGE_FLIP_EVENT: u32 = 0x01;
const DRM_EVENT_FLIP_COMPLETE: u32 = 0x02;
const DRM_MODE_CONNECTED: u32 = 1;

/// An ioctl on the DRM fd with a `#[repr(C)]` argument.
fn ioctl<T>(
    fd: libc::c_int,
    request: libc::c_ulong,
    arg: &mut T,
    what: &str,
) -> Result<(), String> {
    loop {
        // SAFETY: `arg` is an exclusively borrowed, properly sized `#[repr(C)]`
        // struct matching `request`'s uapi layout (sizes asserted above); any
        // pointers inside it point to live buffers sized by their counts.
        let rc = unsafe { libc::ioctl(fd, request, arg as *mut T) };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("{what}: {err}"));
        }
    }
}

/// A dumb buffer mapped into our address space.
struct DumbBuffer {
    fb_id: u32,
    pitch: usize,
    map: *mut u8,
    size: usize,
}

impl DumbBuffer {
    fn new(fd: libc::c_int, width: u32, height: u32) -> Result<DumbBuffer, String> {
        let mut create = CreateDumb {
            width,
            height,
            bpp: 32,
            ..CreateDumb::default()
        };
        ioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &mut create, "CREATE_DUMB")?;
        let mut fb = FbCmd {
            width,
            height,
            pitch: create.pitch,
            bpp: 32,
            depth: 24,
            handle: create.handle,
            fb_id: 0,
        };
        ioctl(fd, DRM_IOCTL_MODE_ADDFB, &mut fb, "ADDFB")?;
        let mut map = MapDumb {
            handle: create.handle,
            ..MapDumb::default()
        };
        ioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &mut map, "MAP_DUMB")?;
        let size = create.size as usize;
        let offset = libc::off_t::try_from(map.offset)
            .map_err(|_| "MAP_DUMB offset too large".to_string())?;
        // SAFETY: a fresh shared mapping of the dumb buffer at the offset the
        // kernel gave us; it aliases no Rust object and lives until exit.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "mmap dumb buffer: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(DumbBuffer {
            fb_id: fb.fb_id,
            pitch: create.pitch as usize,
            map: ptr.cast(),
            size,
        })
    }

    /// Fill with XRGB8888 pixels (X byte 0xff, which the checksum ignores).
    fn draw(&mut self, width: u32, height: u32, pixel: impl Fn(u32, u32) -> u32) {
        assert!(self.pitch * height as usize <= self.size && width as usize * 4 <= self.pitch);
        // SAFETY: the mapping is `size` bytes, writable, and only we write it
        // (the backend reads it after SETCRTC/PAGE_FLIP); bounds checked above.
        let bytes = unsafe { core::slice::from_raw_parts_mut(self.map, self.size) };
        for y in 0..height {
            let row = &mut bytes[y as usize * self.pitch..][..width as usize * 4];
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                px.copy_from_slice(&(0xff00_0000 | pixel(x as u32, y)).to_le_bytes());
            }
        }
    }
}

fn wait_flip(card: &mut std::fs::File, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no flip-complete event within {timeout:?}"));
        }
        let mut pfd = libc::pollfd {
            fd: card.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, alive across the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if rc <= 0 {
            continue;
        }
        let mut buf = [0u8; 1024];
        let n = card
            .read(&mut buf)
            .map_err(|e| format!("read DRM events: {e}"))?;
        let mut at = 0;
        while at + 8 <= n {
            let kind = u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
            let len =
                u32::from_ne_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]) as usize;
            if kind == DRM_EVENT_FLIP_COMPLETE {
                return Ok(());
            }
            if len < 8 {
                break;
            }
            at += len;
        }
    }
}

struct Args {
    device: String,
    flips: u32,
    hold_ms: u64,
    expect: Option<(u32, u32)>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        device: "/dev/dri/card0".into(),
        flips: 1,
        hold_ms: 500,
        expect: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--device" => args.device = value()?,
            "--flips" => args.flips = value()?.parse().map_err(|e| format!("--flips: {e}"))?,
            "--hold-ms" => {
                args.hold_ms = value()?.parse().map_err(|e| format!("--hold-ms: {e}"))?
            }
            "--expect" => {
                let v = value()?;
                let (w, h) = v.split_once('x').ok_or("--expect WxH")?;
                let parse = |t: &str| t.parse::<u32>().map_err(|_| "--expect WxH".to_string());
                args.expect = Some((parse(w)?, parse(h)?));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    if let Some((width, height)) = args.expect {
        // No DRM: print the checksums a WxH run would produce (host-side checks).
        println!(
            "kmstest: pattern bars crc32 {:08x}",
            patterns::frame_crc(width, height, |x, y| patterns::bars(x, y, width))
        );
        let checker =
            patterns::frame_crc(width, height, |x, y| patterns::checker(x, y, width, height));
        println!("kmstest: pattern checker crc32 {checker:08x}");
        return Ok(());
    }
    let mut card = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&args.device)
        .map_err(|e| format!("open {}: {e}", args.device))?;
    let fd = card.as_raw_fd();

    let mut res = CardRes::default();
    ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &mut res, "GETRESOURCES")?;
    let mut crtcs = vec![0u32; res.count_crtcs as usize];
    let mut connectors = vec![0u32; res.count_connectors as usize];
    let mut encoders = vec![0u32; res.count_encoders as usize];
    let mut fbs = vec![0u32; res.count_fbs as usize];
    res.crtc_id_ptr = crtcs.as_mut_ptr() as u64;
    res.connector_id_ptr = connectors.as_mut_ptr() as u64;
    res.encoder_id_ptr = encoders.as_mut_ptr() as u64;
    res.fb_id_ptr = fbs.as_mut_ptr() as u64;
    ioctl(
        fd,
        DRM_IOCTL_MODE_GETRESOURCES,
        &mut res,
        "GETRESOURCES (ids)",
    )?;
    let (&crtc_id, &connector_id) = crtcs
        .first()
        .zip(connectors.first())
        .ok_or("no CRTC or connector")?;

    let mut conn = GetConnector {
        connector_id,
        ..GetConnector::default()
    };
    ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &mut conn, "GETCONNECTOR")?;
    if conn.count_modes == 0 || conn.connection != DRM_MODE_CONNECTED {
        return Err(format!(
            "connector {connector_id}: {} modes, connection {}",
            conn.count_modes, conn.connection
        ));
    }
    let mut modes = vec![ModeInfo::default(); conn.count_modes as usize];
    let mut encoder_ids = vec![0u32; conn.count_encoders as usize];
    let count_modes = conn.count_modes;
    conn = GetConnector {
        connector_id,
        count_modes,
        modes_ptr: modes.as_mut_ptr() as u64,
        count_encoders: encoder_ids.len() as u32,
        encoders_ptr: encoder_ids.as_mut_ptr() as u64,
        ..GetConnector::default()
    };
    ioctl(
        fd,
        DRM_IOCTL_MODE_GETCONNECTOR,
        &mut conn,
        "GETCONNECTOR (modes)",
    )?;
    let mode = modes[0];
    let (width, height) = (u32::from(mode.hdisplay), u32::from(mode.vdisplay));
    println!(
        "kmstest: mode {width}x{height}@{} crtc {crtc_id} connector {connector_id}",
        mode.vrefresh
    );

    let bars_crc = patterns::frame_crc(width, height, |x, y| patterns::bars(x, y, width));
    let checker_crc =
        patterns::frame_crc(width, height, |x, y| patterns::checker(x, y, width, height));
    println!("kmstest: pattern bars crc32 {bars_crc:08x}");
    println!("kmstest: pattern checker crc32 {checker_crc:08x}");

    let mut buffers = [
        DumbBuffer::new(fd, width, height)?,
        DumbBuffer::new(fd, width, height)?,
    ];
    buffers[0].draw(width, height, |x, y| patterns::bars(x, y, width));
    buffers[1].draw(width, height, |x, y| patterns::checker(x, y, width, height));

    let mut connector_ids = [connector_id];
    let mut set = Crtc {
        set_connectors_ptr: connector_ids.as_mut_ptr() as u64,
        count_connectors: 1,
        crtc_id,
        fb_id: buffers[0].fb_id,
        mode_valid: 1,
        mode,
        ..Crtc::default()
    };
    ioctl(fd, DRM_IOCTL_MODE_SETCRTC, &mut set, "SETCRTC")?;
    println!("kmstest: frame 0 shown: bars");

    let start = Instant::now();
    let mut intervals = Vec::new();
    let mut last = Instant::now();
    for i in 1..=args.flips {
        let target = &buffers[(i % 2) as usize];
        let mut flip = PageFlip {
            crtc_id,
            fb_id: target.fb_id,
            flags: DRM_MODE_PAGE_FLIP_EVENT,
            user_data: u64::from(i),
            ..PageFlip::default()
        };
        ioctl(fd, DRM_IOCTL_MODE_PAGE_FLIP, &mut flip, "PAGE_FLIP")?;
        wait_flip(&mut card, Duration::from_secs(5)).map_err(|e| format!("flip {i}: {e}"))?;
        let now = Instant::now();
        intervals.push(now - last);
        last = now;
        if i <= 2 || i == args.flips {
            println!(
                "kmstest: frame {i} shown: {}",
                if i % 2 == 1 { "checker" } else { "bars" }
            );
        }
    }
    let total = start.elapsed();
    if args.flips > 0 {
        let mean = total / args.flips;
        let max = intervals.iter().max().copied().unwrap_or_default();
        println!(
            "kmstest: {} flips in {} ms, mean {} us, max {} us per flip",
            args.flips,
            total.as_millis(),
            mean.as_micros(),
            max.as_micros()
        );
    }
    std::thread::sleep(Duration::from_millis(args.hold_ms));
    println!("KMSTEST-OK");
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        println!("kmstest: error: {e}");
        println!("KMSTEST-FAILED");
        std::process::exit(1);
    }
}
