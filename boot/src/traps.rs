//! CPU exception entry: an IDT whose 32 exception vectors report and stop.
//!
//! Without an IDT any fault (page fault, #GP, #UD...) would triple-fault and
//! Xen would only say the domain crashed. Each stub pushes a dummy error code
//! when the CPU does not push one, then the vector number, and jumps to a
//! common path that calls the kernel's `ktrap(frame: &TrapFrame) -> !`
//! on the faulting stack (realigned to 16 bytes). Nothing returns: the kernel
//! prints the frame and shuts the domain down. Interrupts stay disabled, so
//! only exceptions ever arrive here.

use core::arch::global_asm;
use core::cell::UnsafeCell;

/// Number of exception vectors with stubs.
const NR_EXCEPTIONS: usize = 32;

// Vectors where the CPU pushes an error code: #DF 8, #TS 10, #NP 11, #SS 12,
// #GP 13, #PF 14, #AC 17, #CP 21, #VC 29, #SX 30.
global_asm!(
    r#"
    .pushsection .text.pvh_traps, "ax"
    .code64
    .altmacro
    .macro pvh_trap_stub n
    .balign 16
pvh_trap_stub_\n:
    .if (\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    push $0
    .endif
    push $\n
    jmp pvh_trap_common
    .endm

    .set i, 0
    .rept 32
    pvh_trap_stub %i
    .set i, i + 1
    .endr

pvh_trap_common:
    mov %rsp, %rdi
    and $-16, %rsp
    call ktrap
2:
    cli
    hlt
    jmp 2b
    .popsection

    .pushsection .rodata.pvh_traps, "a"
    .balign 8
    .global pvh_trap_stub_table
pvh_trap_stub_table:
    .macro pvh_trap_entry n
    .quad pvh_trap_stub_\n
    .endm
    .set i, 0
    .rept 32
    pvh_trap_entry %i
    .set i, i + 1
    .endr
    .popsection
    "#,
    options(att_syntax)
);

extern "C" {
    static pvh_trap_stub_table: [u64; NR_EXCEPTIONS];
}

/// One 16-byte IDT gate.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

const _: () = assert!(core::mem::size_of::<Gate>() == 16);

/// Present, DPL 0, 64-bit interrupt gate (IF cleared on entry).
const INTERRUPT_GATE: u8 = 0x8e;
/// The 64-bit code segment of the boot GDT.
const KERNEL_CS: u16 = 0x08;

#[repr(C, align(16))]
struct Idt(UnsafeCell<[Gate; NR_EXCEPTIONS]>);

// SAFETY: written once by `install` (single CPU, before anything can fault
// into it), read only by the CPU afterwards.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new(
    [Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attr: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    }; NR_EXCEPTIONS],
));

/// Fill the IDT and load it.
///
/// # Safety
/// Call once, on the boot CPU, with interrupts disabled; the kernel must
/// define `#[no_mangle] extern "C" fn ktrap(frame: &TrapFrame) -> !`.
pub(crate) unsafe fn install() {
    // SAFETY: the table is a static of 32 stub addresses emitted above.
    let stubs = unsafe { &*core::ptr::addr_of!(pvh_trap_stub_table) };
    // SAFETY: per the caller this runs once with interrupts off, so nothing
    // else reads or writes the IDT meanwhile.
    let idt = unsafe { &mut *IDT.0.get() };
    for (gate, &stub) in idt.iter_mut().zip(stubs.iter()) {
        *gate = Gate {
            offset_low: stub as u16,
            selector: KERNEL_CS,
            ist: 0,
            type_attr: INTERRUPT_GATE,
            offset_mid: (stub >> 16) as u16,
            offset_high: (stub >> 32) as u32,
            reserved: 0,
        };
    }
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let pointer = Pointer {
        limit: (core::mem::size_of::<[Gate; NR_EXCEPTIONS]>() - 1) as u16,
        base: IDT.0.get() as u64,
    };
    // SAFETY: the IDT is a static, fully initialised with gates to our stubs
    // in the boot code segment; vectors above 31 are outside the limit (a
    // stray interrupt would fault with #GP, which is vector 13: reported).
    unsafe {
        core::arch::asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags));
    }
}
