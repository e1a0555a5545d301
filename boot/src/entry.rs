//! The PVH entry assembly and the ELF notes announcing it.
//!
//! See the crate docs for the sequence. Register use in the 32-bit part:
//! `%esi` keeps the start-info address from `%ebx` for the whole path (nothing
//! below writes `%esi`); `%eax`/`%ecx`/`%edx`/`%edi` are scratch.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

/// The TSC at PVH entry; written once by the entry assembly before any Rust
/// code runs (as two 32-bit stores, which is fine: nothing reads it until
/// `kmain`), read-only afterwards. Lives in `.data` so zeroing `.bss` keeps it.
#[no_mangle]
#[used]
#[link_section = ".data.boot_entry_tsc"]
static BOOT_ENTRY_TSC: AtomicU64 = AtomicU64::new(0);

/// The TSC after `.bss` was zeroed (same rules as [`BOOT_ENTRY_TSC`]).
#[no_mangle]
#[used]
#[link_section = ".data.boot_entry_tsc"]
static BOOT_BSS_ZEROED_TSC: AtomicU64 = AtomicU64::new(0);

/// The TSC in 64-bit mode, just before calling `kmain`.
#[no_mangle]
#[used]
#[link_section = ".data.boot_entry_tsc"]
static BOOT_LONG_MODE_TSC: AtomicU64 = AtomicU64::new(0);

pub(crate) fn entry_tsc() -> u64 {
    BOOT_ENTRY_TSC.load(Ordering::Relaxed)
}

pub(crate) fn checkpoints() -> crate::BootTsc {
    crate::BootTsc {
        entry: BOOT_ENTRY_TSC.load(Ordering::Relaxed),
        bss_zeroed: BOOT_BSS_ZEROED_TSC.load(Ordering::Relaxed),
        long_mode: BOOT_LONG_MODE_TSC.load(Ordering::Relaxed),
    }
}

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

pub(crate) fn image_range() -> (u64, u64) {
    // Only the addresses of the linker symbols are taken; they are never read.
    let start = core::ptr::addr_of!(__image_start) as u64;
    let end = core::ptr::addr_of!(__image_end) as u64;
    (start, end)
}

// ELF notes (`xen/include/public/elfnote.h`): each is namesz, descsz, type,
// "Xen\0", then the descriptor padded to 4 bytes. `XEN_ELFNOTE_PHYS32_ENTRY`
// (18) is what makes this a PVH kernel; GUEST_OS (6), XEN_VERSION (5) and
// LOADER (8) are the customary identification notes.
global_asm!(
    r#"
    .pushsection .note.Xen, "a", @note
    .balign 4
    .long 4, 8, 18
    .asciz "Xen"
    .balign 4
    .quad pvh_start32

    .balign 4
    .long 4, 8, 6
    .asciz "Xen"
    .balign 4
    .asciz "pvdispl"

    .balign 4
    .long 4, 8, 5
    .asciz "Xen"
    .balign 4
    .asciz "xen-3.0"

    .balign 4
    .long 4, 8, 8
    .asciz "Xen"
    .balign 4
    .asciz "generic"
    .balign 4
    .popsection
    "#,
    options(att_syntax)
);

global_asm!(
    r#"
    .pushsection .text.pvh_start32, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %esi

    rdtsc
    mov %eax, BOOT_ENTRY_TSC
    mov %edx, BOOT_ENTRY_TSC + 4

    /* Zero .bss (page tables and stack live there); the linker script
       aligns both ends to 4 KiB, so whole dwords. */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    rep stosl

    rdtsc
    mov %eax, BOOT_BSS_ZEROED_TSC
    mov %edx, BOOT_BSS_ZEROED_TSC + 4

    /* PML4[0] -> PDPT; PDPT[0..4] -> the four page directories. */
    mov $pvh_boot_pdpt, %eax
    or $0x3, %eax
    mov %eax, pvh_boot_pml4
    mov $pvh_boot_pd, %eax
    or $0x3, %eax
    mov $pvh_boot_pdpt, %edi
    mov $4, %ecx
1:
    mov %eax, (%edi)
    add $0x1000, %eax
    add $8, %edi
    loop 1b

    /* 2048 PDEs of 2 MiB: present | writable | page-size. */
    mov $pvh_boot_pd, %edi
    mov $0x83, %eax
    mov $2048, %ecx
1:
    mov %eax, (%edi)
    add $0x200000, %eax
    add $8, %edi
    loop 1b

    mov $pvh_boot_pml4, %eax
    mov %eax, %cr3

    /* CR4.PAE */
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4

    /* EFER.LME */
    mov $0xC0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr

    lgdt pvh_boot_gdt_ptr

    /* CR0.PG | CR0.PE: long mode becomes active. */
    mov %cr0, %eax
    or $0x80000001, %eax
    mov %eax, %cr0

    ljmp $0x08, $pvh_start64

    .code64
pvh_start64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs

    rdtsc
    mov %eax, BOOT_LONG_MODE_TSC(%rip)
    mov %edx, BOOT_LONG_MODE_TSC + 4(%rip)

    lea pvh_boot_stack_top(%rip), %rsp
    xor %ebp, %ebp
    mov %esi, %edi
    call kmain
2:
    cli
    hlt
    jmp 2b
    .popsection

    .pushsection .rodata.pvh_boot_gdt, "a"
    .balign 16
pvh_boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
pvh_boot_gdt_end:
    .balign 4
pvh_boot_gdt_ptr:
    .word pvh_boot_gdt_end - pvh_boot_gdt - 1
    .long pvh_boot_gdt
    .popsection

    .pushsection .bss.pvh_boot, "aw", @nobits
    .balign 4096
pvh_boot_pml4:
    .skip 4096
pvh_boot_pdpt:
    .skip 4096
pvh_boot_pd:
    .skip 4096 * 4
    .balign 16
pvh_boot_stack:
    .skip {stack_bytes}
pvh_boot_stack_top:
    .popsection
    "#,
    stack_bytes = const crate::BOOT_STACK_BYTES,
    options(att_syntax)
);
