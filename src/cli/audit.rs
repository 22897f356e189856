//! `palisade audit …`: export and prune the audit trail of signing decisions.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};

use super::DbArgs;
use crate::protection;

/// `palisade audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the audit records from `--since` (and before `--until`) in insertion order.
    Export {
        /// Start: RFC 3339 (`2026-11-01T00:00:00Z`), a date (`2026-11-01`, UTC) or a duration
        /// back from now (`24h`, `7days`).
        #[arg(long)]
        since: String,
        /// End (exclusive), in the same forms [default: now and later].
        #[arg(long)]
        until: Option<String>,
        /// `jsonl` (one JSON object per line) or `csv` (with a header line).
        #[arg(long, value_enum, default_value = "jsonl", hide_possible_values = true)]
        format: Format,
        /// Output file [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Delete audit records older than a duration now (serve does it hourly with
    /// `--audit-retention-days`). Per-key totals are kept.
    Prune {
        /// Age of the oldest record kept, e.g. `90days`.
        #[arg(long)]
        older_than: String,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `--format` of `audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header line.
    Csv,
}

/// Runs an `audit` sub-command.
///
/// # Errors
/// A bad time or duration, the database, or the output file.
pub fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    super::runtime()?.block_on(execute(cmd))
}

async fn execute(cmd: AuditCommand) -> anyhow::Result<()> {
    use crate::config::parse_time;
    use crate::protection::audit::{self, ExportFormat};
    match cmd {
        AuditCommand::Export {
            since,
            until,
            format,
            out,
            db,
        } => {
            let format = match format {
                Format::Jsonl => ExportFormat::Jsonl,
                Format::Csv => ExportFormat::Csv,
            };
            let since_ms = parse_time(&since).map_err(anyhow::Error::msg)?;
            let until_ms = match until {
                Some(u) => parse_time(&u).map_err(anyhow::Error::msg)?,
                None => i64::MAX,
            };
            let store = protection::open(&db.url(), 2).await?;
            let n = match &out {
                Some(path) => {
                    let file = std::fs::File::create_new(path).with_context(|| {
                        format!(
                            "cannot create {} (an existing file is never overwritten)",
                            path.display()
                        )
                    })?;
                    audit::export(store.as_ref(), since_ms, until_ms, format, file).await?
                }
                None => {
                    audit::export(
                        store.as_ref(),
                        since_ms,
                        until_ms,
                        format,
                        std::io::stdout().lock(),
                    )
                    .await?
                }
            };
            eprintln!("exported {n} audit records");
        }
        AuditCommand::Prune { older_than, db } => {
            let age = humantime::parse_duration(&older_than).with_context(|| {
                format!("--older-than `{older_than}` is not a duration (e.g. 90days)")
            })?;
            let store = protection::open(&db.url(), 2).await?;
            let n = store
                .prune_audit(audit::now_ms() - age.as_millis() as i64)
                .await?;
            println!("deleted {n} audit records older than {older_than}");
        }
    }
    Ok(())
}
