//! Finding Xen through CPUID.
//!
//! Xen's leaves start at `0x4000_0000` or, when Xen also offers Viridian
//! (Hyper-V) leaves, at a higher multiple of `0x100` (`arch-x86/cpuid.h`):
//! - `base + 0`: `ebx:ecx:edx` = `"XenVMMXenVMM"`, `eax` = the largest leaf,
//! - `base + 1`: `eax` = version (major << 16 | minor),
//! - `base + 2`: `eax` = number of hypercall pages, `ebx` = the MSR to write
//!   the hypercall page's address to,
//! - `base + 4`: HVM features; `ecx` = our domid if `eax` has
//!   `XEN_HVM_CPUID_DOMID_PRESENT`.
//!
//! The decoding is pure ([`XenLeaves::decode`]); only [`detect`] executes CPUID.

/// The raw result of one CPUID leaf.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuidResult {
    /// `eax`.
    pub eax: u32,
    /// `ebx`.
    pub ebx: u32,
    /// `ecx`.
    pub ecx: u32,
    /// `edx`.
    pub edx: u32,
}

/// First leaf searched.
pub const XEN_CPUID_FIRST: u32 = 0x4000_0000;
/// Last base searched (inclusive).
pub const XEN_CPUID_LAST: u32 = 0x4001_0000;
/// Distance between candidate bases.
pub const XEN_CPUID_STEP: u32 = 0x100;
/// `XEN_HVM_CPUID_DOMID_PRESENT` (`arch-x86/cpuid.h`).
pub const XEN_HVM_CPUID_DOMID_PRESENT: u32 = 1 << 3;

/// What Xen's leaves told us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenLeaves {
    /// The base leaf.
    pub base: u32,
    /// Xen major version.
    pub major: u16,
    /// Xen minor version.
    pub minor: u16,
    /// The MSR that takes the hypercall page's guest-physical address.
    pub hypercall_msr: u32,
    /// Our domain id, if Xen reports it.
    pub domid: Option<u16>,
}

/// Why the leaves at a base are not usable Xen leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuidError {
    /// No `XenVMMXenVMM` signature at any base.
    NotXen,
    /// The signature is there but fewer than 3 leaves exist.
    TooFewLeaves(u32),
    /// Xen reports no hypercall page.
    NoHypercallPage,
}

/// Whether `leaf` carries the Xen signature; returns the largest leaf if so.
pub fn is_xen_signature(leaf: CpuidResult) -> bool {
    leaf.ebx == u32::from_le_bytes(*b"XenV")
        && leaf.ecx == u32::from_le_bytes(*b"MMXe")
        && leaf.edx == u32::from_le_bytes(*b"nVMM")
}

impl XenLeaves {
    /// Decode the leaves at `base`; `leaf(n)` returns CPUID leaf `n`.
    pub fn decode(base: u32, leaf: impl Fn(u32) -> CpuidResult) -> Result<Self, CpuidError> {
        let id = leaf(base);
        if !is_xen_signature(id) {
            return Err(CpuidError::NotXen);
        }
        let nr_leaves = id.eax.wrapping_sub(base);
        if id.eax < base || nr_leaves < 2 {
            return Err(CpuidError::TooFewLeaves(nr_leaves));
        }
        let version = leaf(base + 1).eax;
        let pages = leaf(base + 2);
        if pages.eax == 0 {
            return Err(CpuidError::NoHypercallPage);
        }
        let domid = if nr_leaves >= 4 {
            let hvm = leaf(base + 4);
            // The domid is 16 bits (`domid_t`); anything above is not a domid.
            (hvm.eax & XEN_HVM_CPUID_DOMID_PRESENT != 0)
                .then(|| u16::try_from(hvm.ecx).ok())
                .flatten()
        } else {
            None
        };
        Ok(XenLeaves {
            base,
            major: (version >> 16) as u16,
            minor: version as u16,
            hypercall_msr: pages.ebx,
            domid,
        })
    }

    /// Scan the candidate bases with `leaf`.
    pub fn scan(leaf: impl Fn(u32) -> CpuidResult) -> Result<Self, CpuidError> {
        let mut base = XEN_CPUID_FIRST;
        while base <= XEN_CPUID_LAST {
            match Self::decode(base, &leaf) {
                Err(CpuidError::NotXen) => base += XEN_CPUID_STEP,
                other => return other,
            }
        }
        Err(CpuidError::NotXen)
    }
}

/// Execute CPUID `leaf` (subleaf 0).
#[cfg(target_arch = "x86_64")]
pub fn cpuid(leaf: u32) -> CpuidResult {
    let r = core::arch::x86_64::__cpuid_count(leaf, 0);
    CpuidResult {
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    }
}

/// Find Xen's leaves on this CPU.
#[cfg(target_arch = "x86_64")]
pub fn detect() -> Result<XenLeaves, CpuidError> {
    XenLeaves::scan(cpuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xen_at(base: u32, max: u32) -> impl Fn(u32) -> CpuidResult {
        move |n| match n.checked_sub(base) {
            Some(0) => CpuidResult {
                eax: max,
                ebx: u32::from_le_bytes(*b"XenV"),
                ecx: u32::from_le_bytes(*b"MMXe"),
                edx: u32::from_le_bytes(*b"nVMM"),
            },
            Some(1) => CpuidResult {
                eax: 4 << 16 | 17,
                ..Default::default()
            },
            Some(2) => CpuidResult {
                eax: 1,
                ebx: 0x4000_0000,
                ..Default::default()
            },
            Some(4) => CpuidResult {
                eax: 0x1f,
                ebx: 0,
                ecx: 7,
                edx: 0,
            },
            _ => CpuidResult::default(),
        }
    }

    #[test]
    fn finds_xen_at_an_offset_base() {
        let leaves = XenLeaves::scan(xen_at(0x4000_0100, 0x4000_0105)).unwrap();
        assert_eq!(
            leaves,
            XenLeaves {
                base: 0x4000_0100,
                major: 4,
                minor: 17,
                hypercall_msr: 0x4000_0000,
                domid: Some(7),
            }
        );
    }

    #[test]
    fn old_xen_without_leaf_4_has_no_domid() {
        let leaves = XenLeaves::scan(xen_at(0x4000_0000, 0x4000_0002)).unwrap();
        assert_eq!(leaves.domid, None);
    }

    #[test]
    fn rejects_non_xen_and_short_leaves() {
        assert_eq!(
            XenLeaves::scan(|_| CpuidResult::default()),
            Err(CpuidError::NotXen)
        );
        // KVM's signature is not Xen's.
        let kvm = |n: u32| {
            if n == 0x4000_0000 {
                CpuidResult {
                    eax: 0x4000_0001,
                    ebx: 0x4b4d_564b,
                    ecx: 0x564b_4d56,
                    edx: 0x4d,
                }
            } else {
                CpuidResult::default()
            }
        };
        assert_eq!(XenLeaves::scan(kvm), Err(CpuidError::NotXen));
        assert_eq!(
            XenLeaves::scan(xen_at(0x4000_0000, 0x4000_0001)),
            Err(CpuidError::TooFewLeaves(1))
        );
    }
}
