//! Host tool: the expected checksums of the frontend's built-in test pattern,
//! for the `flip` real-Xen scenario.
//!
//! Renders `xen_display::pattern::TestPattern` frames `0..=LAST` at each given
//! resolution with the very code the unikernel runs and prints the CRC-32 the
//! dom0 backend records for a shown frame (`demos::FrameCrc32`: visible rows
//! as little-endian `0x00RRGGBB`), one line per frame:
//!
//! ```text
//! WIDTHxHEIGHT FRAME CRC32
//! ```
//!
//!     cargo run --release -p pvdispl-kernel --example flip_expect -- LAST WxH [WxH...] > expected.txt
//!
//! The scenario maps every captured checksum back to a frame number with this
//! table, so skipped deadlines (flip k showing frame k + s) are handled.

use std::io::Write;
use std::process::ExitCode;

use demos::FrameCrc32;
use xen_display::pattern::pattern_row;

fn parse_mode(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once('x')?;
    let (w, h) = (w.parse().ok()?, h.parse().ok()?);
    (1..=8192).contains(&w).then_some(())?;
    (1..=8192).contains(&h).then_some((w, h))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: flip_expect LAST_FRAME WxH [WxH...]";
    let Some(last) = args.first().and_then(|a| a.parse::<u64>().ok()) else {
        eprintln!("{usage}");
        return ExitCode::FAILURE;
    };
    let mut modes = Vec::new();
    for a in &args[1..] {
        match parse_mode(a) {
            Some(m) => modes.push(m),
            None => {
                eprintln!("bad resolution `{a}`; {usage}");
                return ExitCode::FAILURE;
            }
        }
    }
    if modes.is_empty() {
        eprintln!("{usage}");
        return ExitCode::FAILURE;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (w, h) in modes {
        let mut row = vec![0u32; w as usize];
        for frame in 0..=last {
            let mut crc = FrameCrc32::new();
            for y in 0..h {
                pattern_row(frame, w, h, y, &mut row);
                crc.update_row(&row);
            }
            if writeln!(out, "{w}x{h} {frame} {:08x}", crc.finish()).is_err() {
                return ExitCode::FAILURE;
            }
        }
    }
    if out.flush().is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
