//! PVH entry: ELF notes, 32-bit entry, identity page tables, long mode.
#![no_std]
