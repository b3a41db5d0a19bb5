//! Gluten's own OS gate, decided exactly as Gluten decides it: with
//! `spark.gluten.loadLibFromJar=true`, which `SharedLibraryLoader` loads the third-party
//! libraries libvelox.so needs, or the exception Gluten throws instead.
//!
//! Self-contained (std and serde only): inputs are plain bytes and strings.
//!
//! Two gates, per Gluten release ([`GlutenRelease`]):
//! - [`GlutenGate::Spi`] (1.6.0, 1.7.0): `backends-velox/src/main/scala/org/apache/gluten/utils/SharedLibraryLoaderUtils.scala`.
//!   The OS is `spark.gluten.loadLibOS` with `spark.gluten.loadLibOSVersion` (the first without
//!   the second is an error; the second alone is ignored), else `NAME` and `VERSION` of
//!   `/etc/os-release` read by `java.util.Properties.load(InputStream)` (ISO-8859-1, Java escapes)
//!   with one leading and one trailing `"` stripped ([`parse_os_release`]). Every loader named in
//!   `META-INF/services/org.apache.gluten.spi.SharedLibraryLoader` (`java.util.ServiceLoader`, in
//!   class-path order, duplicates once) is asked `accepts(osName, osVersion)`; none, more than one,
//!   or a `NullPointerException` (a missing `NAME`, or a missing `VERSION` reaching a rule that
//!   reads it) ends the executor's start.
//! - [`GlutenGate::FixedChain`] (1.4.0, 1.5.0): `backends-velox/src/main/scala/org/apache/gluten/utils/SharedLibraryLoader.scala`.
//!   `cat /etc/os-release`, the first line starting `NAME=` / `VERSION=` matched against
//!   `^NAME="?(.*)"?` (which keeps the trailing quote: `CentOS Linux"`), then a fixed `if` chain.
//!
//! Not modelled: the macOS branch (`os.name` of the JVM), custom loaders whose class is unknown
//! here ([`Decision::UnknownLoader`], never a guess), and whether the libraries are present.

mod libraries;
pub mod rules;
#[cfg(test)]
mod tests;

use rules::{ChainLoader, ChainStep, LoaderRule, NullField, Operands};
use serde::Serialize;

/// The Spark setting that turns the gate on (default false).
pub const LOAD_LIB_FROM_JAR: &str = "spark.gluten.loadLibFromJar";
/// The Spark setting that overrides the OS name.
pub const LOAD_LIB_OS: &str = "spark.gluten.loadLibOS";
/// The Spark setting that overrides the OS version.
pub const LOAD_LIB_OS_VERSION: &str = "spark.gluten.loadLibOSVersion";
/// The service file the SPI gate reads.
pub const SERVICES_FILE: &str = "META-INF/services/org.apache.gluten.spi.SharedLibraryLoader";

/// The Gluten releases whose gate is modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum GlutenRelease {
    V1_4,
    V1_5,
    V1_6,
    V1_7,
}

/// How a release picks its loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GlutenGate {
    /// `ServiceLoader` over `org.apache.gluten.spi.SharedLibraryLoader` (1.6+).
    Spi,
    /// `SharedLibraryLoader.getForOS`'s fixed chain (≤ 1.5).
    FixedChain,
}

impl GlutenRelease {
    /// The release from a `gluten_version` such as `1.7.0` (build info), if modelled.
    pub fn from_version(version: &str) -> Option<GlutenRelease> {
        let mut parts = version.trim().split(['.', '-']);
        match (parts.next()?, parts.next()?) {
            ("1", "4") => Some(GlutenRelease::V1_4),
            ("1", "5") => Some(GlutenRelease::V1_5),
            ("1", "6") => Some(GlutenRelease::V1_6),
            ("1", "7") => Some(GlutenRelease::V1_7),
            _ => None,
        }
    }

    pub fn gate(self) -> GlutenGate {
        match self {
            GlutenRelease::V1_4 | GlutenRelease::V1_5 => GlutenGate::FixedChain,
            GlutenRelease::V1_6 | GlutenRelease::V1_7 => GlutenGate::Spi,
        }
    }

    /// The SPI loaders this release's classes implement (empty for the fixed chain).
    pub fn spi_rules(self) -> &'static [LoaderRule] {
        match self {
            GlutenRelease::V1_4 | GlutenRelease::V1_5 => &[],
            GlutenRelease::V1_6 => rules::SPI_1_6,
            GlutenRelease::V1_7 => rules::SPI_1_7,
        }
    }

    /// The loaders the release's own bundle declares in [`SERVICES_FILE`], in its order.
    pub fn bundled_loaders(self) -> Vec<&'static str> {
        self.spi_rules().iter().map(|r| r.class).collect()
    }

    fn chain(self) -> (&'static [ChainStep], &'static [ChainLoader], &'static str) {
        match self {
            GlutenRelease::V1_4 => (
                rules::CHAIN_1_4,
                rules::CHAIN_LOADERS_1_4,
                rules::UNSUPPORTED_TAIL_1_4,
            ),
            _ => (
                rules::CHAIN_1_5,
                rules::CHAIN_LOADERS_1_5,
                rules::UNSUPPORTED_TAIL_1_5,
            ),
        }
    }
}

/// `NAME` and `VERSION` as Gluten 1.6+ holds them: `None` is Java's null (the key is absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    pub name: Option<String>,
    pub version: Option<String>,
}

/// `/etc/os-release` that `java.util.Properties.load` rejects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertiesError {
    /// The Java exception text, e.g. `java.lang.IllegalArgumentException: Malformed \uxxxx encoding.`
    pub message: String,
}

impl std::fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/etc/os-release: {}", self.message)
    }
}

impl std::error::Error for PropertiesError {}

/// Reads `NAME` and `VERSION` the way Gluten 1.6+ does (`SharedLibraryLoaderUtils.load`):
/// `Properties.load(new FileInputStream("/etc/os-release"))` (bytes as ISO-8859-1, `#`/`!`
/// comments, `=`/`:`/blank separators, backslash escapes and continuations, the last duplicate
/// wins), then `stripQuotes`: one leading and one trailing `"` removed (single quotes stay).
pub fn parse_os_release(bytes: &[u8]) -> Result<OsRelease, PropertiesError> {
    let props = java_properties(bytes)?;
    let get = |key: &str| {
        props
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| strip_quotes(v))
    };
    Ok(OsRelease {
        name: get("NAME"),
        version: get("VERSION"),
    })
}

/// Scala's `s.stripPrefix("\"").stripSuffix("\"")`.
fn strip_quotes(s: &str) -> String {
    let s = s.strip_prefix('"').unwrap_or(s);
    s.strip_suffix('"').unwrap_or(s).to_string()
}

/// `java.util.Properties.load(InputStream)` (JDK 17 `LineReader` and `loadConvert`), pairs in
/// file order.
///
/// Not `crate::spark_conf::parse_java_properties`: that one reads `spark-defaults.conf` text
/// (UTF-8, value escapes left as written, lines split at `\n`), while Gluten's `Properties.load` of a byte stream
/// decodes ISO-8859-1, turns `\uXXXX`, `\t`, `\n`... into characters in keys and values, fails
/// on a malformed `\u`, and splits lines at a lone `\r` too; the gate must see what Gluten sees.
fn java_properties(bytes: &[u8]) -> Result<Vec<(String, String)>, PropertiesError> {
    let chars: Vec<char> = bytes.iter().map(|&b| char::from(b)).collect();
    let mut pos = 0;
    let mut out = Vec::new();
    while let Some(line) = read_logical_line(&chars, &mut pos) {
        let limit = line.len();
        let is_ws = |c: char| c == ' ' || c == '\t' || c == '\x0c';
        let mut key_len = 0;
        let mut value_start = limit;
        let mut has_sep = false;
        let mut backslash = false;
        while key_len < limit {
            let c = line[key_len];
            if (c == '=' || c == ':') && !backslash {
                value_start = key_len + 1;
                has_sep = true;
                break;
            } else if is_ws(c) && !backslash {
                value_start = key_len + 1;
                break;
            }
            backslash = c == '\\' && !backslash;
            key_len += 1;
        }
        while value_start < limit {
            let c = line[value_start];
            if !is_ws(c) {
                if !has_sep && (c == '=' || c == ':') {
                    has_sep = true;
                } else {
                    break;
                }
            }
            value_start += 1;
        }
        let key = load_convert(&line[..key_len])?;
        let value = load_convert(&line[value_start..limit])?;
        out.push((key, value));
    }
    Ok(out)
}

/// One logical line (continuations joined, leading blanks and comments skipped), or `None` at
/// the end.
fn read_logical_line(chars: &[char], pos: &mut usize) -> Option<Vec<char>> {
    let mut buf: Vec<char> = Vec::new();
    let mut skip_white = true;
    let mut appended_line_begin = false;
    let mut backslash = false;
    let mut comment = false;
    let mut new_line = true;
    let mut skip_lf = false;
    loop {
        let Some(&c) = chars.get(*pos) else {
            if buf.is_empty() || comment {
                return None;
            }
            if backslash {
                buf.pop();
            }
            return Some(buf);
        };
        *pos += 1;
        if skip_lf {
            skip_lf = false;
            if c == '\n' {
                continue;
            }
        }
        if skip_white {
            if c == ' ' || c == '\t' || c == '\x0c' {
                continue;
            }
            if !appended_line_begin && (c == '\r' || c == '\n') {
                continue;
            }
            skip_white = false;
            appended_line_begin = false;
        }
        if new_line {
            new_line = false;
            if c == '#' || c == '!' {
                comment = true;
                continue;
            }
        }
        if c != '\n' && c != '\r' {
            if comment {
                continue;
            }
            buf.push(c);
            backslash = c == '\\' && !backslash;
        } else if comment || buf.is_empty() {
            comment = false;
            new_line = true;
            skip_white = true;
            buf.clear();
        } else if backslash {
            buf.pop();
            skip_white = true;
            appended_line_begin = true;
            backslash = false;
            if c == '\r' {
                skip_lf = true;
            }
        } else {
            return Some(buf);
        }
    }
}

/// `Properties.loadConvert`: `\uXXXX`, `\t \r \n \f`, any other `\x` is `x`.
fn load_convert(s: &[char]) -> Result<String, PropertiesError> {
    let malformed = || PropertiesError {
        message: "java.lang.IllegalArgumentException: Malformed \\uxxxx encoding.".to_string(),
    };
    let mut out = String::with_capacity(s.len());
    let mut units: Vec<u16> = Vec::new();
    let mut i = 0;
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or('\u{fffd}')));
    };
    while i < s.len() {
        let mut c = s[i];
        i += 1;
        if c == '\\' && i < s.len() {
            c = s[i];
            i += 1;
            if c == 'u' {
                if i + 4 > s.len() {
                    return Err(malformed());
                }
                let mut v: u16 = 0;
                for &h in &s[i..i + 4] {
                    v = (v << 4) | h.to_digit(16).ok_or_else(malformed)? as u16;
                }
                i += 4;
                units.push(v);
                continue;
            }
            c = match c {
                't' => '\t',
                'r' => '\r',
                'n' => '\n',
                'f' => '\x0c',
                other => other,
            };
        }
        flush(&mut units, &mut out);
        out.push(c);
    }
    flush(&mut units, &mut out);
    Ok(out)
}

/// What Gluten ≤ 1.5 reads from `cat /etc/os-release`: the name and version as its regex
/// captures them, and the whole text (for the tencentos rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainOsInfo {
    pub name: String,
    pub version: String,
    pub text: String,
}

/// Why Gluten ≤ 1.5 could not read the OS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainReadError {
    /// No line starts with `NAME=` (or it holds a character `.` does not match):
    /// `scala.MatchError`.
    MissingName(String),
    /// The same for `VERSION=`.
    MissingVersion(String),
    /// A line matched but captured nothing: "Failed to get OS name and version info."
    Empty(String),
}

/// Reads `/etc/os-release` as Gluten 1.4/1.5's `SharedLibraryLoader.find` does: the output of
/// `cat` (lines as `BufferedReader.readLine` splits them, each followed by `\n`), Scala 2.12's
/// `stripMargin`, `split("\n")`, the first line starting with `NAME=` (`VERSION=`), and the
/// full-match regex `^NAME="?(.*)"?`: the leading quote goes, the trailing one stays.
pub fn read_os_release_fixed_chain(bytes: &[u8]) -> Result<ChainOsInfo, ChainReadError> {
    let decoded = String::from_utf8_lossy(bytes);
    let mut text = String::with_capacity(decoded.len() + 1);
    let mut rest = decoded.as_ref();
    while !rest.is_empty() {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        text.push_str(&rest[..end]);
        text.push('\n');
        rest = &rest[end..];
        if rest.starts_with("\r\n") {
            rest = &rest[2..];
        } else if !rest.is_empty() {
            rest = &rest[1..];
        }
    }
    let stripped = strip_margin(&text);
    let lines: Vec<&str> = stripped.split('\n').collect();
    let capture = |key: &str| -> Option<String> {
        let line = lines.iter().find(|l| l.starts_with(key)).copied()?;
        // `.` matches anything but a line terminator (\n \r \u0085 \u2028 \u2029).
        if line.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']) {
            return None;
        }
        let rest = &line[key.len()..];
        Some(rest.strip_prefix('"').unwrap_or(rest).to_string())
    };
    let match_error = " (of class java.lang.String)";
    let first = |key: &str| {
        let l = lines
            .iter()
            .find(|l| l.starts_with(key))
            .copied()
            .unwrap_or("");
        format!("scala.MatchError: {l}{match_error}")
    };
    let name = capture("NAME=").ok_or_else(|| ChainReadError::MissingName(first("NAME=")))?;
    let version =
        capture("VERSION=").ok_or_else(|| ChainReadError::MissingVersion(first("VERSION=")))?;
    if name.is_empty() || version.is_empty() {
        return Err(ChainReadError::Empty(
            "org.apache.gluten.exception.GlutenException: Failed to get OS name and version info."
                .to_string(),
        ));
    }
    Ok(ChainOsInfo {
        name,
        version,
        text,
    })
}

/// Scala 2.12 `StringLike.stripMargin('|')`: on each line (split after LF or FF), leading
/// characters `<= ' '` followed by `|` are removed with the `|`.
fn strip_margin(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.split_inclusive(['\n', '\x0c']) {
        let trimmed = line.trim_start_matches(|c: char| c <= ' ' && c != '\n' && c != '\x0c');
        match trimmed.strip_prefix('|') {
            Some(after) => out.push_str(after),
            None => out.push_str(line),
        }
    }
    out
}

/// What the gate reads on one executor host.
#[derive(Clone, Copy, Debug, Default)]
pub struct GateInput<'a> {
    /// `spark.gluten.loadLibFromJar` as Spark's boolean setting parses it.
    pub load_lib_from_jar: bool,
    /// The bytes of `/etc/os-release`; `None`: the file is absent or unreadable.
    pub os_release: Option<&'a [u8]>,
    /// `spark.gluten.loadLibOS`, if set (an empty value is set).
    pub load_lib_os: Option<&'a str>,
    /// `spark.gluten.loadLibOSVersion`, if set.
    pub load_lib_os_version: Option<&'a str>,
}

/// Gluten's verdict: the loader it uses, or the exception that stops the executor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// `spark.gluten.loadLibFromJar` is false: Gluten loads no third-party library itself.
    NotLoading,
    /// One loader accepts; it loads these libraries (bare resource names), in order.
    Accepted {
        loader: String,
        libraries: &'static [&'static str],
    },
    /// No loader accepts (SPI: "Cannot find SharedLibraryLoader for …"; chain: "Found
    /// unsupported OS(…)").
    NoLoader { message: String },
    /// More than one loader accepts. Gluten's message prints each loader as `Class@hash`;
    /// here the class name stands for it.
    Ambiguous {
        message: String,
        loaders: Vec<String>,
    },
    /// `/etc/os-release` has no `NAME` (SPI: `NullPointerException`; chain: `scala.MatchError`).
    MissingName { message: String },
    /// `/etc/os-release` has no `VERSION` and a rule reads it.
    MissingVersion { message: String },
    /// `/etc/os-release` is absent, unreadable, malformed or empty-valued.
    OsReleaseUnusable { message: String },
    /// `spark.gluten.loadLibOS` without `spark.gluten.loadLibOSVersion`.
    OverrideIncomplete { message: String },
    /// A declared loader this table does not know: its `accepts` is unknown.
    UnknownLoader { class: String },
}

/// Decides Gluten's OS gate for `release`. `declared_loaders` are the class names of every
/// [`SERVICES_FILE`] on the executor's class path, in class-path order (ignored by the fixed
/// chain); [`GlutenRelease::bundled_loaders`] is what the release's own bundle declares.
pub fn decide(
    release: GlutenRelease,
    input: &GateInput<'_>,
    declared_loaders: &[&str],
) -> Decision {
    if !input.load_lib_from_jar {
        return Decision::NotLoading;
    }
    match release.gate() {
        GlutenGate::Spi => decide_spi(release, input, declared_loaders),
        GlutenGate::FixedChain => decide_chain(release, input),
    }
}

fn override_incomplete() -> Decision {
    Decision::OverrideIncomplete {
        message: format!(
            "org.apache.gluten.exception.GlutenException: {LOAD_LIB_OS_VERSION} must be specified when specifies the {LOAD_LIB_OS}"
        ),
    }
}

fn missing_file() -> Decision {
    Decision::OsReleaseUnusable {
        message: "java.io.FileNotFoundException: /etc/os-release (No such file or directory)"
            .to_string(),
    }
}

fn java_str(s: Option<&str>) -> &str {
    s.unwrap_or("null")
}

fn decide_spi(release: GlutenRelease, input: &GateInput<'_>, declared: &[&str]) -> Decision {
    let (name, version) = match (input.load_lib_os, input.load_lib_os_version) {
        (Some(os), Some(v)) => (Some(os.to_string()), Some(v.to_string())),
        (Some(_), None) => return override_incomplete(),
        (None, _) => {
            let Some(bytes) = input.os_release else {
                return missing_file();
            };
            match parse_os_release(bytes) {
                Ok(r) => (r.name, r.version),
                Err(e) => return Decision::OsReleaseUnusable { message: e.message },
            }
        }
    };
    let (name, version) = (name.as_deref(), version.as_deref());
    // ServiceLoader instantiates each provider name once, in class-path order.
    let mut seen: Vec<&str> = Vec::new();
    let mut accepted: Vec<&LoaderRule> = Vec::new();
    for &class in declared {
        let class = class.trim();
        if seen.contains(&class) {
            continue;
        }
        seen.push(class);
        let Some(rule) = release.spi_rules().iter().find(|r| r.class == class) else {
            return Decision::UnknownLoader {
                class: class.to_string(),
            };
        };
        match rule.accepts(name, version) {
            Ok(true) => accepted.push(rule),
            Ok(false) => {}
            Err(field) => {
                let simple = class.rsplit('.').next().unwrap_or(class);
                return match field {
                    NullField::Name => Decision::MissingName {
                        message: format!(
                            "java.lang.NullPointerException in {simple}.accepts: /etc/os-release has no NAME"
                        ),
                    },
                    NullField::Version => Decision::MissingVersion {
                        message: format!(
                            "java.lang.NullPointerException in {simple}.accepts: /etc/os-release has no VERSION"
                        ),
                    },
                };
            }
        }
    }
    let (n, v) = (java_str(name), java_str(version));
    match accepted.as_slice() {
        [] => Decision::NoLoader {
            // Gluten's own concatenation: no space between "please" and "check".
            message: format!(
                "org.apache.gluten.exception.GlutenException: Cannot find SharedLibraryLoader for {n} {v}, pleasecheck whether your custom SharedLibraryLoader is implemented and loadable."
            ),
        },
        [one] => Decision::Accepted {
            loader: one.class.to_string(),
            libraries: one.libraries,
        },
        many => {
            let loaders: Vec<String> = many.iter().map(|r| r.class.to_string()).collect();
            Decision::Ambiguous {
                message: format!(
                    "org.apache.gluten.exception.GlutenException: Found more than one SharedLibraryLoader for {n} {v}: {}, please check whether your custom SharedLibraryLoader is implemented correctly.",
                    loaders.join(",")
                ),
                loaders,
            }
        }
    }
}

fn decide_chain(release: GlutenRelease, input: &GateInput<'_>) -> Decision {
    let info = match (input.load_lib_os, input.load_lib_os_version) {
        (Some(os), Some(v)) => ChainOsInfo {
            name: os.to_string(),
            version: v.to_string(),
            text: String::new(),
        },
        (Some(_), None) => return override_incomplete(),
        (None, _) => {
            let Some(bytes) = input.os_release else {
                // `"cat /etc/os-release".!!` on a missing file.
                return Decision::OsReleaseUnusable {
                    message: "java.lang.RuntimeException: Nonzero exit value: 1".to_string(),
                };
            };
            match read_os_release_fixed_chain(bytes) {
                Ok(info) => info,
                Err(ChainReadError::MissingName(message)) => {
                    return Decision::MissingName { message };
                }
                Err(ChainReadError::MissingVersion(message)) => {
                    return Decision::MissingVersion { message };
                }
                Err(ChainReadError::Empty(message)) => {
                    return Decision::OsReleaseUnusable { message };
                }
            }
        }
    };
    let (steps, loaders, tail) = release.chain();
    let operands = Operands {
        name: Some(&info.name),
        version: Some(&info.version),
        text: &info.text,
    };
    for step in steps {
        // No operand is null on this path, so evaluation cannot fail.
        if step.when.eval(&operands) == Ok(true) {
            let libraries = loaders
                .iter()
                .find(|l| l.class == step.loader)
                .map_or(&[][..], |l| l.libraries);
            return Decision::Accepted {
                loader: step.loader.to_string(),
                libraries,
            };
        }
    }
    Decision::NoLoader {
        message: format!(
            "org.apache.gluten.exception.GlutenException: Found unsupported OS({}, {}){tail}",
            info.name, info.version
        ),
    }
}

/// The class names in one [`SERVICES_FILE`] as `ServiceLoader` reads it (UTF-8, `#` starts a
/// comment, blanks trimmed, empty lines skipped).
pub fn parse_services_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
