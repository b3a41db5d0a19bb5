//! Fuzz target: the ELF summary readers (by sections, and by segments as the loader and the jar
//! streaming read it), the strings scan and the loader-binary reader on arbitrary bytes.

#![no_main]

use checks::velox_library;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = velox_library::elf_kind(data);
    let _ = velox_library::elf_summary(data);
    let _ = velox_library::summary_from_segments(&mut velox_library::SliceSource(data));
    let _ = velox_library::scan_reader(data);
    let _ = velox_library::parse_loader_binary(data);
});
