//! The small traits dom0 sits behind: xenstore, grant mapping, grant allocation,
//! event channels.
//!
//! All backend protocol logic (`device`, `connection`, the rings) is written
//! against these traits, so it runs in host tests against the fakes in
//! `crate::sim` and in dom0 against `/dev/xen/*` (`crate::os`). Time comes from
//! [`xen::platform::Clock`], shared with the unikernel.
//!
//! Granted memory is exposed as pages of `AtomicU32`: the guest may write it at
//! any moment, so the backend never forms a plain `&[u8]` over it.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use xen::types::{DomId, EvtchnPort, GrantRef, PAGE_SIZE};

/// Number of 32-bit words in a page.
pub const WORDS_PER_PAGE: usize = PAGE_SIZE / 4;

/// An error from the operating system or the xenstore daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OsError {
    /// A system call failed with this errno (positive).
    Errno {
        /// What was being done.
        what: &'static str,
        /// The errno value.
        errno: i32,
    },
    /// xenstored answered with an error string such as `ENOENT`.
    Xenstore(String),
    /// The peer (kernel device or xenstored) sent something malformed.
    Protocol(String),
}

impl OsError {
    /// The last OS error, for `what`.
    pub fn last(what: &'static str) -> OsError {
        OsError::Errno {
            what,
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        }
    }
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OsError::Errno { what, errno } => {
                write!(f, "{what}: {}", std::io::Error::from_raw_os_error(*errno))
            }
            OsError::Xenstore(e) => write!(f, "xenstore error {e}"),
            OsError::Protocol(e) => write!(f, "protocol error: {e}"),
        }
    }
}

impl std::error::Error for OsError {}

/// Granted memory mapped into the backend: a run of 4 KiB pages, unmapped on drop.
pub trait GrantMemory: Send {
    /// Number of pages.
    fn nr_pages(&self) -> usize;
    /// Page `index` (< `nr_pages()`) as [`WORDS_PER_PAGE`] words.
    fn page(&self, index: usize) -> &[AtomicU32];
}

/// Maps a foreign domain's grants (`/dev/xen/gntdev`).
pub trait GrantMapper: Send {
    /// Map `refs` of `domid`, in order, as one run of pages.
    fn map(
        &mut self,
        domid: DomId,
        refs: &[GrantRef],
        is_writable: bool,
    ) -> Result<Box<dyn GrantMemory>, OsError>;
}

/// Pages the backend allocated and granted to a guest (`/dev/xen/gntalloc`).
pub struct Allocated {
    /// One grant reference per page, in order.
    pub refs: Vec<GrantRef>,
    /// The pages themselves; dropping this revokes the grants.
    pub memory: Box<dyn GrantMemory>,
}

/// Allocates backend memory and grants it to a guest.
pub trait GrantAllocator: Send {
    /// Allocate `nr_pages` zeroed pages writable by `domid`.
    fn alloc(&mut self, domid: DomId, nr_pages: usize) -> Result<Allocated, OsError>;
}

/// Interdomain event channels of one device (`/dev/xen/evtchn`).
pub trait EventChannel: Send {
    /// Bind to `remote`'s port; returns the local port.
    fn bind(&mut self, remote: DomId, remote_port: EvtchnPort) -> Result<EvtchnPort, OsError>;
    /// Unbind a local port.
    fn unbind(&mut self, port: EvtchnPort) -> Result<(), OsError>;
    /// Notify the remote end of a local port.
    fn notify(&mut self, port: EvtchnPort) -> Result<(), OsError>;
}

/// The xenstore operations the backend uses.
pub trait Xenstore {
    /// Read a node; `Ok(None)` if it does not exist.
    fn read(&mut self, path: &str) -> Result<Option<String>, OsError>;
    /// Write a node (creating it).
    fn write(&mut self, path: &str, value: &str) -> Result<(), OsError>;
    /// List a directory's children; empty if it does not exist.
    fn directory(&mut self, path: &str) -> Result<Vec<String>, OsError>;
}

/// Everything a device needs from the host, bundled (one per device thread).
pub struct Platform {
    /// Maps the guest's grants.
    pub mapper: Box<dyn GrantMapper>,
    /// Allocates backend buffers (`be-alloc`).
    pub allocator: Box<dyn GrantAllocator>,
    /// Binds and kicks event channels.
    pub evtchn: Box<dyn EventChannel>,
    /// Monotonic time.
    pub clock: Box<dyn xen::platform::Clock + Send>,
    /// CPU time used so far by the calling thread, ns (for per-flip cost).
    pub thread_cpu_ns: fn() -> u64,
}

impl Platform {
    /// Now, in ns.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }
}

/// Out-of-range access to granted memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange;

/// Read `out.len()` bytes at byte `offset` of `memory` (little-endian words).
///
/// Works page segment by page segment; whole aligned words are copied in a
/// tight loop (this is the per-frame hot path of capture).
pub fn read_bytes(
    memory: &dyn GrantMemory,
    offset: usize,
    out: &mut [u8],
) -> Result<(), OutOfRange> {
    let total = memory.nr_pages() * PAGE_SIZE;
    let end = offset.checked_add(out.len()).ok_or(OutOfRange)?;
    if end > total {
        return Err(OutOfRange);
    }
    let mut pos = offset;
    let mut done = 0;
    while done < out.len() {
        let page = memory.page(pos / PAGE_SIZE);
        let in_page = pos % PAGE_SIZE;
        let segment = (PAGE_SIZE - in_page).min(out.len() - done);
        let dst = &mut out[done..done + segment];
        let skip = in_page % 4;
        if skip == 0 {
            let first_word = in_page / 4;
            let mut chunks = dst.chunks_exact_mut(4);
            for (chunk, word) in (&mut chunks).zip(&page[first_word..]) {
                chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
            let tail = chunks.into_remainder();
            if !tail.is_empty() {
                let word = page[(in_page + segment) / 4]
                    .load(Ordering::Relaxed)
                    .to_le_bytes();
                let n = tail.len();
                tail.copy_from_slice(&word[..n]);
            }
        } else {
            for (i, byte) in dst.iter_mut().enumerate() {
                let at = in_page + i;
                *byte = page[at / 4].load(Ordering::Relaxed).to_le_bytes()[at % 4];
            }
        }
        done += segment;
        pos += segment;
    }
    Ok(())
}

/// Read `out.len()` little-endian words starting at 4-aligned byte `offset`.
pub fn read_words(
    memory: &dyn GrantMemory,
    offset: usize,
    out: &mut [u32],
) -> Result<(), OutOfRange> {
    let len_bytes = out.len().checked_mul(4).ok_or(OutOfRange)?;
    let end = offset.checked_add(len_bytes).ok_or(OutOfRange)?;
    if offset % 4 != 0 || end > memory.nr_pages() * PAGE_SIZE {
        return Err(OutOfRange);
    }
    let mut word = offset / 4;
    let mut done = 0;
    while done < out.len() {
        let page = &memory.page(word / WORDS_PER_PAGE)[word % WORDS_PER_PAGE..];
        let n = page.len().min(out.len() - done);
        for (o, w) in out[done..done + n].iter_mut().zip(page) {
            *o = w.load(Ordering::Relaxed);
        }
        done += n;
        word += n;
    }
    Ok(())
}

/// Read `out.len() / 4` words starting at 4-aligned byte `offset`, AND each
/// with `mask` and store it little-endian into `out` (length a multiple of 4).
pub fn read_words_masked(
    memory: &dyn GrantMemory,
    offset: usize,
    mask: u32,
    out: &mut [u8],
) -> Result<(), OutOfRange> {
    let end = offset.checked_add(out.len()).ok_or(OutOfRange)?;
    if offset % 4 != 0 || out.len() % 4 != 0 || end > memory.nr_pages() * PAGE_SIZE {
        return Err(OutOfRange);
    }
    let mut word = offset / 4;
    let mut rest = out;
    while !rest.is_empty() {
        let page = &memory.page(word / WORDS_PER_PAGE)[word % WORDS_PER_PAGE..];
        let n = page.len().min(rest.len() / 4);
        let (now, later) = rest.split_at_mut(n * 4);
        for (o, w) in now.chunks_exact_mut(4).zip(page) {
            o.copy_from_slice(&(w.load(Ordering::Relaxed) & mask).to_le_bytes());
        }
        rest = later;
        word += n;
    }
    Ok(())
}

/// Read the little-endian `u32` at 4-aligned byte `offset`.
pub fn read_u32(memory: &dyn GrantMemory, offset: usize) -> Result<u32, OutOfRange> {
    if offset % 4 != 0 || offset / PAGE_SIZE >= memory.nr_pages() {
        return Err(OutOfRange);
    }
    Ok(memory.page(offset / PAGE_SIZE)[(offset % PAGE_SIZE) / 4].load(Ordering::Acquire))
}

/// Write `bytes` at 4-aligned byte `offset` (length a multiple of 4).
pub fn write_words(
    memory: &dyn GrantMemory,
    offset: usize,
    bytes: &[u8],
) -> Result<(), OutOfRange> {
    let end = offset.checked_add(bytes.len()).ok_or(OutOfRange)?;
    if offset % 4 != 0 || bytes.len() % 4 != 0 || end > memory.nr_pages() * PAGE_SIZE {
        return Err(OutOfRange);
    }
    for (i, chunk) in bytes.chunks_exact(4).enumerate() {
        let at = offset + i * 4;
        let word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        memory.page(at / PAGE_SIZE)[(at % PAGE_SIZE) / 4].store(word, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::HeapMemory;

    #[test]
    fn read_bytes_crosses_words_and_pages() {
        let memory = HeapMemory::new(2);
        let pattern: Vec<u8> = (0..PAGE_SIZE * 2).map(|i| (i * 7 % 251) as u8).collect();
        write_words(&memory, 0, &pattern).unwrap();
        let mut out = [0u8; 11];
        read_bytes(&memory, PAGE_SIZE - 5, &mut out).unwrap();
        assert_eq!(&out[..], &pattern[PAGE_SIZE - 5..PAGE_SIZE + 6]);
        assert_eq!(
            read_bytes(&memory, 2 * PAGE_SIZE - 3, &mut out),
            Err(OutOfRange)
        );
        assert_eq!(read_bytes(&memory, usize::MAX, &mut out), Err(OutOfRange));
        assert_eq!(read_u32(&memory, 2 * PAGE_SIZE), Err(OutOfRange));
        assert_eq!(read_u32(&memory, 1), Err(OutOfRange));
        let mut masked = [0u8; 12];
        read_words_masked(&memory, PAGE_SIZE - 4, 0x00ff_ff00, &mut masked).unwrap();
        let want: Vec<u8> = pattern[PAGE_SIZE - 4..PAGE_SIZE + 8]
            .iter()
            .enumerate()
            .map(|(i, b)| if i % 4 == 0 || i % 4 == 3 { 0 } else { *b })
            .collect();
        assert_eq!(&masked[..], &want[..]);
        assert_eq!(
            read_words_masked(&memory, 2 * PAGE_SIZE - 8, !0, &mut masked),
            Err(OutOfRange)
        );
        assert_eq!(
            read_words_masked(&memory, 2, !0, &mut masked),
            Err(OutOfRange)
        );
        assert_eq!(
            write_words(&memory, 2 * PAGE_SIZE - 4, &[0; 8]),
            Err(OutOfRange)
        );
    }
}
