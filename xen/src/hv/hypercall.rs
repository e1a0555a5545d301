//! The hypercall page and one wrapper per Xen operation we use.
//!
//! Xen fills a guest page with one 32-byte stub per hypercall (`mov $nr,%eax;
//! vmcall|vmmcall; ret`) when the guest writes the page's guest-physical address
//! to the MSR named by CPUID `base + 2`. That spares us the Intel/AMD choice.
//!
//! Register ABI (x86_64, `xen/include/public/arch-x86/xen-x86_64.h`): the
//! arguments go in `rdi, rsi, rdx, r10, r8`; the result comes back in `rax`.
//! Xen may clobber the argument registers (debug builds deliberately scramble
//! them), so every one is declared clobbered, and so are `rcx`/`r11` and `r9`
//! as a margin. The stub is reached with `call`, which uses the stack, so the
//! asm blocks do not claim `nostack`; they do touch memory (Xen reads and writes
//! our argument structures), so `nomem` / `readonly` are not claimed either.
//!
//! [`Hypervisor`] is the capability: it exists only once the page is installed,
//! so no hypercall can be issued through an empty page. The typed wrappers build
//! their argument structure on the stack (identity mapping: its address is what
//! Xen translates) and turn negative results into [`PlatformError::Errno`].

use core::cell::UnsafeCell;

use crate::abi::event_channel::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnClose, EvtchnSend, EvtchnUnmask,
    EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_BIND_INTERDOMAIN, EVTCHNOP_CLOSE, EVTCHNOP_SEND,
    EVTCHNOP_UNMASK,
};
use crate::abi::grant_table::{
    GnttabMapGrantRef, GnttabQuerySize, GnttabUnmapGrantRef, GNTTABOP_MAP_GRANT_REF,
    GNTTABOP_QUERY_SIZE, GNTTABOP_UNMAP_GRANT_REF,
};
use crate::abi::hvm::{XenHvmParam, HVMOP_GET_PARAM};
use crate::abi::memory::{
    XenAddToPhysmap, XenMemoryReservation, XENMEM_ADD_TO_PHYSMAP, XENMEM_POPULATE_PHYSMAP,
};
use crate::abi::sched::{
    SchedPoll, SchedShutdown, SCHEDOP_POLL, SCHEDOP_SHUTDOWN, SCHEDOP_YIELD, SCHED_POLL_MAX_PORTS,
};
use crate::abi::vcpu::{VcpuRegisterTimeMemoryArea, VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA};
use crate::abi::xen::{
    VcpuTimeInfo, DOMID_SELF, HYPERCALL_ENTRY_SIZE, HYPERVISOR_EVENT_CHANNEL_OP,
    HYPERVISOR_GRANT_TABLE_OP, HYPERVISOR_HVM_OP, HYPERVISOR_MEMORY_OP, HYPERVISOR_SCHED_OP,
    HYPERVISOR_VCPU_OP,
};
use crate::hv::cpuid::XenLeaves;
use crate::platform::PlatformError;
use crate::types::{DomId, EvtchnPort, Gfn, GrantRef, PAGE_SIZE};

/// The page Xen writes the hypercall stubs into.
#[repr(C, align(4096))]
struct HypercallPage(UnsafeCell<[u8; PAGE_SIZE]>);

// SAFETY: Rust code never reads or writes the page's contents; only Xen writes
// them (once, during the MSR write in `Hypervisor::install`) and the CPU
// executes them. Sharing the address between threads is harmless.
unsafe impl Sync for HypercallPage {}

static HYPERCALL_PAGE: HypercallPage = HypercallPage(UnsafeCell::new([0; PAGE_SIZE]));

/// Proof that the hypercall page is installed; all hypercalls go through it.
#[derive(Clone, Copy, Debug)]
pub struct Hypervisor {
    leaves: XenLeaves,
}

impl Hypervisor {
    /// Install the hypercall page by writing its address to Xen's MSR.
    ///
    /// # Safety
    /// `leaves` must come from [`crate::hv::cpuid::detect`] on this machine (so
    /// the MSR exists and is Xen's), and guest-physical memory must be
    /// identity-mapped (the page's virtual address is written as its physical
    /// address).
    #[cfg(target_arch = "x86_64")]
    pub unsafe fn install(leaves: XenLeaves) -> Hypervisor {
        let address = HYPERCALL_PAGE.0.get() as u64;
        // SAFETY: per the caller, the MSR is Xen's hypercall-page MSR; writing a
        // page-aligned guest-physical address of a page we own (a static nobody
        // else uses) makes Xen fill that page and has no other effect.
        unsafe {
            core::arch::asm!(
                "wrmsr",
                in("ecx") leaves.hypercall_msr,
                in("eax") address as u32,
                in("edx") (address >> 32) as u32,
                options(nostack, preserves_flags),
            );
        }
        Hypervisor { leaves }
    }

    /// The CPUID facts this hypervisor was found with.
    pub fn leaves(&self) -> XenLeaves {
        self.leaves
    }

    /// Issue hypercall `op` with up to five arguments; returns `rax`.
    ///
    /// # Safety
    /// The arguments must be valid for `op`: pointers must point to live,
    /// correctly laid-out structures that Xen may read and write for the
    /// duration of the call, and the operation must not break memory safety
    /// (e.g. remapping a guest frame that Rust code still uses).
    #[cfg(target_arch = "x86_64")]
    pub unsafe fn hypercall(&self, op: u32, args: [u64; 5]) -> i64 {
        let entry = HYPERCALL_PAGE.0.get() as u64 + u64::from(op) * HYPERCALL_ENTRY_SIZE as u64;
        let result: i64;
        // SAFETY: `self` proves the page holds Xen's stubs, so `entry` is the
        // stub for `op` (op < 128 for every constant we pass; the page holds
        // 128 entries). The argument validity is the caller's obligation. The
        // register contract is described in the module docs.
        unsafe {
            core::arch::asm!(
                "call rax",
                inlateout("rax") entry => result,
                inlateout("rdi") args[0] => _,
                inlateout("rsi") args[1] => _,
                inlateout("rdx") args[2] => _,
                inlateout("r10") args[3] => _,
                inlateout("r8") args[4] => _,
                lateout("r9") _,
                lateout("rcx") _,
                lateout("r11") _,
            );
        }
        result
    }

    /// Host builds have no hypervisor; this keeps the crate compiling there.
    ///
    /// # Safety
    /// Never callable in practice: a [`Hypervisor`] cannot be made on the host.
    #[cfg(not(target_arch = "x86_64"))]
    pub unsafe fn hypercall(&self, _op: u32, _args: [u64; 5]) -> i64 {
        -(crate::abi::errno::XEN_ENOSYS as i64)
    }

    /// Hypercall with one pointer argument after a command number.
    ///
    /// # Safety
    /// As [`Hypervisor::hypercall`]: `arg` must be the structure `cmd` expects.
    unsafe fn op_with<T>(&self, op: u32, cmd: u32, arg: &mut T) -> Result<i64, PlatformError> {
        let pointer = arg as *mut T as u64;
        // SAFETY: forwarded to the caller; `arg` is live for the call.
        let rc = unsafe { self.hypercall(op, [u64::from(cmd), pointer, 0, 0, 0]) };
        errno(rc)
    }

    // ---- memory_op -------------------------------------------------------

    /// `XENMEM_add_to_physmap`: map `space`'s page `idx` at our frame `gfn`.
    ///
    /// # Safety
    /// Whatever was at `gfn` is replaced: it must be a frame no Rust object or
    /// other mapping uses (an unpopulated frame of the mapping window, or a RAM
    /// page given up for this purpose).
    pub unsafe fn add_to_physmap(
        &self,
        space: u32,
        idx: u64,
        gfn: Gfn,
    ) -> Result<(), PlatformError> {
        let mut arg = XenAddToPhysmap {
            domid: DOMID_SELF,
            size: 0,
            space,
            idx,
            gpfn: gfn.0,
        };
        // SAFETY: `arg` is a valid `xen_add_to_physmap`; the frame obligation is
        // the caller's.
        unsafe { self.op_with(HYPERVISOR_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, &mut arg) }.map(drop)
    }

    /// `XENMEM_populate_physmap` of one 4 KiB page at `gfn`.
    ///
    /// # Safety
    /// `gfn` must be unpopulated (nothing mapped there): populating a frame in
    /// use would replace memory under whoever uses it.
    pub unsafe fn populate_physmap(&self, gfn: Gfn) -> Result<(), PlatformError> {
        let mut frame = gfn.0;
        let mut arg = XenMemoryReservation {
            extent_start: &mut frame as *mut u64 as u64,
            nr_extents: 1,
            extent_order: 0,
            mem_flags: 0,
            domid: DOMID_SELF,
        };
        // SAFETY: `arg` is a valid reservation whose handle points at one live
        // `xen_pfn_t`; the frame obligation is the caller's.
        let done =
            unsafe { self.op_with(HYPERVISOR_MEMORY_OP, XENMEM_POPULATE_PHYSMAP, &mut arg) }?;
        if done == 1 {
            Ok(())
        } else {
            Err(PlatformError::Exhausted("memory reservation"))
        }
    }

    // ---- vcpu_op ----------------------------------------------------------

    /// `VCPUOP_register_vcpu_time_memory_area`: Xen keeps a second copy of
    /// `vcpu`'s `vcpu_time_info` at `area` and, importantly, refreshes both
    /// copies at once (`force_update_vcpu_system_time`).
    ///
    /// # Safety
    /// `area` must stay valid, 32-byte sized and unused by anything else for
    /// the rest of the program (Xen writes it at every time update), and must
    /// not cross a page boundary.
    pub unsafe fn vcpu_register_time_memory_area(
        &self,
        vcpu: u32,
        area: *mut VcpuTimeInfo,
    ) -> Result<(), PlatformError> {
        let mut arg = VcpuRegisterTimeMemoryArea { addr: area as u64 };
        // SAFETY: `arg` is a valid `vcpu_register_time_memory_area` (one
        // guest address); the area's lifetime is the caller's obligation.
        let rc = unsafe {
            self.hypercall(
                HYPERVISOR_VCPU_OP,
                [
                    u64::from(VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA),
                    u64::from(vcpu),
                    &mut arg as *mut VcpuRegisterTimeMemoryArea as u64,
                    0,
                    0,
                ],
            )
        };
        errno(rc).map(drop)
    }

    // ---- hvm_op ----------------------------------------------------------

    /// `HVMOP_get_param` for our own domain.
    pub fn hvm_get_param(&self, index: u32) -> Result<u64, PlatformError> {
        let mut arg = XenHvmParam {
            domid: DOMID_SELF,
            pad: 0,
            index,
            value: 0,
        };
        // SAFETY: `arg` is a valid `xen_hvm_param`; get_param only writes `value`.
        unsafe { self.op_with(HYPERVISOR_HVM_OP, HVMOP_GET_PARAM, &mut arg) }?;
        Ok(arg.value)
    }

    // ---- sched_op --------------------------------------------------------

    /// `SCHEDOP_shutdown`. Returns only if Xen refuses.
    pub fn shutdown(&self, reason: u32) -> PlatformError {
        let mut arg = SchedShutdown { reason };
        // SAFETY: `arg` is a valid `sched_shutdown`.
        match unsafe { self.op_with(HYPERVISOR_SCHED_OP, SCHEDOP_SHUTDOWN, &mut arg) } {
            Err(e) => e,
            // Xen accepted, yet we run: the toolstack may be slow to reap us.
            Ok(_) => PlatformError::NotHeld("shutdown accepted but domain still running"),
        }
    }

    /// `SCHEDOP_yield`.
    pub fn yield_now(&self) {
        // SAFETY: SCHEDOP_yield takes no argument structure.
        let _ =
            unsafe { self.hypercall(HYPERVISOR_SCHED_OP, [u64::from(SCHEDOP_YIELD), 0, 0, 0, 0]) };
    }

    /// `SCHEDOP_poll`: block until one of `ports` is pending or Xen system time
    /// reaches `timeout_abs_ns` (0 = no timeout). May return early spuriously.
    pub fn poll(&self, ports: &[EvtchnPort], timeout_abs_ns: u64) -> Result<(), PlatformError> {
        if ports.len() > SCHED_POLL_MAX_PORTS {
            return Err(PlatformError::Errno(-crate::abi::errno::XEN_EINVAL));
        }
        let mut raw = [0u32; SCHED_POLL_MAX_PORTS];
        for (slot, port) in raw.iter_mut().zip(ports) {
            *slot = port.0;
        }
        let mut arg = SchedPoll {
            ports: raw.as_ptr() as u64,
            nr_ports: ports.len() as u32,
            timeout: timeout_abs_ns,
        };
        // SAFETY: `arg` is a valid `sched_poll` whose handle points at
        // `nr_ports` live `evtchn_port_t`s in `raw`, which outlives the call.
        unsafe { self.op_with(HYPERVISOR_SCHED_OP, SCHEDOP_POLL, &mut arg) }.map(drop)
    }

    // ---- event_channel_op -------------------------------------------------

    /// `EVTCHNOP_alloc_unbound`: a new local port that `remote` may bind.
    pub fn evtchn_alloc_unbound(&self, remote: DomId) -> Result<EvtchnPort, PlatformError> {
        let mut arg = EvtchnAllocUnbound {
            dom: DOMID_SELF,
            remote_dom: remote.0,
            port: 0,
        };
        // SAFETY: `arg` is a valid `evtchn_alloc_unbound`.
        unsafe {
            self.op_with(
                HYPERVISOR_EVENT_CHANNEL_OP,
                EVTCHNOP_ALLOC_UNBOUND,
                &mut arg,
            )
        }?;
        Ok(EvtchnPort(arg.port))
    }

    /// `EVTCHNOP_bind_interdomain`.
    pub fn evtchn_bind_interdomain(
        &self,
        remote: DomId,
        remote_port: EvtchnPort,
    ) -> Result<EvtchnPort, PlatformError> {
        let mut arg = EvtchnBindInterdomain {
            remote_dom: remote.0,
            remote_port: remote_port.0,
            local_port: 0,
        };
        // SAFETY: `arg` is a valid `evtchn_bind_interdomain`.
        unsafe {
            self.op_with(
                HYPERVISOR_EVENT_CHANNEL_OP,
                EVTCHNOP_BIND_INTERDOMAIN,
                &mut arg,
            )
        }?;
        Ok(EvtchnPort(arg.local_port))
    }

    /// `EVTCHNOP_send`.
    pub fn evtchn_send(&self, port: EvtchnPort) -> Result<(), PlatformError> {
        let mut arg = EvtchnSend { port: port.0 };
        // SAFETY: `arg` is a valid `evtchn_send`.
        unsafe { self.op_with(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_SEND, &mut arg) }.map(drop)
    }

    /// `EVTCHNOP_close`.
    pub fn evtchn_close(&self, port: EvtchnPort) -> Result<(), PlatformError> {
        let mut arg = EvtchnClose { port: port.0 };
        // SAFETY: `arg` is a valid `evtchn_close`.
        unsafe { self.op_with(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_CLOSE, &mut arg) }.map(drop)
    }

    /// `EVTCHNOP_unmask`.
    pub fn evtchn_unmask(&self, port: EvtchnPort) -> Result<(), PlatformError> {
        let mut arg = EvtchnUnmask { port: port.0 };
        // SAFETY: `arg` is a valid `evtchn_unmask`.
        unsafe { self.op_with(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_UNMASK, &mut arg) }.map(drop)
    }

    // ---- grant_table_op ---------------------------------------------------

    /// `GNTTABOP_query_size` for our own table: `(nr_frames, max_nr_frames)`.
    pub fn gnttab_query_size(&self) -> Result<(u32, u32), PlatformError> {
        let mut arg = GnttabQuerySize {
            dom: DOMID_SELF,
            nr_frames: 0,
            max_nr_frames: 0,
            status: 0,
        };
        // SAFETY: `arg` is one valid `gnttab_query_size` (count 1).
        let rc = unsafe {
            self.hypercall(
                HYPERVISOR_GRANT_TABLE_OP,
                [
                    u64::from(GNTTABOP_QUERY_SIZE),
                    &mut arg as *mut _ as u64,
                    1,
                    0,
                    0,
                ],
            )
        };
        errno(rc)?;
        grant_status(arg.status)?;
        Ok((arg.nr_frames, arg.max_nr_frames))
    }

    /// `GNTTABOP_map_grant_ref` with `GNTMAP_host_map` (plus `extra_flags`, e.g.
    /// `GNTMAP_readonly`): map `domid`'s grant `gref` at our frame `gfn`.
    /// Returns the handle for unmapping.
    ///
    /// # Safety
    /// As [`Hypervisor::add_to_physmap`]: `gfn` must be a frame nothing else uses.
    pub unsafe fn gnttab_map_grant_ref(
        &self,
        domid: DomId,
        gref: GrantRef,
        gfn: Gfn,
        extra_flags: u32,
    ) -> Result<u32, PlatformError> {
        let mut arg = GnttabMapGrantRef {
            host_addr: gfn.addr(),
            flags: crate::abi::grant_table::GNTMAP_HOST_MAP | extra_flags,
            ref_: gref.0,
            dom: domid.0,
            status: 0,
            handle: 0,
            dev_bus_addr: 0,
        };
        // SAFETY: `arg` is one valid `gnttab_map_grant_ref`; the frame
        // obligation is the caller's.
        let rc = unsafe {
            self.hypercall(
                HYPERVISOR_GRANT_TABLE_OP,
                [
                    u64::from(GNTTABOP_MAP_GRANT_REF),
                    &mut arg as *mut _ as u64,
                    1,
                    0,
                    0,
                ],
            )
        };
        errno(rc)?;
        grant_status(arg.status)?;
        Ok(arg.handle)
    }

    /// `GNTTABOP_unmap_grant_ref` of a mapping made at `gfn`.
    ///
    /// # Safety
    /// No Rust reference into the frame at `gfn` may outlive this call (the
    /// frame becomes unpopulated again).
    pub unsafe fn gnttab_unmap_grant_ref(
        &self,
        gfn: Gfn,
        handle: u32,
    ) -> Result<(), PlatformError> {
        let mut arg = GnttabUnmapGrantRef {
            host_addr: gfn.addr(),
            dev_bus_addr: 0,
            handle,
            status: 0,
        };
        // SAFETY: `arg` is one valid `gnttab_unmap_grant_ref`; dangling
        // references are the caller's obligation.
        let rc = unsafe {
            self.hypercall(
                HYPERVISOR_GRANT_TABLE_OP,
                [
                    u64::from(GNTTABOP_UNMAP_GRANT_REF),
                    &mut arg as *mut _ as u64,
                    1,
                    0,
                    0,
                ],
            )
        };
        errno(rc)?;
        grant_status(arg.status)
    }
}

/// A hypercall result: negative values are `-errno`.
fn errno(rc: i64) -> Result<i64, PlatformError> {
    if rc < 0 {
        Err(PlatformError::Errno(
            rc.clamp(i64::from(i32::MIN), -1) as i32
        ))
    } else {
        Ok(rc)
    }
}

/// A grant-table status (`GNTST_*`): negative values are errors. They are
/// reported as `Errno` with the (negative) GNTST code.
fn grant_status(status: i16) -> Result<(), PlatformError> {
    if status < 0 {
        Err(PlatformError::Errno(i32::from(status)))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_results_are_errors() {
        assert_eq!(errno(0), Ok(0));
        assert_eq!(errno(5), Ok(5));
        assert_eq!(errno(-22), Err(PlatformError::Errno(-22)));
        assert_eq!(errno(i64::MIN), Err(PlatformError::Errno(i32::MIN)));
        assert_eq!(grant_status(-3), Err(PlatformError::Errno(-3)));
        assert_eq!(grant_status(0), Ok(()));
    }
}
