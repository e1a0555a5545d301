//! A small timestamped logger for the `log` facade (stderr).
//!
//! Each line: UTC wall-clock time, seconds since start, level, message, e.g.
//! `2026-11-25T22:40:01.123Z +12.345678 INFO dom1/0: backend state -> InitWait(2)`.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

struct Logger {
    level: log::LevelFilter,
    start: Instant,
}

/// Format seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc_timestamp(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let line = format!(
            "{} +{:.6} {:<5} {}\n",
            utc_timestamp(wall),
            self.start.elapsed().as_secs_f64(),
            record.level(),
            record.args()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Install the logger at `level` (once per process).
pub fn init(level: log::LevelFilter) {
    let logger = Box::new(Logger {
        level,
        start: Instant::now(),
    });
    if log::set_logger(Box::leak(logger)).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(
            utc_timestamp(std::time::Duration::from_millis(0)),
            "1970-01-01T00:00:00.000Z"
        );
        // 2026-11-25T22:40:01.123Z
        assert_eq!(
            utc_timestamp(std::time::Duration::from_millis(1_795_646_401_123)),
            "2026-11-25T22:40:01.123Z"
        );
        assert_eq!(
            utc_timestamp(std::time::Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
