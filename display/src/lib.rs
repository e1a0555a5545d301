//! displif (vdispl) frontend: protocol logic and framebuffer, no `unsafe`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
pub mod framebuffer;
