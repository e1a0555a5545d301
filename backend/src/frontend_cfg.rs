//! Reading and validating a frontend's published configuration from xenstore.
//!
//! Nodes (`io/displif.h`): `version` (absent: 1), `be-alloc` ("1" enables it),
//! and per connector `N/resolution` ("WxH"), `N/unique-id`, `N/req-ring-ref`,
//! `N/req-event-channel`, `N/evt-ring-ref`, `N/evt-event-channel`, for N = 0, 1,
//! ... until `N/resolution` is missing. All values are decimal; anything else is
//! a configuration error that fails the connection with a clear message.

use xen::abi::displif::{
    XENDISPL_FIELD_BE_ALLOC, XENDISPL_FIELD_EVT_CHANNEL, XENDISPL_FIELD_EVT_RING_REF,
    XENDISPL_FIELD_FE_VERSION, XENDISPL_FIELD_REQ_CHANNEL, XENDISPL_FIELD_REQ_RING_REF,
    XENDISPL_FIELD_RESOLUTION, XENDISPL_FIELD_UNIQUE_ID, XENDISPL_RESOLUTION_SEPARATOR,
};
use xen::types::{EvtchnPort, GrantRef};

use crate::platform::Xenstore;

/// Versions this backend speaks, as written to `versions`.
pub const SUPPORTED_VERSIONS: &str = "1,2";
/// Most connectors accepted per device.
pub const MAX_CONNECTORS: u32 = 16;
/// Largest connector dimension accepted.
pub const MAX_DIMENSION: u32 = 16_384;

/// One connector as the frontend published it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorConfig {
    /// Index N.
    pub index: u32,
    /// Resolution width.
    pub width: u32,
    /// Resolution height.
    pub height: u32,
    /// `unique-id` (empty if absent).
    pub unique_id: String,
    /// Request ring page.
    pub req_ring_ref: GrantRef,
    /// Request event channel (frontend's port).
    pub req_port: EvtchnPort,
    /// Event page.
    pub evt_ring_ref: GrantRef,
    /// Event channel of the event page (frontend's port).
    pub evt_port: EvtchnPort,
}

/// The whole frontend configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontendConfig {
    /// Negotiated protocol version (1 or 2).
    pub version: u32,
    /// Backend allocation enabled.
    pub be_alloc: bool,
    /// Connectors, index order.
    pub connectors: Vec<ConnectorConfig>,
}

fn parse_decimal(path: &str, value: &str) -> Result<u32, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{path} = '{value}' is not a decimal number"));
    }
    value
        .parse()
        .map_err(|_| format!("{path} = '{value}' does not fit 32 bits"))
}

/// Parse `"<W>x<H>"`.
pub fn parse_resolution(path: &str, value: &str) -> Result<(u32, u32), String> {
    let (w, h) = value
        .split_once(XENDISPL_RESOLUTION_SEPARATOR)
        .ok_or_else(|| format!("{path} = '{value}' is not WxH"))?;
    let (w, h) = (parse_decimal(path, w)?, parse_decimal(path, h)?);
    if w == 0 || h == 0 || w > MAX_DIMENSION || h > MAX_DIMENSION {
        return Err(format!(
            "{path} = '{value}': each dimension must be 1..={MAX_DIMENSION}"
        ));
    }
    Ok((w, h))
}

fn required(xs: &mut dyn Xenstore, path: String) -> Result<String, String> {
    xs.read(&path)
        .map_err(|e| format!("reading {path}: {e}"))?
        .ok_or_else(|| format!("{path} is missing"))
}

/// Read the frontend's configuration under `frontend_path`.
pub fn read(xs: &mut dyn Xenstore, frontend_path: &str) -> Result<FrontendConfig, String> {
    let version_path = format!("{frontend_path}/{XENDISPL_FIELD_FE_VERSION}");
    let version = match xs
        .read(&version_path)
        .map_err(|e| format!("reading {version_path}: {e}"))?
    {
        None => 1,
        Some(v) => match parse_decimal(&version_path, &v)? {
            v @ (1 | 2) => v,
            other => {
                return Err(format!(
                    "{version_path} = {other}, but this backend offers {SUPPORTED_VERSIONS}"
                ))
            }
        },
    };
    let be_alloc_path = format!("{frontend_path}/{XENDISPL_FIELD_BE_ALLOC}");
    let be_alloc = xs
        .read(&be_alloc_path)
        .map_err(|e| format!("reading {be_alloc_path}: {e}"))?
        .as_deref()
        == Some("1");
    let mut connectors = Vec::new();
    for index in 0..=MAX_CONNECTORS {
        let base = format!("{frontend_path}/{index}");
        let resolution_path = format!("{base}/{XENDISPL_FIELD_RESOLUTION}");
        let Some(resolution) = xs
            .read(&resolution_path)
            .map_err(|e| format!("reading {resolution_path}: {e}"))?
        else {
            break;
        };
        if index == MAX_CONNECTORS {
            return Err(format!("more than {MAX_CONNECTORS} connectors"));
        }
        let (width, height) = parse_resolution(&resolution_path, &resolution)?;
        let unique_id = xs
            .read(&format!("{base}/{XENDISPL_FIELD_UNIQUE_ID}"))
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut number = |field: &str| -> Result<u32, String> {
            let path = format!("{base}/{field}");
            let value = required(xs, path.clone())?;
            parse_decimal(&path, &value)
        };
        let req_ring_ref = GrantRef(number(XENDISPL_FIELD_REQ_RING_REF)?);
        let req_port = EvtchnPort(number(XENDISPL_FIELD_REQ_CHANNEL)?);
        let evt_ring_ref = GrantRef(number(XENDISPL_FIELD_EVT_RING_REF)?);
        let evt_port = EvtchnPort(number(XENDISPL_FIELD_EVT_CHANNEL)?);
        if req_ring_ref.0 == 0 || evt_ring_ref.0 == 0 {
            return Err(format!("{base}: grant reference 0 is invalid"));
        }
        connectors.push(ConnectorConfig {
            index,
            width,
            height,
            unique_id,
            req_ring_ref,
            req_port,
            evt_ring_ref,
            evt_port,
        });
    }
    if connectors.is_empty() {
        return Err(format!(
            "{frontend_path}/0/{XENDISPL_FIELD_RESOLUTION} is missing: no connectors"
        ));
    }
    Ok(FrontendConfig {
        version,
        be_alloc,
        connectors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::FakeXenstore;

    fn publish(xs: &mut FakeXenstore, fe: &str, index: u32) {
        for (k, v) in [
            ("resolution", "1920x1080"),
            ("unique-id", "c0"),
            ("req-ring-ref", "8"),
            ("req-event-channel", "5"),
            ("evt-ring-ref", "9"),
            ("evt-event-channel", "6"),
        ] {
            xs.write(&format!("{fe}/{index}/{k}"), v).unwrap();
        }
    }

    #[test]
    fn reads_connectors_until_resolution_missing() {
        let mut xs = FakeXenstore::default();
        let fe = "/local/domain/1/device/vdispl/0";
        publish(&mut xs, fe, 0);
        publish(&mut xs, fe, 1);
        xs.write(&format!("{fe}/be-alloc"), "1").unwrap();
        let cfg = read(&mut xs, fe).unwrap();
        assert_eq!(cfg.version, 1);
        assert!(cfg.be_alloc);
        assert_eq!(cfg.connectors.len(), 2);
        assert_eq!(cfg.connectors[1].index, 1);
        assert_eq!(
            (cfg.connectors[0].width, cfg.connectors[0].height),
            (1920, 1080)
        );
        assert_eq!(cfg.connectors[0].evt_port, EvtchnPort(6));
        xs.write(&format!("{fe}/version"), "2").unwrap();
        assert_eq!(read(&mut xs, fe).unwrap().version, 2);
    }

    #[test]
    fn rejects_bad_values() {
        let fe = "/fe";
        for (node, value, needle) in [
            ("version", "3", "offers 1,2"),
            ("0/resolution", "1920*1080", "not WxH"),
            ("0/resolution", "0x1080", "1..="),
            ("0/resolution", "-1x5", "not a decimal"),
            ("0/req-ring-ref", "0", "grant reference 0"),
            ("0/req-event-channel", "99999999999", "32 bits"),
            ("0/evt-ring-ref", "", "not a decimal"),
        ] {
            let mut xs = FakeXenstore::default();
            publish(&mut xs, fe, 0);
            xs.write(&format!("{fe}/{node}"), value).unwrap();
            let err = read(&mut xs, fe).unwrap_err();
            assert!(err.contains(needle), "{node}={value}: {err}");
        }
        let mut xs = FakeXenstore::default();
        assert!(read(&mut xs, fe).unwrap_err().contains("no connectors"));
        publish(&mut xs, fe, 0);
        xs.remove(&format!("{fe}/0/evt-event-channel"));
        assert!(read(&mut xs, fe).unwrap_err().contains("missing"));
    }
}
