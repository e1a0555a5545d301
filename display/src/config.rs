//! Device configuration from xenstore and protocol-version negotiation.
//!
//! libxl writes the frontend's configuration as read-only nodes under
//! `device/vdispl/<dev>/` (`xen/include/public/io/displif.h`, "Frontend"):
//! `be-alloc`, and per connector `<idx>/resolution` (`"<W>x<H>"`, decimal `u32`s)
//! and `<idx>/unique-id`. Connectors are numbered from 0 and end at the first
//! missing index. Every value is validated here; anything malformed is a
//! [`ConfigError`] naming the node and the rule, and the device goes to Closed.
//!
//! The backend advertises the protocol versions it speaks in its `versions`
//! node (comma separated); [`negotiate_version`] picks the highest one we also
//! speak.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::store::{Store, StoreError, TxId};

/// Protocol versions this frontend implements (`XENDISPL_PROTOCOL_VERSION_INT` = 2).
pub const SUPPORTED_VERSIONS: [u32; 2] = [1, 2];

/// Upper bound on connectors per device, so a hostile or broken configuration
/// cannot make us allocate without limit (Linux allows 4).
pub const MAX_CONNECTORS: usize = 8;

/// Bytes per XRGB8888 pixel.
pub const BYTES_PER_PIXEL: u32 = 4;

/// A display mode in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// Width in pixels (non-zero).
    pub width: u32,
    /// Height in pixels (non-zero).
    pub height: u32,
}

impl Resolution {
    /// A resolution if it is non-zero and an XRGB8888 buffer of it fits the
    /// protocol's `u32` `buffer_sz`.
    pub fn try_new(width: u32, height: u32) -> Option<Resolution> {
        if width == 0 || height == 0 {
            return None;
        }
        let r = Resolution { width, height };
        r.buffer_size_bytes().map(|_| r)
    }

    /// Bytes per line of an XRGB8888 buffer.
    pub fn stride_bytes(&self) -> Option<u32> {
        self.width.checked_mul(BYTES_PER_PIXEL)
    }

    /// Size of an XRGB8888 buffer of this resolution, if it fits `u32`.
    pub fn buffer_size_bytes(&self) -> Option<u32> {
        self.stride_bytes()?.checked_mul(self.height)
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// One connector's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorConfig {
    /// Its mode as configured by the toolstack (EDID may override it later).
    pub resolution: Resolution,
    /// The `unique-id` node, if present.
    pub unique_id: Option<String>,
}

/// A device's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// `be-alloc` = 1: the backend allocates display buffers.
    pub is_be_alloc: bool,
    /// Connectors 0..N.
    pub connectors: Vec<ConnectorConfig>,
}

/// What is wrong with a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// Empty string.
    Empty,
    /// A character other than `0`-`9`.
    NotDecimal,
    /// Does not fit 32 bits.
    Overflow,
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NumberError::Empty => "empty number",
            NumberError::NotDecimal => "not a decimal number",
            NumberError::Overflow => "number does not fit 32 bits",
        })
    }
}

/// A configuration the frontend refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Connector 0 has no `resolution`: the device has no display.
    NoConnectors {
        /// The node that was missing.
        path: String,
    },
    /// More connectors than [`MAX_CONNECTORS`].
    TooManyConnectors,
    /// A `resolution` is not `<W>x<H>`.
    ResolutionSyntax {
        /// The node.
        path: String,
        /// Its value.
        value: String,
    },
    /// A `resolution` component is not a valid `u32`.
    ResolutionNumber {
        /// The node.
        path: String,
        /// Its value.
        value: String,
        /// What is wrong.
        error: NumberError,
    },
    /// A `resolution` has a zero component or its buffer does not fit `u32`.
    ResolutionRange {
        /// The node.
        path: String,
        /// Its value.
        value: String,
    },
    /// `be-alloc` is neither `0` nor `1`.
    BeAlloc {
        /// Its value.
        value: String,
    },
    /// The backend's `versions` is not a comma-separated list of numbers.
    VersionsSyntax {
        /// Its value.
        value: String,
    },
    /// No version in the backend's `versions` is one we speak.
    NoCommonVersion {
        /// Its value.
        value: String,
    },
    /// Reading xenstore failed.
    Store {
        /// The node.
        path: String,
        /// The failure.
        error: StoreError,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoConnectors { path } => {
                write!(f, "no connector 0: {path} is missing")
            }
            ConfigError::TooManyConnectors => {
                write!(f, "more than {MAX_CONNECTORS} connectors configured")
            }
            ConfigError::ResolutionSyntax { path, value } => {
                write!(f, "{path} = {value:?}: expected \"<width>x<height>\"")
            }
            ConfigError::ResolutionNumber { path, value, error } => {
                write!(f, "{path} = {value:?}: {error}")
            }
            ConfigError::ResolutionRange { path, value } => write!(
                f,
                "{path} = {value:?}: width and height must be non-zero and \
                 width*height*4 must fit 32 bits"
            ),
            ConfigError::BeAlloc { value } => {
                write!(f, "be-alloc = {value:?}: expected \"0\" or \"1\"")
            }
            ConfigError::VersionsSyntax { value } => write!(
                f,
                "backend versions = {value:?}: expected comma-separated decimal numbers"
            ),
            ConfigError::NoCommonVersion { value } => write!(
                f,
                "backend versions = {value:?}: none of {SUPPORTED_VERSIONS:?} is offered"
            ),
            ConfigError::Store { path, error } => write!(f, "reading {path}: {error}"),
        }
    }
}

/// Parse a decimal `u32` strictly: digits only, no sign, no spaces.
pub fn parse_decimal_u32(s: &str) -> Result<u32, NumberError> {
    if s.is_empty() {
        return Err(NumberError::Empty);
    }
    let mut value: u32 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return Err(NumberError::NotDecimal);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(b - b'0')))
            .ok_or(NumberError::Overflow)?;
    }
    Ok(value)
}

/// Parse a `resolution` node's value (`"1920x1080"`). `path` only labels errors.
pub fn parse_resolution(path: &str, value: &str) -> Result<Resolution, ConfigError> {
    let Some((w, h)) = value.split_once('x') else {
        return Err(ConfigError::ResolutionSyntax {
            path: path.into(),
            value: value.into(),
        });
    };
    let number = |s: &str| {
        parse_decimal_u32(s).map_err(|error| ConfigError::ResolutionNumber {
            path: path.into(),
            value: value.into(),
            error,
        })
    };
    let (width, height) = (number(w)?, number(h)?);
    Resolution::try_new(width, height).ok_or_else(|| ConfigError::ResolutionRange {
        path: path.into(),
        value: value.into(),
    })
}

fn read(store: &mut (impl Store + ?Sized), path: &str) -> Result<Option<String>, ConfigError> {
    store
        .read(TxId::NONE, path)
        .map_err(|error| ConfigError::Store {
            path: path.into(),
            error,
        })
}

impl DeviceConfig {
    /// Read and validate the configuration under `device_path`
    /// (e.g. `device/vdispl/0`).
    pub fn read(
        store: &mut (impl Store + ?Sized),
        device_path: &str,
    ) -> Result<DeviceConfig, ConfigError> {
        let is_be_alloc = match read(store, &format!("{device_path}/be-alloc"))? {
            None => false,
            Some(v) if v == "0" => false,
            Some(v) if v == "1" => true,
            Some(value) => return Err(ConfigError::BeAlloc { value }),
        };
        let mut connectors = Vec::new();
        loop {
            let index = connectors.len();
            let path = format!("{device_path}/{index}/resolution");
            let Some(value) = read(store, &path)? else {
                if index == 0 {
                    return Err(ConfigError::NoConnectors { path });
                }
                break;
            };
            if index == MAX_CONNECTORS {
                return Err(ConfigError::TooManyConnectors);
            }
            let resolution = parse_resolution(&path, &value)?;
            let unique_id = read(store, &format!("{device_path}/{index}/unique-id"))?;
            connectors.push(ConnectorConfig {
                resolution,
                unique_id,
            });
        }
        Ok(DeviceConfig {
            is_be_alloc,
            connectors,
        })
    }
}

/// Choose the highest protocol version both ends speak from the backend's
/// `versions` node. An absent node means a backend that predates negotiation
/// (every one written before ours); it speaks version 1.
pub fn negotiate_version(backend_versions: Option<&str>) -> Result<u32, ConfigError> {
    let Some(value) = backend_versions else {
        return Ok(1);
    };
    let mut best = None;
    for item in value.split(',') {
        let v = parse_decimal_u32(item).map_err(|_| ConfigError::VersionsSyntax {
            value: value.into(),
        })?;
        if SUPPORTED_VERSIONS.contains(&v) && best.is_none_or(|b| v > b) {
            best = Some(v);
        }
    }
    best.ok_or_else(|| ConfigError::NoCommonVersion {
        value: value.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemStore;

    fn store(nodes: &[(&str, &str)]) -> MemStore {
        let s = MemStore::default();
        for (k, v) in nodes {
            s.set(k, v);
        }
        s
    }

    #[test]
    fn decimal_is_strict() {
        assert_eq!(parse_decimal_u32("0"), Ok(0));
        assert_eq!(parse_decimal_u32("4294967295"), Ok(u32::MAX));
        assert_eq!(parse_decimal_u32("4294967296"), Err(NumberError::Overflow));
        assert_eq!(
            parse_decimal_u32("99999999999999"),
            Err(NumberError::Overflow)
        );
        assert_eq!(parse_decimal_u32(""), Err(NumberError::Empty));
        assert_eq!(parse_decimal_u32("+1"), Err(NumberError::NotDecimal));
        assert_eq!(parse_decimal_u32(" 1"), Err(NumberError::NotDecimal));
        assert_eq!(parse_decimal_u32("0x10"), Err(NumberError::NotDecimal));
    }

    #[test]
    fn resolutions() {
        let ok = |v| parse_resolution("p", v);
        assert_eq!(
            ok("1920x1080"),
            Ok(Resolution {
                width: 1920,
                height: 1080
            })
        );
        assert!(matches!(
            ok("0x0"),
            Err(ConfigError::ResolutionRange { .. })
        ));
        assert!(matches!(
            ok("640x0"),
            Err(ConfigError::ResolutionRange { .. })
        ));
        assert!(matches!(
            ok("abcxdef"),
            Err(ConfigError::ResolutionNumber {
                error: NumberError::NotDecimal,
                ..
            })
        ));
        assert!(matches!(
            ok("4294967296x1"),
            Err(ConfigError::ResolutionNumber {
                error: NumberError::Overflow,
                ..
            })
        ));
        // Each fits u32, the buffer does not.
        assert!(matches!(
            ok("65536x16384"),
            Err(ConfigError::ResolutionRange { .. })
        ));
        assert!(matches!(
            ok("1920"),
            Err(ConfigError::ResolutionSyntax { .. })
        ));
        assert!(matches!(
            ok("1920x1080x3"),
            Err(ConfigError::ResolutionNumber { .. })
        ));
        assert!(matches!(ok("x"), Err(ConfigError::ResolutionNumber { .. })));
    }

    #[test]
    fn reads_connectors_until_one_is_missing() {
        let mut s = store(&[
            ("d/be-alloc", "1"),
            ("d/0/resolution", "1920x1080"),
            ("d/0/unique-id", "HDMI-A-1"),
            ("d/1/resolution", "800x600"),
            ("d/3/resolution", "640x480"),
        ]);
        let c = DeviceConfig::read(&mut s, "d").unwrap();
        assert!(c.is_be_alloc);
        assert_eq!(c.connectors.len(), 2);
        assert_eq!(c.connectors[0].unique_id.as_deref(), Some("HDMI-A-1"));
        assert_eq!(
            c.connectors[1].resolution,
            Resolution {
                width: 800,
                height: 600
            }
        );
        assert_eq!(c.connectors[1].unique_id, None);
    }

    #[test]
    fn malformed_configs_are_errors_with_messages() {
        let err = |nodes: &[(&str, &str)]| DeviceConfig::read(&mut store(nodes), "d").unwrap_err();
        let e = err(&[("d/1/resolution", "800x600")]);
        assert_eq!(e.to_string(), "no connector 0: d/0/resolution is missing");
        let e = err(&[("d/0/resolution", "abcxdef")]);
        assert_eq!(
            e.to_string(),
            "d/0/resolution = \"abcxdef\": not a decimal number"
        );
        let e = err(&[("d/0/resolution", "0x0")]);
        assert!(e
            .to_string()
            .starts_with("d/0/resolution = \"0x0\": width and height"));
        let e = err(&[("d/0/resolution", "640x480"), ("d/be-alloc", "yes")]);
        assert_eq!(
            e,
            ConfigError::BeAlloc {
                value: "yes".into()
            }
        );
        let many: Vec<(String, String)> = (0..=MAX_CONNECTORS)
            .map(|i| (format!("d/{i}/resolution"), "64x64".into()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(err(&many), ConfigError::TooManyConnectors);
    }

    #[test]
    fn version_negotiation() {
        assert_eq!(negotiate_version(None), Ok(1));
        assert_eq!(negotiate_version(Some("1")), Ok(1));
        assert_eq!(negotiate_version(Some("1,2")), Ok(2));
        assert_eq!(negotiate_version(Some("2,1")), Ok(2));
        assert_eq!(negotiate_version(Some("1,2,7")), Ok(2));
        assert!(matches!(
            negotiate_version(Some("3,4")),
            Err(ConfigError::NoCommonVersion { .. })
        ));
        assert!(matches!(
            negotiate_version(Some("1,,2")),
            Err(ConfigError::VersionsSyntax { .. })
        ));
        assert!(matches!(
            negotiate_version(Some("")),
            Err(ConfigError::VersionsSyntax { .. })
        ));
    }
}
