//! Event-channel operations (`xen/include/public/event_channel.h`).

use core::mem::size_of;

/// `EVTCHNOP_bind_interdomain`: arg is [`EvtchnBindInterdomain`].
pub const EVTCHNOP_BIND_INTERDOMAIN: u32 = 0;
/// `EVTCHNOP_bind_virq`: arg is [`EvtchnBindVirq`].
pub const EVTCHNOP_BIND_VIRQ: u32 = 1;
/// `EVTCHNOP_close`: arg is [`EvtchnClose`].
pub const EVTCHNOP_CLOSE: u32 = 3;
/// `EVTCHNOP_send`: arg is [`EvtchnSend`].
pub const EVTCHNOP_SEND: u32 = 4;
/// `EVTCHNOP_alloc_unbound`: arg is [`EvtchnAllocUnbound`].
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;
/// `EVTCHNOP_unmask`: arg is [`EvtchnUnmask`].
pub const EVTCHNOP_UNMASK: u32 = 9;

/// `struct evtchn_alloc_unbound`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnAllocUnbound {
    /// IN: our domain (`DOMID_SELF`).
    pub dom: u16,
    /// IN: the domain allowed to bind.
    pub remote_dom: u16,
    /// OUT: the new port.
    pub port: u32,
}

/// `struct evtchn_bind_interdomain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindInterdomain {
    /// IN: remote domain.
    pub remote_dom: u16,
    /// IN: remote port (allocated unbound for us).
    pub remote_port: u32,
    /// OUT: our port.
    pub local_port: u32,
}

/// `struct evtchn_bind_virq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVirq {
    /// IN: `VIRQ_*`.
    pub virq: u32,
    /// IN: vCPU to deliver on.
    pub vcpu: u32,
    /// OUT: the port.
    pub port: u32,
}

/// `struct evtchn_close`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnClose {
    /// Port to close.
    pub port: u32,
}

/// `struct evtchn_send`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnSend {
    /// Port to notify through.
    pub port: u32,
}

/// `struct evtchn_unmask`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnUnmask {
    /// Port to unmask.
    pub port: u32,
}

const _: () = assert!(size_of::<EvtchnAllocUnbound>() == 8);
const _: () = assert!(size_of::<EvtchnBindInterdomain>() == 12);
