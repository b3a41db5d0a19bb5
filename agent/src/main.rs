//! `gluten-node-agent`: parses the command line ([`cli`]), then dispatches to the daemon
//! (`run`), one verdict (`check`, [`agent::oneshot`], which exits by its output's protocol) or
//! the fleet aggregator (`aggregator`). Exit codes of `run` and `aggregator`: 0 fine, 1 the
//! server could not start or failed; 2 usage/config for every subcommand.

mod cli;

use agent::daemon::{self, runtime, shutdown_signal};
use clap::Parser;
use cli::{Cli, Command, init_logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    agent::outputs::push::client::install_crypto_provider();
    match Cli::parse().command {
        Command::Run(args) => match args.load() {
            Err(e) => config_error(e),
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
            Err(e) => config_error(e),
            Ok(_) if args.common.check_config => ExitCode::SUCCESS,
            Ok(config) => {
                init_logging(config.log_format);
                agent::oneshot::run(&args.request(), &config)
            }
        },
        #[cfg(feature = "aggregator")]
        Command::Aggregator(args) => match args.load() {
            Err(e) => config_error(e),
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

/// A usage or config error: printed, exit code 2.
fn config_error(e: cli::CliError) -> ExitCode {
    eprintln!("gluten-node-agent: {e}");
    ExitCode::from(2)
}

fn finished<E: std::error::Error + Send + Sync + 'static>(r: Result<(), E>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            let line = one_line(&e);
            tracing::error!("{line}");
            eprintln!("gluten-node-agent: {line}");
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, each said once: most of our errors already name their
/// source in their own message, so printing the whole chain would repeat it.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
