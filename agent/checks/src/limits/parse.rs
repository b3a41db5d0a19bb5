//! Pure parsers of the limits check: `/proc/<pid>/limits`, a pid file, the executors' Java
//! options (`MaxFDLimit`) and `kernel.core_pattern`.

use crate::error::{ParseError, excerpt};
use serde::{Serialize, Serializer};
use std::path::PathBuf;

/// One resource limit value: a number (in the row's unit) or `unlimited` (`RLIM_INFINITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rlim {
    Value(u64),
    Unlimited,
}

impl Rlim {
    /// Whether this limit is below `floor` (`unlimited` never is).
    pub fn below(self, floor: u64) -> bool {
        matches!(self, Rlim::Value(v) if v < floor)
    }

    /// As a gauge value: `unlimited` is `+Inf`.
    pub fn gauge(self) -> f64 {
        match self {
            Rlim::Value(v) => v as f64,
            Rlim::Unlimited => f64::INFINITY,
        }
    }
}

impl std::fmt::Display for Rlim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rlim::Value(v) => write!(f, "{v}"),
            Rlim::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// A number, or the string `"unlimited"`.
impl Serialize for Rlim {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Rlim::Value(v) => s.serialize_u64(*v),
            Rlim::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

fn rlim(token: &str) -> Option<Rlim> {
    if token == "unlimited" {
        Some(Rlim::Unlimited)
    } else {
        token.parse().ok().map(Rlim::Value)
    }
}

/// A soft and a hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SoftHard {
    pub soft: Rlim,
    pub hard: Rlim,
}

/// One row of `/proc/<pid>/limits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRow {
    /// As the kernel names it (`Max open files`).
    pub name: String,
    pub limit: SoftHard,
    /// `files`, `bytes`, ...; none for the nice and realtime priorities.
    pub unit: Option<String>,
}

/// The kernel's name of `RLIMIT_NOFILE` in `/proc/<pid>/limits`.
pub const OPEN_FILES: &str = "Max open files";
/// The kernel's name of `RLIMIT_CORE` in `/proc/<pid>/limits`.
pub const CORE_FILE_SIZE: &str = "Max core file size";

/// Parses `/proc/<pid>/limits` (`fs/proc/base.c`, `proc_pid_limits`): a header line starting
/// with `Limit`, then one row per resource, `%-25s %-20s %-20s %-10s` (name, soft, hard, unit),
/// values a decimal number or `unlimited`. Names are found by their words, not by column, so a
/// resource a later kernel adds parses too.
pub fn parse_proc_limits(text: &str) -> Result<Vec<LimitRow>, ParseError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.split_whitespace().next() == Some("Limit") => {}
        Some((_, header)) => {
            return Err(ParseError::at_line(
                1,
                format!(
                    "expected the header \"Limit Soft Limit Hard Limit Units\", got {}",
                    excerpt(header)
                ),
            ));
        }
        None => return Err(ParseError::new("empty file")),
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.is_empty() {
            continue;
        }
        // The first token that is a value starts the soft limit; the name is what precedes it.
        let at = tokens.iter().position(|t| rlim(t).is_some());
        let (Some(at), true) = (at, at.is_some_and(|a| a > 0)) else {
            return Err(ParseError::at_line(
                i + 1,
                format!("no limit name and values in {}", excerpt(line)),
            ));
        };
        let (Some(soft), Some(hard)) = (rlim(tokens[at]), tokens.get(at + 1).and_then(|t| rlim(t)))
        else {
            return Err(ParseError::at_line(
                i + 1,
                format!("expected a soft and a hard limit in {}", excerpt(line)),
            ));
        };
        rows.push(LimitRow {
            name: tokens[..at].join(" "),
            limit: SoftHard { soft, hard },
            unit: tokens.get(at + 2).map(|u| u.to_string()),
        });
    }
    Ok(rows)
}

/// The limits the check uses, out of the rows: open files (required) and core file size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rlimits {
    pub open_files: SoftHard,
    /// Bytes; none when the file has no such row.
    pub core_file_bytes: Option<SoftHard>,
}

/// [`parse_proc_limits`], then the rows the check uses; a file without `Max open files` is an
/// error.
pub fn parse_rlimits(text: &str) -> Result<Rlimits, ParseError> {
    let rows = parse_proc_limits(text)?;
    let find = |name: &str| rows.iter().find(|r| r.name == name).map(|r| r.limit);
    let open_files =
        find(OPEN_FILES).ok_or_else(|| ParseError::new(format!("no \"{OPEN_FILES}\" row")))?;
    Ok(Rlimits {
        open_files,
        core_file_bytes: find(CORE_FILE_SIZE),
    })
}

/// The highest pid Linux can hand out (`PID_MAX_LIMIT` on 64-bit, 2^22).
pub const PID_MAX_LIMIT: u32 = 4_194_304;

/// The pid in a pid file: its text, trimmed, a decimal number in 1..=[`PID_MAX_LIMIT`] (what
/// `echo $! > pidfile` writes). The error quotes the value.
pub fn parse_pid(text: &str) -> Result<u32, ParseError> {
    let t = text.trim();
    match t.parse::<u32>() {
        Ok(pid) if (1..=PID_MAX_LIMIT).contains(&pid) => Ok(pid),
        _ => Err(ParseError::new(format!(
            "{} is not a process id",
            excerpt(t)
        ))),
    }
}

/// The Spark keys whose Java options the executor JVM starts with, in the order Spark joins
/// them (`defaultJavaOptions` first, Spark 3.0+).
pub const JAVA_OPTION_KEYS: [&str; 2] = [
    "spark.executor.defaultJavaOptions",
    "spark.executor.extraJavaOptions",
];

/// Whether Java options turn HotSpot's `MaxFDLimit` off: the last `-XX:±MaxFDLimit` wins, as
/// in HotSpot's own argument parsing. `MaxFDLimit` is on by default: at start the JVM raises
/// its soft `RLIMIT_NOFILE` to the hard one (`os::init_2` in `os_linux.cpp`).
pub fn max_fd_limit_off(java_options: &str) -> bool {
    java_options
        .split_whitespace()
        .fold(false, |off, t| match t {
            "-XX:-MaxFDLimit" => true,
            "-XX:+MaxFDLimit" => false,
            _ => off,
        })
}

/// Where `kernel.core_pattern` sends core dumps (`Documentation/admin-guide/sysctl/kernel.rst`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CoreDestination {
    /// `|/path/handler args`: piped to a user-space handler (systemd-coredump, apport, abrt).
    Pipe { handler: String },
    /// An absolute path: cores land in `dir` (as the crashing process sees its mounts).
    /// `template` when the directory part has `%` specifiers (then no one directory).
    Path { dir: PathBuf, template: bool },
    /// A relative name (the kernel's default `core`): the crashing process's working directory,
    /// for an executor its YARN container dir or its pod's working dir; not known here.
    Relative,
}

/// Parses `kernel.core_pattern` (its first line).
pub fn parse_core_pattern(pattern: &str) -> CoreDestination {
    let p = pattern.lines().next().unwrap_or("").trim();
    if let Some(cmd) = p.strip_prefix('|') {
        return CoreDestination::Pipe {
            handler: cmd.split_whitespace().next().unwrap_or("").to_string(),
        };
    }
    if p.starts_with('/') {
        let dir = std::path::Path::new(p)
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"));
        let template = dir.to_string_lossy().contains('%');
        return CoreDestination::Path { dir, template };
    }
    CoreDestination::Relative
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `/proc/self/limits` of a Linux 6.18 machine, captured whole (column padding and trailing
    /// blanks as the kernel prints them).
    pub(crate) const REAL: &str = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             96367                96367                processes 
Max open files            20000                20000                files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
Max pending signals       96367                96367                signals   
Max msgqueue size         819200               819200               bytes     
Max nice priority         0                    0                    
Max realtime priority     0                    0                    
Max realtime timeout      unlimited            unlimited            us        
";

    #[test]
    fn real_file_parses_every_row() {
        let rows = parse_proc_limits(REAL).unwrap();
        assert_eq!(rows.len(), 16);
        assert_eq!(rows[4].name, CORE_FILE_SIZE);
        assert_eq!(rows[13].name, "Max nice priority");
        assert_eq!(rows[13].unit, None);
        assert_eq!(rows[15].unit.as_deref(), Some("us"));
        let r = parse_rlimits(REAL).unwrap();
        assert_eq!(
            r.open_files,
            SoftHard {
                soft: Rlim::Value(20_000),
                hard: Rlim::Value(20_000)
            }
        );
        assert_eq!(
            r.core_file_bytes,
            Some(SoftHard {
                soft: Rlim::Value(0),
                hard: Rlim::Unlimited
            })
        );
        assert_eq!(
            serde_json::to_value(r.core_file_bytes).unwrap(),
            serde_json::json!({"soft": 0, "hard": "unlimited"})
        );
    }

    #[test]
    fn malformed_files_are_errors_naming_the_line() {
        assert!(parse_proc_limits("").is_err());
        let e = parse_proc_limits("Max open files 1 2\n").unwrap_err();
        assert!(e.0.starts_with("line 1: expected the header"), "{e}");
        let e = parse_proc_limits("Limit Soft Hard Units\nMax open files lots\n").unwrap_err();
        assert!(e.0.starts_with("line 2: no limit name"), "{e}");
        let e = parse_proc_limits("Limit Soft Hard Units\nMax open files 1024 x\n").unwrap_err();
        assert!(e.0.starts_with("line 2: expected a soft and a hard"), "{e}");
        let e = parse_rlimits("Limit Soft Hard Units\nMax cpu time 1 2 seconds\n").unwrap_err();
        assert!(e.0.contains("Max open files"), "{e}");
    }

    #[test]
    fn pids_are_positive_numbers_and_errors_quote_the_value() {
        assert_eq!(parse_pid("4242\n"), Ok(4242));
        assert_eq!(parse_pid("  7 "), Ok(7));
        for bad in ["", "0", "-1", "12abc", "4194305", "1 2"] {
            let e = parse_pid(bad).unwrap_err();
            assert!(e.0.contains(&format!("{:?}", bad.trim())), "{e}");
        }
    }

    #[test]
    fn the_last_max_fd_limit_option_wins() {
        assert!(!max_fd_limit_off(""));
        assert!(max_fd_limit_off("-Xss4m -XX:-MaxFDLimit"));
        assert!(!max_fd_limit_off("-XX:-MaxFDLimit -XX:+MaxFDLimit"));
        assert!(max_fd_limit_off("-XX:+MaxFDLimit  -XX:-MaxFDLimit -Dx=1"));
        assert!(!max_fd_limit_off("-XX:-MaxFDLimitX"));
    }

    #[test]
    fn core_patterns() {
        assert_eq!(
            parse_core_pattern("|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h\n"),
            CoreDestination::Pipe {
                handler: "/usr/lib/systemd/systemd-coredump".into()
            }
        );
        assert_eq!(
            parse_core_pattern("/var/crash/core.%e.%p\n"),
            CoreDestination::Path {
                dir: "/var/crash".into(),
                template: false
            }
        );
        assert_eq!(
            parse_core_pattern("/cores/%h/core.%p"),
            CoreDestination::Path {
                dir: "/cores/%h".into(),
                template: true
            }
        );
        assert_eq!(parse_core_pattern("core\n"), CoreDestination::Relative);
        assert_eq!(parse_core_pattern(""), CoreDestination::Relative);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_proc_limits(&s);
            let _ = parse_rlimits(&s);
            let _ = parse_pid(&s);
            let _ = max_fd_limit_off(&s);
            let _ = parse_core_pattern(&s);
        }

        #[test]
        fn limits_files_in_the_kernel_layout_round_trip(
            soft in prop_oneof![Just(None), (0u64..u64::MAX).prop_map(Some)],
            hard in prop_oneof![Just(None), (0u64..u64::MAX).prop_map(Some)],
        ) {
            let v = |x: Option<u64>| x.map_or(Rlim::Unlimited, Rlim::Value);
            let text = format!(
                "{}{}",
                REAL.lines().next().unwrap(),
                format_args!("\n{:<25} {:<20} {:<20} {:<10}\n", OPEN_FILES, v(soft), v(hard), "files")
            );
            let r = parse_rlimits(&text).unwrap();
            prop_assert_eq!(r.open_files, SoftHard { soft: v(soft), hard: v(hard) });
        }
    }
}
