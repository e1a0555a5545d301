//! The emulated display's vertical blank: when a flip's frame-done event is due.
//!
//! A connector refreshes every `period` from the moment it connected. A flip is
//! shown at the first vblank after it arrives, and at most one flip is shown per
//! vblank (a second flip in the same period waits for the next one), so its
//! frame-done (`XENDISPL_EVT_PG_FLIP`) is due at that vblank. With refresh `off`
//! the event is due at once. Vblanks between two shown flips are "missed" (the
//! display repeated a frame).

use core::fmt;
use core::str::FromStr;

/// The emulated refresh rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Refresh {
    /// Frame-done is sent immediately after the flip's response.
    Off,
    /// Frame-done at the next vblank of a display refreshing at this many Hz.
    Hz(f64),
}

impl Refresh {
    /// The vblank period, if any.
    pub fn period_ns(self) -> Option<u64> {
        match self {
            Refresh::Off => None,
            Refresh::Hz(hz) => Some((1e9 / hz).round() as u64),
        }
    }

    /// Whole refresh rate for EDID (60 when off).
    pub fn whole_hz(self) -> u32 {
        match self {
            Refresh::Off => 60,
            Refresh::Hz(hz) => hz.round() as u32,
        }
    }
}

impl FromStr for Refresh {
    type Err = String;
    fn from_str(s: &str) -> Result<Refresh, String> {
        if s == "off" {
            return Ok(Refresh::Off);
        }
        let hz: f64 = s
            .trim_end_matches("Hz")
            .parse()
            .map_err(|_| format!("refresh '{s}': expected a rate in Hz or 'off'"))?;
        if !(1.0..=1000.0).contains(&hz) {
            return Err(format!("refresh {hz} Hz is outside 1..=1000"));
        }
        Ok(Refresh::Hz(hz))
    }
}

impl fmt::Display for Refresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refresh::Off => f.write_str("off"),
            Refresh::Hz(hz) => write!(f, "{hz} Hz"),
        }
    }
}

/// When a flip is due, and how many vblanks went by without a new frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// Time the frame-done event should be sent.
    pub at_ns: u64,
    /// Vblanks since the previous shown flip that showed nothing new.
    pub missed_vblanks: u64,
}

/// The vblank clock of one connector.
#[derive(Clone, Debug)]
pub struct Pacer {
    origin_ns: u64,
    period_ns: Option<u64>,
    last_vblank: Option<u64>,
}

impl Pacer {
    /// A display that started refreshing at `origin_ns`.
    pub fn new(refresh: Refresh, origin_ns: u64) -> Pacer {
        Pacer {
            origin_ns,
            period_ns: refresh.period_ns(),
            last_vblank: None,
        }
    }

    /// Schedule a flip that arrived at `arrival_ns`.
    pub fn schedule(&mut self, arrival_ns: u64) -> Due {
        let Some(period) = self.period_ns else {
            return Due {
                at_ns: arrival_ns,
                missed_vblanks: 0,
            };
        };
        let mut index = arrival_ns.saturating_sub(self.origin_ns) / period + 1;
        let mut missed = 0;
        if let Some(last) = self.last_vblank {
            index = index.max(last + 1);
            missed = index - last - 1;
        }
        self.last_vblank = Some(index);
        Due {
            at_ns: self.origin_ns + index * period,
            missed_vblanks: missed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!("off".parse::<Refresh>(), Ok(Refresh::Off));
        assert_eq!("60".parse::<Refresh>(), Ok(Refresh::Hz(60.0)));
        assert_eq!("59.94Hz".parse::<Refresh>(), Ok(Refresh::Hz(59.94)));
        assert!("0".parse::<Refresh>().is_err());
        assert!("fast".parse::<Refresh>().is_err());
        assert_eq!(Refresh::Hz(60.0).period_ns(), Some(16_666_667));
    }

    #[test]
    fn next_vblank_one_flip_per_vblank_and_missed_count() {
        let period = 16_666_667;
        let mut p = Pacer::new(Refresh::Hz(60.0), 1_000);
        assert_eq!(
            p.schedule(1_000),
            Due {
                at_ns: 1_000 + period,
                missed_vblanks: 0
            }
        );
        // A second flip in the same period goes to the following vblank.
        assert_eq!(
            p.schedule(2_000),
            Due {
                at_ns: 1_000 + 2 * period,
                missed_vblanks: 0
            }
        );
        // Arriving after vblank 5: shown at 6, vblanks 3..=5 repeated a frame.
        assert_eq!(
            p.schedule(1_000 + 5 * period + 1),
            Due {
                at_ns: 1_000 + 6 * period,
                missed_vblanks: 3
            }
        );
        let mut off = Pacer::new(Refresh::Off, 0);
        assert_eq!(
            off.schedule(42),
            Due {
                at_ns: 42,
                missed_vblanks: 0
            }
        );
    }
}
