//! Reading and validating `hvm_start_info` (PVH boot ABI).
//!
//! `%ebx` at entry holds the structure's guest-physical address; everything it
//! points to (memory map, command line, modules) is copied out here, with
//! bounds, before the heap and frame pool may reuse memory. Layout from
//! `xen/include/public/arch-x86/hvm/start_info.h` via the `pvh` crate.

use pvdispl_kernel::memplan::{MapEntry, Range};
use pvh::start_info::{MemmapTableEntry, ModlistEntry, StartInfo, START_MAGIC_VALUE};

/// Most memory-map entries we accept (Xen gives ~4, QEMU ~6).
pub const MAX_MEMMAP_ENTRIES: usize = 64;
/// Longest command line, excluding the terminating NUL.
pub const MAX_CMDLINE_BYTES: usize = 1023;
/// Most reserved ranges the boot data occupies (start info, memmap, cmdline,
/// modlist, modules).
pub const MAX_BOOT_RANGES: usize = 8;

/// Everything the kernel needs from start info, copied.
pub struct BootInfo {
    /// `version` field.
    pub version: u32,
    /// Memory map.
    pub memmap: [MapEntry; MAX_MEMMAP_ENTRIES],
    /// Valid entries in `memmap`.
    pub memmap_len: usize,
    /// Command line bytes (without NUL).
    pub cmdline: [u8; MAX_CMDLINE_BYTES],
    /// Valid bytes in `cmdline`.
    pub cmdline_len: usize,
    /// Memory the boot data occupies (kept out of heap and frames).
    pub reserved: [Range; MAX_BOOT_RANGES],
    /// Valid entries in `reserved`.
    pub reserved_len: usize,
    /// ACPI RSDP address (0 if none).
    pub rsdp_paddr: u64,
}

impl BootInfo {
    /// The memory map.
    pub fn memmap(&self) -> &[MapEntry] {
        &self.memmap[..self.memmap_len]
    }
    /// The command line.
    pub fn cmdline(&self) -> &[u8] {
        &self.cmdline[..self.cmdline_len]
    }
    /// Ranges to keep out of the allocators.
    pub fn reserved(&self) -> &[Range] {
        &self.reserved[..self.reserved_len]
    }
}

/// Why start info was rejected.
#[derive(Debug)]
pub enum StartInfoError {
    /// `%ebx` was 0 or not 8-byte aligned.
    BadAddress(u32),
    /// Wrong magic: not booted through PVH.
    BadMagic(u32),
    /// Version 0 has no memory map; we need one.
    NoMemoryMap(u32),
    /// More memory-map entries than we can hold.
    TooManyMemmapEntries(u32),
    /// The command line has no NUL within the limit.
    CmdlineTooLong,
    /// An address is outside the identity map.
    OutOfRange(&'static str, u64),
}

impl core::fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartInfoError::BadAddress(a) => {
                write!(f, "start info address {a:#x} is null or misaligned")
            }
            StartInfoError::BadMagic(m) => write!(
                f,
                "start info magic is {m:#x}, expected {START_MAGIC_VALUE:#x}: not a PVH boot"
            ),
            StartInfoError::NoMemoryMap(v) => {
                write!(
                    f,
                    "start info version {v} has no memory map (need version >= 1)"
                )
            }
            StartInfoError::TooManyMemmapEntries(n) => {
                write!(
                    f,
                    "memory map has {n} entries, at most {MAX_MEMMAP_ENTRIES} supported"
                )
            }
            StartInfoError::CmdlineTooLong => {
                write!(f, "command line longer than {MAX_CMDLINE_BYTES} bytes")
            }
            StartInfoError::OutOfRange(what, a) => {
                write!(f, "{what} at {a:#x} is outside the identity-mapped 4 GiB")
            }
        }
    }
}

const IDENTITY_LIMIT: u64 = 1 << 32;

fn check_range(what: &'static str, addr: u64, len: u64) -> Result<Range, StartInfoError> {
    match addr.checked_add(len) {
        Some(end) if addr != 0 && end <= IDENTITY_LIMIT => Ok(Range { start: addr, end }),
        _ => Err(StartInfoError::OutOfRange(what, addr)),
    }
}

/// Validate and copy start info.
///
/// # Safety
/// `paddr` must be the value Xen/QEMU left in `%ebx` at PVH entry, and the
/// first 4 GiB must be identity-mapped (as `boot/` does). Only memory the
/// structure itself designates is read, after range checks.
pub unsafe fn read(paddr: u32) -> Result<BootInfo, StartInfoError> {
    let align = core::mem::align_of::<StartInfo>() as u32;
    if paddr == 0 || paddr % align != 0 {
        return Err(StartInfoError::BadAddress(paddr));
    }
    // SAFETY: per the caller `paddr` is the loader's start-info address,
    // identity-mapped; it is non-null and aligned (checked). Read the magic
    // first: it is present even in version 0.
    let magic = unsafe { core::ptr::read_volatile(paddr as usize as *const u32) };
    if magic != START_MAGIC_VALUE {
        return Err(StartInfoError::BadMagic(magic));
    }
    // SAFETY: as above; the magic identifies a PVH start info, which always has
    // the full version-0 layout plus (version >= 1, checked next before use)
    // the memmap fields. `StartInfo` is plain data valid for any bytes.
    let info: StartInfo = unsafe { core::ptr::read_volatile(paddr as usize as *const StartInfo) };
    if info.version < 1 {
        return Err(StartInfoError::NoMemoryMap(info.version));
    }
    let mut boot = BootInfo {
        version: info.version,
        memmap: [MapEntry {
            addr: 0,
            size: 0,
            kind: 0,
        }; MAX_MEMMAP_ENTRIES],
        memmap_len: 0,
        cmdline: [0; MAX_CMDLINE_BYTES],
        cmdline_len: 0,
        reserved: [Range { start: 0, end: 0 }; MAX_BOOT_RANGES],
        reserved_len: 0,
        rsdp_paddr: info.rsdp_paddr,
    };
    let mut reserve = |r: Range| {
        if boot.reserved_len < MAX_BOOT_RANGES {
            boot.reserved[boot.reserved_len] = r;
            boot.reserved_len += 1;
        }
    };
    reserve(check_range(
        "start info",
        u64::from(paddr),
        core::mem::size_of::<StartInfo>() as u64,
    )?);

    let n = info.memmap_entries as usize;
    if n > MAX_MEMMAP_ENTRIES {
        return Err(StartInfoError::TooManyMemmapEntries(info.memmap_entries));
    }
    let entry_bytes = core::mem::size_of::<MemmapTableEntry>() as u64;
    let table = check_range("memory map", info.memmap_paddr, entry_bytes * n as u64)?;
    reserve(table);
    for i in 0..n {
        let at = table.start + i as u64 * entry_bytes;
        // SAFETY: `at` lies inside the range-checked, identity-mapped table the
        // loader described; entries are plain data; read_unaligned tolerates
        // any alignment the loader chose.
        let e: MemmapTableEntry =
            unsafe { core::ptr::read_unaligned(at as usize as *const MemmapTableEntry) };
        boot.memmap[i] = MapEntry {
            addr: e.addr,
            size: e.size,
            kind: e.ty,
        };
    }
    boot.memmap_len = n;

    if info.cmdline_paddr != 0 {
        let base = check_range("command line", info.cmdline_paddr, 1)?.start;
        let mut len = None;
        for i in 0..=MAX_CMDLINE_BYTES {
            let at = base + i as u64;
            if at >= IDENTITY_LIMIT {
                return Err(StartInfoError::OutOfRange("command line", base));
            }
            // SAFETY: `at` is identity-mapped (< 4 GiB, checked) and part of the
            // NUL-terminated string the loader placed at `cmdline_paddr`; we
            // stop at the NUL.
            let b = unsafe { core::ptr::read_volatile(at as usize as *const u8) };
            if b == 0 {
                len = Some(i);
                break;
            }
            if i < MAX_CMDLINE_BYTES {
                boot.cmdline[i] = b;
            }
        }
        let len = len.ok_or(StartInfoError::CmdlineTooLong)?;
        boot.cmdline_len = len;
        reserve(check_range("command line", base, len as u64 + 1)?);
    }

    if info.nr_modules != 0 {
        let entry_bytes = core::mem::size_of::<ModlistEntry>() as u64;
        let list = check_range(
            "module list",
            info.modlist_paddr,
            entry_bytes * u64::from(info.nr_modules),
        )?;
        reserve(list);
        for i in 0..u64::from(info.nr_modules) {
            // SAFETY: inside the range-checked, identity-mapped module list.
            let m: ModlistEntry = unsafe {
                core::ptr::read_unaligned(
                    (list.start + i * entry_bytes) as usize as *const ModlistEntry,
                )
            };
            if m.size != 0 {
                reserve(check_range("module", m.paddr, m.size)?);
            }
        }
    }
    Ok(boot)
}
