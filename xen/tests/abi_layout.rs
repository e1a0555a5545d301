//! Checks `xen::abi` against the real C headers (`/usr/include/xen`, libxen-dev).
//!
//! Generates a C program that prints `sizeof`/`_Alignof`/`offsetof` of every
//! mirrored struct and field and the value of every mirrored constant, compiles it
//! with the system C compiler (`$CC`, default `cc`), runs it, and compares each
//! line with the Rust value. A missing compiler or missing headers FAIL the test
//! with a clear message: this check must never be skipped silently.

use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use xen::abi::console::*;
use xen::abi::displif::*;
use xen::abi::errno::*;
use xen::abi::event_channel::*;
use xen::abi::grant_table::*;
use xen::abi::hvm::*;
use xen::abi::memory::*;
use xen::abi::ring::*;
use xen::abi::sched::*;
use xen::abi::start_info::*;
use xen::abi::vcpu::*;
use xen::abi::xen::*;
use xen::abi::xenbus::XenbusState;
use xen::abi::xs_wire::*;

/// One numeric check: a C expression and the Rust value it must equal.
struct Num(String, i128);

macro_rules! layout {
    ($v:ident, $c:literal, $t:ty) => {
        $v.push(Num(
            concat!("sizeof(", $c, ")").into(),
            size_of::<$t>() as i128,
        ));
        $v.push(Num(
            concat!("_Alignof(", $c, ")").into(),
            align_of::<$t>() as i128,
        ));
    };
}
/// Fields whose Rust name equals the C name.
macro_rules! fields {
    ($v:ident, $c:literal, $t:ty, [$($f:ident),* $(,)?]) => {
        $($v.push(Num(
            concat!("offsetof(", $c, ", ", stringify!($f), ")").into(),
            offset_of!($t, $f) as i128,
        ));)*
    };
}
/// One field with differing names (Rust keyword clashes).
macro_rules! field {
    ($v:ident, $c:literal, $cf:literal, $t:ty, $f:ident) => {
        $v.push(Num(
            concat!("offsetof(", $c, ", ", $cf, ")").into(),
            offset_of!($t, $f) as i128,
        ));
    };
}
/// A constant whose C name is the Rust name upper-cased... not always; give both.
macro_rules! konst {
    ($v:ident, $($c:literal = $r:expr),* $(,)?) => {
        $($v.push(Num($c.into(), $r as i128));)*
    };
}

fn numeric_checks() -> Vec<Num> {
    let mut v = Vec::new();

    // xen.h / arch-x86
    layout!(v, "struct vcpu_time_info", VcpuTimeInfo);
    fields!(
        v,
        "struct vcpu_time_info",
        VcpuTimeInfo,
        [
            version,
            pad0,
            tsc_timestamp,
            system_time,
            tsc_to_system_mul,
            tsc_shift,
            flags,
            pad1
        ]
    );
    layout!(v, "struct arch_vcpu_info", ArchVcpuInfo);
    fields!(v, "struct arch_vcpu_info", ArchVcpuInfo, [cr2, pad]);
    layout!(v, "struct vcpu_info", VcpuInfo);
    fields!(
        v,
        "struct vcpu_info",
        VcpuInfo,
        [
            evtchn_upcall_pending,
            evtchn_upcall_mask,
            evtchn_pending_sel,
            arch,
            time
        ]
    );
    layout!(v, "struct arch_shared_info", ArchSharedInfo);
    fields!(
        v,
        "struct arch_shared_info",
        ArchSharedInfo,
        [
            max_pfn,
            pfn_to_mfn_frame_list_list,
            nmi_reason,
            p2m_cr3,
            p2m_vaddr,
            p2m_generation
        ]
    );
    layout!(v, "struct shared_info", SharedInfo);
    fields!(
        v,
        "struct shared_info",
        SharedInfo,
        [
            vcpu_info,
            evtchn_pending,
            evtchn_mask,
            wc_version,
            wc_sec,
            wc_nsec,
            wc_sec_hi,
            arch
        ]
    );
    konst!(
        v,
        "offsetof(struct shared_info, vcpu_info[0].time)" = SHARED_INFO_VCPU0_TIME_OFFSET,
        "offsetof(struct shared_info, evtchn_pending)" = SHARED_INFO_EVTCHN_PENDING_OFFSET,
        "offsetof(struct shared_info, evtchn_mask)" = SHARED_INFO_EVTCHN_MASK_OFFSET,
        "offsetof(struct shared_info, wc_version)" = SHARED_INFO_WC_VERSION_OFFSET,
        "__HYPERVISOR_memory_op" = HYPERVISOR_MEMORY_OP,
        "__HYPERVISOR_set_timer_op" = HYPERVISOR_SET_TIMER_OP,
        "__HYPERVISOR_xen_version" = HYPERVISOR_XEN_VERSION,
        "__HYPERVISOR_console_io" = HYPERVISOR_CONSOLE_IO,
        "__HYPERVISOR_grant_table_op" = HYPERVISOR_GRANT_TABLE_OP,
        "__HYPERVISOR_vcpu_op" = HYPERVISOR_VCPU_OP,
        "__HYPERVISOR_sched_op" = HYPERVISOR_SCHED_OP,
        "__HYPERVISOR_event_channel_op" = HYPERVISOR_EVENT_CHANNEL_OP,
        "__HYPERVISOR_hvm_op" = HYPERVISOR_HVM_OP,
        "CONSOLEIO_write" = CONSOLEIO_WRITE,
        "XENVER_version" = XENVER_VERSION,
        "XENVER_extraversion" = XENVER_EXTRAVERSION,
        "XEN_EXTRAVERSION_LEN" = XEN_EXTRAVERSION_LEN,
        "XEN_PVCLOCK_TSC_STABLE_BIT" = XEN_PVCLOCK_TSC_STABLE_BIT,
        "XEN_PVCLOCK_GUEST_STOPPED" = XEN_PVCLOCK_GUEST_STOPPED,
        "VIRQ_TIMER" = VIRQ_TIMER,
        "DOMID_FIRST_RESERVED" = DOMID_FIRST_RESERVED,
        "DOMID_SELF" = DOMID_SELF,
        "DOMID_INVALID" = DOMID_INVALID,
        "DOMID_SELF" = xen::types::DomId::SELF.0,
        "XEN_LEGACY_MAX_VCPUS" = XEN_LEGACY_MAX_VCPUS,
        "sizeof(xen_ulong_t) * 8" = XEN_ULONG_BITS,
        "EVTCHN_2L_NR_CHANNELS" = EVTCHN_2L_NR_CHANNELS,
        "1 << XEN_PAGE_SHIFT" = xen::types::PAGE_SIZE,
    );

    // errno.h
    konst!(
        v,
        "XEN_EPERM" = XEN_EPERM,
        "XEN_ENOENT" = XEN_ENOENT,
        "XEN_EIO" = XEN_EIO,
        "XEN_ENXIO" = XEN_ENXIO,
        "XEN_E2BIG" = XEN_E2BIG,
        "XEN_EBADF" = XEN_EBADF,
        "XEN_EAGAIN" = XEN_EAGAIN,
        "XEN_ENOMEM" = XEN_ENOMEM,
        "XEN_EACCES" = XEN_EACCES,
        "XEN_EFAULT" = XEN_EFAULT,
        "XEN_EBUSY" = XEN_EBUSY,
        "XEN_EEXIST" = XEN_EEXIST,
        "XEN_ENODEV" = XEN_ENODEV,
        "XEN_EISDIR" = XEN_EISDIR,
        "XEN_EINVAL" = XEN_EINVAL,
        "XEN_ENOSPC" = XEN_ENOSPC,
        "XEN_EROFS" = XEN_EROFS,
        "XEN_ENOSYS" = XEN_ENOSYS,
        "XEN_ENOTEMPTY" = XEN_ENOTEMPTY,
        "XEN_EOVERFLOW" = XEN_EOVERFLOW,
        "XEN_EOPNOTSUPP" = XEN_EOPNOTSUPP,
        "XEN_EISCONN" = XEN_EISCONN,
        "XEN_ETIMEDOUT" = XEN_ETIMEDOUT,
    );

    // io/console.h
    layout!(v, "struct xencons_interface", XenconsInterface);
    field!(v, "struct xencons_interface", "in", XenconsInterface, in_);
    fields!(
        v,
        "struct xencons_interface",
        XenconsInterface,
        [out, in_cons, in_prod, out_cons, out_prod]
    );
    konst!(
        v,
        "sizeof(((struct xencons_interface *)0)->in)" = XENCONS_IN_SIZE,
        "sizeof(((struct xencons_interface *)0)->out)" = XENCONS_OUT_SIZE,
        "offsetof(struct xencons_interface, in_cons)" = XENCONS_IN_CONS_OFFSET,
        "offsetof(struct xencons_interface, in_prod)" = XENCONS_IN_PROD_OFFSET,
        "offsetof(struct xencons_interface, out_cons)" = XENCONS_OUT_CONS_OFFSET,
        "offsetof(struct xencons_interface, out_prod)" = XENCONS_OUT_PROD_OFFSET,
        "offsetof(struct xencons_interface, out)" = XENCONS_OUT_OFFSET,
    );

    // vcpu.h
    layout!(
        v,
        "struct vcpu_set_singleshot_timer",
        VcpuSetSingleshotTimer
    );
    fields!(
        v,
        "struct vcpu_set_singleshot_timer",
        VcpuSetSingleshotTimer,
        [timeout_abs_ns, flags]
    );
    konst!(
        v,
        "VCPUOP_set_singleshot_timer" = VCPUOP_SET_SINGLESHOT_TIMER,
        "VCPUOP_stop_singleshot_timer" = VCPUOP_STOP_SINGLESHOT_TIMER,
        "VCPU_SSHOTTMR_future" = VCPU_SSHOTTMR_FUTURE,
        "VCPUOP_register_vcpu_time_memory_area" = VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA,
    );
    layout!(
        v,
        "struct vcpu_register_time_memory_area",
        VcpuRegisterTimeMemoryArea
    );
    fields!(
        v,
        "struct vcpu_register_time_memory_area",
        VcpuRegisterTimeMemoryArea,
        [addr]
    );

    // sched.h
    layout!(v, "struct sched_shutdown", SchedShutdown);
    fields!(v, "struct sched_shutdown", SchedShutdown, [reason]);
    layout!(v, "struct sched_poll", SchedPoll);
    fields!(
        v,
        "struct sched_poll",
        SchedPoll,
        [ports, nr_ports, timeout]
    );
    konst!(
        v,
        "SCHEDOP_yield" = SCHEDOP_YIELD,
        "SCHEDOP_block" = SCHEDOP_BLOCK,
        "SCHEDOP_shutdown" = SCHEDOP_SHUTDOWN,
        "SCHEDOP_poll" = SCHEDOP_POLL,
        "SHUTDOWN_poweroff" = SHUTDOWN_POWEROFF,
        "SHUTDOWN_reboot" = SHUTDOWN_REBOOT,
        "SHUTDOWN_suspend" = SHUTDOWN_SUSPEND,
        "SHUTDOWN_crash" = SHUTDOWN_CRASH,
        "SHUTDOWN_watchdog" = SHUTDOWN_WATCHDOG,
    );

    // memory.h
    layout!(v, "struct xen_memory_reservation", XenMemoryReservation);
    fields!(
        v,
        "struct xen_memory_reservation",
        XenMemoryReservation,
        [extent_start, nr_extents, extent_order, mem_flags, domid]
    );
    layout!(v, "struct xen_add_to_physmap", XenAddToPhysmap);
    fields!(
        v,
        "struct xen_add_to_physmap",
        XenAddToPhysmap,
        [domid, size, space, idx, gpfn]
    );
    konst!(
        v,
        "XENMEM_add_to_physmap" = XENMEM_ADD_TO_PHYSMAP,
        "XENMEM_populate_physmap" = XENMEM_POPULATE_PHYSMAP,
        "XENMAPSPACE_shared_info" = XENMAPSPACE_SHARED_INFO,
        "XENMAPSPACE_grant_table" = XENMAPSPACE_GRANT_TABLE,
        "XENMAPSPACE_gmfn" = XENMAPSPACE_GMFN,
        "XENMAPSPACE_gmfn_range" = XENMAPSPACE_GMFN_RANGE,
        "XENMAPSPACE_gmfn_foreign" = XENMAPSPACE_GMFN_FOREIGN,
        "XENMAPIDX_grant_table_status" = XENMAPIDX_GRANT_TABLE_STATUS,
    );

    // hvm/hvm_op.h, hvm/params.h
    layout!(v, "struct xen_hvm_param", XenHvmParam);
    fields!(
        v,
        "struct xen_hvm_param",
        XenHvmParam,
        [domid, pad, index, value]
    );
    konst!(
        v,
        "HVMOP_set_param" = HVMOP_SET_PARAM,
        "HVMOP_get_param" = HVMOP_GET_PARAM,
        "HVM_PARAM_CALLBACK_IRQ" = HVM_PARAM_CALLBACK_IRQ,
        "HVM_PARAM_STORE_PFN" = HVM_PARAM_STORE_PFN,
        "HVM_PARAM_STORE_EVTCHN" = HVM_PARAM_STORE_EVTCHN,
        "HVM_PARAM_CONSOLE_PFN" = HVM_PARAM_CONSOLE_PFN,
        "HVM_PARAM_CONSOLE_EVTCHN" = HVM_PARAM_CONSOLE_EVTCHN,
        "HVM_PARAM_CALLBACK_TYPE_VECTOR" = HVM_PARAM_CALLBACK_TYPE_VECTOR,
    );

    // arch-x86/hvm/start_info.h
    layout!(v, "struct hvm_start_info", HvmStartInfo);
    fields!(
        v,
        "struct hvm_start_info",
        HvmStartInfo,
        [
            magic,
            version,
            flags,
            nr_modules,
            modlist_paddr,
            cmdline_paddr,
            rsdp_paddr,
            memmap_paddr,
            memmap_entries,
            reserved
        ]
    );
    layout!(v, "struct hvm_modlist_entry", HvmModlistEntry);
    fields!(
        v,
        "struct hvm_modlist_entry",
        HvmModlistEntry,
        [paddr, size, cmdline_paddr, reserved]
    );
    layout!(v, "struct hvm_memmap_table_entry", HvmMemmapTableEntry);
    fields!(
        v,
        "struct hvm_memmap_table_entry",
        HvmMemmapTableEntry,
        [addr, size, reserved]
    );
    field!(
        v,
        "struct hvm_memmap_table_entry",
        "type",
        HvmMemmapTableEntry,
        type_
    );
    konst!(
        v,
        "XEN_HVM_START_MAGIC_VALUE" = XEN_HVM_START_MAGIC_VALUE,
        "XEN_HVM_MEMMAP_TYPE_RAM" = XEN_HVM_MEMMAP_TYPE_RAM,
        "XEN_HVM_MEMMAP_TYPE_RESERVED" = XEN_HVM_MEMMAP_TYPE_RESERVED,
        "XEN_HVM_MEMMAP_TYPE_ACPI" = XEN_HVM_MEMMAP_TYPE_ACPI,
        "XEN_HVM_MEMMAP_TYPE_NVS" = XEN_HVM_MEMMAP_TYPE_NVS,
        "XEN_HVM_MEMMAP_TYPE_UNUSABLE" = XEN_HVM_MEMMAP_TYPE_UNUSABLE,
    );

    // event_channel.h
    layout!(v, "struct evtchn_alloc_unbound", EvtchnAllocUnbound);
    fields!(
        v,
        "struct evtchn_alloc_unbound",
        EvtchnAllocUnbound,
        [dom, remote_dom, port]
    );
    layout!(v, "struct evtchn_bind_interdomain", EvtchnBindInterdomain);
    fields!(
        v,
        "struct evtchn_bind_interdomain",
        EvtchnBindInterdomain,
        [remote_dom, remote_port, local_port]
    );
    layout!(v, "struct evtchn_bind_virq", EvtchnBindVirq);
    fields!(
        v,
        "struct evtchn_bind_virq",
        EvtchnBindVirq,
        [virq, vcpu, port]
    );
    layout!(v, "struct evtchn_close", EvtchnClose);
    layout!(v, "struct evtchn_send", EvtchnSend);
    layout!(v, "struct evtchn_unmask", EvtchnUnmask);
    konst!(
        v,
        "EVTCHNOP_bind_interdomain" = EVTCHNOP_BIND_INTERDOMAIN,
        "EVTCHNOP_bind_virq" = EVTCHNOP_BIND_VIRQ,
        "EVTCHNOP_close" = EVTCHNOP_CLOSE,
        "EVTCHNOP_send" = EVTCHNOP_SEND,
        "EVTCHNOP_alloc_unbound" = EVTCHNOP_ALLOC_UNBOUND,
        "EVTCHNOP_unmask" = EVTCHNOP_UNMASK,
    );

    // grant_table.h
    layout!(v, "struct grant_entry_v1", GrantEntryV1);
    fields!(
        v,
        "struct grant_entry_v1",
        GrantEntryV1,
        [flags, domid, frame]
    );
    layout!(v, "struct gnttab_map_grant_ref", GnttabMapGrantRef);
    fields!(
        v,
        "struct gnttab_map_grant_ref",
        GnttabMapGrantRef,
        [host_addr, flags, dom, status, handle, dev_bus_addr]
    );
    field!(
        v,
        "struct gnttab_map_grant_ref",
        "ref",
        GnttabMapGrantRef,
        ref_
    );
    layout!(v, "struct gnttab_unmap_grant_ref", GnttabUnmapGrantRef);
    fields!(
        v,
        "struct gnttab_unmap_grant_ref",
        GnttabUnmapGrantRef,
        [host_addr, dev_bus_addr, handle, status]
    );
    layout!(v, "struct gnttab_query_size", GnttabQuerySize);
    fields!(
        v,
        "struct gnttab_query_size",
        GnttabQuerySize,
        [dom, nr_frames, max_nr_frames, status]
    );
    konst!(
        v,
        "GNTTAB_NR_RESERVED_ENTRIES" = GNTTAB_NR_RESERVED_ENTRIES,
        "GNTTAB_RESERVED_CONSOLE" = GNTTAB_RESERVED_CONSOLE,
        "GNTTAB_RESERVED_XENSTORE" = GNTTAB_RESERVED_XENSTORE,
        "GTF_invalid" = GTF_INVALID,
        "GTF_permit_access" = GTF_PERMIT_ACCESS,
        "GTF_accept_transfer" = GTF_ACCEPT_TRANSFER,
        "GTF_transitive" = GTF_TRANSITIVE,
        "GTF_type_mask" = GTF_TYPE_MASK,
        "GTF_readonly" = GTF_READONLY,
        "GTF_reading" = GTF_READING,
        "GTF_writing" = GTF_WRITING,
        "GNTTABOP_map_grant_ref" = GNTTABOP_MAP_GRANT_REF,
        "GNTTABOP_unmap_grant_ref" = GNTTABOP_UNMAP_GRANT_REF,
        "GNTTABOP_setup_table" = GNTTABOP_SETUP_TABLE,
        "GNTTABOP_query_size" = GNTTABOP_QUERY_SIZE,
        "GNTTABOP_set_version" = GNTTABOP_SET_VERSION,
        "GNTTABOP_get_version" = GNTTABOP_GET_VERSION,
        "GNTMAP_device_map" = GNTMAP_DEVICE_MAP,
        "GNTMAP_host_map" = GNTMAP_HOST_MAP,
        "GNTMAP_readonly" = GNTMAP_READONLY,
        "GNTST_okay" = GNTST_OKAY,
        "GNTST_general_error" = GNTST_GENERAL_ERROR,
        "GNTST_bad_domain" = GNTST_BAD_DOMAIN,
        "GNTST_bad_gntref" = GNTST_BAD_GNTREF,
        "GNTST_bad_handle" = GNTST_BAD_HANDLE,
        "GNTST_bad_virt_addr" = GNTST_BAD_VIRT_ADDR,
        "GNTST_permission_denied" = GNTST_PERMISSION_DENIED,
        "GNTST_bad_page" = GNTST_BAD_PAGE,
        "GNTST_eagain" = GNTST_EAGAIN,
        "GNTST_no_space" = GNTST_NO_SPACE,
        "(1 << XEN_PAGE_SHIFT) / sizeof(struct grant_entry_v1)" = GRANT_ENTRIES_V1_PER_PAGE,
        "offsetof(struct grant_entry_v1, flags)" = GRANT_ENTRY_V1_FLAGS_OFFSET,
        "offsetof(struct grant_entry_v1, domid)" = GRANT_ENTRY_V1_DOMID_OFFSET,
        "offsetof(struct grant_entry_v1, frame)" = GRANT_ENTRY_V1_FRAME_OFFSET,
    );

    // io/ring.h (instantiated through displif's DEFINE_RING_TYPES)
    konst!(
        v,
        "offsetof(struct xen_displif_sring, req_prod)" = SRING_REQ_PROD_OFFSET,
        "offsetof(struct xen_displif_sring, req_event)" = SRING_REQ_EVENT_OFFSET,
        "offsetof(struct xen_displif_sring, rsp_prod)" = SRING_RSP_PROD_OFFSET,
        "offsetof(struct xen_displif_sring, rsp_event)" = SRING_RSP_EVENT_OFFSET,
        "offsetof(struct xen_displif_sring, pvt)" = offset_of!(SringHeader, pvt),
        "offsetof(struct xen_displif_sring, __pad)" = offset_of!(SringHeader, pad),
        "offsetof(struct xen_displif_sring, ring)" = SRING_ENTRIES_OFFSET,
        "__CONST_RING_SIZE(xen_displif, 4096)" = XENDISPL_REQ_RING_SIZE,
        "__CONST_RING_SIZE(xen_displif, 4096)" = ring_size(4096, 64),
        "__CONST_RING_SIZE(xen_displif, 8192)" = ring_size(8192, 64),
        "__CONST_RING_SIZE(xen_displif, 2048)" = ring_size(2048, 64),
        "__CONST_RING_SIZE(xen_displif, 16384)" = ring_size(16384, 64),
        "__RD32(63)" = round_down_pow2(63),
        "__RD32(64)" = round_down_pow2(64),
        "__RD32(1023)" = round_down_pow2(1023),
        "__RD32(1)" = round_down_pow2(1),
        "__RD32(0)" = round_down_pow2(0),
    );

    // io/xs_wire.h
    layout!(v, "struct xsd_sockmsg", XsdSockmsg);
    fields!(v, "struct xsd_sockmsg", XsdSockmsg, [req_id, tx_id, len]);
    field!(v, "struct xsd_sockmsg", "type", XsdSockmsg, type_);
    layout!(
        v,
        "struct xenstore_domain_interface",
        XenstoreDomainInterface
    );
    fields!(
        v,
        "struct xenstore_domain_interface",
        XenstoreDomainInterface,
        [
            req,
            rsp,
            req_cons,
            req_prod,
            rsp_cons,
            rsp_prod,
            server_features,
            connection,
            error
        ]
    );
    konst!(
        v,
        "XS_CONTROL" = XsType::Control as u32,
        "XS_DEBUG" = XsType::Control as u32,
        "XS_DIRECTORY" = XsType::Directory as u32,
        "XS_READ" = XsType::Read as u32,
        "XS_GET_PERMS" = XsType::GetPerms as u32,
        "XS_WATCH" = XsType::Watch as u32,
        "XS_UNWATCH" = XsType::Unwatch as u32,
        "XS_TRANSACTION_START" = XsType::TransactionStart as u32,
        "XS_TRANSACTION_END" = XsType::TransactionEnd as u32,
        "XS_INTRODUCE" = XsType::Introduce as u32,
        "XS_RELEASE" = XsType::Release as u32,
        "XS_GET_DOMAIN_PATH" = XsType::GetDomainPath as u32,
        "XS_WRITE" = XsType::Write as u32,
        "XS_MKDIR" = XsType::Mkdir as u32,
        "XS_RM" = XsType::Rm as u32,
        "XS_SET_PERMS" = XsType::SetPerms as u32,
        "XS_WATCH_EVENT" = XsType::WatchEvent as u32,
        "XS_ERROR" = XsType::Error as u32,
        "XS_IS_DOMAIN_INTRODUCED" = XsType::IsDomainIntroduced as u32,
        "XS_RESUME" = XsType::Resume as u32,
        "XS_SET_TARGET" = XsType::SetTarget as u32,
        "XS_RESET_WATCHES" = XsType::ResetWatches as u32,
        "XS_DIRECTORY_PART" = XsType::DirectoryPart as u32,
        "XS_TYPE_COUNT" = XS_TYPE_COUNT,
        "XS_INVALID" = XS_INVALID,
        "XS_WATCH_PATH" = XS_WATCH_PATH,
        "XS_WATCH_TOKEN" = XS_WATCH_TOKEN,
        "XENSTORE_PAYLOAD_MAX" = XENSTORE_PAYLOAD_MAX,
        "XENSTORE_ABS_PATH_MAX" = XENSTORE_ABS_PATH_MAX,
        "XENSTORE_REL_PATH_MAX" = XENSTORE_REL_PATH_MAX,
        "XENSTORE_RING_SIZE" = XENSTORE_RING_SIZE,
        "MASK_XENSTORE_IDX(1023u)" = mask_xenstore_idx(1023),
        "MASK_XENSTORE_IDX(1024u)" = mask_xenstore_idx(1024),
        "MASK_XENSTORE_IDX(0xffffffffu)" = mask_xenstore_idx(u32::MAX),
        "XENSTORE_SERVER_FEATURE_RECONNECTION" = XENSTORE_SERVER_FEATURE_RECONNECTION,
        "XENSTORE_SERVER_FEATURE_ERROR" = XENSTORE_SERVER_FEATURE_ERROR,
        "XENSTORE_CONNECTED" = XENSTORE_CONNECTED,
        "XENSTORE_RECONNECT" = XENSTORE_RECONNECT,
        "XENSTORE_ERROR_NONE" = XENSTORE_ERROR_NONE,
        "XENSTORE_ERROR_COMM" = XENSTORE_ERROR_COMM,
        "XENSTORE_ERROR_RINGIDX" = XENSTORE_ERROR_RINGIDX,
        "XENSTORE_ERROR_PROTO" = XENSTORE_ERROR_PROTO,
        "offsetof(struct xenstore_domain_interface, req)" = XS_IF_REQ_OFFSET,
        "offsetof(struct xenstore_domain_interface, rsp)" = XS_IF_RSP_OFFSET,
        "offsetof(struct xenstore_domain_interface, req_cons)" = XS_IF_REQ_CONS_OFFSET,
        "offsetof(struct xenstore_domain_interface, req_prod)" = XS_IF_REQ_PROD_OFFSET,
        "offsetof(struct xenstore_domain_interface, rsp_cons)" = XS_IF_RSP_CONS_OFFSET,
        "offsetof(struct xenstore_domain_interface, rsp_prod)" = XS_IF_RSP_PROD_OFFSET,
        "offsetof(struct xenstore_domain_interface, server_features)" =
            XS_IF_SERVER_FEATURES_OFFSET,
        "offsetof(struct xenstore_domain_interface, connection)" = XS_IF_CONNECTION_OFFSET,
        "offsetof(struct xenstore_domain_interface, error)" = XS_IF_ERROR_OFFSET,
        "sizeof(xsd_errors) / sizeof(xsd_errors[0])" = XSD_ERRORS.len(),
    );

    // io/xenbus.h
    for s in XenbusState::ALL {
        v.push(Num(format!("XenbusState{}", s.name()), s as u32 as i128));
    }

    // io/displif.h
    layout!(v, "struct xendispl_dbuf_create_req", DbufCreateReq);
    fields!(
        v,
        "struct xendispl_dbuf_create_req",
        DbufCreateReq,
        [
            dbuf_cookie,
            width,
            height,
            bpp,
            buffer_sz,
            flags,
            gref_directory,
            data_ofs
        ]
    );
    layout!(v, "struct xendispl_dbuf_destroy_req", DbufDestroyReq);
    fields!(
        v,
        "struct xendispl_dbuf_destroy_req",
        DbufDestroyReq,
        [dbuf_cookie]
    );
    layout!(v, "struct xendispl_fb_attach_req", FbAttachReq);
    fields!(
        v,
        "struct xendispl_fb_attach_req",
        FbAttachReq,
        [dbuf_cookie, fb_cookie, width, height, pixel_format]
    );
    layout!(v, "struct xendispl_fb_detach_req", FbDetachReq);
    fields!(v, "struct xendispl_fb_detach_req", FbDetachReq, [fb_cookie]);
    layout!(v, "struct xendispl_set_config_req", SetConfigReq);
    fields!(
        v,
        "struct xendispl_set_config_req",
        SetConfigReq,
        [fb_cookie, x, y, width, height, bpp]
    );
    layout!(v, "struct xendispl_page_flip_req", PageFlipReq);
    fields!(v, "struct xendispl_page_flip_req", PageFlipReq, [fb_cookie]);
    layout!(v, "struct xendispl_get_edid_req", GetEdidReq);
    fields!(
        v,
        "struct xendispl_get_edid_req",
        GetEdidReq,
        [buffer_sz, gref_directory]
    );
    layout!(v, "struct xendispl_get_edid_resp", GetEdidResp);
    fields!(v, "struct xendispl_get_edid_resp", GetEdidResp, [edid_sz]);
    layout!(v, "struct xendispl_pg_flip_evt", PgFlipEvt);
    fields!(v, "struct xendispl_pg_flip_evt", PgFlipEvt, [fb_cookie]);
    layout!(v, "struct xendispl_req", XendisplReq);
    fields!(
        v,
        "struct xendispl_req",
        XendisplReq,
        [id, operation, reserved, op]
    );
    layout!(v, "struct xendispl_resp", XendisplResp);
    fields!(
        v,
        "struct xendispl_resp",
        XendisplResp,
        [id, operation, reserved, status, op]
    );
    layout!(v, "struct xendispl_evt", XendisplEvt);
    fields!(v, "struct xendispl_evt", XendisplEvt, [id, reserved, op]);
    field!(v, "struct xendispl_evt", "type", XendisplEvt, type_);
    layout!(v, "struct xendispl_event_page", XendisplEventPage);
    fields!(
        v,
        "struct xendispl_event_page",
        XendisplEventPage,
        [in_cons, in_prod, reserved]
    );
    // Absolute packet offsets used by the encoders (dossier table).
    konst!(v,
        "offsetof(struct xendispl_req, op)" = PACKET_OP_OFFSET,
        "sizeof(((struct xendispl_req *)0)->op)" = PACKET_OP_SIZE,
        "offsetof(struct xendispl_req, id)" = PACKET_ID_OFFSET,
        "offsetof(struct xendispl_req, operation)" = PACKET_OPERATION_OFFSET,
        "offsetof(struct xendispl_evt, type)" = PACKET_OPERATION_OFFSET,
        "offsetof(struct xendispl_resp, operation)" = PACKET_OPERATION_OFFSET,
        "offsetof(struct xendispl_resp, status)" = RESP_STATUS_OFFSET,
        "offsetof(struct xendispl_resp, op.get_edid.edid_sz)" = PACKET_OP_OFFSET + offset_of!(GetEdidResp, edid_sz),
        "offsetof(struct xendispl_req, op.set_config.bpp)" = PACKET_OP_OFFSET + offset_of!(SetConfigReq, bpp),
        "offsetof(struct xendispl_req, op.dbuf_create.data_ofs)" = PACKET_OP_OFFSET + offset_of!(DbufCreateReq, data_ofs),
        "offsetof(struct xendispl_req, op.fb_attach.pixel_format)" = PACKET_OP_OFFSET + offset_of!(FbAttachReq, pixel_format),
        "offsetof(struct xendispl_req, op.get_edid.gref_directory)" = PACKET_OP_OFFSET + offset_of!(GetEdidReq, gref_directory),
        "offsetof(struct xendispl_evt, op.pg_flip.fb_cookie)" = PACKET_OP_OFFSET + offset_of!(PgFlipEvt, fb_cookie),
        "sizeof(union xen_displif_sring_entry)" = PACKET_SIZE,
        "XENDISPL_PROTOCOL_VERSION_INT" = XENDISPL_PROTOCOL_VERSION_INT,
        "XENDISPL_OP_DBUF_CREATE" = XENDISPL_OP_DBUF_CREATE,
        "XENDISPL_OP_DBUF_DESTROY" = XENDISPL_OP_DBUF_DESTROY,
        "XENDISPL_OP_FB_ATTACH" = XENDISPL_OP_FB_ATTACH,
        "XENDISPL_OP_FB_DETACH" = XENDISPL_OP_FB_DETACH,
        "XENDISPL_OP_SET_CONFIG" = XENDISPL_OP_SET_CONFIG,
        "XENDISPL_OP_PG_FLIP" = XENDISPL_OP_PG_FLIP,
        "XENDISPL_OP_GET_EDID" = XENDISPL_OP_GET_EDID,
        "XENDISPL_EVT_PG_FLIP" = XENDISPL_EVT_PG_FLIP,
        "XENDISPL_EDID_BLOCK_SIZE" = XENDISPL_EDID_BLOCK_SIZE,
        "XENDISPL_EDID_BLOCK_COUNT" = XENDISPL_EDID_BLOCK_COUNT,
        "XENDISPL_EDID_MAX_SIZE" = XENDISPL_EDID_MAX_SIZE,
        "XENDISPL_DBUF_FLG_REQ_ALLOC" = XENDISPL_DBUF_FLG_REQ_ALLOC,
        "XENDISPL_EVENT_PAGE_SIZE" = XENDISPL_EVENT_PAGE_SIZE,
        "XENDISPL_IN_RING_OFFS" = XENDISPL_IN_RING_OFFS,
        "XENDISPL_IN_RING_SIZE" = XENDISPL_IN_RING_SIZE,
        "XENDISPL_IN_RING_LEN" = XENDISPL_IN_RING_LEN,
        "offsetof(struct xendispl_event_page, in_cons)" = XENDISPL_EVENT_PAGE_IN_CONS_OFFSET,
        "offsetof(struct xendispl_event_page, in_prod)" = XENDISPL_EVENT_PAGE_IN_PROD_OFFSET,
        "offsetof(struct xendispl_page_directory, gref_dir_next_page)" = XENDISPL_PGDIR_NEXT_OFFSET,
        "offsetof(struct xendispl_page_directory, gref)" = XENDISPL_PGDIR_GREFS_OFFSET,
        "((1 << XEN_PAGE_SHIFT) - offsetof(struct xendispl_page_directory, gref)) / sizeof(grant_ref_t)" = XENDISPL_PGDIR_GREFS_PER_PAGE,
    );
    v
}

/// String constants: C expression and Rust value.
fn string_checks() -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![
        (
            "XENDISPL_PROTOCOL_VERSION",
            XENDISPL_PROTOCOL_VERSION.into(),
        ),
        ("XENDISPL_DRIVER_NAME", XENDISPL_DRIVER_NAME.into()),
        ("XENDISPL_LIST_SEPARATOR", XENDISPL_LIST_SEPARATOR.into()),
        (
            "XENDISPL_RESOLUTION_SEPARATOR",
            XENDISPL_RESOLUTION_SEPARATOR.into(),
        ),
        (
            "XENDISPL_FIELD_BE_VERSIONS",
            XENDISPL_FIELD_BE_VERSIONS.into(),
        ),
        (
            "XENDISPL_FIELD_FE_VERSION",
            XENDISPL_FIELD_FE_VERSION.into(),
        ),
        (
            "XENDISPL_FIELD_REQ_RING_REF",
            XENDISPL_FIELD_REQ_RING_REF.into(),
        ),
        (
            "XENDISPL_FIELD_REQ_CHANNEL",
            XENDISPL_FIELD_REQ_CHANNEL.into(),
        ),
        (
            "XENDISPL_FIELD_EVT_RING_REF",
            XENDISPL_FIELD_EVT_RING_REF.into(),
        ),
        (
            "XENDISPL_FIELD_EVT_CHANNEL",
            XENDISPL_FIELD_EVT_CHANNEL.into(),
        ),
        (
            "XENDISPL_FIELD_RESOLUTION",
            XENDISPL_FIELD_RESOLUTION.into(),
        ),
        ("XENDISPL_FIELD_BE_ALLOC", XENDISPL_FIELD_BE_ALLOC.into()),
        ("XENDISPL_FIELD_UNIQUE_ID", XENDISPL_FIELD_UNIQUE_ID.into()),
        ("XS_WRITE_NONE", XS_WRITE_NONE.into()),
        ("XS_WRITE_CREATE", XS_WRITE_CREATE.into()),
        ("XS_WRITE_CREATE_EXCL", XS_WRITE_CREATE_EXCL.into()),
    ];
    // The xsd_errors table, entry by entry (C prints "<errnum> <name>").
    const XSD_ERROR_EXPRS: [&str; 16] = [
        "xsd_errors[0]",
        "xsd_errors[1]",
        "xsd_errors[2]",
        "xsd_errors[3]",
        "xsd_errors[4]",
        "xsd_errors[5]",
        "xsd_errors[6]",
        "xsd_errors[7]",
        "xsd_errors[8]",
        "xsd_errors[9]",
        "xsd_errors[10]",
        "xsd_errors[11]",
        "xsd_errors[12]",
        "xsd_errors[13]",
        "xsd_errors[14]",
        "xsd_errors[15]",
    ];
    for (expr, (num, name)) in XSD_ERROR_EXPRS.iter().zip(XSD_ERRORS.iter()) {
        v.push((expr, format!("{num} {name}")));
    }
    v
}

const HEADERS: &[&str] = &[
    "xen/xen.h",
    "xen/errno.h",
    "xen/event_channel.h",
    "xen/sched.h",
    "xen/vcpu.h",
    "xen/version.h",
    "xen/memory.h",
    "xen/grant_table.h",
    "xen/hvm/hvm_op.h",
    "xen/hvm/params.h",
    "xen/arch-x86/hvm/start_info.h",
    "xen/io/ring.h",
    "xen/io/xs_wire.h",
    "xen/io/xenbus.h",
    "xen/io/console.h",
    "xen/io/displif.h",
];

fn c_program(nums: &[Num], strs: &[(&str, String)]) -> String {
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <errno.h>\n",
    );
    for h in HEADERS {
        writeln!(c, "#include <{h}>").unwrap();
    }
    c.push_str("int main(void) {\n");
    for (i, n) in nums.iter().enumerate() {
        writeln!(c, "    printf(\"N{i} %lld\\n\", (long long)({}));", n.0).unwrap();
    }
    for (i, (expr, _)) in strs.iter().enumerate() {
        if expr.starts_with("xsd_errors[") {
            writeln!(
                c,
                "    printf(\"S{i} %d %s\\n\", {expr}.errnum, {expr}.errstring);"
            )
            .unwrap();
        } else {
            writeln!(c, "    printf(\"S{i} %s\\n\", {expr});").unwrap();
        }
    }
    c.push_str("    return 0;\n}\n");
    c
}

#[test]
fn abi_matches_c_headers() {
    let include_dir = std::env::var("XEN_INCLUDE_DIR").unwrap_or_else(|_| "/usr/include".into());
    let probe = PathBuf::from(&include_dir).join("xen/io/displif.h");
    assert!(
        probe.exists(),
        "Xen public headers not found ({} missing). Install Debian's libxen-dev \
         (apt-get install libxen-dev) or set XEN_INCLUDE_DIR; this test must not be skipped.",
        probe.display()
    );

    let nums = numeric_checks();
    let strs = string_checks();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("abi_layout");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("abi_layout.c");
    let exe = dir.join("abi_layout");
    std::fs::write(&src, c_program(&nums, &strs)).unwrap();

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg("-std=gnu11")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-Wno-unused-variable")
        // Target the newest interface (as a modern guest does); without this the
        // headers select pre-4.6 layouts (e.g. vcpu_time_info.pad1[3]).
        .arg("-D__XEN_INTERFACE_VERSION__=__XEN_LATEST_INTERFACE_VERSION__")
        .arg(format!("-I{include_dir}"))
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run C compiler `{cc}` ({e}); install gcc (or set CC). This test must not be skipped.")
        });
    assert!(
        out.status.success(),
        "compiling {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe)
        .output()
        .expect("running the generated C program");
    assert!(run.status.success(), "generated C program failed");
    let stdout = String::from_utf8(run.stdout).unwrap();

    let mut failures = Vec::new();
    let mut seen_nums = 0;
    let mut seen_strs = 0;
    for line in stdout.lines() {
        let (tag, value) = line.split_once(' ').expect("malformed line from C program");
        if let Some(i) = tag.strip_prefix('N') {
            let i: usize = i.parse().unwrap();
            let c_val: i128 = value.parse().unwrap();
            let Num(expr, rust_val) = &nums[i];
            if c_val != *rust_val {
                failures.push(format!("{expr}: C = {c_val}, Rust = {rust_val}"));
            }
            seen_nums += 1;
        } else if let Some(i) = tag.strip_prefix('S') {
            let i: usize = i.parse().unwrap();
            let (expr, rust_val) = &strs[i];
            if value != rust_val {
                failures.push(format!("{expr}: C = {value:?}, Rust = {rust_val:?}"));
            }
            seen_strs += 1;
        }
    }
    assert_eq!(
        seen_nums,
        nums.len(),
        "C program printed too few numeric lines"
    );
    assert_eq!(
        seen_strs,
        strs.len(),
        "C program printed too few string lines"
    );
    assert!(
        failures.is_empty(),
        "{} of {} ABI checks differ from the C headers:\n{}",
        failures.len(),
        nums.len() + strs.len(),
        failures.join("\n")
    );
    eprintln!(
        "abi_layout: {} numeric and {} string checks match the C headers",
        nums.len(),
        strs.len()
    );
}
