//! Fuzz target: the agent's TOML config through `Config::from_toml_str` (parse, per-section
//! checks, unknown-key detection, `validate`), as `Config::load` runs it on a file's text.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = agent::config::Config::from_toml_str(text, None, &[]) {
        // A config that loads is valid and builds its checks.
        c.validate().expect("a loaded config validates");
        let shared = c.shared();
        for (registration, section) in c.sections() {
            let _ = registration.build(section, &shared);
        }
        let _ = agent::engine::policies(&c);
        let _ = c.longest_timeout();
    }
});
