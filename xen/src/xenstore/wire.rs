//! The xenstore wire codec (`io/xs_wire.h`, `docs/misc/xenstore.txt`).
//!
//! A message is a 16-byte little-endian [`XsdSockmsg`] header then `len` payload
//! bytes (at most [`XENSTORE_PAYLOAD_MAX`]). Payload conventions (xenstore.txt,
//! `|` = NUL):
//!
//! | request | payload | reply payload |
//! |---|---|---|
//! | READ | `path\|` | value (no NUL) |
//! | WRITE | `path\|value` (value not NUL-terminated) | `OK\|` |
//! | MKDIR / RM | `path\|` | `OK\|` |
//! | DIRECTORY | `path\|` | `child\|`* |
//! | GET_DOMAIN_PATH | `domid\|` | `path\|` |
//! | WATCH / UNWATCH | `path\|token\|` | `OK\|` |
//! | TRANSACTION_START | `\|` | `txid\|` |
//! | TRANSACTION_END | `T\|` or `F\|` | `OK\|` |
//! | (any) | | ERROR: `EXXX\|` |
//! | WATCH_EVENT (async) | | `path\|token\|` |
//!
//! Decoding never indexes past the bytes it has: a stream is decoded
//! incrementally with [`decode_frame`] or the buffering [`Decoder`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::abi::xs_wire::{
    XsType, XsdSockmsg, XENSTORE_ABS_PATH_MAX, XENSTORE_PAYLOAD_MAX, XSD_ERRORS, XSD_SOCKMSG_SIZE,
};
use crate::types::DomId;

/// An errno reported by xenstored in an `XS_ERROR` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XsErrno {
    /// `EINVAL`.
    Einval,
    /// `EACCES`.
    Eacces,
    /// `EEXIST`.
    Eexist,
    /// `EISDIR`.
    Eisdir,
    /// `ENOENT`: no such node.
    Enoent,
    /// `ENOMEM`.
    Enomem,
    /// `ENOSPC`.
    Enospc,
    /// `EIO`.
    Eio,
    /// `ENOTEMPTY`.
    Enotempty,
    /// `ENOSYS`.
    Enosys,
    /// `EROFS`.
    Erofs,
    /// `EBUSY`.
    Ebusy,
    /// `EAGAIN`: transaction conflict, retry.
    Eagain,
    /// `EISCONN`.
    Eisconn,
    /// `E2BIG`.
    E2big,
    /// `EPERM`.
    Eperm,
    /// A name not in `xsd_errors`.
    Unknown,
}

const ERRNO_VARIANTS: [XsErrno; 16] = [
    XsErrno::Einval,
    XsErrno::Eacces,
    XsErrno::Eexist,
    XsErrno::Eisdir,
    XsErrno::Enoent,
    XsErrno::Enomem,
    XsErrno::Enospc,
    XsErrno::Eio,
    XsErrno::Enotempty,
    XsErrno::Enosys,
    XsErrno::Erofs,
    XsErrno::Ebusy,
    XsErrno::Eagain,
    XsErrno::Eisconn,
    XsErrno::E2big,
    XsErrno::Eperm,
];

impl XsErrno {
    /// Parse the name sent by xenstored (without its NUL).
    pub fn from_name(name: &[u8]) -> XsErrno {
        XSD_ERRORS
            .iter()
            .position(|(_, n)| n.as_bytes() == name)
            .map_or(XsErrno::Unknown, |i| ERRNO_VARIANTS[i])
    }

    fn index(self) -> Option<usize> {
        ERRNO_VARIANTS.iter().position(|&e| e == self)
    }

    /// The errno value (Linux/Xen numbering, as in `xsd_errors`); `EIO` for unknown.
    pub fn errno(self) -> i32 {
        self.index()
            .map_or(crate::abi::errno::XEN_EIO, |i| XSD_ERRORS[i].0)
    }

    /// The errno name, e.g. `"ENOENT"`.
    pub fn name(self) -> &'static str {
        self.index().map_or("unknown", |i| XSD_ERRORS[i].1)
    }
}

impl fmt::Display for XsErrno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A malformed request or message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsWireError {
    /// The header announces a payload longer than `XENSTORE_PAYLOAD_MAX`.
    PayloadTooLong(u32),
    /// The header's type is not a known `XS_*` value.
    UnknownType(u32),
    /// A string in the payload lacks its terminating NUL.
    MissingNul,
    /// A payload has the wrong number of strings or unexpected content.
    BadPayload(&'static str),
    /// A string that must be UTF-8 (paths, tokens) is not.
    NotUtf8,
    /// A request argument is invalid: empty path, embedded NUL, too long.
    BadArgument(&'static str),
}

impl fmt::Display for XsWireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsWireError::PayloadTooLong(n) => {
                write!(
                    f,
                    "xenstore payload of {n} bytes exceeds {XENSTORE_PAYLOAD_MAX}"
                )
            }
            XsWireError::UnknownType(t) => write!(f, "unknown xenstore message type {t}"),
            XsWireError::MissingNul => f.write_str("xenstore string without terminating NUL"),
            XsWireError::BadPayload(what) => write!(f, "malformed xenstore payload: {what}"),
            XsWireError::NotUtf8 => f.write_str("xenstore string is not UTF-8"),
            XsWireError::BadArgument(what) => write!(f, "invalid xenstore argument: {what}"),
        }
    }
}

/// A typed xenstore request (what a guest or a dom0 tool sends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsRequest<'a> {
    /// `XS_READ path`.
    Read {
        /// Node path.
        path: &'a str,
    },
    /// `XS_WRITE path value`.
    Write {
        /// Node path.
        path: &'a str,
        /// New value (any bytes).
        value: &'a [u8],
    },
    /// `XS_MKDIR path`.
    Mkdir {
        /// Node path.
        path: &'a str,
    },
    /// `XS_RM path` (recursive).
    Rm {
        /// Node path.
        path: &'a str,
    },
    /// `XS_DIRECTORY path`.
    Directory {
        /// Node path.
        path: &'a str,
    },
    /// `XS_GET_DOMAIN_PATH domid`.
    GetDomainPath {
        /// Domain.
        domid: DomId,
    },
    /// `XS_WATCH path token`.
    Watch {
        /// Path to watch (the subtree is watched).
        path: &'a str,
        /// Token echoed in events.
        token: &'a str,
    },
    /// `XS_UNWATCH path token`.
    Unwatch {
        /// Watched path.
        path: &'a str,
        /// Its token.
        token: &'a str,
    },
    /// `XS_TRANSACTION_START`.
    TransactionStart,
    /// `XS_TRANSACTION_END` (`commit` = `T`, abort = `F`).
    TransactionEnd {
        /// Commit (true) or abort (false).
        commit: bool,
    },
}

fn check_path(path: &str) -> Result<(), XsWireError> {
    if path.is_empty() {
        return Err(XsWireError::BadArgument("empty path"));
    }
    if path.len() > XENSTORE_ABS_PATH_MAX {
        return Err(XsWireError::BadArgument(
            "path longer than XENSTORE_ABS_PATH_MAX",
        ));
    }
    if path.as_bytes().contains(&0) {
        return Err(XsWireError::BadArgument("NUL inside path"));
    }
    Ok(())
}

fn check_token(token: &str) -> Result<(), XsWireError> {
    if token.as_bytes().contains(&0) {
        return Err(XsWireError::BadArgument("NUL inside watch token"));
    }
    Ok(())
}

impl XsRequest<'_> {
    /// The message type.
    pub fn msg_type(&self) -> XsType {
        match self {
            XsRequest::Read { .. } => XsType::Read,
            XsRequest::Write { .. } => XsType::Write,
            XsRequest::Mkdir { .. } => XsType::Mkdir,
            XsRequest::Rm { .. } => XsType::Rm,
            XsRequest::Directory { .. } => XsType::Directory,
            XsRequest::GetDomainPath { .. } => XsType::GetDomainPath,
            XsRequest::Watch { .. } => XsType::Watch,
            XsRequest::Unwatch { .. } => XsType::Unwatch,
            XsRequest::TransactionStart => XsType::TransactionStart,
            XsRequest::TransactionEnd { .. } => XsType::TransactionEnd,
        }
    }

    /// Append the whole message (header and payload) to `out`.
    ///
    /// Fails without touching `out` on empty/oversized paths, embedded NULs, or
    /// a payload over [`XENSTORE_PAYLOAD_MAX`].
    pub fn encode(&self, req_id: u32, tx_id: u32, out: &mut Vec<u8>) -> Result<(), XsWireError> {
        let mut payload: Vec<u8> = Vec::new();
        let mut push_str = |s: &[u8]| {
            payload.extend_from_slice(s);
            payload.push(0);
        };
        match *self {
            XsRequest::Read { path }
            | XsRequest::Mkdir { path }
            | XsRequest::Rm { path }
            | XsRequest::Directory { path } => {
                check_path(path)?;
                push_str(path.as_bytes());
            }
            XsRequest::Write { path, value } => {
                check_path(path)?;
                push_str(path.as_bytes());
                payload.extend_from_slice(value);
            }
            XsRequest::GetDomainPath { domid } => {
                let mut digits = [0u8; 5];
                push_str(format_u32(u32::from(domid.0), &mut digits));
            }
            XsRequest::Watch { path, token } | XsRequest::Unwatch { path, token } => {
                check_path(path)?;
                check_token(token)?;
                push_str(path.as_bytes());
                push_str(token.as_bytes());
            }
            XsRequest::TransactionStart => push_str(b""),
            XsRequest::TransactionEnd { commit } => push_str(if commit { b"T" } else { b"F" }),
        }
        if payload.len() > XENSTORE_PAYLOAD_MAX {
            return Err(XsWireError::PayloadTooLong(payload.len() as u32));
        }
        let header = XsdSockmsg {
            type_: self.msg_type() as u32,
            req_id,
            tx_id,
            len: payload.len() as u32,
        };
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(&payload);
        Ok(())
    }
}

/// Decimal digits of `v` in `buf` (which must hold them).
fn format_u32(mut v: u32, buf: &mut [u8]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    &buf[i..]
}

/// One decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XsMessage {
    /// Message type.
    pub msg_type: XsType,
    /// Request id (0 for watch events).
    pub req_id: u32,
    /// Transaction id.
    pub tx_id: u32,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// Try to decode one message from the front of `buf`.
///
/// `Ok(None)` means more bytes are needed; `Ok(Some((msg, used)))` consumed
/// `used` bytes. Errors mean the stream is corrupt (it cannot be resynchronised).
pub fn decode_frame(buf: &[u8]) -> Result<Option<(XsMessage, usize)>, XsWireError> {
    let Some(head) = buf.first_chunk::<XSD_SOCKMSG_SIZE>() else {
        return Ok(None);
    };
    let h = XsdSockmsg::from_bytes(head);
    let msg_type = XsType::try_from(h.type_).map_err(XsWireError::UnknownType)?;
    if h.len as usize > XENSTORE_PAYLOAD_MAX {
        return Err(XsWireError::PayloadTooLong(h.len));
    }
    let total = XSD_SOCKMSG_SIZE + h.len as usize;
    let Some(frame) = buf.get(XSD_SOCKMSG_SIZE..total) else {
        return Ok(None);
    };
    Ok(Some((
        XsMessage {
            msg_type,
            req_id: h.req_id,
            tx_id: h.tx_id,
            payload: frame.to_vec(),
        },
        total,
    )))
}

/// Buffers a byte stream and yields whole messages.
///
/// After a decode error the decoder is poisoned: it keeps returning that error
/// (a corrupt stream cannot be resynchronised; reconnect instead).
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    poisoned: Option<XsWireError>,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Append received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, if any.
    pub fn next_message(&mut self) -> Result<Option<XsMessage>, XsWireError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        match decode_frame(&self.buf) {
            Ok(Some((msg, used))) => {
                self.buf.drain(..used);
                Ok(Some(msg))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.poisoned = Some(e);
                Err(e)
            }
        }
    }

    /// Drop buffered bytes and clear a poisoned state (after a reconnect).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.poisoned = None;
    }
}

/// Split a payload of NUL-terminated strings. Every string, including the last,
/// must end with NUL; an empty payload is zero strings.
pub fn split_strings(payload: &[u8]) -> Result<Vec<&[u8]>, XsWireError> {
    if payload.is_empty() {
        return Ok(Vec::new());
    }
    let Some((&0, body)) = payload.split_last() else {
        return Err(XsWireError::MissingNul);
    };
    Ok(body.split(|&b| b == 0).collect())
}

fn utf8(b: &[u8]) -> Result<&str, XsWireError> {
    core::str::from_utf8(b).map_err(|_| XsWireError::NotUtf8)
}

/// A single NUL-terminated UTF-8 string (GET_DOMAIN_PATH, TRANSACTION_START
/// replies). xenstored always sends the NUL, so it is required.
pub fn parse_single_string(payload: &[u8]) -> Result<&str, XsWireError> {
    match split_strings(payload)?.as_slice() {
        [s] => utf8(s),
        _ => Err(XsWireError::BadPayload("expected exactly one string")),
    }
}

/// Check an `OK` reply (`"OK\0"`).
pub fn parse_ok(payload: &[u8]) -> Result<(), XsWireError> {
    if payload == b"OK\0" {
        Ok(())
    } else {
        Err(XsWireError::BadPayload("expected OK"))
    }
}

/// Directory listing: child names, each NUL-terminated.
pub fn parse_directory(payload: &[u8]) -> Result<Vec<String>, XsWireError> {
    split_strings(payload)?
        .into_iter()
        .map(|s| {
            if s.is_empty() {
                Err(XsWireError::BadPayload("empty directory entry"))
            } else {
                utf8(s).map(String::from)
            }
        })
        .collect()
}

/// `XS_ERROR` payload: the errno name, NUL-terminated.
pub fn parse_error(payload: &[u8]) -> Result<XsErrno, XsWireError> {
    match split_strings(payload)?.as_slice() {
        [name] => Ok(XsErrno::from_name(name)),
        _ => Err(XsWireError::BadPayload("expected one errno name")),
    }
}

/// `XS_WATCH_EVENT` payload: `(path, token)`.
pub fn parse_watch_event(payload: &[u8]) -> Result<(String, String), XsWireError> {
    match split_strings(payload)?.as_slice() {
        [path, token] => Ok((String::from(utf8(path)?), String::from(utf8(token)?))),
        _ => Err(XsWireError::BadPayload("watch event needs path and token")),
    }
}

/// Transaction id from a `TRANSACTION_START` reply (decimal, non-zero).
pub fn parse_tx_id(payload: &[u8]) -> Result<u32, XsWireError> {
    let s = parse_single_string(payload)?;
    match parse_decimal_u32(s) {
        Some(0) | None => Err(XsWireError::BadPayload("bad transaction id")),
        Some(id) => Ok(id),
    }
}

/// Strict decimal `u32` (digits only, no sign, no overflow, not empty).
pub fn parse_decimal_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::xs_wire::XSD_ERRORS;

    fn frame(t: u32, req_id: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = XsdSockmsg {
            type_: t,
            req_id,
            tx_id: 0,
            len: payload.len() as u32,
        }
        .to_bytes()
        .to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn encodes_every_request_per_xenstore_txt() {
        let cases: [(XsRequest, &[u8]); 10] = [
            (XsRequest::Read { path: "a/b" }, b"a/b\0"),
            (
                XsRequest::Write {
                    path: "a",
                    value: b"xy",
                },
                b"a\0xy",
            ),
            (XsRequest::Mkdir { path: "/m" }, b"/m\0"),
            (XsRequest::Rm { path: "/r" }, b"/r\0"),
            (XsRequest::Directory { path: "/d" }, b"/d\0"),
            (
                XsRequest::GetDomainPath {
                    domid: DomId(12345),
                },
                b"12345\0",
            ),
            (
                XsRequest::Watch {
                    path: "/w",
                    token: "t",
                },
                b"/w\0t\0",
            ),
            (
                XsRequest::Unwatch {
                    path: "/w",
                    token: "",
                },
                b"/w\0\0",
            ),
            (XsRequest::TransactionStart, b"\0"),
            (XsRequest::TransactionEnd { commit: true }, b"T\0"),
        ];
        for (req, payload) in cases {
            let mut out = Vec::new();
            req.encode(7, 3, &mut out).unwrap();
            let h = XsdSockmsg::from_bytes(out[..16].try_into().unwrap());
            assert_eq!(
                h,
                XsdSockmsg {
                    type_: req.msg_type() as u32,
                    req_id: 7,
                    tx_id: 3,
                    len: payload.len() as u32
                }
            );
            assert_eq!(&out[16..], payload, "{req:?}");
        }
        let mut out = Vec::new();
        XsRequest::GetDomainPath { domid: DomId(0) }
            .encode(1, 0, &mut out)
            .unwrap();
        assert_eq!(&out[16..], b"0\0");
        XsRequest::TransactionEnd { commit: false }
            .encode(1, 0, &mut out)
            .unwrap();
        assert_eq!(&out[out.len() - 2..], b"F\0");
    }

    #[test]
    fn rejects_bad_arguments_without_output() {
        let long = "a".repeat(XENSTORE_ABS_PATH_MAX + 1);
        let big = vec![0u8; XENSTORE_PAYLOAD_MAX];
        let bad = [
            XsRequest::Read { path: "" },
            XsRequest::Read { path: "a\0b" },
            XsRequest::Read { path: &long },
            XsRequest::Watch {
                path: "/a",
                token: "x\0",
            },
            XsRequest::Write {
                path: "/a",
                value: &big,
            },
        ];
        for req in bad {
            let mut out = Vec::new();
            assert!(req.encode(1, 0, &mut out).is_err(), "{req:?}");
            assert!(out.is_empty());
        }
        let ok = vec![0u8; XENSTORE_PAYLOAD_MAX - 3];
        let mut out = Vec::new();
        XsRequest::Write {
            path: "/a",
            value: &ok,
        }
        .encode(1, 0, &mut out)
        .unwrap();
        assert_eq!(out.len(), 16 + XENSTORE_PAYLOAD_MAX);
    }

    #[test]
    fn decodes_incrementally_byte_by_byte() {
        let mut stream = frame(XsType::Read as u32, 5, b"value");
        stream.extend(frame(XsType::WatchEvent as u32, 0, b"/p\0tok\0"));
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in &stream {
            d.push(core::slice::from_ref(b));
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].msg_type, XsType::Read);
        assert_eq!(got[0].req_id, 5);
        assert_eq!(got[0].payload, b"value");
        assert_eq!(
            parse_watch_event(&got[1].payload).unwrap(),
            ("/p".into(), "tok".into())
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn bad_headers_are_errors_and_poison() {
        let mut d = Decoder::new();
        d.push(&frame(20, 1, b"")); // 20 was XS_RESTRICT, removed
        assert_eq!(d.next_message(), Err(XsWireError::UnknownType(20)));
        d.push(&frame(XsType::Read as u32, 1, b""));
        assert_eq!(d.next_message(), Err(XsWireError::UnknownType(20)));
        d.reset();
        let mut h = XsdSockmsg {
            type_: 2,
            req_id: 1,
            tx_id: 0,
            len: 4097,
        }
        .to_bytes()
        .to_vec();
        d.push(&h);
        assert_eq!(d.next_message(), Err(XsWireError::PayloadTooLong(4097)));
        h = XsdSockmsg {
            type_: 2,
            req_id: 1,
            tx_id: 0,
            len: u32::MAX,
        }
        .to_bytes()
        .to_vec();
        assert_eq!(decode_frame(&h), Err(XsWireError::PayloadTooLong(u32::MAX)));
        // Exactly the maximum is fine once complete.
        let max = frame(2, 1, &vec![7u8; XENSTORE_PAYLOAD_MAX]);
        assert_eq!(decode_frame(&max[..max.len() - 1]), Ok(None));
        assert_eq!(decode_frame(&max).unwrap().unwrap().1, max.len());
    }

    #[test]
    fn payload_parsers_reject_malformed_input() {
        assert_eq!(parse_directory(b""), Ok(vec![]));
        assert_eq!(
            parse_directory(b"a\0bc\0"),
            Ok(vec!["a".into(), "bc".into()])
        );
        assert_eq!(parse_directory(b"a\0bc"), Err(XsWireError::MissingNul));
        assert!(parse_directory(b"a\0\0").is_err());
        assert!(parse_directory(b"\xff\0").is_err());
        assert_eq!(parse_ok(b"OK\0"), Ok(()));
        assert!(parse_ok(b"OK").is_err());
        assert!(parse_ok(b"KO\0").is_err());
        assert_eq!(parse_error(b"ENOENT\0"), Ok(XsErrno::Enoent));
        assert_eq!(parse_error(b"EWHAT\0"), Ok(XsErrno::Unknown));
        assert!(parse_error(b"ENOENT").is_err());
        assert!(parse_watch_event(b"/p\0").is_err());
        assert!(parse_watch_event(b"/p\0t\0x\0").is_err());
        assert!(parse_watch_event(b"/p\0t").is_err());
        assert_eq!(parse_tx_id(b"42\0"), Ok(42));
        for bad in [&b"0\0"[..], b"\0", b"-1\0", b"4294967296\0", b"12", b"1 \0"] {
            assert!(parse_tx_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_single_string(b"/local/domain/3\0"),
            Ok("/local/domain/3")
        );
    }

    #[test]
    fn errno_table_round_trips() {
        for (num, name) in XSD_ERRORS {
            let e = XsErrno::from_name(name.as_bytes());
            assert_ne!(e, XsErrno::Unknown);
            assert_eq!(e.errno(), num);
            assert_eq!(e.name(), name);
        }
        assert_eq!(XsErrno::Eagain.errno(), 11);
    }

    /// Deterministic pseudo-random garbage: the decoder returns errors or waits,
    /// never panics, and never claims more bytes than it has.
    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len >= 16 && next() % 2 == 0 {
                // Plausible header: valid type, small length.
                buf[0..4].copy_from_slice(&((next() % 23) as u32).to_le_bytes());
                buf[12..16].copy_from_slice(&((next() % 80) as u32).to_le_bytes());
            }
            if let Ok(Some((m, used))) = decode_frame(&buf) {
                assert!(used <= buf.len());
                let _ = parse_directory(&m.payload);
                let _ = parse_watch_event(&m.payload);
                let _ = parse_error(&m.payload);
                let _ = parse_tx_id(&m.payload);
                let _ = parse_ok(&m.payload);
            }
        }
    }
}
