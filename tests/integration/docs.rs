//! Documentation tests: every relative link in README.md and docs/ resolves (file and heading),
//! docs/configuration.md lists exactly the configuration keys the code has, the README stays a
//! short front door. Each scanner is also run on planted mistakes.

use gluten_node_tests::repo_root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// README.md, agent/ARCHITECTURE.md and every `.md` under docs/, relative to the repository.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "md") {
                out.push(p);
            }
        }
    }
    let mut files = vec![root.join("README.md"), root.join("agent/ARCHITECTURE.md")];
    if root.join("docs").is_dir() {
        walk(&root.join("docs"), &mut files);
    }
    files.sort();
    files
}

/// The lines of a Markdown text outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation other than `-` and `_` dropped, spaces
/// to `-`; a repeated heading gets `-1`, `-2`, ...
fn heading_anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let Some(title) = line
            .strip_prefix('#')
            .map(|t| t.trim_start_matches('#'))
            .filter(|t| t.starts_with(' '))
        else {
            continue;
        };
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of the inline links `[text](target)` of a prose line (not inside `code`).
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Inline code spans hold examples, not links.
    let prose: String = line
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(" ");
    let mut rest = prose.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => {
                out.push(after[..end].trim().to_string());
                rest = &after[end..];
            }
            None => break,
        }
    }
    out
}

/// Every relative link of `files` that does not resolve, as `file:line: target (why)`.
fn broken_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut broken = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (n, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                if !resolved.exists() {
                    broken.push(format!("{rel}:{n}: {target} (no such file)"));
                    continue;
                }
                if let Some(anchor) = anchor {
                    let anchors = std::fs::read_to_string(&resolved)
                        .map(|t| heading_anchors(&t))
                        .unwrap_or_default();
                    if !anchors.contains(anchor) {
                        broken.push(format!("{rel}:{n}: {target} (no heading #{anchor})"));
                    }
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_resolves_to_a_file_and_heading() {
    let root = repo_root();
    let files = markdown_files(&root);
    assert!(files.len() > 10, "found only {files:?}");
    let broken = broken_links(&root, &files);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_scanner_catches_a_missing_file_and_a_missing_heading() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("docs/checks")).unwrap();
    std::fs::write(
        root.join("docs/checks/memory.md"),
        "# memory\n\n## Statuses and the node verdict\n\n```sh\n# not a heading\n```\n",
    )
    .unwrap();
    std::fs::write(
        root.join("README.md"),
        "# x\n\n[ok](docs/checks/memory.md#statuses-and-the-node-verdict) \
         [web](https://example.com/none) `[code](nowhere.md)`\n\
         [gone](docs/checks/hugepage.md) [bad anchor](docs/checks/memory.md#not-a-heading)\n\
         [self](#x) [self bad](#y)\n",
    )
    .unwrap();
    let files = vec![root.join("README.md"), root.join("docs/checks/memory.md")];
    let broken = broken_links(root, &files);
    assert_eq!(
        broken,
        [
            "README.md:4: docs/checks/hugepage.md (no such file)",
            "README.md:4: docs/checks/memory.md#not-a-heading (no heading #not-a-heading)",
            "README.md:5: #y (no heading #y)",
        ],
        "{broken:#?}"
    );
}

#[test]
fn github_anchors_follow_githubs_rules() {
    let anchors = heading_anchors(
        "# Node labels (node-feature-discovery)\n## The aggregator's configuration\n\
         ## Against node_exporter (`benches/load/side_by_side.sh`)\n## Keys\n## Keys\n",
    );
    for a in [
        "node-labels-node-feature-discovery",
        "the-aggregators-configuration",
        "against-node_exporter-benchesloadside_by_sidesh",
        "keys",
        "keys-1",
    ] {
        assert!(anchors.contains(a), "{a} not in {anchors:?}");
    }
}

/// Dotted keys of a JSON object: nested objects flattened, an empty object (a free-form table
/// such as `[memory.spark]`) and every other value a key of its own.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

/// Every key the code accepts: the agent's top-level tables, each registered check's common
/// keys and own settings (`checks::ALL`), and the aggregator's (prefixed `aggregator.`).
fn code_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let config = agent::config::Config::default();
    flatten("", &serde_json::to_value(&config).unwrap(), &mut keys);
    for registration in checks::ALL {
        let section = registration.default_section();
        let name = registration.name;
        flatten(
            name,
            &serde_json::to_value(section.common()).unwrap(),
            &mut keys,
        );
        flatten(name, &section.settings_json(), &mut keys);
    }
    let aggregator = aggregator::config::AggregatorConfig::default();
    flatten(
        "aggregator",
        &serde_json::to_value(&aggregator).unwrap(),
        &mut keys,
    );
    keys
}

/// The keys docs/configuration.md lists: the backquoted names in the first column of every
/// table whose first header is `key`. Under the heading "The aggregator's configuration" they
/// get the prefix `aggregator.`; `<check>.KEY` stands for that key of every check in `checks`.
fn documented_keys(text: &str, checks: &[&str]) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut aggregator = false;
    let mut key_table = false;
    for (_, line) in prose_lines(text) {
        if line.starts_with("## ") {
            aggregator = line.to_lowercase().contains("aggregator");
        }
        if !line.starts_with('|') {
            key_table = false;
            continue;
        }
        let first = line.split('|').nth(1).unwrap_or("").trim();
        if first == "key" {
            key_table = true;
            continue;
        }
        if !key_table || first.starts_with("---") {
            continue;
        }
        for name in first.split('`').skip(1).step_by(2) {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            let names: Vec<String> = match name.strip_prefix("<check>.") {
                Some(k) => checks.iter().map(|c| format!("{c}.{k}")).collect(),
                None => vec![name.to_string()],
            };
            for n in names {
                keys.insert(if aggregator {
                    format!("aggregator.{n}")
                } else {
                    n
                });
            }
        }
    }
    keys
}

/// What differs between the code's keys and the documented ones, in both directions.
fn key_differences(code: &BTreeSet<String>, documented: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = code
        .difference(documented)
        .map(|k| format!("`{k}` is a key of the code but not in docs/configuration.md"))
        .collect();
    out.extend(
        documented
            .difference(code)
            .map(|k| format!("`{k}` is in docs/configuration.md but the code has no such key")),
    );
    out
}

fn configuration_doc() -> String {
    std::fs::read_to_string(repo_root().join("docs/configuration.md")).unwrap()
}

#[test]
fn configuration_doc_lists_exactly_the_keys_of_the_code() {
    let code = code_keys();
    // The derivation sees the tables it must see.
    for k in [
        "listen",
        "push.url",
        "local_socket.mode",
        "nfd.features_file",
        "memory.executors_per_node",
        "memory.spark",
        "velox_library.enabled",
        "scratch.yarn_site",
        "aggregator.database_url",
    ] {
        assert!(code.contains(k), "{k} not derived from the code: {code:?}");
    }
    let documented = documented_keys(&configuration_doc(), &checks::NAMES);
    let diff = key_differences(&code, &documented);
    assert!(diff.is_empty(), "{}", diff.join("\n"));
}

#[test]
fn the_key_comparison_catches_a_planted_key_and_a_missing_one() {
    let code = code_keys();
    let doc = configuration_doc();
    // A key the code does not have.
    let planted = doc.replacen(
        "| `<check>.enabled` |",
        "| `memory.bogus_key` | 1 | x |\n| `<check>.enabled` |",
        1,
    );
    assert_ne!(planted, doc, "the common keys table moved");
    let diff = key_differences(&code, &documented_keys(&planted, &checks::NAMES));
    assert_eq!(
        diff,
        ["`memory.bogus_key` is in docs/configuration.md but the code has no such key"]
    );
    // A key of the code left out (the push URL's row).
    let row = doc
        .lines()
        .find(|l| l.starts_with("| `push.url` |"))
        .expect("a push.url row");
    let without = doc.replace(&format!("{row}\n"), "");
    let diff = key_differences(&code, &documented_keys(&without, &checks::NAMES));
    assert_eq!(
        diff,
        ["`push.url` is a key of the code but not in docs/configuration.md"]
    );
    // An aggregator key documented in the agent's tables is the agent's, not the aggregator's.
    let keys = documented_keys(
        "## Agent\n\n| key | default |\n|---|---|\n| `data_dir` | x |\n\n\
         ## The aggregator's configuration\n\n| key | flag |\n|---|---|\n| `data_dir` | x |\n",
        &["memory"],
    );
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        ["aggregator.data_dir", "data_dir"]
    );
}

#[test]
fn readme_is_a_short_front_door() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move detail to docs/"
    );
    // The two set-up commands stay at the top.
    let top: Vec<&str> = readme.lines().take(6).collect();
    assert!(
        top.iter()
            .any(|l| l.starts_with("cargo run --release -p gluten-node-agent -- run")),
        "{top:?}"
    );
    assert!(
        top.iter()
            .any(|l| l.starts_with("./.ci/deps && cargo test --workspace")),
        "{top:?}"
    );
}

#[test]
fn no_documentation_line_is_over_1000_characters() {
    let root = repo_root();
    let mut long = Vec::new();
    for f in markdown_files(&root) {
        for (i, l) in std::fs::read_to_string(&f).unwrap().lines().enumerate() {
            if l.chars().count() > 1000 {
                let rel = f.strip_prefix(&root).unwrap().display().to_string();
                long.push(format!("{rel}:{}: {} characters", i + 1, l.chars().count()));
            }
        }
    }
    assert!(long.is_empty(), "split these lines:\n{}", long.join("\n"));
}
