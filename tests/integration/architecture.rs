//! The architecture as the compiler and cargo see it: crate edges (`cargo tree -e normal,build`)
//! keep HTTP and databases out of the checks, ELF and zip out of the aggregator, the database out
//! of the lean agent binary; outputs read the snapshot, not the engine; and no module of any crate
//! takes part in an import cycle.

use gluten_node_tests::repo_root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The package names in `cargo tree -e normal,build` of `package` (with `extra` flags).
fn tree(package: &str, extra: &[&str]) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args(["tree", "-q", "-e", "normal,build", "--prefix", "none"])
        .args(["--format", "{p}", "-p", package])
        .args(extra)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn assert_none_of(package: &str, extra: &[&str], banned: &[&str]) {
    let deps = tree(package, extra);
    assert!(deps.len() > 3, "{package}: {deps:?}");
    let found: Vec<_> = banned.iter().filter(|b| deps.contains(**b)).collect();
    assert!(found.is_empty(), "{package} {extra:?} depends on {found:?}");
}

const HTTP_AND_DATABASE: &[&str] = &[
    "hyper",
    "axum",
    "reqwest",
    "rustls",
    "tokio-rustls",
    "tokio-postgres",
    "redb",
    "gluten-node-serve",
    "gluten-node-agent-core",
];

#[test]
fn the_checks_crate_knows_no_http_and_no_database() {
    assert_none_of("gluten-node-checks", &[], HTTP_AND_DATABASE);
}

#[test]
fn the_aggregator_knows_no_checks_and_no_elf_or_zip() {
    assert_none_of(
        "gluten-node-aggregator",
        &[],
        &[
            "gluten-node-checks",
            "gluten-node-agent-core",
            "gluten-node-cpu-isa",
            "object",
            "gimli",
            "zip",
            "memmap2",
        ],
    );
}

#[test]
fn the_lean_agent_binary_has_no_database_code() {
    let lean = &["--no-default-features"];
    assert_none_of(
        "gluten-node-agent",
        lean,
        &["gluten-node-aggregator", "redb", "tokio-postgres"],
    );
    // And the default build does carry the aggregator, so the check above can fail.
    assert!(tree("gluten-node-agent", &[]).contains("gluten-node-aggregator"));
}

/// The Rust files of a crate's `src/`, test-only files left out.
fn sources(src: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let name = p.file_stem().unwrap().to_string_lossy();
                if name != "tests" {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// The module path of a file under `src` (`outputs/push/mod.rs` -> `outputs::push`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Code without its `#[cfg(test)]` tail and without comment lines.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path the code names through `crate::` or `super::`, with `{a, b::c}` groups expanded,
/// resolved against `module` to a path from the crate root.
fn referenced_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let base = if !starts_word {
            None
        } else if rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if rest.starts_with("super::") {
            // A file's own module is `module`; `super` is its parent.
            let mut m = module.to_vec();
            let mut len = 0;
            while code[i + len..].starts_with("super::") {
                m.pop();
                len += "super::".len();
            }
            Some((m, len))
        } else {
            None
        };
        let Some((base, len)) = base else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let (paths, used) = expand(&code[i + len..]);
        for p in paths {
            let mut full = base.clone();
            full.extend(p);
            out.push(full);
        }
        i += len + used.max(1);
    }
    out
}

/// Expands one path tail (`a::b`, `a::{b, c::d}`, `{x, y}`) into its paths; returns how many
/// bytes it read.
fn expand(s: &str) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = 0;
    let b = s.as_bytes();
    loop {
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if i > start {
            prefix.push(s[start..i].to_string());
        }
        let group = if s[i..].starts_with("::{") {
            Some(3)
        } else if i == 0 && s.starts_with('{') {
            Some(1)
        } else {
            None
        };
        if let Some(skip) = group {
            i += skip;
            let mut depth = 1;
            let open = i;
            while i < b.len() && depth > 0 {
                match b[i] {
                    b'{' => depth += 1,
                    b'}' => depth -= 1,
                    _ => {}
                }
                i += 1;
            }
            let inner = &s[open..i.saturating_sub(1)];
            let mut paths = Vec::new();
            for item in split_top(inner) {
                let (sub, _) = expand(item.trim());
                for p in sub {
                    let mut full = prefix.clone();
                    full.extend(p);
                    paths.push(full);
                }
            }
            return (paths, i);
        } else if s[i..].starts_with("::") {
            i += 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Module-level import edges of one crate: from each file's module to the deepest module a path
/// it names lands in. Edges to an ancestor or a descendant are structure (`mod.rs` re-exporting
/// its children, a child using its parent's items), not cycles between peers, and are left out.
fn import_graph(src: &Path) -> Graph {
    let files = sources(src);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = Graph::new();
    for f in &files {
        let from = module_of(src, f);
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        let edges = graph.entry(from.join("::")).or_default();
        for path in referenced_paths(&code, &from) {
            let to = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains(p))
                .unwrap_or_default();
            if to.starts_with(&from) || from.starts_with(&to) {
                continue;
            }
            edges.insert(to.join("::"));
        }
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Every crate's `src/` in the workspace.
fn crate_sources() -> Vec<PathBuf> {
    let root = repo_root();
    let mut out = vec![root.join("agent/src"), root.join("proto/src")];
    for e in std::fs::read_dir(root.join("agent")).unwrap() {
        let p = e.unwrap().path().join("src");
        if p.is_dir() {
            out.push(p);
        }
    }
    out
}

#[test]
fn no_module_of_any_crate_is_in_an_import_cycle() {
    let mut found = Vec::new();
    let mut modules = 0;
    for src in crate_sources() {
        let graph = import_graph(&src);
        modules += graph.len();
        for c in cycles(&graph) {
            found.push(format!("{}: {}", src.display(), c.join(" <-> ")));
        }
    }
    assert!(modules > 50, "read only {modules} modules");
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("outputs")).unwrap();
    std::fs::write(src.join("lib.rs"), "//! x\npub mod config;\n").unwrap();
    std::fs::write(
        src.join("config.rs"),
        "use crate::outputs::nfd::NfdConfig;\n",
    )
    .unwrap();
    std::fs::write(src.join("outputs/mod.rs"), "pub mod nfd;\n").unwrap();
    std::fs::write(
        src.join("outputs/nfd.rs"),
        "use crate::{engine::Snapshot, time};\nuse super::super::time::now;\n",
    )
    .unwrap();
    std::fs::write(src.join("engine.rs"), "pub use crate::config::Config;\n").unwrap();
    std::fs::write(src.join("time.rs"), "//! no imports\n").unwrap();
    // A test module's imports do not count.
    std::fs::create_dir_all(src.join("time")).unwrap();
    std::fs::write(src.join("time/tests.rs"), "use crate::engine::Snapshot;\n").unwrap();
    let graph = import_graph(src);
    assert_eq!(
        cycles(&graph),
        vec![vec![
            "config".to_string(),
            "engine".to_string(),
            "outputs::nfd".to_string()
        ]]
    );
    assert!(graph["outputs::nfd"].contains("time"), "{graph:?}");
    // Break it: the snapshot in its own module.
    std::fs::write(src.join("snapshot.rs"), "//! no imports\n").unwrap();
    std::fs::write(
        src.join("outputs/nfd.rs"),
        "use crate::snapshot::Snapshot;\n",
    )
    .unwrap();
    assert!(cycles(&import_graph(src)).is_empty());
}

#[test]
fn outputs_read_the_snapshot_not_the_engine_or_the_config() {
    let outputs = repo_root().join("agent/core/src/outputs");
    let src = repo_root().join("agent/core/src");
    let graph = import_graph(&src);
    let mut found = Vec::new();
    for f in sources(&outputs) {
        let m = module_of(&src, &f).join("::");
        for to in graph.get(&m).into_iter().flatten() {
            if to == "engine" || to == "config" || to == "daemon" {
                found.push(format!("{m} -> {to}"));
            }
        }
    }
    assert!(graph.len() > 10, "{graph:?}");
    assert!(
        found.is_empty(),
        "outputs importing the engine side: {found:?}"
    );
}
