//! Fuzz target: the ELF summary reader (header, program headers, `.dynamic`, version sections,
//! build-id note) on arbitrary bytes, as mmapped from a library file.

#![no_main]

use agent::checks::velox_library;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = velox_library::elf_kind(data);
    let _ = velox_library::elf_summary(data);
});
