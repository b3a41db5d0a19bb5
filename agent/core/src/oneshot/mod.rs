//! `gluten-node-agent check`: one verdict, printed, then the process exits at once (so a check
//! stuck in the kernel cannot keep it alive). The verdict is a round run here, or the running
//! daemon's cached one ([`daemon_client`]: its local socket, or loopback HTTP(S)).
//!
//! For the machine readers (`--output yarn`, `--output npd`) a watchdog thread answers "no
//! verdict" when nothing was printed by the deadline, whatever hangs (even reading the node's
//! identity); a mutex makes sure exactly one of the round and the watchdog prints. The exit codes
//! are each format's protocol: `table`/`json` 0 or 1 (a check fails); `yarn` always 0 (the
//! NodeManager reads lines, not codes); `npd` 0 OK, 1 NonOK, 2 Unknown.

pub mod daemon_client;

use crate::config::Config;
use crate::outputs::{npd, table, yarn};
use proto::{NodeReport, Status};
use std::io::Write;
use std::time::Duration;

pub use daemon_client::DaemonAddr;

/// How `check` prints its verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Yarn,
    /// NPD custom plugin; the line is at most `max_output_length` bytes.
    Npd {
        max_output_length: usize,
    },
}

/// What `check` was asked.
#[derive(Clone, Debug)]
pub struct Request {
    pub format: Format,
    /// Read the running daemon's verdict instead of running a round.
    pub from_daemon: Option<DaemonAddr>,
    /// When the machine readers get "no verdict" at the latest; default: [`default_deadline`].
    pub deadline: Option<Duration>,
}

/// Longest wait for the daemon's answer.
pub const DAEMON_TIMEOUT: Duration = Duration::from_secs(2);

/// NPD kills a plugin after its `timeout` (5 s by default): answer before that.
pub const NPD_DEADLINE: Duration = Duration::from_millis(4500);

/// The watchdog's deadline when none is given: NPD's, or the longest check deadline plus a
/// second (a round's own bound) for the others.
pub fn default_deadline(format: Format, config: &Config) -> Duration {
    match format {
        Format::Npd { .. } => NPD_DEADLINE,
        _ => config.longest_timeout() + Duration::from_secs(1),
    }
}

/// Held by whoever prints the verdict and exits: the verdict or the watchdog, never both.
static PRINTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Prints `text` to stdout and exits with `code`; the first caller wins, later ones block
/// until the process is gone.
pub fn print_and_exit(text: &str, code: i32) -> ! {
    let _once = PRINTING.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    std::process::exit(code)
}

/// What the format prints, and exits with, when there is no verdict; `None` for the formats
/// read by people (they get the reason on stderr and exit 1).
fn no_verdict(format: Format, why: &str) -> Option<(String, i32)> {
    match format {
        Format::Yarn => Some((yarn::no_verdict(why), 0)),
        Format::Npd { max_output_length } => {
            Some((npd::no_verdict(why, max_output_length), npd::UNKNOWN))
        }
        Format::Table | Format::Json => None,
    }
}

/// The text and exit code for a verdict.
pub fn render(format: Format, report: &NodeReport) -> (String, i32) {
    let failing = i32::from(report.status == Status::Fail);
    match format {
        Format::Json => (
            format!(
                "{}\n",
                serde_json::to_string_pretty(report).unwrap_or_default()
            ),
            failing,
        ),
        Format::Table => (table::render(report), failing),
        Format::Yarn => (yarn::render(report), 0),
        Format::Npd { max_output_length } => (
            npd::render(report, max_output_length),
            npd::exit_code(report.status),
        ),
    }
}

/// Runs `check`: prints one verdict and exits the process.
pub fn run(request: &Request, config: &Config) -> ! {
    let format = request.format;
    let deadline = request
        .deadline
        .unwrap_or_else(|| default_deadline(format, config));
    if no_verdict(format, "").is_some() {
        std::thread::spawn(move || {
            std::thread::sleep(deadline);
            let why = format!("no verdict within {deadline:?}");
            if let Some((text, code)) = no_verdict(format, &why) {
                print_and_exit(&text, code)
            }
        });
    }
    let report = match &request.from_daemon {
        None => {
            crate::daemon::runtime()
                .block_on(crate::daemon::run_once(config))
                .report
        }
        Some(addr) => {
            let fetched = daemon_client::Target::resolve(addr, config)
                .and_then(|target| {
                    crate::daemon::runtime().block_on(target.fetch(DAEMON_TIMEOUT.min(deadline)))
                })
                .map_err(|e| e.to_string());
            // The /livez rule: a verdict older than 3 intervals + the longest deadline is from
            // a stalled loop, and is not the node's state any more.
            let max_age =
                Duration::from_secs_f64(config.interval_seconds * 3.0) + config.longest_timeout();
            let fetched = fetched.and_then(|r| match no_verdict(format, "") {
                Some(_) => yarn::stale(&r, max_age).map_or(Ok(r), Err),
                None => Ok(r),
            });
            match fetched {
                Ok(r) => r,
                Err(why) => match no_verdict(format, &why) {
                    Some((text, code)) => print_and_exit(&text, code),
                    None => {
                        eprintln!("gluten-node-agent: {why}");
                        let _once = PRINTING.lock().unwrap_or_else(|e| e.into_inner());
                        std::process::exit(1)
                    }
                },
            }
        }
    };
    let (text, code) = render(format, &report);
    print_and_exit(&text, code)
}
