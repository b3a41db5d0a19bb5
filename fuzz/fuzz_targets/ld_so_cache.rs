//! Fuzz target: `/etc/ld.so.cache` (both formats), `/etc/ld.so.conf` and its include globs.

#![no_main]

use checks::velox_library;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = velox_library::parse_ld_so_cache(data);
    let text = String::from_utf8_lossy(data);
    let _ = velox_library::parse_ld_so_conf(&text);
    // A glob and a name, split at the first newline (bounded: the matcher must stay polynomial).
    if data.len() <= 256 {
        if let Some((pattern, name)) = text.split_once('\n') {
            let _ = velox_library::wildcard_match(pattern, name);
        }
    }
});
