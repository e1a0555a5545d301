//! Mapping a guest's grants through `/dev/xen/gntdev` (Linux `uapi/xen/gntdev.h`).
//!
//! `IOCTL_GNTDEV_MAP_GRANT_REF` reserves a range of the device file for a list of
//! (domid, ref) pairs and returns its offset; `mmap` at that offset performs the
//! grant map; `munmap` plus `IOCTL_GNTDEV_UNMAP_GRANT_REF` undo it.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::mapping::Mapping;
use super::{ioc_none, open_device};
use crate::platform::{GrantMapper, GrantMemory, OsError};
use xen::types::{DomId, GrantRef};

#[cfg(not(target_endian = "little"))]
compile_error!("the gntdev request is assembled as little-endian u64 words");

/// `struct ioctl_gntdev_map_grant_ref` without its flexible tail: count, pad, index.
const MAP_HEADER_SIZE: usize = 16;
/// `struct ioctl_gntdev_grant_ref`: domid u32, ref u32.
const GRANT_REF_SIZE: usize = 8;

/// `IOCTL_GNTDEV_MAP_GRANT_REF` (`sizeof` counts the one-element `refs[1]`).
pub const IOCTL_GNTDEV_MAP_GRANT_REF: libc::c_ulong =
    ioc_none(b'G', 0, MAP_HEADER_SIZE + GRANT_REF_SIZE);
/// `IOCTL_GNTDEV_UNMAP_GRANT_REF` (`struct ioctl_gntdev_unmap_grant_ref`: index u64, count, pad).
pub const IOCTL_GNTDEV_UNMAP_GRANT_REF: libc::c_ulong = ioc_none(b'G', 1, 16);

/// Largest number of grants mapped in one call (one 4K UHD XRGB8888 buffer needs 8100).
const MAX_GRANTS_PER_MAP: usize = 1 << 20;

/// An open `/dev/xen/gntdev`.
pub struct Gntdev {
    file: Arc<std::fs::File>,
}

impl Gntdev {
    /// Open the device.
    pub fn open() -> Result<Gntdev, OsError> {
        Ok(Gntdev {
            file: Arc::new(open_device("/dev/xen/gntdev")?),
        })
    }
}

fn unmap_grant_ref(file: &std::fs::File, index: u64, count: usize) {
    let request: [u64; 2] = [index, count as u64];
    // SAFETY: the argument is a valid `struct ioctl_gntdev_unmap_grant_ref`
    // (index, count, pad = 0) that lives across the call; the kernel only reads it.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            IOCTL_GNTDEV_UNMAP_GRANT_REF,
            request.as_ptr(),
        )
    };
    if rc != 0 {
        log::error!(
            "gntdev unmap of {count} grants at {index:#x} failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl GrantMapper for Gntdev {
    fn map(
        &mut self,
        domid: DomId,
        refs: &[GrantRef],
        is_writable: bool,
    ) -> Result<Box<dyn GrantMemory>, OsError> {
        if refs.is_empty() || refs.len() > MAX_GRANTS_PER_MAP {
            return Err(OsError::Protocol(format!(
                "cannot map {} grants at once",
                refs.len()
            )));
        }
        // Header word 0: count (low half) and pad (high half); word 1: index (out).
        let mut request: Vec<u64> = Vec::with_capacity(2 + refs.len());
        request.push(refs.len() as u64);
        request.push(0);
        request.extend(
            refs.iter()
                .map(|r| u64::from(domid.0) | (u64::from(r.0) << 32)),
        );
        // SAFETY: `request` is a valid `struct ioctl_gntdev_map_grant_ref` with
        // `count` trailing refs, 8-byte aligned, and outlives the call; the kernel
        // reads count + refs and writes only `index`.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                IOCTL_GNTDEV_MAP_GRANT_REF,
                request.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(OsError::last("IOCTL_GNTDEV_MAP_GRANT_REF"));
        }
        let index = request[1];
        let count = refs.len();
        let file = Arc::clone(&self.file);
        let release = Box::new(move || unmap_grant_ref(&file, index, count));
        let mapping = Mapping::map(self.file.as_raw_fd(), index, count, is_writable, release)?;
        Ok(Box::new(mapping))
    }
}
