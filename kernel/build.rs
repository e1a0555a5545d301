//! Link the kernel binary with the repository's `linker.ld`.
//!
//! Only the `pvdispl` binary gets these arguments (`rustc-link-arg-bins`), so the
//! crate's pure library still builds and tests on the host.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let script = manifest
        .parent()
        .expect("kernel/ sits in the workspace root")
        .join("linker.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    let target = std::env::var("TARGET").unwrap_or_default();
    if target == "x86_64-unknown-none" {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        // A fixed-address image: Xen's PVH loader places PT_LOAD segments at
        // their physical addresses and does not relocate.
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
}
