//! Tidy tests: the README's invariants that a grep can keep.

use gluten_node_tests::repo_root;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            if !matches!(name.as_str(), "target" | "fixtures" | ".git")
                && !name.starts_with("target")
            {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for top in ["agent", "proto", "tests", "benches"] {
        rust_files(&repo_root().join(top), &mut files);
    }
    assert!(files.len() > 10, "found only {files:?}");
    files
}

#[test]
fn every_rust_file_starts_with_a_module_doc_line() {
    let bad: Vec<_> = all_rust_files()
        .into_iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .collect();
    assert!(bad.is_empty(), "files without a leading //! line: {bad:?}");
}

/// The code of a check file without its `#[cfg(test)]` module (tests may build paths freely).
fn non_test_code(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// Lines of check code that bypass `Host`: std::fs calls on absolute literals, sysinfo, and the
/// procfs constructors that read the real `/proc`.
fn offences(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in non_test_code(code).lines().enumerate() {
        let l = line.trim_start();
        if l.starts_with("//") {
            continue;
        }
        let absolute_literal_io = [
            "fs::",
            "File::open",
            "read_dir",
            "symlink_metadata",
            "read_link",
        ]
        .iter()
        .any(|pat| {
            l.match_indices(pat).any(|(at, _)| {
                // The first argument of the call that follows the pattern.
                let rest = &l[at + pat.len()..];
                rest.split_once('(').is_some_and(|(name, arg)| {
                    !name.contains(' ') && arg.trim_start().starts_with("\"/")
                })
            })
        });
        let unrooted = [
            "sysinfo::",
            "Process::myself()",
            "::current()",
            "all_processes",
        ]
        .iter()
        .any(|p| l.contains(p));
        if absolute_literal_io || unrooted {
            out.push((i + 1, l.to_string()));
        }
    }
    out
}

#[test]
fn checks_read_the_machine_only_through_host() {
    let dir = repo_root().join("agent/src/checks");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        for (line, text) in offences(&std::fs::read_to_string(&path).unwrap()) {
            found.push(format!("{}:{line}: {text}", path.display()));
        }
    }
    assert!(
        found.is_empty(),
        "checks must read through Host:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_tidy_scanner_catches_what_it_is_meant_to() {
    for bad in [
        r#"let t = std::fs::read_to_string("/proc/meminfo")?;"#,
        r#"let f = File::open("/sys/kernel/mm/x")?;"#,
        r#"let m = procfs::Meminfo::current()?;"#,
        r#"for e in std::fs::read_dir("/sys/block")? {"#,
        r#"let s = sysinfo::System::new();"#,
    ] {
        assert_eq!(offences(bad).len(), 1, "{bad}");
    }
    for good in [
        r#"let t = host.read_optional("/proc/meminfo")?;"#,
        r#"let p = host.path("/sys/block");"#,
        r#"let f = std::fs::File::open(&local)?;"#,
        "#[cfg(test)]\nmod tests { fn f() { std::fs::read_to_string(\"/proc/x\"); } }",
    ] {
        assert!(offences(good).is_empty(), "{good}");
    }
}
