//! Backend-allocated, guest-granted pages via `/dev/xen/gntalloc`
//! (Linux `uapi/xen/gntalloc.h`), for displif `XENDISPL_DBUF_FLG_REQ_ALLOC`.
//!
//! Note: the `xen-gntalloc` module limits the total number of grants (module
//! parameter `limit`, default 1024 pages); a 1080p XRGB8888 buffer needs 2025.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::mapping::Mapping;
use super::{ioc_none, open_device};
use crate::platform::{Allocated, GrantAllocator, OsError};
use xen::types::{DomId, GrantRef};

/// `struct ioctl_gntalloc_alloc_gref` header: domid u16, flags u16, count u32, index u64.
const ALLOC_HEADER_SIZE: usize = 16;
/// `IOCTL_GNTALLOC_ALLOC_GREF` (`sizeof` includes `gref_ids[1]`, padded to 24).
pub const IOCTL_GNTALLOC_ALLOC_GREF: libc::c_ulong = ioc_none(b'G', 5, ALLOC_HEADER_SIZE + 8);
/// `IOCTL_GNTALLOC_DEALLOC_GREF` (index u64, count u32, padded to 16).
pub const IOCTL_GNTALLOC_DEALLOC_GREF: libc::c_ulong = ioc_none(b'G', 6, 16);
/// `GNTALLOC_FLAG_WRITABLE`.
const GNTALLOC_FLAG_WRITABLE: u64 = 1;

/// An open `/dev/xen/gntalloc`.
pub struct Gntalloc {
    file: Arc<std::fs::File>,
}

impl Gntalloc {
    /// Open the device.
    pub fn open() -> Result<Gntalloc, OsError> {
        Ok(Gntalloc {
            file: Arc::new(open_device("/dev/xen/gntalloc")?),
        })
    }
}

fn dealloc(file: &std::fs::File, index: u64, count: usize) {
    let request: [u64; 2] = [index, count as u64];
    // SAFETY: a valid `struct ioctl_gntalloc_dealloc_gref` living across the call.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            IOCTL_GNTALLOC_DEALLOC_GREF,
            request.as_ptr(),
        )
    };
    if rc != 0 {
        log::error!(
            "gntalloc dealloc of {count} pages failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl GrantAllocator for Gntalloc {
    fn alloc(&mut self, domid: DomId, nr_pages: usize) -> Result<Allocated, OsError> {
        let count = u32::try_from(nr_pages)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| OsError::Protocol(format!("cannot allocate {nr_pages} pages")))?;
        // Words: [domid | flags << 16 | count << 32], [index], then count u32 refs.
        let mut request: Vec<u64> = vec![0; 2 + nr_pages.div_ceil(2)];
        request[0] = u64::from(domid.0) | (GNTALLOC_FLAG_WRITABLE << 16) | (u64::from(count) << 32);
        // SAFETY: `request` is a valid `struct ioctl_gntalloc_alloc_gref` followed by
        // room for `count` gref ids, 8-byte aligned, alive across the call.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                IOCTL_GNTALLOC_ALLOC_GREF,
                request.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(OsError::last("IOCTL_GNTALLOC_ALLOC_GREF"));
        }
        let index = request[1];
        let refs = (0..nr_pages)
            .map(|i| {
                let word = request[2 + i / 2];
                GrantRef(if i % 2 == 0 {
                    word as u32
                } else {
                    (word >> 32) as u32
                })
            })
            .collect();
        let file = Arc::clone(&self.file);
        let release = Box::new(move || dealloc(&file, index, nr_pages));
        let memory = Mapping::map(self.file.as_raw_fd(), index, nr_pages, true, release)?;
        Ok(Allocated {
            refs,
            memory: Box::new(memory),
        })
    }
}
