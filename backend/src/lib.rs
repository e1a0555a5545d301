//! pvdispl-backend: a headless dom0 displif (`vdispl`) backend that captures frames.
//!
//! Layers, bottom up: `os` (the only `unsafe`: `/dev/xen/*`), `platform` (the
//! traits protocol code is written against), `rings`/`connection`/`device`
//! (displif, validated against `rules`), `capture`/`stats` (what was shown),
//! `daemon` (one thread per device). `sim` holds the fakes host tests use.

pub mod capture;
pub mod connection;
pub mod daemon;
pub mod device;
pub mod edid;
pub mod frontend_cfg;
pub mod lifecycle;
pub mod limits;
pub mod logger;
pub mod os;
pub mod pacing;
pub mod pixel;
pub mod platform;
pub mod reserved;
pub mod rings;
pub mod rules;
pub mod settings;
#[cfg(test)]
pub mod sim;
#[cfg(test)]
mod sim_tests;
pub mod stats;
pub mod xs;
