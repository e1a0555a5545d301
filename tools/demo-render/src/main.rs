//! `demo-render`: renders demo scenes on the host, writes PNGs and prints frame checksums.
//!
//! The same `demos::render` code runs in the guest, so a frame's checksum printed here is the one
//! the backend must report for the frame captured on real Xen (definition: `demos::checksum`).
//!
//! ```text
//! demo-render --scene plasma --frames 0,60,120 --size 1280x720 --out out/render
//! demo-render --all --frames 0,30 --size 640x360            # every scene, checksums only
//! demo-render --scene bounce --frames 0-119 --apng out/bounce.png
//! ```
//! Output: one line per frame, `scene=<name> frame=<n> size=<w>x<h> crc32=<hex8> [png=<path>]`.
//! Exit status 2 for bad arguments (an unknown scene lists the valid ones), 1 for I/O errors.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use demos::{frame_crc32, render, FrameStats, Scene, SceneInput};
use xen_display::framebuffer::Framebuffer;

/// Largest accepted width or height.
const MAX_SIDE: u32 = 8192;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Render pvdispl demo scenes to PNG and print frame checksums"
)]
struct Args {
    /// Scene to render (see --list).
    #[arg(long, required_unless_present_any = ["all", "list"], conflicts_with = "all")]
    scene: Option<String>,
    /// Render every scene.
    #[arg(long)]
    all: bool,
    /// List the scene names and exit.
    #[arg(long)]
    list: bool,
    /// Frames to render: comma-separated numbers and inclusive ranges, e.g. `0,60,100-110`.
    #[arg(long, default_value = "0")]
    frames: String,
    /// Resolution `WxH`.
    #[arg(long, default_value = "1280x720")]
    size: String,
    /// Configured frame rate the scenes animate at.
    #[arg(long, default_value_t = 60)]
    fps: u32,
    /// Row stride in pixels (default: the width); checksums must not depend on it.
    #[arg(long)]
    stride: Option<u32>,
    /// Directory for `<scene>-<frame>.png` files (none written without it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write all frames of the (single) scene as one animated PNG to this file.
    #[arg(long, conflicts_with = "all")]
    apng: Option<PathBuf>,
}

/// Parses `WxH`.
fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("size {text:?} is not WxH"))?;
    let parse = |s: &str| -> Result<u32, String> {
        let v: u32 = s
            .trim()
            .parse()
            .map_err(|_| format!("size {text:?}: {s:?} is not a number"))?;
        if v == 0 || v > MAX_SIDE {
            return Err(format!("size {text:?}: {v} is not in 1..={MAX_SIDE}"));
        }
        Ok(v)
    };
    Ok((parse(w)?, parse(h)?))
}

/// Parses `a,b,c-d` into frame numbers (ranges inclusive, at most 100 000 frames in all).
fn parse_frames(text: &str) -> Result<Vec<u64>, String> {
    const MAX_FRAMES: u64 = 100_000;
    let mut frames = Vec::new();
    for part in text.split(',').map(str::trim) {
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("frames {text:?}: {s:?} is not a frame number"))
        };
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(part)?, number(part)?),
        };
        if last < first {
            return Err(format!("frames {text:?}: range {part:?} is backwards"));
        }
        if (last - first) + frames.len() as u64 >= MAX_FRAMES {
            return Err(format!("frames {text:?}: more than {MAX_FRAMES} frames"));
        }
        frames.extend(first..=last);
    }
    Ok(frames)
}

/// Deterministic stand-in figures for the `stats` scene (the guest passes real ones).
fn sample_intervals(frame: u64, fps: u32) -> Vec<u32> {
    let target = 1_000_000 / fps.max(1);
    (0..240u64)
        .map(|i| {
            let k = frame.wrapping_add(i);
            let jitter = (k.wrapping_mul(2_654_435_761) >> 7) % 1500;
            let late = k % 97 == 0;
            target - 750 + jitter as u32 + if late { target } else { 0 }
        })
        .collect()
}

/// XRGB8888 pixels of the visible area to packed RGB bytes.
fn to_rgb(fb: &Framebuffer<'_>) -> Vec<u8> {
    fb.rows()
        .flat_map(|row| {
            row.iter()
                .flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8])
        })
        .collect()
}

fn png_encoder<'a>(
    file: &'a Path,
    w: u32,
    h: u32,
) -> Result<png::Encoder<'a, BufWriter<File>>, String> {
    let f = File::create(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut enc = png::Encoder::new(BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    Ok(enc)
}

fn write_png(file: &Path, fb: &Framebuffer<'_>) -> Result<(), String> {
    let enc = png_encoder(file, fb.width(), fb.height())?;
    let err = |e: png::EncodingError| format!("{}: {e}", file.display());
    let mut writer = enc.write_header().map_err(err)?;
    writer.write_image_data(&to_rgb(fb)).map_err(err)?;
    writer.finish().map_err(err)
}

fn run(args: &Args) -> Result<(), (u8, String)> {
    let usage = |m: String| (2u8, m);
    let io = |m: String| (1u8, m);
    if args.list {
        for name in Scene::names() {
            println!("{name}");
        }
        return Ok(());
    }
    let scenes: Vec<Scene> = match (&args.scene, args.all) {
        (_, true) => Scene::all().to_vec(),
        (Some(name), false) => vec![Scene::from_name(name).map_err(|e| usage(e.to_string()))?],
        (None, false) => return Err(usage("give --scene NAME, --all or --list".into())),
    };
    let (w, h) = parse_size(&args.size).map_err(usage)?;
    let frames = parse_frames(&args.frames).map_err(usage)?;
    if args.fps == 0 || args.fps > 1000 {
        return Err(usage(format!("fps {} is not in 1..=1000", args.fps)));
    }
    let stride = args.stride.unwrap_or(w);
    if stride < w || stride > 2 * MAX_SIDE {
        return Err(usage(format!(
            "stride {stride} is not in {w}..={}",
            2 * MAX_SIDE
        )));
    }
    if let Some(dir) = &args.out {
        fs::create_dir_all(dir).map_err(|e| io(format!("{}: {e}", dir.display())))?;
    }
    let mut pixels = vec![0u32; stride as usize * h as usize];
    let mut animation: Option<png::Writer<BufWriter<File>>> = None;
    if let Some(file) = &args.apng {
        let mut enc = png_encoder(file, w, h).map_err(io)?;
        let err = |e: png::EncodingError| io(format!("{}: {e}", file.display()));
        enc.set_animated(frames.len() as u32, 0).map_err(err)?;
        enc.set_frame_delay(1, args.fps as u16).map_err(err)?;
        animation = Some(enc.write_header().map_err(err)?);
    }
    for &scene in &scenes {
        for &frame in &frames {
            let intervals = sample_intervals(frame, args.fps);
            let late = frame / 97;
            let input = SceneInput {
                fps: args.fps,
                stats: FrameStats {
                    flips_completed: frame - late.min(frame),
                    late_frames: late.min(frame),
                    measured_fps_milli: args.fps * 1000 - 12,
                    frame_intervals_us: &intervals,
                },
            };
            let mut fb = Framebuffer::try_new(&mut pixels, w, h, stride)
                .map_err(|e| usage(e.to_string()))?;
            let Ok(()) = render(scene, frame, &mut fb, &input);
            let crc = frame_crc32(fb.rows());
            let mut line = format!("scene={scene} frame={frame} size={w}x{h} crc32={crc:08x}");
            if let Some(dir) = &args.out {
                let file = dir.join(format!("{scene}-{frame:06}.png"));
                write_png(&file, &fb).map_err(io)?;
                line.push_str(&format!(" png={}", file.display()));
            }
            if let Some(writer) = animation.as_mut() {
                writer
                    .write_image_data(&to_rgb(&fb))
                    .map_err(|e| io(format!("apng: {e}")))?;
            }
            println!("{line}");
        }
    }
    if let Some(writer) = animation {
        writer.finish().map_err(|e| io(format!("apng: {e}")))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("demo-render: {message}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert_eq!(parse_size("64X48"), Ok((64, 48)));
        assert!(parse_size("0x0").is_err());
        assert!(parse_size("abcxdef").is_err());
        assert!(parse_size("99999x10").is_err());
        assert!(parse_size("1280").is_err());
    }

    #[test]
    fn frame_lists() {
        assert_eq!(parse_frames("0,60, 120"), Ok(vec![0, 60, 120]));
        assert_eq!(parse_frames("3-5,9"), Ok(vec![3, 4, 5, 9]));
        assert!(parse_frames("5-3").is_err());
        assert!(parse_frames("x").is_err());
        assert!(parse_frames("").is_err());
        assert!(parse_frames("0-18446744073709551615").is_err());
    }

    #[test]
    fn stride_does_not_change_the_checksum() {
        let input = SceneInput::default();
        let mut crcs = Vec::new();
        for stride in [64, 80] {
            let mut px = vec![0x00AB_CDEFu32; stride * 48];
            let mut fb = Framebuffer::try_new(&mut px, 64, 48, stride as u32).unwrap();
            let Ok(()) = render(Scene::Testcard, 7, &mut fb, &input);
            crcs.push(frame_crc32(fb.rows()));
        }
        assert_eq!(crcs[0], crcs[1]);
    }
}
