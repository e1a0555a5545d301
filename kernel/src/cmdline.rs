//! The kernel command line, parsed into typed options.
//!
//! The command line is the xl config's `extra=` string (Xen passes it as the PVH
//! `cmdline_paddr`; QEMU passes `-append`). It is a whitespace-separated list of
//! `name` flags and `name=value` options:
//!
//! | option       | meaning                                             |
//! |--------------|-----------------------------------------------------|
//! | `selftest`   | run the in-guest Xen core self-test, then power off |
//! | `idle`       | no display: only serve `control/shutdown`           |
//! | `frames=N`   | N flips per connector then power off (0: until shutdown) |
//! | `fps=N`      | frame pacing, 1..=240                               |
//! | `buffers=N`  | display buffers per connector: 2 (double, default) or 3 (triple) |
//! | `demo=NAME`  | demo scene; NAME is `[a-z0-9_-]{1,32}`               |
//! | `loglevel=L` | `error`, `warn`, `info`, `debug` or `trace`         |
//! | `crash=K`    | test the failure paths: `panic` or `fault` (#PF)    |
//!
//! Unknown options, missing or unexpected values, malformed numbers and
//! duplicates are all errors ([`CmdlineError`]): the kernel reports them and
//! exits with failure instead of guessing.

use core::fmt;

/// Log verbosity from `loglevel=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// The default.
    Info,
    /// Debugging detail.
    Debug,
    /// Everything.
    Trace,
}

/// A deliberate failure, to test the panic handler and the exception path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// `crash=panic`: a Rust panic.
    Panic,
    /// `crash=fault`: a page fault (read above the identity map).
    Fault,
}

/// The parsed command line. String values borrow from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options<'a> {
    /// `selftest`: run the Xen core self-test.
    pub is_selftest: bool,
    /// `idle`: do nothing but wait for `control/shutdown`.
    pub is_idle: bool,
    /// `frames=N`.
    pub frames: Option<u32>,
    /// `fps=N`.
    pub fps: Option<u32>,
    /// `buffers=N` (2 or 3).
    pub buffers: Option<u32>,
    /// `demo=NAME`.
    pub demo: Option<&'a str>,
    /// `loglevel=L` (default [`LogLevel::Info`]).
    pub log_level: LogLevel,
    /// `crash=K`.
    pub crash: Option<CrashKind>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            is_selftest: false,
            is_idle: false,
            frames: None,
            fps: None,
            buffers: None,
            demo: None,
            log_level: LogLevel::Info,
            crash: None,
        }
    }
}

/// Why a command line was rejected. Each variant names the offending token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError<'a> {
    /// The option name is not one we know.
    UnknownOption(&'a str),
    /// `name` needs `=value`.
    MissingValue(&'a str),
    /// A flag was given a value (`selftest=1`).
    UnexpectedValue(&'a str),
    /// The option appeared twice.
    Duplicate(&'a str),
    /// The value is not a decimal number that fits.
    BadNumber {
        /// Option name.
        name: &'a str,
        /// Offending value.
        value: &'a str,
    },
    /// The number is outside the option's range.
    OutOfRange {
        /// Option name.
        name: &'a str,
        /// The parsed value.
        value: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// The value is not one of the allowed words / characters.
    BadValue {
        /// Option name.
        name: &'a str,
        /// Offending value.
        value: &'a str,
        /// What is allowed.
        expected: &'static str,
    },
    /// The command line is not valid UTF-8.
    NotUtf8,
}

impl fmt::Display for CmdlineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineError::UnknownOption(n) => write!(
                f,
                "unknown option `{n}` (known: selftest, idle, frames=N, fps=N, buffers=N, demo=NAME, loglevel=L, crash=K)"
            ),
            CmdlineError::MissingValue(n) => write!(f, "option `{n}` needs a value (`{n}=...`)"),
            CmdlineError::UnexpectedValue(n) => write!(f, "option `{n}` takes no value"),
            CmdlineError::Duplicate(n) => write!(f, "option `{n}` given twice"),
            CmdlineError::BadNumber { name, value } => {
                write!(f, "option `{name}`: `{value}` is not a decimal number")
            }
            CmdlineError::OutOfRange {
                name,
                value,
                min,
                max,
            } => write!(f, "option `{name}`: {value} is outside {min}..={max}"),
            CmdlineError::BadValue {
                name,
                value,
                expected,
            } => write!(f, "option `{name}`: `{value}` is not {expected}"),
            CmdlineError::NotUtf8 => write!(f, "command line is not valid UTF-8"),
        }
    }
}

/// Largest `fps=`.
pub const MAX_FPS: u32 = 240;
/// Longest `demo=` name.
pub const MAX_DEMO_NAME_BYTES: usize = 32;

/// Parse raw command-line bytes (as read from guest memory).
pub fn parse_bytes(bytes: &[u8]) -> Result<Options<'_>, CmdlineError<'_>> {
    let text = core::str::from_utf8(bytes).map_err(|_| CmdlineError::NotUtf8)?;
    parse(text)
}

/// Parse a command line.
pub fn parse(text: &str) -> Result<Options<'_>, CmdlineError<'_>> {
    let mut options = Options::default();
    let mut seen = Seen::default();
    for token in text.split_ascii_whitespace() {
        let (name, value) = match token.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (token, None),
        };
        match name {
            "selftest" => {
                first_time(&mut seen.selftest, name)?;
                if value.is_some() {
                    return Err(CmdlineError::UnexpectedValue(name));
                }
                options.is_selftest = true;
            }
            "idle" => {
                first_time(&mut seen.idle, name)?;
                if value.is_some() {
                    return Err(CmdlineError::UnexpectedValue(name));
                }
                options.is_idle = true;
            }
            "frames" => {
                first_time(&mut seen.frames, name)?;
                options.frames = Some(number(name, value, 0, u32::MAX)?);
            }
            "fps" => {
                first_time(&mut seen.fps, name)?;
                options.fps = Some(number(name, value, 1, MAX_FPS)?);
            }
            "buffers" => {
                first_time(&mut seen.buffers, name)?;
                options.buffers = Some(number(name, value, 2, 3)?);
            }
            "demo" => {
                first_time(&mut seen.demo, name)?;
                let value = required(name, value)?;
                let is_valid = !value.is_empty()
                    && value.len() <= MAX_DEMO_NAME_BYTES
                    && value.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    });
                if !is_valid {
                    return Err(CmdlineError::BadValue {
                        name,
                        value,
                        expected: "a name of 1-32 characters from [a-z0-9_-]",
                    });
                }
                options.demo = Some(value);
            }
            "loglevel" => {
                first_time(&mut seen.loglevel, name)?;
                let value = required(name, value)?;
                options.log_level = match value {
                    "error" => LogLevel::Error,
                    "warn" => LogLevel::Warn,
                    "info" => LogLevel::Info,
                    "debug" => LogLevel::Debug,
                    "trace" => LogLevel::Trace,
                    _ => {
                        return Err(CmdlineError::BadValue {
                            name,
                            value,
                            expected: "one of error, warn, info, debug, trace",
                        })
                    }
                };
            }
            "crash" => {
                first_time(&mut seen.crash, name)?;
                let value = required(name, value)?;
                options.crash = Some(match value {
                    "panic" => CrashKind::Panic,
                    "fault" => CrashKind::Fault,
                    _ => {
                        return Err(CmdlineError::BadValue {
                            name,
                            value,
                            expected: "one of panic, fault",
                        })
                    }
                });
            }
            _ => return Err(CmdlineError::UnknownOption(name)),
        }
    }
    Ok(options)
}

/// Which options were already given (duplicates are errors).
#[derive(Default)]
struct Seen {
    selftest: bool,
    idle: bool,
    frames: bool,
    fps: bool,
    buffers: bool,
    demo: bool,
    loglevel: bool,
    crash: bool,
}

/// Record that `name` was seen; an error if it already was.
fn first_time<'a>(was_seen: &mut bool, name: &'a str) -> Result<(), CmdlineError<'a>> {
    if core::mem::replace(was_seen, true) {
        Err(CmdlineError::Duplicate(name))
    } else {
        Ok(())
    }
}

fn required<'a>(name: &'a str, value: Option<&'a str>) -> Result<&'a str, CmdlineError<'a>> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(CmdlineError::MissingValue(name)),
    }
}

fn number<'a>(
    name: &'a str,
    value: Option<&'a str>,
    min: u32,
    max: u32,
) -> Result<u32, CmdlineError<'a>> {
    let value = required(name, value)?;
    // `u32::from_str` accepts a leading `+`; we want plain digits only.
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CmdlineError::BadNumber { name, value });
    }
    let parsed: u32 = value
        .parse()
        .map_err(|_| CmdlineError::BadNumber { name, value })?;
    if !(min..=max).contains(&parsed) {
        return Err(CmdlineError::OutOfRange {
            name,
            value: parsed,
            min,
            max,
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_defaults() {
        assert_eq!(parse(""), Ok(Options::default()));
        assert_eq!(parse("  \t "), Ok(Options::default()));
    }

    #[test]
    fn all_options() {
        let o =
            parse(" selftest frames=120  fps=60 buffers=3 demo=plasma loglevel=debug ").unwrap();
        assert!(o.is_selftest);
        assert_eq!(o.frames, Some(120));
        assert_eq!(o.fps, Some(60));
        assert_eq!(o.buffers, Some(3));
        assert_eq!(o.demo, Some("plasma"));
        assert_eq!(o.log_level, LogLevel::Debug);
        assert_eq!(o.crash, None);
        assert_eq!(parse("crash=fault").unwrap().crash, Some(CrashKind::Fault));
        assert_eq!(parse("crash=panic").unwrap().crash, Some(CrashKind::Panic));
    }

    #[test]
    fn unknown_and_malformed() {
        assert_eq!(parse("quiet"), Err(CmdlineError::UnknownOption("quiet")));
        assert_eq!(
            parse("selftest=1"),
            Err(CmdlineError::UnexpectedValue("selftest"))
        );
        assert_eq!(parse("fps"), Err(CmdlineError::MissingValue("fps")));
        assert_eq!(parse("fps="), Err(CmdlineError::MissingValue("fps")));
        assert_eq!(
            parse("fps=6O"),
            Err(CmdlineError::BadNumber {
                name: "fps",
                value: "6O"
            })
        );
        assert_eq!(
            parse("fps=+60"),
            Err(CmdlineError::BadNumber {
                name: "fps",
                value: "+60"
            })
        );
        assert_eq!(
            parse("frames=99999999999"),
            Err(CmdlineError::BadNumber {
                name: "frames",
                value: "99999999999"
            })
        );
        assert_eq!(
            parse("fps=0"),
            Err(CmdlineError::OutOfRange {
                name: "fps",
                value: 0,
                min: 1,
                max: 240
            })
        );
        assert_eq!(
            parse("fps=241"),
            Err(CmdlineError::OutOfRange {
                name: "fps",
                value: 241,
                min: 1,
                max: 240
            })
        );
        assert!(matches!(
            parse("demo=Plasma"),
            Err(CmdlineError::BadValue { .. })
        ));
        assert!(matches!(
            parse("demo=a/b"),
            Err(CmdlineError::BadValue { .. })
        ));
        assert!(matches!(
            parse("demo="),
            Err(CmdlineError::MissingValue("demo"))
        ));
        assert!(matches!(
            parse("loglevel=loud"),
            Err(CmdlineError::BadValue { .. })
        ));
        assert_eq!(parse("fps=30 fps=30"), Err(CmdlineError::Duplicate("fps")));
        assert_eq!(
            parse("selftest selftest"),
            Err(CmdlineError::Duplicate("selftest"))
        );
        assert_eq!(parse_bytes(b"demo=\xff"), Err(CmdlineError::NotUtf8));
    }

    #[test]
    fn frames_zero_means_unlimited() {
        assert_eq!(parse("frames=0").unwrap().frames, Some(0));
        assert!(parse("idle").unwrap().is_idle);
        assert_eq!(parse("idle=1"), Err(CmdlineError::UnexpectedValue("idle")));
        assert_eq!(parse("idle idle"), Err(CmdlineError::Duplicate("idle")));
        assert_eq!(parse("frames=600").unwrap().frames, Some(600));
        assert_eq!(parse("frames=4294967295").unwrap().frames, Some(u32::MAX));
        assert_eq!(
            parse("frames=-1"),
            Err(CmdlineError::BadNumber {
                name: "frames",
                value: "-1"
            })
        );
    }

    #[test]
    fn errors_display_the_token() {
        let e = parse("bogus=1").unwrap_err();
        assert!(format!("{e}").contains("`bogus`"));
        let e = parse("fps=500").unwrap_err();
        assert_eq!(format!("{e}"), "option `fps`: 500 is outside 1..=240");
        for bad in ["buffers=1", "buffers=4", "buffers=0"] {
            let e = parse(bad).unwrap_err();
            assert!(format!("{e}").ends_with("is outside 2..=3"), "{bad}: {e}");
        }
        assert_eq!(
            parse("buffers=2 buffers=2"),
            Err(CmdlineError::Duplicate("buffers"))
        );
    }
}
