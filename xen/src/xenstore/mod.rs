//! Xenstore: the `xs_wire` codec, a request/reply client, and the guest's ring.
//!
//! - [`wire`]: encode requests and decode replies/watch events (shared by the
//!   unikernel and the dom0 backend over `/dev/xen/xenbus`).
//! - [`client`]: [`client::XenstoreClient`] over any [`client::XenstoreTransport`].
//! - [`ring`]: the guest side of `xenstore_domain_interface` (byte rings in the
//!   xenstore page) and a transport built on it.
//! - [`fake`]: an in-memory xenstored for host tests (shared by other crates).

pub mod client;
pub mod fake;
pub mod ring;
pub mod wire;

pub use client::{Tx, WatchEvent, XenstoreClient, XenstoreTransport, XsClientError};
pub use wire::{XsErrno, XsRequest, XsWireError};
