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
    let mut files = Vec::new();
    rust_files(&repo_root().join("agent/checks/src"), &mut files);
    assert!(files.len() > 10, "found only {files:?}");
    let mut found = Vec::new();
    for path in files {
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

#[test]
fn unit_tests_out_of_their_file_are_the_modules_tests_rs() {
    let root = repo_root();
    let mut found = Vec::new();
    for f in all_rust_files() {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        if !rel.starts_with("agent/") {
            continue;
        }
        if rel.ends_with("_tests.rs") {
            found.push(format!("{rel}: a test file not named tests.rs"));
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, l) in text.lines().enumerate() {
            if l.trim_start().starts_with("#[path") {
                found.push(format!("{rel}:{}: {}", i + 1, l.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "unit tests out of their file go in `foo/tests.rs` (`#[cfg(test)] mod tests;`), \
         never `#[path]`:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_source_file_is_over_900_lines() {
    let root = repo_root();
    let mut over = Vec::new();
    for f in all_rust_files() {
        let lines = std::fs::read_to_string(&f).unwrap().lines().count();
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        if lines > 900 {
            over.push(format!("{rel}: {lines} lines"));
        }
    }
    assert!(over.is_empty(), "{}", over.join("\n"));
}

/// Whether `code` names the check `name` as code does: a path (`name::`, `checks::name`) or the
/// name as a string literal. Comment lines do not count.
fn names_check(code: &str, name: &str) -> Vec<String> {
    non_test_code(code)
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter(|l| {
            l.contains(&format!("\"{name}\""))
                || l.match_indices(&format!("{name}::"))
                    .any(|(at, _)| !l[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        })
        .map(|l| l.trim().to_string())
        .collect()
}

/// Adding a check touches its own folder (or file) and one line of `checks::ALL`: no other
/// non-test code of the agent names a check. Config sections, policies, `NAMES`, `Shared`, the
/// longest timeout and `/health/{check}` all come from the registration.
#[test]
fn check_names_appear_only_in_their_module_and_the_registry_list() {
    // Every crate of the agent: the check core, the agent, the aggregator, the binary.
    let src = repo_root().join("agent");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let checks_dir = src.join("checks/src");
    let registry = std::fs::read_to_string(checks_dir.join("lib.rs")).unwrap();
    // The checks are the modules `ALL` registers (`NAME::REGISTRATION,`).
    let names: Vec<String> = registry
        .lines()
        .filter_map(|l| l.trim().strip_suffix("::REGISTRATION,"))
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 5, "{names:?}");
    let mut found = Vec::new();
    for name in &names {
        let own_file = checks_dir.join(format!("{name}.rs"));
        let own_dir = checks_dir.join(name);
        // The registry: `pub mod NAME;` and `NAME::REGISTRATION,` in `ALL`, nothing else.
        let lines: Vec<_> = names_check(&registry, name)
            .into_iter()
            .filter(|l| *l != format!("{name}::REGISTRATION,"))
            .collect();
        found.extend(lines.into_iter().map(|l| format!("checks/src/lib.rs: {l}")));
        assert!(
            registry.contains(&format!("pub mod {name};"))
                && registry.contains(&format!("    {name}::REGISTRATION,")),
            "{name} is not registered in checks::ALL"
        );
        for f in &files {
            if f == &own_file
                || f.starts_with(&own_dir)
                || f == &checks_dir.join("lib.rs")
                // Test-only modules kept in their own file (`#[cfg(test)] mod tests;`).
                || f.file_name().is_some_and(|n| n == "tests.rs")
            {
                continue;
            }
            let code = std::fs::read_to_string(f).unwrap();
            for l in names_check(&code, name) {
                found.push(format!("{}: {l}", f.strip_prefix(&src).unwrap().display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "check names outside their module and checks::ALL:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_name_scanner_catches_what_it_is_meant_to() {
    assert_eq!(
        names_check("let s = config.section(\"numa\");", "numa").len(),
        1
    );
    assert_eq!(
        names_check("use crate::checks::numa::Numa;", "numa").len(),
        1
    );
    assert_eq!(names_check("numa::REGISTRATION,", "numa").len(), 1);
    assert!(names_check("// the numa check", "numa").is_empty());
    assert!(names_check("let x = my_numa::f();", "numa").is_empty());
    assert!(names_check("#[cfg(test)]\nmod t { \"numa\" }", "numa").is_empty());
}
