//! Errors of reading and parsing the machine: below both `host` and `check`, so neither imports
//! the other for them. A check that could not check returns a `CheckError`; a pure parser a
//! `ParseError` without the path (the reader adds it).
//!
//! A parse error quotes the input it could not read, and the input is the host's (or whatever a
//! link in a fixture points at): the reason is kept printable (control characters escaped) and
//! short ([`MAX_REASON_BYTES`]), whatever a parser formats, so a malformed 2 MB file yields a
//! sentence, not the file ([`excerpt`] for quoting input on purpose).

use std::path::{Path, PathBuf};

/// The longest reason a `ParseError` keeps, in bytes; a longer one is cut at a character
/// boundary and ends in `...`.
pub const MAX_REASON_BYTES: usize = 200;

/// The most characters of input [`excerpt`] quotes.
pub const EXCERPT_CHARS: usize = 64;

/// A pure parser's complaint about its input, without the path (the reader adds it). Made with
/// [`ParseError::new`] or [`ParseError::at_line`], which keep it short and printable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(reason: impl Into<String>) -> Self {
        ParseError(bounded(&reason.into()))
    }

    /// A complaint about line `line` (1-based).
    pub fn at_line(line: usize, reason: impl std::fmt::Display) -> Self {
        ParseError(bounded(&format!("line {line}: {reason}")))
    }
}

/// A short quote of malformed input for an error sentence: at most [`EXCERPT_CHARS`]
/// characters, in double quotes, escaped as Rust's `{:?}` escapes (so no control character
/// reaches a terminal or a log line), `...` after the quote when cut.
pub fn excerpt(input: &str) -> String {
    let mut chars = input.chars();
    let head: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

/// `text` with control characters escaped and cut to [`MAX_REASON_BYTES`].
fn bounded(text: &str) -> String {
    const CUT: &str = "...";
    let mut out = String::with_capacity(text.len().min(MAX_REASON_BYTES));
    for c in text.chars() {
        let piece: String = if c.is_control() {
            c.escape_debug().collect()
        } else {
            c.to_string()
        };
        if out.len() + piece.len() > MAX_REASON_BYTES - CUT.len() {
            out.push_str(CUT);
            return out;
        }
        out.push_str(&piece);
    }
    out
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Why a check could not check. Becomes status `unknown` with this text as the reason.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {reason}")]
    Parse { path: PathBuf, reason: ParseError },
    /// A system call on a file failed (`statvfs of /data: EACCES: Permission denied`).
    #[error("{call} of {}: {source}", path.display())]
    Call {
        call: &'static str,
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    /// Settings that break a rule (the config was validated, so only a check built by hand).
    #[error("{0}")]
    Settings(#[from] SettingsError),
    #[error("{0}")]
    Other(String),
}

impl CheckError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        CheckError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A parse error about `path`. The reason is bounded again here, so a `ParseError` built
    /// directly from its field is no longer than one built with `ParseError::new`.
    pub fn parse(path: &Path, reason: ParseError) -> Self {
        CheckError::Parse {
            path: path.to_path_buf(),
            reason: ParseError(bounded(&reason.0)),
        }
    }
}

/// Why a jar (a zip) or one of its entries could not be read. `jar` is the jar as the
/// configuration or the classpath names it, `entry` the name inside it.
#[derive(Debug, thiserror::Error)]
pub enum JarError {
    #[error("reading {jar}: {source}")]
    Read {
        jar: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{jar} is not a regular file")]
    NotAFile { jar: String },
    #[error("{jar}: not a jar: {source}")]
    NotAJar {
        jar: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{jar}!{entry}: {source}")]
    Entry {
        jar: String,
        entry: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{jar}!{entry}: {source}")]
    EntryRead {
        jar: String,
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{jar}!{entry}: {size} bytes is too large")]
    TooLarge {
        jar: String,
        entry: String,
        size: u64,
    },
}

/// A rule of a check's settings that the configuration breaks: the key it is about and what is
/// wrong with it. `CheckSettings::validate` names the key within the check's table
/// (`pools[1].min_free`); the registry adds the table ([`SettingsError::in_table`]), so the key
/// becomes the full config key (`hugepages.pools[1].min_free`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The config key: within the table until [`SettingsError::in_table`], the full key after.
    pub key: String,
    /// What is wrong, as a sentence that follows the key: "must be at least 1, got 0".
    pub problem: String,
    /// The check's table (`memory`), once named.
    pub table: Option<&'static str>,
}

impl SettingsError {
    /// A broken rule about `key` (within the check's table).
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        SettingsError {
            key: key.into(),
            problem: problem.into(),
            table: None,
        }
    }

    /// The same error with `table` named: the key becomes the full config key.
    pub fn in_table(self, table: &'static str) -> Self {
        if self.table.is_some() {
            return self;
        }
        SettingsError {
            key: format!("{table}.{}", self.key),
            problem: self.problem,
            table: Some(table),
        }
    }

    /// The key within the check's table.
    pub fn field(&self) -> &str {
        match self.table {
            Some(t) => self
                .key
                .strip_prefix(t)
                .and_then(|k| k.strip_prefix('.'))
                .unwrap_or(&self.key),
            None => &self.key,
        }
    }
}

/// "`min_open_files` must be at least 1, got 0"; with the table named, prefixed by `config
/// [limits]: `.
impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(t) = self.table {
            write!(f, "config [{t}]: ")?;
        }
        write!(f, "`{}` {}", self.field(), self.problem)
    }
}

impl std::error::Error for SettingsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_path() {
        let e = CheckError::io(
            Path::new("/host/proc/meminfo"),
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(
            e.to_string(),
            "reading /host/proc/meminfo: permission denied"
        );
        let e = CheckError::parse(
            Path::new("/proc/meminfo"),
            ParseError::at_line(3, "no value"),
        );
        assert_eq!(e.to_string(), "parsing /proc/meminfo: line 3: no value");
    }

    #[test]
    fn reasons_stay_short_and_printable_whatever_the_input() {
        let line = "\u{1b}[31mroot:$6$hash".repeat(100_000);
        let e = ParseError::at_line(2, format!("no ':' in {line}"));
        assert!(e.0.len() <= MAX_REASON_BYTES, "{}", e.0.len());
        assert!(e.0.starts_with("line 2: no ':' in \\u{1b}[31mroot"), "{e}");
        assert!(e.0.ends_with("..."), "{e}");
        assert!(!e.0.chars().any(char::is_control), "{e}");
        // Built from the field, bounded when it becomes a CheckError.
        let raw = ParseError::new(format!("x{line}"));
        let c = CheckError::parse(Path::new("/proc/vmstat"), raw).to_string();
        assert!(
            c.len() <= MAX_REASON_BYTES + "parsing /proc/vmstat: ".len(),
            "{c}"
        );
        assert!(!c.chars().any(char::is_control));
        // Short reasons are kept as they are, multi-byte characters are never split.
        assert_eq!(ParseError::new("bad value \"é\"").0, "bad value \"é\"");
        let e = ParseError::new("é".repeat(MAX_REASON_BYTES));
        assert!(e.0.len() <= MAX_REASON_BYTES && e.0.ends_with("..."));
    }

    #[test]
    fn settings_errors_name_the_key_then_the_full_key() {
        let e = SettingsError::new(
            "pools[1].min_free",
            "must not exceed `pools[1].min_total` (2)",
        );
        assert_eq!(
            e.to_string(),
            "`pools[1].min_free` must not exceed `pools[1].min_total` (2)"
        );
        let e = e.in_table("hugepages");
        assert_eq!(e.key, "hugepages.pools[1].min_free");
        assert_eq!(e.field(), "pools[1].min_free");
        assert_eq!(
            e.to_string(),
            "config [hugepages]: `pools[1].min_free` must not exceed `pools[1].min_total` (2)"
        );
        assert_eq!(e.clone().in_table("hugepages"), e);
    }

    #[test]
    fn excerpts_are_quoted_escaped_and_cut() {
        assert_eq!(excerpt("abc"), "\"abc\"");
        assert_eq!(excerpt("a\tb\u{7}"), "\"a\\tb\\u{7}\"");
        let long = "x".repeat(1000);
        let e = excerpt(&long);
        assert_eq!(e, format!("{:?}...", "x".repeat(EXCERPT_CHARS)));
    }
}
