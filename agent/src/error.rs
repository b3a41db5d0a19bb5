//! Errors of reading and parsing the machine: below both `host` and `check`, so neither imports
//! the other for them. A check that could not check returns a `CheckError`; a pure parser a
//! `ParseError` without the path (the reader adds it).

use std::path::{Path, PathBuf};

/// A pure parser's complaint about its input, without the path (the reader adds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(reason: impl Into<String>) -> Self {
        ParseError(reason.into())
    }

    /// A complaint about line `line` (1-based).
    pub fn at_line(line: usize, reason: impl std::fmt::Display) -> Self {
        ParseError(format!("line {line}: {reason}"))
    }
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

    pub fn parse(path: &Path, reason: ParseError) -> Self {
        CheckError::Parse {
            path: path.to_path_buf(),
            reason,
        }
    }
}

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
}
