//! Xenbus device states (`xen/include/public/io/xenbus.h`).
//!
//! Each end of a split driver publishes its state as a decimal string in its
//! `state` xenstore node. Helpers to read and switch it are in [`crate::xenbus`].

use core::fmt;

/// `enum xenbus_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum XenbusState {
    /// `XenbusStateUnknown` (also what a missing node means).
    Unknown = 0,
    /// `XenbusStateInitialising`.
    Initialising = 1,
    /// `XenbusStateInitWait`: finished early init, waiting for the peer's details.
    InitWait = 2,
    /// `XenbusStateInitialised`: details published, waiting for the peer.
    Initialised = 3,
    /// `XenbusStateConnected`.
    Connected = 4,
    /// `XenbusStateClosing`: the device is being closed.
    Closing = 5,
    /// `XenbusStateClosed`.
    Closed = 6,
    /// `XenbusStateReconfiguring`.
    Reconfiguring = 7,
    /// `XenbusStateReconfigured`.
    Reconfigured = 8,
}

/// A numeric value that is not a `XenbusState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidXenbusState(pub u32);

impl fmt::Display for InvalidXenbusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid xenbus state {}", self.0)
    }
}

impl TryFrom<u32> for XenbusState {
    type Error = InvalidXenbusState;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        Ok(match v {
            0 => XenbusState::Unknown,
            1 => XenbusState::Initialising,
            2 => XenbusState::InitWait,
            3 => XenbusState::Initialised,
            4 => XenbusState::Connected,
            5 => XenbusState::Closing,
            6 => XenbusState::Closed,
            7 => XenbusState::Reconfiguring,
            8 => XenbusState::Reconfigured,
            other => return Err(InvalidXenbusState(other)),
        })
    }
}

impl From<XenbusState> for u32 {
    fn from(s: XenbusState) -> u32 {
        s as u32
    }
}

impl XenbusState {
    /// All states, in numeric order.
    pub const ALL: [XenbusState; 9] = [
        XenbusState::Unknown,
        XenbusState::Initialising,
        XenbusState::InitWait,
        XenbusState::Initialised,
        XenbusState::Connected,
        XenbusState::Closing,
        XenbusState::Closed,
        XenbusState::Reconfiguring,
        XenbusState::Reconfigured,
    ];

    /// The state's name as in the header, without the `XenbusState` prefix.
    pub const fn name(self) -> &'static str {
        match self {
            XenbusState::Unknown => "Unknown",
            XenbusState::Initialising => "Initialising",
            XenbusState::InitWait => "InitWait",
            XenbusState::Initialised => "Initialised",
            XenbusState::Connected => "Connected",
            XenbusState::Closing => "Closing",
            XenbusState::Closed => "Closed",
            XenbusState::Reconfiguring => "Reconfiguring",
            XenbusState::Reconfigured => "Reconfigured",
        }
    }
}

impl fmt::Display for XenbusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), *self as u32)
    }
}
