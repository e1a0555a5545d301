//! Demo scenes drawn with embedded-graphics; pure functions of frame and size.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
