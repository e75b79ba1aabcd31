//! The binary's subcommands: `serve` (the webhook), `check` (offline verdicts on manifests),
//! `audit` (verdicts on a live cluster, OpenReports or PolicyReports), `certs` (development and small-cluster
//! certificates). `anyhow` lives here, at the edge.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// `eprintln!` for the commands' diagnostics, without its panic when stderr is a closed pipe
/// (`2>&1 | head`): see [`output::note`].
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::cli::output::note(format_args!($($arg)*))
    };
}

pub mod audit;
pub mod builtin_roles;
pub mod certs;
pub mod check;
pub mod findings;
pub mod output;
pub mod reports;
pub mod serve;

#[derive(Debug, Parser)]
#[command(
    name = "openclaw-admission",
    version,
    about = "Admission webhook guarding OpenClaw AI-agent pods"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the mutating and validating webhook over TLS.
    Serve(Box<serve::Args>),
    /// Judge manifests offline, with the same engine as the webhook.
    Check(check::Args),
    /// Make a CA and a serving certificate (PEM) and print the caBundle.
    Certs(certs::Args),
    /// Judge what a live cluster runs, and what the next rollout step would refuse.
    Audit(audit::Args),
}

/// Parses arguments and runs the chosen subcommand. Exit codes are the subcommand's.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Serve(a) => serve::run(*a),
        Command::Check(a) => check::run(a),
        Command::Certs(a) => certs::run(a),
        Command::Audit(a) => audit::run(a),
    }
}
