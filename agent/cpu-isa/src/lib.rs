//! CPU instruction-set requirements of native libraries (from their DWARF producer records) and
//! the host's CPU identity.

pub mod aarch64;
