//! An `mmap`ed run of granted pages, viewed as atomics and unmapped on drop.

use core::sync::atomic::AtomicU32;

use crate::platform::{GrantMemory, WORDS_PER_PAGE};
use xen::types::PAGE_SIZE;

/// A shared mapping of `nr_pages` pages at `base`.
///
/// Invariant: `base` is page aligned and `nr_pages * PAGE_SIZE` bytes from it are
/// mapped readable (and possibly writable) until [`Mapping::release`] or drop;
/// the memory may be written by another domain at any time, so it is only ever
/// accessed through `AtomicU32`.
pub(super) struct Mapping {
    base: *mut libc::c_void,
    nr_pages: usize,
    on_unmap: Option<Box<dyn FnOnce() + Send>>,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics; the
// pointer is not tied to the creating thread.
unsafe impl Send for Mapping {}

impl Mapping {
    /// `mmap` `nr_pages` pages of `fd` at `offset` (shared); `on_unmap` runs after
    /// `munmap` (it releases the kernel-side grant handle).
    pub(super) fn map(
        fd: libc::c_int,
        offset: u64,
        nr_pages: usize,
        is_writable: bool,
        on_unmap: Box<dyn FnOnce() + Send>,
    ) -> Result<Mapping, crate::platform::OsError> {
        let prot = if is_writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| crate::platform::OsError::Protocol("mmap offset too large".into()))?;
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL): it cannot alias
        // any Rust object. fd and offset come from the grant device's ioctl.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                nr_pages * PAGE_SIZE,
                prot,
                libc::MAP_SHARED,
                fd,
                offset,
            )
        };
        if base == libc::MAP_FAILED {
            let err = crate::platform::OsError::last("mmap granted pages");
            on_unmap();
            return Err(err);
        }
        Ok(Mapping {
            base,
            nr_pages,
            on_unmap: Some(on_unmap),
        })
    }
}

impl GrantMemory for Mapping {
    fn nr_pages(&self) -> usize {
        self.nr_pages
    }

    fn page(&self, index: usize) -> &[AtomicU32] {
        assert!(
            index < self.nr_pages,
            "page {index} of a {}-page mapping",
            self.nr_pages
        );
        // SAFETY: 1. the page lies inside the mapping (checked above), which stays
        // mapped while `self` is borrowed (type invariant); 2. it is page aligned,
        // so aligned for AtomicU32; 3. AtomicU32 tolerates concurrent writes by the
        // peer, and we never create non-atomic references to it.
        unsafe {
            core::slice::from_raw_parts(
                self.base
                    .cast::<u8>()
                    .add(index * PAGE_SIZE)
                    .cast::<AtomicU32>(),
                WORDS_PER_PAGE,
            )
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`nr_pages` describe exactly the mapping we created, and no
        // borrow of it can outlive `self`.
        let rc = unsafe { libc::munmap(self.base, self.nr_pages * PAGE_SIZE) };
        if rc != 0 {
            log::error!(
                "munmap of {} granted pages failed: {}",
                self.nr_pages,
                std::io::Error::last_os_error()
            );
        }
        if let Some(release) = self.on_unmap.take() {
            release();
        }
    }
}
