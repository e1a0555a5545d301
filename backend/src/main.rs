//! pvdispl-backend: headless dom0 displif (`vdispl`) backend with frame capture.
//!
//! Run in dom0 before `xl create` of a guest with a `vdispl = [...]` line:
//!
//! ```text
//! pvdispl-backend --out /out/frames --refresh 60 --snapshot-frames 0,1 --apng
//! ```

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Parser;

use pvdispl_backend::limits::Caps;
use pvdispl_backend::pacing::Refresh;
use pvdispl_backend::settings::Settings;
use pvdispl_backend::{daemon, logger, os};

/// Headless Xen displif (vdispl) backend: serves every vdispl device of every
/// guest, checks each request against the protocol, and captures what is shown.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Directory for frames.csv, stats.json, snapshots and APNGs (one
    /// subdirectory per guest device and connector). Without it only logs.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Emulated refresh rate in Hz for frame-done pacing, or `off` to send
    /// frame-done at once.
    #[arg(long, default_value = "60")]
    refresh: Refresh,
    /// PNG snapshot of every Nth frame (frame numbers divisible by N).
    #[arg(long, value_name = "N")]
    snapshot_every: Option<u64>,
    /// PNG snapshots of these frame numbers (comma separated, from 0).
    #[arg(long, value_delimiter = ',', value_name = "FRAMES")]
    snapshot_frames: Vec<u64>,
    /// PNG snapshot of the frame on screen when a connection ends.
    #[arg(long)]
    snapshot_at_end: bool,
    /// Record an APNG of each connector's run (costly: every frame is encoded).
    #[arg(long)]
    apng: bool,
    /// Frames kept for the APNG.
    #[arg(long, default_value_t = 600)]
    apng_max_frames: usize,
    /// Per-guest cap: display buffers alive at once.
    #[arg(long, default_value_t = Caps::default().max_buffers)]
    max_buffers: u64,
    /// Per-guest cap: MiB of memory mapped at once.
    #[arg(long, default_value_t = Caps::default().max_mapped_bytes >> 20)]
    max_mapped_mib: u64,
    /// Per-guest cap: grant references held at once.
    #[arg(long, default_value_t = Caps::default().max_grant_refs)]
    max_grant_refs: u64,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info", value_parser = parse_level)]
    log_level: log::LevelFilter,
    /// Log every frame's checksum at info level.
    #[arg(long)]
    log_frames: bool,
    /// Our own domain id (default: read `domid` from xenstore, else 0).
    #[arg(long)]
    domid: Option<u16>,
}

fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse()
        .map_err(|_| format!("'{s}': expected off, error, warn, info, debug or trace"))
}

fn main() {
    let cli = Cli::parse();
    logger::init(cli.log_level);
    let settings = Settings {
        refresh: cli.refresh,
        caps: Caps {
            max_buffers: cli.max_buffers,
            max_mapped_bytes: cli.max_mapped_mib.saturating_mul(1 << 20),
            max_grant_refs: cli.max_grant_refs,
        },
        out_dir: cli.out,
        snapshot_every: cli.snapshot_every,
        snapshot_frames: cli.snapshot_frames.into_iter().collect::<BTreeSet<_>>(),
        snapshot_at_end: cli.snapshot_at_end,
        apng: cli.apng,
        apng_max_frames: cli.apng_max_frames,
        log_frames: cli.log_frames,
        ..Settings::default()
    };
    os::signals::install();
    if let Err(e) = daemon::run(settings, cli.domid) {
        log::error!("pvdispl-backend: {e}");
        std::process::exit(1);
    }
}
