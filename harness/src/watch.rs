//! The serial-line watcher: turns Xen's com1 stream into milestones, fatal events and a verdict.
//!
//! Pure: it sees one line at a time (without the line ending) and returns [`Event`]s; timing,
//! printing and killing QEMU are the caller's business (see `qemu.rs`). Line sources:
//! - `(XEN) ...` Xen's own messages;
//! - `(dN) ...` a guest's port-0xE9 output (`guest_loglvl=all`), N >= 1;
//! - everything else is dom0 (kernel on hvc0, and our init/lib.sh lines:
//!   `@@harness milestone NAME [DETAIL]` and the verdict `Test result: STATUS REASON`).

use std::collections::BTreeSet;
use std::fmt;

/// Marker that starts a machine-readable dom0 line.
pub const MILESTONE_MARK: &str = "@@harness milestone ";
/// Marker of the verdict line (XTF's convention).
pub const VERDICT_MARK: &str = "Test result: ";

/// Outcome of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Status {
    /// The thing under test did what the scenario checks.
    #[serde(rename = "SUCCESS")]
    Success,
    /// The thing under test misbehaved.
    #[serde(rename = "FAILURE")]
    Failure,
    /// The test could not run properly (rig broken, timeout, panic).
    #[serde(rename = "ERROR")]
    Error,
}

impl Status {
    /// Parses `SUCCESS`, `FAILURE` or `ERROR`.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "SUCCESS" => Some(Self::Success),
            "FAILURE" => Some(Self::Failure),
            "ERROR" => Some(Self::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Success => "SUCCESS",
            Self::Failure => "FAILURE",
            Self::Error => "ERROR",
        })
    }
}

/// Something the host must act on or record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A named milestone (timestamp it).
    Milestone {
        /// Milestone name.
        name: String,
        /// Free text after the name (may be empty).
        detail: String,
    },
    /// The machine is dead (Xen panic, dom0 panic): stop QEMU now.
    Fatal(String),
    /// The scenario's verdict.
    Verdict {
        /// The status word.
        status: Status,
        /// The rest of the line.
        reason: String,
    },
}

/// Which part of the system printed a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Xen itself (`(XEN)`).
    Xen,
    /// Guest domain N >= 1 via port 0xE9 (`(dN)`).
    Guest(u32),
    /// dom0's console (kernel + userspace).
    Dom0,
}

/// Classifies a serial line by its prefix.
pub fn source_of(line: &str) -> Source {
    if line.starts_with("(XEN)") {
        return Source::Xen;
    }
    if let Some(rest) = line.strip_prefix("(d") {
        if let Some(end) = rest.find(')') {
            if let Ok(n) = rest[..end].parse::<u32>() {
                if end > 0 && n >= 1 {
                    return Source::Guest(n);
                }
            }
        }
    }
    Source::Dom0
}

/// Whether `name` is a valid milestone name (`[A-Za-z0-9_.-]+`).
pub fn valid_milestone_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Stateful line watcher.
#[derive(Debug, Default)]
pub struct Watcher {
    once: BTreeSet<&'static str>,
    xen_panic_cpu: Option<String>,
    fatal_sent: bool,
    verdict_seen: bool,
}

impl Watcher {
    /// A fresh watcher.
    pub fn new() -> Self {
        Self::default()
    }

    fn once(&mut self, out: &mut Vec<Event>, name: &'static str, detail: &str) {
        if self.once.insert(name) {
            out.push(Event::Milestone {
                name: name.to_string(),
                detail: detail.trim().to_string(),
            });
        }
    }

    fn fatal(&mut self, out: &mut Vec<Event>, msg: String) {
        if !self.fatal_sent {
            self.fatal_sent = true;
            out.push(Event::Fatal(msg));
        }
    }

    /// Feeds one line (no trailing newline; a trailing `\r` is ignored).
    pub fn feed(&mut self, line: &str) -> Vec<Event> {
        let line = line.trim_end_matches('\r');
        let mut out = Vec::new();
        let source = source_of(line);

        // A Xen panic prints "Panic on CPU n:" then the reason on the next line.
        if let Some(cpu) = self.xen_panic_cpu.take() {
            let reason = line.trim_start_matches("(XEN)").trim();
            self.fatal(&mut out, format!("Xen panic ({cpu}): {reason}"));
        }

        match source {
            Source::Xen => {
                let body = line["(XEN)".len()..].trim();
                if let Some(idx) = body.find("Xen version ") {
                    self.once(&mut out, "xen_banner", &body[idx + "Xen version ".len()..]);
                }
                // 4.17 says "*** Building a PV Dom0 ***"; older releases "LOADING DOMAIN 0".
                if body.contains("Building a PV Dom0")
                    || body.contains("Building a PVH Dom0")
                    || body.contains("*** LOADING DOMAIN 0 ***")
                {
                    self.once(&mut out, "dom0_loading", "");
                }
                if let Some(idx) = body.find("Panic on CPU") {
                    self.xen_panic_cpu = Some(body[idx..].trim_end_matches(':').to_string());
                }
                if body.contains("Manual reset required") {
                    self.fatal(&mut out, format!("Xen stopped: {body}"));
                }
                // A guest crash is the scenario's business (lib.sh turns it into a verdict);
                // record when it happened.
                if (body.contains("Triple fault") || body.contains("crashed"))
                    && !body.contains("Dom0")
                {
                    self.once(&mut out, "guest_crash", body);
                }
                if body.contains("Hardware Dom0 crashed") {
                    self.fatal(&mut out, format!("dom0 crashed: {body}"));
                }
            }
            Source::Guest(n) => {
                self.once(&mut out, "guest_output", &format!("d{n}"));
            }
            Source::Dom0 => {
                if let Some(idx) = line.find("Linux version ") {
                    self.once(
                        &mut out,
                        "dom0_kernel",
                        &line[idx + "Linux version ".len()..],
                    );
                }
                if let Some(idx) = line.find("Kernel panic - not syncing") {
                    self.fatal(&mut out, format!("dom0 kernel panic: {}", &line[idx..]));
                }
                // Both markers count only at the start of a line: dom0 tools echo guest
                // output (e.g. `[scenario] guest: … Test result: SUCCESS`), and such an
                // echo must never be taken for the scenario's own verdict or milestone.
                let body = line.trim_start();
                if let Some(rest) = body.strip_prefix(MILESTONE_MARK) {
                    let rest = rest.trim();
                    let (name, detail) = rest.split_once(' ').unwrap_or((rest, ""));
                    if valid_milestone_name(name) {
                        out.push(Event::Milestone {
                            name: name.to_string(),
                            detail: detail.trim().to_string(),
                        });
                    }
                }
                if let Some(rest) = body.strip_prefix(VERDICT_MARK) {
                    if !self.verdict_seen {
                        let rest = rest.trim();
                        let (word, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                        let (status, reason) = match Status::parse(word) {
                            Some(s) => (s, reason.trim().to_string()),
                            None => (Status::Error, format!("malformed verdict line: {rest}")),
                        };
                        self.verdict_seen = true;
                        out.push(Event::Verdict { status, reason });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milestones(events: &[Event]) -> Vec<&str> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Milestone { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn boot_sequence() {
        let mut w = Watcher::new();
        let log = [
            " Xen 4.17.7",
            "(XEN) Xen version 4.17.7 (Debian 4.17.7) (pkg@debian) gcc 12\r",
            "(XEN) Xen version again",
            "(XEN) *** Building a PV Dom0 ***",
            "[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)",
            "@@harness milestone dom0_up",
            "[scenario] starting",
            "@@harness milestone guest_created selftest domid=1",
            "(d1) [    0.000000] Linux version 6.1.0-56-amd64",
            "(d1) more",
            "(d0) not a guest",
            "@@harness milestone guest_gone selftest",
            "Test result: SUCCESS marker seen",
            "Test result: FAILURE second verdict ignored",
        ];
        let events: Vec<Event> = log.iter().flat_map(|l| w.feed(l)).collect();
        assert_eq!(
            milestones(&events),
            [
                "xen_banner",
                "dom0_loading",
                "dom0_kernel",
                "dom0_up",
                "guest_created",
                "guest_output",
                "guest_gone"
            ]
        );
        assert!(events.contains(&Event::Milestone {
            name: "guest_created".into(),
            detail: "selftest domid=1".into()
        }));
        assert!(events.contains(&Event::Milestone {
            name: "xen_banner".into(),
            detail: "4.17.7 (Debian 4.17.7) (pkg@debian) gcc 12".into()
        }));
        let verdicts: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, Event::Verdict { .. }))
            .collect();
        assert_eq!(
            verdicts,
            [&Event::Verdict {
                status: Status::Success,
                reason: "marker seen".into()
            }]
        );
    }

    #[test]
    fn echoed_guest_output_is_not_a_verdict_or_milestone() {
        let mut w = Watcher::new();
        // The selftest scenario logs the guest's console, verdict line included.
        assert!(w
            .feed("[scenario] guest: [    0.897089] Test result: SUCCESS")
            .is_empty());
        assert!(w
            .feed("[scenario] guest: @@harness milestone guest_gone x")
            .is_empty());
        assert_eq!(
            w.feed("Test result: FAILURE the scenario's own verdict"),
            [Event::Verdict {
                status: Status::Failure,
                reason: "the scenario's own verdict".into()
            }]
        );
    }

    #[test]
    fn guest_lines_cannot_fake_verdict_or_panic() {
        let mut w = Watcher::new();
        assert_eq!(
            w.feed("(d1) Test result: SUCCESS fake"),
            [Event::Milestone {
                name: "guest_output".into(),
                detail: "d1".into()
            }]
        );
        assert!(w.feed("(d1) Kernel panic - not syncing: guest").is_empty());
        assert!(w.feed("(d2) @@harness milestone x").is_empty());
    }

    #[test]
    fn xen_panic_takes_reason_from_next_line() {
        let mut w = Watcher::new();
        assert!(w
            .feed("(XEN) ****************************************")
            .is_empty());
        assert!(w.feed("(XEN) Panic on CPU 0:").is_empty());
        assert_eq!(
            w.feed("(XEN) Could not set up DOM0 guest OS"),
            [Event::Fatal(
                "Xen panic (Panic on CPU 0): Could not set up DOM0 guest OS".into()
            )]
        );
        assert!(w
            .feed("(XEN) Manual reset required ('noreboot' specified)")
            .is_empty());
    }

    #[test]
    fn guest_crash_is_a_milestone_not_fatal() {
        let mut w = Watcher::new();
        assert_eq!(
            w.feed("(XEN) d1v0 Triple fault - invoking HVM shutdown action 1"),
            [Event::Milestone {
                name: "guest_crash".into(),
                detail: "d1v0 Triple fault - invoking HVM shutdown action 1".into()
            }]
        );
    }

    #[test]
    fn other_fatals() {
        let mut w = Watcher::new();
        assert_eq!(
            w.feed("[    3.1] Kernel panic - not syncing: Attempted to kill init!"),
            [Event::Fatal(
                "dom0 kernel panic: Kernel panic - not syncing: Attempted to kill init!".into()
            )]
        );
        let mut w = Watcher::new();
        assert!(matches!(
            &w.feed("(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds.")[..],
            [Event::Fatal(m)] if m.starts_with("dom0 crashed")
        ));
        let mut w = Watcher::new();
        assert!(matches!(
            &w.feed("(XEN) Manual reset required ('noreboot' specified)")[..],
            [Event::Fatal(_)]
        ));
    }

    #[test]
    fn malformed_verdict_and_milestone() {
        let mut w = Watcher::new();
        assert!(w.feed("@@harness milestone bad/name").is_empty());
        assert_eq!(
            w.feed("Test result: MAYBE"),
            [Event::Verdict {
                status: Status::Error,
                reason: "malformed verdict line: MAYBE".into()
            }]
        );
        assert_eq!(source_of("(d)x"), Source::Dom0);
        assert_eq!(source_of("(d12) x"), Source::Guest(12));
        assert_eq!(source_of("(dx) x"), Source::Dom0);
    }
}
