//! Per-connector statistics, written as `stats.json` when a connection ends.

use std::collections::BTreeMap;

/// Distribution of a set of durations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Mean, ns.
    pub mean_ns: u64,
    /// Median, ns.
    pub p50_ns: u64,
    /// 99th percentile (nearest rank), ns.
    pub p99_ns: u64,
    /// Maximum, ns.
    pub max_ns: u64,
}

impl Summary {
    /// Summarise `samples` (any order).
    pub fn of(samples: &[u64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank =
            |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        let total: u128 = sorted.iter().map(|&v| u128::from(v)).sum();
        Summary {
            count: sorted.len() as u64,
            mean_ns: (total / sorted.len() as u128) as u64,
            p50_ns: rank(0.5),
            p99_ns: rank(0.99),
            max_ns: *sorted.last().unwrap_or(&0),
        }
    }
}

/// Counters of one connector over one connection.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ConnectorStats {
    /// Frontend domain.
    pub domid: u16,
    /// Device id under `vdispl/`.
    pub device: String,
    /// Connector index.
    pub connector: u32,
    /// Its `unique-id`.
    pub unique_id: String,
    /// Its resolution, `WxH`.
    pub resolution: String,
    /// Emulated refresh (`off` or Hz).
    pub refresh: String,
    /// Negotiated protocol version.
    pub protocol_version: u32,
    /// Requests handled on this connector's ring.
    pub requests: u64,
    /// DBUF_CREATE requests accepted on this ring (connector 0 in practice).
    pub dbufs_created: u64,
    /// Of those, backend-allocated (`XENDISPL_DBUF_FLG_REQ_ALLOC`).
    pub dbufs_backend_allocated: u64,
    /// Frames made visible (SET_CONFIG with a framebuffer, and PG_FLIPs).
    pub frames: u64,
    /// PG_FLIP requests accepted.
    pub flips: u64,
    /// SET_CONFIG requests accepted (including resets).
    pub set_configs: u64,
    /// Frame-done events published.
    pub frame_done_sent: u64,
    /// Intervals between consecutive accepted flips.
    pub flip_interval: Summary,
    /// Frame-done events sent more than 2 ms after their vblank.
    pub late_events: u64,
    /// Vblanks that repeated a frame between two flips.
    pub missed_vblanks: u64,
    /// Times a due event could not be written (page full, or its slot unread
    /// across the index wrap) and had to wait.
    pub event_page_stalls: u64,
    /// Of those, stalls with fewer than 63 unread events because the next
    /// index's slot still held an unread event from before the u32 index wrap.
    pub event_wrap_stalls: u64,
    /// Total time events waited for space, ns.
    pub event_stall_ns: u64,
    /// Error replies, by rule name.
    pub errors_by_rule: BTreeMap<&'static str, u64>,
    /// Tolerated deviations (requests served anyway), by warning name.
    pub warnings_by_rule: BTreeMap<&'static str, u64>,
    /// CPU time (user + system) of the device thread spent on this connector, ns.
    pub cpu_ns: u64,
    /// `cpu_ns / flips` (everything: requests, events, checksums, snapshots).
    pub cpu_ns_per_flip: Option<u64>,
    /// Mean CPU time to capture (checksum) one shown frame when no
    /// snapshot/APNG image was taken of it, ns.
    pub capture_cpu_ns: Option<u64>,
    /// Captures that went into `capture_cpu_ns`.
    #[serde(skip)]
    pub plain_captures: u64,
    /// Their total CPU time.
    #[serde(skip)]
    pub plain_capture_cpu_ns: u64,
    /// Wall time from taking a `PG_FLIP` request off the ring to its response
    /// being ready (checksum and capture included), over all flips.
    pub flip_service: Summary,
    /// Wall time to capture one shown frame (checksum, `frames.csv` line) when
    /// no image was taken of it; captures run after responses and frame-done
    /// events are out (see `Connection::serve_and_capture`).
    pub capture: Summary,
    /// Length of the connection, ns.
    pub connected_ns: u64,
    /// CRC-32 of the last frame shown (hex).
    pub last_crc32: Option<String>,
    /// How the connection ended.
    pub ended_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_percentiles() {
        let samples: Vec<u64> = (1..=100).collect();
        let s = Summary::of(&samples);
        assert_eq!(
            (s.count, s.mean_ns, s.p50_ns, s.p99_ns, s.max_ns),
            (100, 50, 50, 99, 100)
        );
        assert_eq!(Summary::of(&[]), Summary::default());
        assert_eq!(Summary::of(&[7]).p99_ns, 7);
    }
}
