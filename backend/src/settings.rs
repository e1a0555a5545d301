//! Backend-wide settings, from the command line, shared by every device.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::capture::CapturePolicy;
use crate::limits::Caps;
use crate::pacing::Refresh;

/// Settings every device thread reads.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Emulated refresh rate.
    pub refresh: Refresh,
    /// Per-guest caps.
    pub caps: Caps,
    /// Capture output root (`None`: checksums are only logged).
    pub out_dir: Option<PathBuf>,
    /// Snapshot every Nth frame.
    pub snapshot_every: Option<u64>,
    /// Snapshot these frame numbers.
    pub snapshot_frames: BTreeSet<u64>,
    /// Snapshot the last frame when a connection ends.
    pub snapshot_at_end: bool,
    /// Record an APNG per connector.
    pub apng: bool,
    /// Frames kept for the APNG.
    pub apng_max_frames: usize,
    /// Log every frame's checksum at info level (otherwise debug).
    pub log_frames: bool,
    /// How often a full event page is re-checked, ns.
    pub event_retry_ns: u64,
    /// Requests served from one ring per call before the device thread
    /// returns to its loop (xenstore, stop); the rest is backlog.
    pub max_requests_per_serve: usize,
    /// Serve-then-checksum rounds per wake-up of the device thread.
    pub max_capture_rounds: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            refresh: Refresh::Hz(60.0),
            caps: Caps::default(),
            out_dir: None,
            snapshot_every: None,
            snapshot_frames: BTreeSet::new(),
            snapshot_at_end: false,
            apng: false,
            apng_max_frames: 600,
            log_frames: false,
            event_retry_ns: 1_000_000,
            max_requests_per_serve: 16,
            max_capture_rounds: 16,
        }
    }
}

impl Settings {
    /// The capture policy of one connector of one connection.
    pub fn capture_policy(
        &self,
        domid: u16,
        device: &str,
        connector: u32,
        session: u32,
    ) -> CapturePolicy {
        let dir = self.out_dir.as_ref().map(|root| {
            let name = if session == 0 {
                format!("conn{connector}")
            } else {
                format!("conn{connector}.session{session}")
            };
            root.join(format!("dom{domid}-{device}")).join(name)
        });
        CapturePolicy {
            dir,
            snapshot_every: self.snapshot_every,
            snapshot_frames: self.snapshot_frames.clone(),
            snapshot_at_end: self.snapshot_at_end,
            apng: self.apng,
            apng_max_frames: self.apng_max_frames,
        }
    }
}
