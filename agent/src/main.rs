//! `gluten-node-agent`: parses the command line ([`cli`]), then dispatches to the daemon
//! (`run`), one round (`check`) or the fleet aggregator (`aggregator`). The only place that
//! decides exit codes: 0 fine, 1 a check fails (or the daemon could not start), 2 usage/config.
//! `check --output yarn` always exits 0: the NodeManager reads its lines, not its code.

mod cli;

use agent::daemon::{self, runtime, shutdown_signal};
use agent::outputs::{table, yarn};
use clap::Parser;
use cli::{CheckArgs, Cli, Command, Output, init_logging};
use proto::Status;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    agent::outputs::push::client::install_crypto_provider();
    match Cli::parse().command {
        Command::Run(args) => match args.load() {
            Err(e) => config_error(&e),
            Ok(_) if args.common.check_config => ExitCode::SUCCESS,
            Ok(config) => {
                init_logging(config.log_format);
                let ran = runtime().block_on(daemon::run(config, async {
                    shutdown_signal().await;
                }));
                finished(ran)
            }
        },
        Command::Check(args) => match args.load() {
            Err(e) => config_error(&e),
            Ok(_) if args.common.check_config => ExitCode::SUCCESS,
            Ok(config) => {
                init_logging(config.log_format);
                check(&args, &config)
            }
        },
        #[cfg(feature = "aggregator")]
        Command::Aggregator(args) => match args.load() {
            Err(e) => config_error(&e),
            Ok(_) if args.check_config => ExitCode::SUCCESS,
            Ok(config) => {
                init_logging(config.log_format);
                let served = runtime().block_on(aggregator::serve(config, async {
                    shutdown_signal().await;
                    tracing::info!("shutting down");
                }));
                finished(served)
            }
        },
    }
}

fn config_error(message: &str) -> ExitCode {
    eprintln!("gluten-node-agent: {message}");
    ExitCode::from(2)
}

fn finished<E: std::error::Error + Send + Sync + 'static>(r: Result<(), E>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            tracing::error!("{e:#}");
            eprintln!("gluten-node-agent: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// One round (or the daemon's cached one), printed; exits the process at once afterwards, so a
/// check stuck in the kernel cannot keep it alive.
fn check(args: &CheckArgs, config: &agent::config::Config) -> ExitCode {
    let deadline = config.longest_timeout() + Duration::from_secs(1);
    if args.output == Output::Yarn {
        // Whatever hangs (even reading the node's identity), the health script answers in time.
        std::thread::spawn(move || {
            std::thread::sleep(deadline);
            let _once = PRINTING.lock();
            print!(
                "{}",
                yarn::no_verdict(&format!("no verdict within {deadline:?}"))
            );
            std::process::exit(0)
        });
    }
    let report = match args.from_daemon {
        Some(addr) => match yarn::fetch_daemon_report(addr, Duration::from_secs(2)) {
            Ok(r) if args.output == Output::Yarn => {
                // The /livez rule: a verdict older than 3 intervals + the longest deadline is
                // from a stalled loop, and is not the node's state any more.
                let max_age = Duration::from_secs_f64(config.interval_seconds * 3.0)
                    + config.longest_timeout();
                if let Some(why) = yarn::stale(&r, max_age) {
                    let _once = PRINTING.lock();
                    print!("{}", yarn::no_verdict(&why));
                    std::process::exit(0)
                }
                r
            }
            Ok(r) => r,
            Err(why) if args.output == Output::Yarn => {
                let _once = PRINTING.lock();
                print!("{}", yarn::no_verdict(&why));
                std::process::exit(0)
            }
            Err(why) => {
                eprintln!("gluten-node-agent: {why}");
                std::process::exit(1)
            }
        },
        None => runtime().block_on(daemon::run_once(config)).report,
    };
    let _once = PRINTING.lock();
    let code = match args.output {
        Output::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            i32::from(report.status == Status::Fail)
        }
        Output::Table => {
            print!("{}", table::render(&report));
            i32::from(report.status == Status::Fail)
        }
        Output::Yarn => {
            print!("{}", yarn::render(&report));
            0
        }
    };
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// Held by whoever prints the verdict and exits: the round or the yarn deadline, never both.
static PRINTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
