//! `demo-check`: proves that the frames a displif backend captured are the host's renders.
//!
//! Input: a table of expected checksums in `demo-render`'s output format (one line per frame,
//! `scene=<name> frame=<n> size=<w>x<h> crc32=<hex8>`, made on the host before the run), and the
//! backend's capture directory for one connection (`frames.csv`, `frame-NNNNNN.png`, `final.png`;
//! see backend/README.md). The guest may skip deadlines it cannot meet, so the k-th shown frame is
//! not necessarily scene frame k: every captured checksum is mapped to a scene frame number
//! through the table, and the numbers must strictly increase.
//!
//! ```text
//! demo-check --table expected.txt --scene plasma --size 320x240 --dir out/dom1-0/conn0 \
//!            --require 0 --min-flips 90
//! demo-check --live --scene stats --size 320x240 --dir out/dom7-0/conn0 --min-flips 90
//! ```
//!
//! Checks: `frames.csv` is well formed (header, consecutive row numbers, `config`/`flip`, the
//! given size); every row's checksum is a frame of that scene at that size in the table; scene
//! frame numbers strictly increase from row to row; `--require`d scene frames were shown; at
//! least `--min-flips` flips; every PNG snapshot in the directory decodes to the checksum its row
//! recorded (`final.png`: the last row), and every frame of `run.apng` (if present) is the
//! checksum of its row. `--live` is for scenes drawn from live figures (`stats`):
//! no table, and consecutive frames must differ instead.
//!
//! Output: one summary line on stdout (`demo-check: OK scene=... ...` or `demo-check: FAIL ...`),
//! the snapshot-to-scene-frame mapping, and the problems found. Exit status 0 if every check
//! passed, 1 if one failed, 2 for bad arguments or unreadable input.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use demos::{FrameCrc32, Scene};

/// Problems listed in the output at most (the count is always given).
const MAX_LISTED: usize = 8;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Check a backend's captured demo frames against host-rendered checksums"
)]
struct Args {
    /// Expected checksums (`demo-render` output lines); required unless --live.
    #[arg(long, required_unless_present = "live")]
    table: Option<PathBuf>,
    /// Scene the guest showed.
    #[arg(long)]
    scene: String,
    /// Visible size `WxH` the guest showed.
    #[arg(long)]
    size: String,
    /// The backend's capture directory of the connection (holds frames.csv).
    #[arg(long)]
    dir: PathBuf,
    /// Scene frames that must have been shown, comma separated.
    #[arg(long, value_delimiter = ',')]
    require: Vec<u64>,
    /// Minimum number of flips.
    #[arg(long, default_value_t = 1)]
    min_flips: u64,
    /// The scene draws live figures (no table): consecutive frames must differ.
    #[arg(long, conflicts_with = "table")]
    live: bool,
}

/// One `frames.csv` row.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    index: u64,
    is_flip: bool,
    width: u32,
    height: u32,
    crc: u32,
}

/// Parses `WxH`.
fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("size {text:?} is not WxH"))?;
    let w: u32 = w.parse().map_err(|_| format!("size {text:?}: bad width"))?;
    let h: u32 = h
        .parse()
        .map_err(|_| format!("size {text:?}: bad height"))?;
    if w == 0 || h == 0 {
        return Err(format!("size {text:?} is empty"));
    }
    Ok((w, h))
}

/// Parses the table: for `scene` at `size`, checksum → scene frames (ascending).
fn parse_table(
    text: &str,
    scene: &str,
    size: &str,
) -> Result<(BTreeMap<u32, Vec<u64>>, u64), String> {
    let mut map: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let mut max_frame = None;
    for (no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || {
            format!(
                "table line {}: {line:?} is not `scene= frame= size= crc32=`",
                no + 1
            )
        };
        let mut fields = BTreeMap::new();
        for word in line.split_whitespace() {
            let (k, v) = word.split_once('=').ok_or_else(bad)?;
            fields.insert(k, v);
        }
        let (Some(&s), Some(f), Some(&z), Some(c)) = (
            fields.get("scene"),
            fields.get("frame"),
            fields.get("size"),
            fields.get("crc32"),
        ) else {
            return Err(bad());
        };
        let frame: u64 = f.parse().map_err(|_| bad())?;
        let crc = u32::from_str_radix(c, 16).map_err(|_| bad())?;
        if c.len() != 8 {
            return Err(bad());
        }
        if s == scene && z == size {
            let frames = map.entry(crc).or_default();
            if let Err(at) = frames.binary_search(&frame) {
                frames.insert(at, frame);
            }
            max_frame = max_frame.max(Some(frame));
        }
    }
    let max_frame =
        max_frame.ok_or_else(|| format!("the table has no frame of {scene} at {size}"))?;
    Ok((map, max_frame))
}

/// Parses the backend's `frames.csv`.
fn parse_csv(text: &str) -> Result<Vec<Row>, String> {
    const HEADER: &str = "frame,kind,arrival_ns,fb_cookie,width,height,crc32";
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == HEADER => {}
        other => return Err(format!("frames.csv: header {other:?}, expected {HEADER:?}")),
    }
    let mut rows = Vec::new();
    for (no, line) in lines.enumerate() {
        let bad = |what: &str| format!("frames.csv line {}: {what}: {line:?}", no + 2);
        let f: Vec<&str> = line.trim().split(',').collect();
        if f.len() != 7 {
            return Err(bad("not 7 fields"));
        }
        let index: u64 = f[0].parse().map_err(|_| bad("bad frame number"))?;
        let is_flip = match f[1] {
            "flip" => true,
            "config" => false,
            _ => return Err(bad("kind is neither config nor flip")),
        };
        let width = f[4].parse().map_err(|_| bad("bad width"))?;
        let height = f[5].parse().map_err(|_| bad("bad height"))?;
        if f[6].len() != 8 {
            return Err(bad("crc32 is not 8 hex digits"));
        }
        let crc = u32::from_str_radix(f[6], 16).map_err(|_| bad("bad crc32"))?;
        if index != rows.len() as u64 {
            return Err(bad(&format!("frame number is not {}", rows.len())));
        }
        rows.push(Row {
            index,
            is_flip,
            width,
            height,
            crc,
        });
    }
    Ok(rows)
}

/// Checksum of an 8-bit RGB image as the frame checksum (`0x00RRGGBB` little-endian per pixel).
fn rgb_crc32(rgb: &[u8], width: u32) -> u32 {
    let mut crc = FrameCrc32::new();
    let mut row = Vec::with_capacity(width as usize);
    for line in rgb.chunks(width as usize * 3) {
        row.clear();
        row.extend(
            line.chunks_exact(3)
                .map(|p| u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2])),
        );
        crc.update_row(&row);
    }
    crc.finish()
}

/// Decodes a PNG snapshot (8-bit RGB) and returns its size and frame checksum.
fn png_crc32(path: &Path) -> Result<(u32, u32, u32), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = fs::File::open(path).map_err(|e| err(&e))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .map_err(|e| err(&e))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| err(&"image too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| err(&e))?;
    if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
        return Err(err(&format!(
            "{:?} {:?}, expected 8-bit RGB",
            info.color_type, info.bit_depth
        )));
    }
    let rgb = &buf[..info.buffer_size()];
    Ok((info.width, info.height, rgb_crc32(rgb, info.width)))
}

/// Decodes every frame of an APNG whose frames are all full images (as the backend writes
/// `run.apng`) and returns each frame's size and frame checksum, in order.
fn apng_crc32s(path: &Path) -> Result<Vec<(u32, u32, u32)>, String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = fs::File::open(path).map_err(|e| err(&e))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .map_err(|e| err(&e))?;
    let frames = reader.info().animation_control.map_or(1, |a| a.num_frames);
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| err(&"image too large"))?;
    let mut buf = vec![0u8; size];
    let mut out = Vec::new();
    for _ in 0..frames {
        let info = reader.next_frame(&mut buf).map_err(|e| err(&e))?;
        if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
            return Err(err(&"APNG frame is not 8-bit RGB"));
        }
        let rgb = &buf[..info.buffer_size()];
        out.push((info.width, info.height, rgb_crc32(rgb, info.width)));
    }
    Ok(out)
}

/// Result of matching the rows against the table.
#[derive(Debug, Default, PartialEq, Eq)]
struct Matching {
    /// Scene frame of each row (None: not matched).
    frames: Vec<Option<u64>>,
    problems: Vec<String>,
}

/// Maps each row to the smallest scene frame with its checksum after the previous row's frame.
fn match_rows(rows: &[Row], table: &BTreeMap<u32, Vec<u64>>, max_frame: u64) -> Matching {
    let mut m = Matching::default();
    let mut prev: Option<u64> = None;
    for row in rows {
        let candidates = table.get(&row.crc).map(Vec::as_slice).unwrap_or(&[]);
        let next = candidates
            .iter()
            .copied()
            .find(|&f| prev.is_none_or(|p| f > p));
        match next {
            Some(f) => prev = Some(f),
            None if candidates.is_empty() => m.problems.push(format!(
                "row {}: crc32 {:08x} is no frame 0..={max_frame} of the scene",
                row.index, row.crc
            )),
            None => m.problems.push(format!(
                "row {}: crc32 {:08x} is scene frame {:?}, not after frame {}",
                row.index,
                row.crc,
                candidates,
                prev.unwrap_or(0)
            )),
        }
        m.frames.push(next);
    }
    m
}

/// Every check; returns the summary line and the problems.
fn check(args: &Args) -> Result<(String, Vec<String>, Vec<String>), String> {
    let scene = Scene::from_name(&args.scene).map_err(|e| e.to_string())?;
    let (w, h) = parse_size(&args.size)?;
    let csv_path = args.dir.join("frames.csv");
    let csv = fs::read_to_string(&csv_path).map_err(|e| format!("{}: {e}", csv_path.display()))?;
    let rows = parse_csv(&csv)?;
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    for row in rows.iter().filter(|r| (r.width, r.height) != (w, h)) {
        problems.push(format!(
            "row {}: size {}x{}, expected {w}x{h}",
            row.index, row.width, row.height
        ));
    }
    let flips = rows.iter().filter(|r| r.is_flip).count() as u64;
    if rows.is_empty() {
        problems.push("no frame captured".into());
    }
    if flips < args.min_flips {
        problems.push(format!(
            "{flips} flips, expected at least {}",
            args.min_flips
        ));
    }
    let mut summary = format!(
        "scene={scene} size={w}x{h} rows={} flips={flips}",
        rows.len()
    );
    let mut frames: Vec<Option<u64>> = vec![None; rows.len()];
    if args.live {
        let repeats = rows.windows(2).filter(|p| p[0].crc == p[1].crc).count();
        if repeats > 0 {
            problems.push(format!("{repeats} rows repeat the previous frame"));
        }
        let distinct: BTreeSet<u32> = rows.iter().map(|r| r.crc).collect();
        summary.push_str(&format!(
            " distinct={} (live figures: not comparable with host renders)",
            distinct.len()
        ));
    } else {
        let table_path = args.table.as_ref().ok_or("--table is required")?;
        let text =
            fs::read_to_string(table_path).map_err(|e| format!("{}: {e}", table_path.display()))?;
        let (table, max_frame) = parse_table(&text, scene.name(), &format!("{w}x{h}"))?;
        let m = match_rows(&rows, &table, max_frame);
        problems.extend(m.problems);
        frames = m.frames;
        let shown: BTreeSet<u64> = frames.iter().flatten().copied().collect();
        let matched = frames.iter().flatten().count();
        for f in &args.require {
            if !shown.contains(f) {
                problems.push(format!("scene frame {f} was never shown"));
            }
        }
        let (first, last) = (shown.first().copied(), shown.last().copied());
        let skipped = match (first, last) {
            (Some(a), Some(b)) => (b - a + 1) - shown.len() as u64,
            _ => 0,
        };
        summary.push_str(&format!(
            " matched={matched}/{} scene_frames={}..{} skipped={skipped}",
            rows.len(),
            first.map_or("-".into(), |f| f.to_string()),
            last.map_or("-".into(), |f| f.to_string()),
        ));
    }
    // Snapshots: each must decode to its row's checksum.
    let mut snapshots = 0;
    let mut entries: Vec<PathBuf> = fs::read_dir(&args.dir)
        .map_err(|e| format!("{}: {e}", args.dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let index = if name == "final.png" {
            rows.len().checked_sub(1)
        } else if let Some(n) = name
            .strip_prefix("frame-")
            .and_then(|n| n.strip_suffix(".png"))
        {
            n.parse::<usize>().ok()
        } else {
            continue; // not a snapshot (e.g. run.apng is not *.png)
        };
        let Some(row) = index.and_then(|i| rows.get(i)) else {
            problems.push(format!("{name}: no such row in frames.csv"));
            continue;
        };
        let (pw, ph, crc) = png_crc32(&path)?;
        if (pw, ph) != (row.width, row.height) || crc != row.crc {
            problems.push(format!(
                "{name}: {pw}x{ph} crc32 {crc:08x}, frames.csv row {} says {}x{} {:08x}",
                row.index, row.width, row.height, row.crc
            ));
            continue;
        }
        snapshots += 1;
        let frame = match frames[row.index as usize] {
            Some(f) => format!("scene frame {f}"),
            None if args.live => "live figures".into(),
            None => "no scene frame".into(),
        };
        notes.push(format!(
            "{name} = row {} = {frame} (crc32 {crc:08x})",
            row.index
        ));
    }
    summary.push_str(&format!(" snapshots_ok={snapshots}"));
    let apng = args.dir.join("run.apng");
    if apng.is_file() {
        let crcs = apng_crc32s(&apng)?;
        let bad = crcs
            .iter()
            .zip(&rows)
            .filter(|(crc, row)| (crc.0, crc.1, crc.2) != (row.width, row.height, row.crc))
            .count();
        if crcs.len() > rows.len() {
            problems.push(format!(
                "run.apng has {} frames, frames.csv {} rows",
                crcs.len(),
                rows.len()
            ));
        }
        if bad > 0 {
            problems.push(format!(
                "run.apng: {bad} of {} frames differ from frames.csv",
                crcs.len()
            ));
        }
        summary.push_str(&format!(" apng_frames_ok={}", crcs.len() - bad));
    }
    Ok((summary, notes, problems))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match check(&args) {
        Ok((summary, notes, problems)) => {
            let verdict = if problems.is_empty() { "OK" } else { "FAIL" };
            println!(
                "demo-check: {verdict} {summary} problems={}",
                problems.len()
            );
            for n in notes {
                println!("demo-check:   {n}");
            }
            for p in problems.iter().take(MAX_LISTED) {
                println!("demo-check:   problem: {p}");
            }
            if problems.len() > MAX_LISTED {
                println!("demo-check:   ... {} more", problems.len() - MAX_LISTED);
            }
            if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            println!("demo-check: ERROR {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: u64, crc: u32) -> Row {
        Row {
            index,
            is_flip: index > 0,
            width: 4,
            height: 2,
            crc,
        }
    }

    fn table() -> BTreeMap<u32, Vec<u64>> {
        let text = "scene=plasma frame=0 size=4x2 crc32=0000000a\n\
                    scene=plasma frame=1 size=4x2 crc32=0000000b\n\
                    scene=plasma frame=2 size=4x2 crc32=0000000c\n\
                    scene=plasma frame=3 size=4x2 crc32=0000000a\n\
                    scene=clock frame=4 size=4x2 crc32=0000000d\n\
                    scene=plasma frame=4 size=8x2 crc32=0000000d\n";
        let (t, max) = parse_table(text, "plasma", "4x2").unwrap();
        assert_eq!(max, 3);
        t
    }

    #[test]
    fn table_keeps_only_the_scene_and_size() {
        let t = table();
        assert_eq!(t.get(&0xa), Some(&vec![0, 3]));
        assert_eq!(t.get(&0xd), None);
        assert!(parse_table("scene=plasma frame=x size=4x2 crc32=0", "plasma", "4x2").is_err());
        assert!(parse_table("garbage", "plasma", "4x2").is_err());
        assert!(parse_table("", "plasma", "4x2").is_err());
    }

    #[test]
    fn skipped_frames_and_repeated_checksums_map_in_order() {
        // Frames 0, 2, then checksum 0xa again: must be frame 3, not frame 0.
        let rows = [row(0, 0xa), row(1, 0xc), row(2, 0xa)];
        let m = match_rows(&rows, &table(), 3);
        assert_eq!(m.frames, vec![Some(0), Some(2), Some(3)]);
        assert!(m.problems.is_empty());
    }

    #[test]
    fn unknown_and_backwards_frames_are_problems() {
        let rows = [row(0, 0xb), row(1, 0xb), row(2, 0xeeee)];
        let m = match_rows(&rows, &table(), 3);
        assert_eq!(m.frames, vec![Some(1), None, None]);
        assert_eq!(m.problems.len(), 2);
        assert!(
            m.problems[0].contains("not after frame 1"),
            "{:?}",
            m.problems
        );
        assert!(m.problems[1].contains("no frame 0..=3"), "{:?}", m.problems);
    }

    #[test]
    fn csv_rows_are_validated() {
        let head = "frame,kind,arrival_ns,fb_cookie,width,height,crc32\n";
        let ok = format!("{head}0,config,5,0x1,4,2,0000000a\n1,flip,9,0x2,4,2,0000000b\n");
        let rows = parse_csv(&ok).unwrap();
        assert_eq!(
            rows,
            vec![
                Row {
                    is_flip: false,
                    ..row(0, 0xa)
                },
                row(1, 0xb)
            ]
        );
        assert!(parse_csv("nope\n").is_err());
        assert!(parse_csv(&format!("{head}1,flip,9,0x2,4,2,0000000b\n")).is_err());
        assert!(parse_csv(&format!("{head}0,show,9,0x2,4,2,0000000b\n")).is_err());
        assert!(parse_csv(&format!("{head}0,flip,9,0x2,4,2,b\n")).is_err());
        assert!(parse_csv(&format!("{head}0,flip,9,0x2,4\n")).is_err());
    }

    /// A capture directory with `frames` of testcard at 32x24 and a table of frames 0..=5.
    fn capture(tag: &str, frames: &[u64]) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("demo-check-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let input = demos::SceneInput::default();
        let crc = |f| demos::render_crc32(Scene::Testcard, f, 32, 24, &input).unwrap();
        let mut csv = String::from("frame,kind,arrival_ns,fb_cookie,width,height,crc32\n");
        for (i, &f) in frames.iter().enumerate() {
            let kind = if i == 0 { "config" } else { "flip" };
            csv += &format!("{i},{kind},{i}000,0x1,32,24,{:08x}\n", crc(f));
        }
        fs::write(dir.join("frames.csv"), csv).unwrap();
        let table: String = (0..=5)
            .map(|f| format!("scene=testcard frame={f} size=32x24 crc32={:08x}\n", crc(f)))
            .collect();
        let table_path = dir.join("table.txt");
        fs::write(&table_path, table).unwrap();
        (dir, table_path)
    }

    fn args(dir: &Path, table: &Path) -> Args {
        Args {
            table: Some(table.to_path_buf()),
            scene: "testcard".into(),
            size: "32x24".into(),
            dir: dir.to_path_buf(),
            require: vec![0],
            min_flips: 2,
            live: false,
        }
    }

    #[test]
    fn a_capture_of_host_frames_passes_with_skips_counted() {
        let (dir, table) = capture("ok", &[0, 1, 3]);
        let (summary, _, problems) = check(&args(&dir, &table)).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert!(
            summary.contains("matched=3/3 scene_frames=0..3 skipped=1"),
            "{summary}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_capture_out_of_order_or_missing_frame_0_fails() {
        let (dir, table) = capture("bad", &[1, 3, 2]);
        let (_, _, problems) = check(&args(&dir, &table)).unwrap();
        assert!(
            problems.iter().any(|p| p.contains("not after frame 3")),
            "{problems:?}"
        );
        assert!(problems
            .iter()
            .any(|p| p.contains("scene frame 0 was never shown")));
        let mut a = args(&dir, &table);
        a.min_flips = 5;
        let (_, _, problems) = check(&a).unwrap();
        assert!(problems
            .iter()
            .any(|p| p.contains("2 flips, expected at least 5")));
        // Another size is not in the table at all.
        a.size = "16x24".into();
        assert!(check(&a).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn apng_frames_are_checked_against_the_rows() {
        let (dir, table) = capture("apng", &[0, 1, 2]);
        let input = demos::SceneInput::default();
        let frame = |f| {
            let mut px = vec![0u32; 32 * 24];
            let mut fb =
                xen_display::framebuffer::Framebuffer::try_new_packed(&mut px, 32, 24).unwrap();
            let Ok(()) = demos::render(Scene::Testcard, f, &mut fb, &input);
            px.iter()
                .flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8])
                .collect::<Vec<u8>>()
        };
        let write = |frames: &[u64]| {
            let f = fs::File::create(dir.join("run.apng")).unwrap();
            let mut enc = png::Encoder::new(f, 32, 24);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_animated(frames.len() as u32, 0).unwrap();
            let mut w = enc.write_header().unwrap();
            for &n in frames {
                w.write_image_data(&frame(n)).unwrap();
            }
            w.finish().unwrap();
        };
        write(&[0, 1]);
        let (summary, _, problems) = check(&args(&dir, &table)).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert!(summary.contains("apng_frames_ok=2"), "{summary}");
        write(&[0, 2]);
        let (_, _, problems) = check(&args(&dir, &table)).unwrap();
        assert!(
            problems.iter().any(|p| p.contains("1 of 2 frames differ")),
            "{problems:?}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn png_checksum_is_the_frame_checksum() {
        // Two pixels per row: the checksum over 0x00RRGGBB little-endian.
        let rgb = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let mut want = FrameCrc32::new();
        want.update_row(&[0x010203, 0x040506]);
        want.update_row(&[0x070809, 0x0a0b0c]);
        let want = want.finish();
        assert_eq!(rgb_crc32(&rgb, 2), want);
        let dir = std::env::temp_dir().join(format!("demo-check-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.png");
        let mut enc = png::Encoder::new(fs::File::create(&path).unwrap(), 2, 2);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&rgb).unwrap();
        w.finish().unwrap();
        assert_eq!(png_crc32(&path).unwrap(), (2, 2, want));
        fs::remove_dir_all(&dir).unwrap();
    }
}
