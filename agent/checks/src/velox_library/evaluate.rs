//! The pure verdict: facts and settings in, findings, summary, gauges and inventory out. One
//! function per rule, called in report order by [`evaluate`].

use super::elf::{host_elf_kind, machine_name, parse_version};
use super::facts::{CpuNeedsFacts, Facts, LibraryFacts};
use super::jar::jar_arch;
use super::producer::{core_display, x86_option_flags};
use super::rules;
use super::settings::Settings;
use crate::check::Verdict;
use proto::{Finding, Status};
use std::collections::BTreeSet;

/// Unit names shown in a finding before the rest is counted.
const UNITS_SHOWN: usize = 3;

/// glibc from which `dlopen` refuses a library whose `PT_GNU_STACK` asks for an executable stack
/// (glibc 2.41 NEWS).
const EXECSTACK_REFUSED_FROM_GLIBC: [u32; 2] = [2, 41];

fn version_number(v: &Option<String>) -> Option<Vec<u32>> {
    v.as_deref().and_then(parse_version).map(|(_, n)| n)
}

fn list(v: &[String]) -> String {
    v.join(", ")
}

/// The verdict from the facts.
pub fn evaluate(f: &Facts, settings: &Settings) -> Verdict {
    let mut o = Verdict::default();
    let nothing = nothing_installed(f, settings, &mut o);
    for l in &f.libraries {
        if l.role == "preload" {
            preload(f, l, &mut o);
        } else {
            library(f, l, nothing, &mut o);
        }
    }
    jars(f, &mut o);
    rules::needs(f, &mut o);
    load_probe(f, &mut o);
    cpu_flags(f, &mut o);
    o.ok_summary = Some(summary(f, settings));
    gauges(f, &mut o);
    inventory(f, &mut o);
    o
}

/// The libraries that exist (checked further).
fn checked(f: &Facts) -> Vec<&LibraryFacts> {
    f.libraries.iter().filter(|l| l.found).collect()
}

/// The default paths hold nothing and nothing else is configured: a warning, not a failure.
/// Whether that is the case.
fn nothing_installed(f: &Facts, settings: &Settings, o: &mut Verdict) -> bool {
    let nothing = settings.is_default_paths()
        && settings.jars.is_empty()
        && f.libraries
            .iter()
            .filter(|l| l.role == "configured")
            .all(|l| !l.found);
    if nothing {
        o.push(Finding::new(
            Status::Warn,
            format!(
                "no Velox library at {}; set [velox_library] paths or jars",
                list(
                    &settings
                        .paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                )
            ),
        ));
    }
    nothing
}

/// The rules of one configured library, in order; the first that makes it unloadable for a
/// reason of its own (absent, unreadable, wrong machine) stops the rest.
fn library(f: &Facts, l: &LibraryFacts, nothing_installed: bool, o: &mut Verdict) {
    if !l.found {
        if !nothing_installed {
            o.push(
                Finding::new(
                    Status::Fail,
                    format!(
                        "{}: no such file (the executor would fail with UnsatisfiedLinkError)",
                        l.path
                    ),
                )
                .about(&l.path),
            );
        }
        return;
    }
    if let Some(e) = &l.error {
        let status = if l.broken {
            Status::Fail
        } else {
            Status::Unknown
        };
        o.push(Finding::new(status, e.clone()).about(&l.path));
        return;
    }
    if !machine(f, l, o) {
        return;
    }
    missing_dependencies(f, l, o);
    missing_versions(f, l, o);
    exec_stack(f, l, o);
}

/// `spark.executorEnv.LD_PRELOAD`: ld.so only warns about a preload it cannot load ("cannot
/// be preloaded: ignored") and the executor runs without it (without jemalloc, RSS grows until
/// YARN or Kubernetes kills it: apache/gluten#7397): the library rules, as warnings.
fn preload(f: &Facts, l: &LibraryFacts, o: &mut Verdict) {
    let mut v = Verdict::default();
    if !l.found {
        v.push(
            Finding::new(
                Status::Fail,
                format!("{}: no such file in the executor's filesystem", l.path),
            )
            .about(&l.path),
        );
    } else {
        library(f, l, false, &mut v);
    }
    for mut finding in v.findings {
        if finding.status == Status::Fail {
            finding.status = Status::Warn;
        }
        finding.message = format!(
            "spark.executorEnv.LD_PRELOAD: {} (ld.so ignores it and the executor runs without it)",
            finding.message
        );
        o.push(finding);
    }
}

/// Machine and class must be the host's; `false` when they are not (nothing else applies).
fn machine(f: &Facts, l: &LibraryFacts, o: &mut Verdict) -> bool {
    let host_arch = &f.host_arch;
    let (Some((bits, machine)), Some(code), Some(lbits)) =
        (host_elf_kind(host_arch), l.machine_code, l.elf_class_bits)
    else {
        return true;
    };
    if code != machine {
        o.push(
            Finding::new(
                Status::Fail,
                format!(
                    "{} is built for {}, host is {host_arch}",
                    l.path,
                    machine_name(code)
                ),
            )
            .about(&l.path),
        );
        return false;
    }
    if lbits != bits {
        o.push(
            Finding::new(
                Status::Fail,
                format!("{} is {lbits}-bit ELF, host loads {bits}-bit", l.path),
            )
            .about(&l.path),
        );
        return false;
    }
    true
}

fn missing_dependencies(f: &Facts, l: &LibraryFacts, o: &mut Verdict) {
    if l.missing_dependencies.is_empty() {
        return;
    }
    let names: Vec<String> = l
        .missing_dependencies
        .iter()
        .map(|m| {
            let mut s = m.name.clone();
            if m.needed_by != l.library {
                s.push_str(&format!(" (needed by {})", m.needed_by));
            }
            if let Some(r) = &m.reason {
                s.push_str(&format!(" (at {r})"));
            }
            s
        })
        .collect();
    // The loader never reads ld.so.conf: without a cache its dirs are not searched.
    let hint = if f.ld_so_cache_format.is_none() && !f.ld_so_conf_dirs.is_empty() {
        format!(
            " (there is no /etc/ld.so.cache, so the ld.so.conf dirs {} are not searched: run ldconfig)",
            list(&f.ld_so_conf_dirs)
        )
    } else {
        String::new()
    };
    o.push(
        Finding::new(
            Status::Fail,
            format!(
                "{}: {} not found in RPATH/RUNPATH, library_path, ld.so cache or default dirs{hint}",
                l.library,
                list(&names)
            ),
        )
        .about(&l.path),
    );
}

fn missing_versions(f: &Facts, l: &LibraryFacts, o: &mut Verdict) {
    for m in &l.missing_versions {
        let has = m
            .provider_max
            .as_deref()
            .map(|v| format!("defines up to {v}"))
            .unwrap_or_else(|| "defines none of that family".into());
        let who = if m.needed_by == l.library {
            l.library.clone()
        } else {
            format!("{} (via {})", m.needed_by, l.library)
        };
        let root = f
            .executor_root
            .as_deref()
            .map(|r| format!(" in the executor root {r}"))
            .unwrap_or_default();
        o.push(
            Finding::new(
                Status::Fail,
                format!(
                    "{who} needs {} from {}, but {}{root} {has}",
                    m.version, m.file, m.provider
                ),
            )
            .about(&l.path),
        );
    }
}

/// `PT_GNU_STACK` RWE: glibc >= 2.41 refuses to dlopen it.
fn exec_stack(f: &Facts, l: &LibraryFacts, o: &mut Verdict) {
    if l.exec_stack != Some(true) {
        return;
    }
    let refused = version_number(&f.host_glibc_version)
        .is_some_and(|v| v.as_slice() >= EXECSTACK_REFUSED_FROM_GLIBC.as_slice());
    let (status, tail) = if refused {
        (
            Status::Fail,
            format!(
                "host glibc {} >= 2.41 refuses to dlopen it",
                f.host_glibc_version.as_deref().unwrap_or("?")
            ),
        )
    } else {
        (
            Status::Warn,
            "glibc >= 2.41 refuses to dlopen it (clear it with `execstack -c`)".to_string(),
        )
    };
    o.push(
        Finding::new(
            status,
            format!(
                "{} asks for an executable stack (PT_GNU_STACK RWE): {tail}",
                l.library
            ),
        )
        .about(&l.path),
    );
}

/// A configured jar must exist, be a jar, and hold libraries for the host's architecture.
fn jars(f: &Facts, o: &mut Verdict) {
    let host_arch = &f.host_arch;
    for j in &f.jars {
        if !j.found {
            o.push(Finding::new(Status::Fail, format!("{}: no such file", j.path)).about(&j.path));
        } else if let Some(e) = &j.error {
            o.push(Finding::new(Status::Fail, e.clone()).about(&j.path));
        } else if j.native_arches.is_empty() {
            o.push(
                Finding::new(
                    Status::Fail,
                    format!("{}: no native libraries under linux/<arch>/", j.path),
                )
                .about(&j.path),
            );
        } else if !j.native_arches.iter().any(|a| a == jar_arch(host_arch)) {
            o.push(
                Finding::new(
                    Status::Fail,
                    format!(
                        "{} has native libraries for {} only (linux/{}/), host is {host_arch}: it lacks linux/{}/ and Gluten cannot load on this host",
                        j.path,
                        list(&j.native_arches),
                        j.native_arches.join("/, linux/"),
                        jar_arch(host_arch)
                    ),
                )
                .about(&j.path),
            );
        }
    }
}

/// A probe that did not load fails; one that could not run is unknown.
fn load_probe(f: &Facts, o: &mut Verdict) {
    for p in &f.load_probe {
        let status = match p.result.as_str() {
            "loaded" => continue,
            "skipped" => Status::Unknown,
            _ => Status::Fail,
        };
        o.push(
            Finding::new(
                status,
                format!(
                    "dlopen probe of {}: {}{}",
                    p.path,
                    p.result,
                    p.detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            )
            .about(&p.path),
        );
    }
}

/// The libraries the CPU rules judge: configured, found, readable, of the host's machine.
fn cpu_judged(f: &Facts) -> Vec<&LibraryFacts> {
    f.libraries
        .iter()
        .filter(|l| l.found && l.error.is_none() && l.role != "preload")
        .filter(|l| {
            let kind = host_elf_kind(&f.host_arch);
            match (kind, l.machine_code, l.elf_class_bits) {
                (Some((bits, machine)), Some(code), Some(lbits)) => {
                    code == machine && lbits == bits
                }
                _ => true,
            }
        })
        .collect()
}

/// The producer record of a library judged by it.
fn by_record(l: &LibraryFacts) -> Option<&CpuNeedsFacts> {
    (l.cpu_needs_source.as_deref() == Some("producer"))
        .then_some(l.cpu_needs.as_ref())
        .flatten()
}

/// The host's CPU as a finding names it: `this Neoverse N1`, `this CPU`.
fn this_cpu(f: &Facts) -> String {
    match &f.cpu_core {
        Some(c) => match &c.core {
            Some(n) => format!("this {}", core_display(n)),
            None => format!("this CPU ({})", c.label),
        },
        None => "this CPU".to_string(),
    }
}

/// Unit names, a few, then a count.
fn some_units(units: &[String]) -> String {
    let mut s = units
        .iter()
        .take(UNITS_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if units.len() > UNITS_SHOWN {
        s.push_str(&format!(" and {} more", units.len() - UNITS_SHOWN));
    }
    s
}

/// The missing required flags of a library judged by its record, with the options behind them.
fn record_fail(f: &Facts, l: &LibraryFacts, n: &CpuNeedsFacts, missing: &[&str]) -> String {
    let lacks = missing.join(", ");
    let cpu = this_cpu(f);
    if f.host_arch == "aarch64" {
        // One target option per unit (`-mcpu=` or `-march=`).
        return match n.target_options.first() {
            Some(t) => format!(
                "{} was built with {} ({lacks}); {cpu} lacks {lacks} (SIGILL where that code runs)",
                l.library, t.option
            ),
            None => format!(
                "{} was built for {lacks}; {cpu} lacks {lacks} (SIGILL where that code runs)",
                l.library
            ),
        };
    }
    let options: Vec<_> = n
        .target_options
        .iter()
        .filter(|t| {
            x86_option_flags(&t.option)
                .iter()
                .any(|x| missing.contains(x))
        })
        .collect();
    if options.is_empty() {
        return format!(
            "{} needs {lacks} (its compile units' producer records); {cpu} lacks {lacks} (SIGILL where that code runs)",
            l.library
        );
    }
    let fewest = options.iter().map(|t| t.units).min().unwrap_or(0);
    let where_ = if fewest >= n.units_considered {
        "throughout".to_string()
    } else {
        format!("in {fewest} of its {} compile units", n.units_considered)
    };
    format!(
        "{} was compiled with {} {where_}; {cpu} lacks {lacks} (SIGILL where that code runs)",
        l.library,
        options
            .iter()
            .map(|t| t.option.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// CPU flags a library needs and `/proc/cpuinfo` lacks mean SIGILL. A library with a producer
/// record is judged by it: a flag most of its units need fails, one a few units need warns
/// naming them, one only the program's own dispatch uses is reported in the facts. A library
/// without one (and the host when no library is checked) is judged by the built-in list.
fn cpu_flags(f: &Facts, o: &mut Verdict) {
    let host: Option<BTreeSet<&str>> = f
        .cpu_flags
        .as_ref()
        .map(|v| v.iter().map(String::as_str).collect());
    let judged = cpu_judged(f);
    let mut builtin: Vec<&LibraryFacts> = Vec::new();
    for l in &judged {
        let Some(n) = by_record(l) else {
            builtin.push(l);
            continue;
        };
        let Some(host) = &host else {
            if !n.required.is_empty() {
                o.push(
                    Finding::new(
                        Status::Unknown,
                        format!(
                            "cannot tell whether the CPU has {} ({}'s producer record): /proc/cpuinfo is missing or lists no flags",
                            list(&n.required),
                            l.library
                        ),
                    )
                    .about(&l.path),
                );
            }
            continue;
        };
        let missing: Vec<&str> = n
            .required
            .iter()
            .map(String::as_str)
            .filter(|x| !host.contains(x))
            .collect();
        if !missing.is_empty() {
            o.push(Finding::new(Status::Fail, record_fail(f, l, n, &missing)).about(&l.path));
        }
        for (flag, units) in n
            .minority
            .iter()
            .filter(|(x, _)| !host.contains(x.as_str()))
        {
            o.push(
                Finding::new(
                    Status::Warn,
                    format!(
                        "{}: {} of its {} compile units {} built with {flag}, which {} lacks: {} (SIGILL if their code runs)",
                        l.library,
                        units.len(),
                        n.units_considered,
                        if units.len() == 1 { "was" } else { "were" },
                        this_cpu(f),
                        some_units(units)
                    ),
                )
                .about(&l.path),
            );
        }
    }
    if !judged.is_empty() && builtin.is_empty() {
        return;
    }
    let (who, why) = if builtin.is_empty() {
        ("required_cpu_flags".to_string(), String::new())
    } else {
        (
            list(
                &builtin
                    .iter()
                    .map(|l| l.library.clone())
                    .collect::<Vec<_>>(),
            ),
            builtin_why(&builtin),
        )
    };
    match &host {
        None if !f.required_cpu_flags.is_empty() => o.push(Finding::new(
            Status::Unknown,
            format!(
                "cannot tell whether the CPU has {}: /proc/cpuinfo is missing or lists no flags{why}",
                list(&f.required_cpu_flags)
            ),
        )),
        Some(host) => {
            let missing: Vec<String> = builtin_missing(f, host);
            if !missing.is_empty() {
                o.push(Finding::new(
                    Status::Fail,
                    format!(
                        "{who} needs {}: not in /proc/cpuinfo flags (SIGILL at load){why}",
                        list(&missing)
                    ),
                ));
            }
        }
        _ => {}
    }
}

/// Why the built-in list judges these libraries: no record, or one that could not be read.
fn builtin_why(libs: &[&LibraryFacts]) -> String {
    let unreadable: Vec<String> = libs
        .iter()
        .filter_map(|l| {
            let n = l.cpu_needs.as_ref()?;
            (n.record == "unreadable").then(|| {
                format!(
                    "{}'s producer record could not be read: {}",
                    l.library,
                    n.error.as_deref().unwrap_or("unknown error")
                )
            })
        })
        .collect();
    if !unreadable.is_empty() {
        return format!(" (judged by the built-in list: {})", unreadable.join("; "));
    }
    if libs.len() == 1 {
        " (judged by the built-in list: the library has no producer record)".to_string()
    } else {
        " (judged by the built-in list: the libraries have no producer record)".to_string()
    }
}

/// Flags of the built-in list the host lacks.
fn builtin_missing(f: &Facts, host: &BTreeSet<&str>) -> Vec<String> {
    f.required_cpu_flags
        .iter()
        .filter(|x| !host.contains(x.as_str()))
        .cloned()
        .collect()
}

/// Every flag the judged libraries need (by record or the built-in list) that the host lacks;
/// `None` when cpuinfo is unknown.
fn missing_cpu_flags(f: &Facts) -> Option<(usize, BTreeSet<String>)> {
    let host: BTreeSet<&str> = f.cpu_flags.as_ref()?.iter().map(String::as_str).collect();
    let judged = cpu_judged(f);
    let mut needed: BTreeSet<String> = BTreeSet::new();
    if judged.is_empty() || judged.iter().any(|l| by_record(l).is_none()) {
        needed.extend(f.required_cpu_flags.iter().cloned());
    }
    for n in judged.iter().filter_map(|l| by_record(l)) {
        needed.extend(n.required.iter().cloned());
    }
    let missing = needed
        .iter()
        .filter(|x| !host.contains(x.as_str()))
        .cloned()
        .collect();
    Some((needed.len(), missing))
}

/// The `ok` sentence: what was resolved, the highest glibc needed, the CPU flags.
fn summary(f: &Facts, settings: &Settings) -> String {
    let checked = checked(f);
    let deps: usize = checked.iter().map(|l| l.resolved.len()).sum();
    let mut parts = Vec::new();
    if !checked.is_empty() {
        parts.push(format!(
            "{}: {deps} dependencies resolved",
            list(
                &checked
                    .iter()
                    .map(|l| l.library.clone())
                    .collect::<Vec<_>>()
            )
        ));
        if let Some(g) = checked
            .iter()
            .filter_map(|l| l.max_glibc_required.clone())
            .max_by_key(|v| version_number(&Some(v.clone())))
        {
            let whose = match &f.executor_root {
                Some(r) => format!("the executor root {r}"),
                None => "host".to_string(),
            };
            parts.push(format!(
                "needs {g} ({whose} defines up to {})",
                f.host_glibc_version.as_deref().unwrap_or("unknown")
            ));
        }
    } else if settings.paths.is_empty() && settings.jars.is_empty() {
        parts.push("no library configured".to_string());
    }
    if let Some((needed, _)) = missing_cpu_flags(f) {
        parts.push(format!("CPU has all {needed} required flags"));
    }
    parts.join("; ")
}

fn gauges(f: &Facts, o: &mut Verdict) {
    for l in checked(f) {
        o.gauge(
            "gluten_node_velox_library_missing_dependencies",
            "Dependencies of the library the dynamic loader would not find.",
            &[("library", &l.library)],
            l.missing_dependencies.len() as f64,
        );
        if let Some(size) = l.size_bytes {
            o.gauge(
                "gluten_node_velox_library_size_bytes",
                "Size of the native library file.",
                &[("library", &l.library)],
                size as f64,
            );
        }
        o.gauge(
            "gluten_node_velox_library_info",
            "Always 1; labels identify the native library build.",
            &[
                ("library", &l.library),
                ("build_id", l.build_id.as_deref().unwrap_or("")),
            ],
            1.0,
        );
    }
    if let Some((_, m)) = &missing_cpu_flags(f) {
        o.gauge(
            "gluten_node_velox_library_missing_cpu_flags",
            "Required CPU flags not in /proc/cpuinfo.",
            &[],
            m.len() as f64,
        );
    }
}

fn inventory(f: &Facts, o: &mut Verdict) {
    let checked = checked(f);
    let has_velox = checked.iter().any(|l| l.library == "libvelox.so");
    let build_ids: Vec<String> = checked
        .iter()
        .filter(|l| l.library == "libvelox.so")
        .chain(checked.iter().filter(|l| l.library != "libvelox.so"))
        .filter_map(|l| l.build_id.clone())
        .take(if has_velox { 1 } else { usize::MAX })
        .collect();
    if !build_ids.is_empty() {
        o.inventory
            .push(("velox_library.build_id".into(), build_ids.join(",")));
    }
    // The identity drift compares when there is no build id (official Gluten builds have none).
    if let Some(id) = checked
        .iter()
        .filter(|l| l.role != "preload")
        .find(|l| l.library == "libvelox.so")
        .or_else(|| checked.iter().find(|l| l.role != "preload"))
        .and_then(|l| l.identity.clone())
    {
        o.inventory.push(("velox_library.identity".into(), id));
    }
    if let Some(flags) = &f.isa_cpu_flags {
        o.inventory.push(("cpu.flags".into(), flags.join(" ")));
    }
    // arm64: the core (label-safe: GCC's -mcpu name, else unknown-<implementer>-<part>).
    if let Some(c) = &f.cpu_core {
        o.inventory.push(("cpu.core".into(), c.label.clone()));
    }
    if let Some(v) = f
        .jars
        .iter()
        .find_map(|j| j.build_info.get("gluten_version"))
    {
        o.inventory
            .push(("velox_library.gluten_version".into(), v.clone()));
    }
    if let Some(v) = &f.host_glibc_version {
        o.inventory
            .push(("velox_library.host_glibc".into(), v.clone()));
    }
}

#[cfg(test)]
mod tests;
