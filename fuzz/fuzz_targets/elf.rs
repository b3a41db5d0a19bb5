//! Fuzz target: the ELF reader (as the loader reads segments, over a mapped file and over a
//! source that knows no size, as a stream may not), the section lookup of the strings scan, the
//! strings scan and the loader-binary reader on arbitrary bytes.

#![no_main]

use checks::check::ParseError;
use checks::velox_library::{self, ElfSource, Req, SliceSource};
use libfuzzer_sys::fuzz_target;

/// The bytes, answered without telling their size.
struct Stream<'a>(&'a [u8]);

impl ElfSource for Stream<'_> {
    fn fetch(&mut self, reqs: &[Req]) -> Result<Vec<Vec<u8>>, ParseError> {
        SliceSource(self.0).fetch(reqs)
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = velox_library::elf_kind(data);
    let _ = velox_library::elf_summary(data);
    let _ = velox_library::summary_from_segments(&mut Stream(data));
    let _ = velox_library::segment_reqs(data);
    let _ = velox_library::string_ranges(data);
    let _ = velox_library::scan_reader(data);
    let _ = velox_library::parse_loader_binary(data);
});
