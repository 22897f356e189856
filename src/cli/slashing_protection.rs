//! `palisade slashing-protection …`: EIP-3076 import and export, the global high
//! watermark, pruning.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::DbArgs;
use crate::protection::{self, HighWatermark};

/// `palisade slashing-protection …`
#[derive(Debug, Subcommand)]
pub enum SlashingProtectionCommand {
    /// Import an EIP-3076 interchange file (merged with what is there; safe while servers run).
    Import {
        /// The interchange JSON file.
        #[arg(long)]
        from: PathBuf,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Export the record as an EIP-3076 interchange file (version 5).
    Export {
        /// Where to write the JSON file.
        #[arg(long)]
        to: PathBuf,
        /// Only these validators (comma-separated 0x-hex public keys).
        #[arg(long, value_delimiter = ',')]
        pubkeys: Option<Vec<String>>,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set (`--epoch E --slot S`), remove (`--remove`) or show (no flags) the global high
    /// watermark: nothing at or above it is signed.
    HighWatermark {
        /// Epoch of the watermark: no attestation with a source or target epoch at or above it.
        #[arg(long, requires = "slot", conflicts_with = "remove")]
        epoch: Option<u64>,
        /// Slot of the watermark: no block at or above it.
        #[arg(long, requires = "epoch", conflicts_with = "remove")]
        slot: Option<u64>,
        /// Remove the watermark.
        #[arg(long)]
        remove: bool,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Prune old records now (low watermarks are raised first, so no rule gets weaker).
    Prune {
        /// Epochs of history to keep below each validator's newest record.
        #[arg(long, default_value_t = 256)]
        epochs_to_keep: u64,
        /// Slots per epoch of the network (32 mainnet, 16 gnosis, 8 minimal).
        #[arg(long, default_value_t = 32)]
        slots_per_epoch: u64,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
}

fn parse_pubkey(s: &str) -> anyhow::Result<[u8; 48]> {
    let bytes = hex::decode(s.trim().trim_start_matches("0x")).context("public key is not hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("public key {s} is not 48 bytes"))
}

/// Runs a `slashing-protection` sub-command.
///
/// # Errors
/// A bad interchange file or public key, the database, or the output file.
pub fn run(cmd: SlashingProtectionCommand) -> anyhow::Result<()> {
    super::runtime()?.block_on(execute(cmd))
}

async fn execute(cmd: SlashingProtectionCommand) -> anyhow::Result<()> {
    match cmd {
        SlashingProtectionCommand::Import { from, db } => {
            let text = std::fs::read_to_string(&from)
                .with_context(|| format!("cannot read {}", from.display()))?;
            let prepared = protection::interchange::parse(&text)?;
            let store = protection::open(&db.url(), 2).await?;
            let s = store.import(&prepared).await?;
            println!(
                "imported {} validators, {} blocks, {} attestations",
                s.validators, s.blocks, s.attestations
            );
        }
        SlashingProtectionCommand::Export { to, pubkeys, db } => {
            let keys = pubkeys
                .map(|ks| {
                    ks.iter()
                        .map(|k| parse_pubkey(k))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
                .transpose()?;
            let store = protection::open(&db.url(), 2).await?;
            let interchange = protection::export(store.as_ref(), keys.as_deref()).await?;
            let json = serde_json::to_string_pretty(&interchange)?;
            std::fs::write(&to, json).with_context(|| format!("cannot write {}", to.display()))?;
            println!(
                "exported {} validators to {}",
                interchange.data.len(),
                to.display()
            );
        }
        SlashingProtectionCommand::HighWatermark {
            epoch,
            slot,
            remove,
            db,
        } => {
            let store = protection::open(&db.url(), 1).await?;
            if remove {
                store.set_high_watermark(None).await?;
                println!("high watermark removed");
            } else if let (Some(epoch), Some(slot)) = (epoch, slot) {
                store
                    .set_high_watermark(Some(HighWatermark { epoch, slot }))
                    .await?;
                println!("high watermark set: epoch {epoch}, slot {slot}");
            } else {
                match store.high_watermark().await? {
                    Some(h) => println!("high watermark: epoch {}, slot {}", h.epoch, h.slot),
                    None => println!("no high watermark set"),
                }
            }
        }
        SlashingProtectionCommand::Prune {
            epochs_to_keep,
            slots_per_epoch,
            db,
        } => {
            let store = protection::open(&db.url(), 2).await?;
            let s = store.prune(epochs_to_keep, slots_per_epoch).await?;
            println!(
                "pruned {} blocks and {} attestations",
                s.blocks, s.attestations
            );
        }
    }
    Ok(())
}
