//! PVH entry: ELF notes, 32-bit entry, identity page tables, long mode.
//!
//! Xen (and QEMU's `-kernel` loader) start a PVH guest at the address in the
//! `XEN_ELFNOTE_PHYS32_ENTRY` note, in 32-bit protected mode with paging off and
//! `%ebx` holding the guest-physical address of `struct hvm_start_info`
//! (`xen/include/public/arch-x86/hvm/start_info.h`, `docs/misc/pvh.pandoc`).
//!
//! [`entry`] holds the whole path from there to Rust, in assembly:
//! 1. record the TSC at entry (for the "PVH entry -> Rust" figure),
//! 2. zero `.bss` (which also holds the page tables and the stack),
//! 3. build page tables identity-mapping the first 4 GiB with 2 MiB pages —
//!    Xen's special pages, the grant frames we map and the LAPIC all live
//!    just below 4 GiB,
//! 4. enable PAE, `EFER.LME`, paging; load a 64-bit GDT; far-jump to 64-bit code,
//! 5. switch to the boot stack and call `kmain(start_info_paddr: u32) -> !`,
//!    which the kernel binary defines.
//!
//! The linker script (`linker.ld` at the repository root) places the image at
//! 1 MiB, keeps the `.note.Xen` section in its own `PT_NOTE` segment and defines
//! `__bss_start` / `__bss_end` / `__image_start` / `__image_end`.
//!
//! This crate holds no Rust logic: only the assembly and safe accessors for what
//! the assembly recorded.
#![no_std]

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
mod entry;
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
mod traps;

/// Size of the boot stack `kmain` runs on.
pub const BOOT_STACK_BYTES: usize = 256 * 1024;

/// The TSC value read by the very first instructions at PVH entry.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub fn entry_tsc() -> u64 {
    entry::entry_tsc()
}

/// What a CPU exception left on the stack, as `ktrap` receives it.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct TrapFrame {
    /// Exception vector (0..32).
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    /// Faulting instruction.
    pub rip: u64,
    /// Code segment.
    pub cs: u64,
    /// Flags.
    pub rflags: u64,
    /// Stack pointer at the fault.
    pub rsp: u64,
    /// Stack segment.
    pub ss: u64,
}

/// Install the exception IDT (vectors 0..32 call the kernel's `ktrap`).
///
/// # Safety
/// Call once, early, with interrupts disabled. The kernel must define
/// `#[no_mangle] extern "C" fn ktrap(frame: &TrapFrame) -> !`.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub unsafe fn install_trap_handlers() {
    // SAFETY: forwarded to the caller.
    unsafe { traps::install() }
}

/// TSC values recorded by the entry assembly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootTsc {
    /// First instructions at PVH entry.
    pub entry: u64,
    /// After zeroing `.bss`.
    pub bss_zeroed: u64,
    /// In 64-bit mode, just before `kmain`.
    pub long_mode: u64,
}

/// The TSC checkpoints of the entry path.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub fn boot_tsc() -> BootTsc {
    entry::checkpoints()
}

/// Guest-physical `[start, end)` of the loaded image (text, data, bss, stack,
/// page tables), from the linker script's symbols.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub fn image_range() -> (u64, u64) {
    entry::image_range()
}
