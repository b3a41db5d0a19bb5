//! Fuzz target: the agent's TOML config file through `Config::load` (parse, per-section checks,
//! unknown-key detection, `validate`), from a file as the agent reads it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::var_os("FUZZ_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        dir.join(format!("gluten-fuzz-config-{}.toml", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(path(), data).expect("writing the config file");
    if let Ok(c) = agent::config::Config::load(Some(path()), &[]) {
        // A config that loads is valid and builds its checks.
        c.validate().expect("a loaded config validates");
        let _ = agent::checks::build(&c);
        let _ = agent::engine::policies(&c);
    }
});
