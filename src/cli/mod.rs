//! The `palisade` command line: one module per sub-command, each holding its arguments
//! (clap) and its run function. `main.rs` parses [`Cli`], starts logging, hardens the
//! process and calls [`run`]; the layering of `serve`'s configuration (file < environment <
//! flags) is [`crate::config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod audit;
pub mod ceremony;
pub mod hsm;
pub mod keys;
pub mod migrate;
pub mod serve;
pub mod slashing_protection;

use audit::AuditCommand;
use ceremony::CeremonyCommand;
use hsm::HsmCommand;
use keys::KeysCommand;
use serve::ServeArgs;
use slashing_protection::SlashingProtectionCommand;

/// Command line of the `palisade` binary.
#[derive(Debug, Parser)]
#[command(
    name = "palisade",
    version,
    about = "Remote signer for proof-of-stake validators"
)]
pub struct Cli {
    /// The sub-command to run.
    #[command(subcommand)]
    pub command: Command,
    /// Log line format on stderr (and in `--log-file`): `plain` or `json` [default: plain].
    #[arg(
        long,
        global = true,
        env = "PALISADE_LOGGING_FORMAT",
        value_enum,
        default_value = "plain"
    )]
    pub logging_format: crate::logging::LoggingFormat,
    /// Also append log lines to this file (created with mode 0600).
    #[arg(long, global = true, env = "PALISADE_LOG_FILE")]
    pub log_file: Option<PathBuf>,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Web3Signer-compatible eth2 signing API.
    Serve(Box<ServeArgs>),
    /// Slashing-protection database tools (EIP-3076 import/export, high watermark, pruning).
    #[command(name = "slashing-protection", subcommand)]
    SlashingProtection(SlashingProtectionCommand),
    /// Apply the database migrations and exit (they also run at start-up).
    Migrate(DbArgs),
    /// Key tools.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// PKCS#11 HSM tools: list, generate and import Tezos keys, create the AES key for
    /// wrapped BLS keystores, wrap a keystore.
    #[command(subcommand)]
    Hsm(HsmCommand),
    /// Offline key ceremonies: generate keys with Shamir backups and a transcript, combine
    /// shares, verify outputs against a transcript.
    #[command(subcommand)]
    Ceremony(CeremonyCommand),
    /// The audit trail of signing decisions: export, prune.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// The database a tool works on.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Slashing-protection database URL [default: sqlite://<data-dir>/slashing-protection.sqlite].
    #[arg(long, env = "PALISADE_SLASHING_PROTECTION_DB_URL")]
    pub slashing_protection_db_url: Option<String>,
    /// Directory for palisade's own files [default: ./palisade-data].
    #[arg(long, env = "PALISADE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DbArgs {
    /// The database URL, defaulting as `serve` does ([`crate::config::default_db_url`]).
    pub fn url(&self) -> String {
        self.slashing_protection_db_url.clone().unwrap_or_else(|| {
            let dir = self
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_DATA_DIR));
            crate::config::default_db_url(&dir)
        })
    }
}

/// `--format` of the listing commands (`keys list`, `hsm list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for a terminal.
    Table,
    /// Pretty-printed JSON.
    Json,
}

/// Runs a parsed sub-command to its end.
///
/// # Errors
/// The sub-command's failure, with its causes as context (`main` prints it as one line).
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(&args),
        Command::Migrate(db) => migrate::run(&db),
        Command::SlashingProtection(cmd) => slashing_protection::run(cmd),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Hsm(cmd) => hsm::run(cmd),
        Command::Ceremony(cmd) => ceremony::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
    }
}

/// A single-threaded Tokio runtime for the database and HTTP tools.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// An error and its causes on one line, `message: cause: cause`, leaving out a cause whose
/// text the line already holds (errors such as `ProtectionError::Unavailable` both show their
/// source's text and return it as their source).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
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

#[cfg(test)]
mod one_line_tests {
    use super::one_line;

    #[test]
    fn causes_already_shown_are_not_repeated() {
        let io = std::io::Error::other("connection refused");
        let e = palisade_error(io);
        assert_eq!(
            one_line(&e),
            "opening the store: slashing protection database unavailable: connection refused"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&plain), "outer: inner");
    }

    fn palisade_error(io: std::io::Error) -> anyhow::Error {
        let text = io.to_string();
        anyhow::Error::new(crate::protection::ProtectionError::unavailable_from(
            text, io,
        ))
        .context("opening the store")
    }
}
