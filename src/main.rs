//! The `palisade` binary.

use anyhow::Context;
use clap::Parser;
use palisade::config::{Cli, Command, KeysCommand, SlashingProtectionCommand};
use palisade::protection::{self, HighWatermark};

/// Refuses core dumps and ptrace attachment, so key material cannot leave through them.
fn harden_process() {
    // SAFETY: plain libc calls with valid arguments; failures are reported, not fatal.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
            tracing::warn!("could not disable core dumps");
        }
        #[cfg(target_os = "linux")]
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            tracing::warn!("could not mark the process non-dumpable");
        }
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PALISADE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    harden_process();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            actix_web::rt::System::new().block_on(async move {
                let prepared = palisade::server::prepare(&config)
                    .await
                    .map_err(anyhow::Error::msg)
                    .context("cannot start")?;
                palisade::server::serve(&config, prepared)
                    .await
                    .context("server failed")
            })
        }
        Command::Migrate(db) => runtime()?.block_on(async move {
            protection::open(&db.url(), 1).await?;
            println!("migrations applied");
            Ok(())
        }),
        Command::SlashingProtection(cmd) => runtime()?.block_on(slashing_protection(cmd)),
        Command::Keys(KeysCommand::ImportOctez {
            secret_keys,
            out,
            password_file,
        }) => {
            let written =
                palisade::keys::tezos::import_octez(&secret_keys, &out, password_file.as_deref())
                    .map_err(anyhow::Error::msg)?;
            for k in &written {
                println!(
                    "{}\t{}\t{}",
                    k.name,
                    k.pkh
                        .as_deref()
                        .unwrap_or("(encrypted; pkh known once loaded)"),
                    k.file.display()
                );
            }
            println!("wrote {} key configs to {}", written.len(), out.display());
            Ok(())
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn parse_pubkey(s: &str) -> anyhow::Result<[u8; 48]> {
    let bytes = hex::decode(s.trim().trim_start_matches("0x")).context("public key is not hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("public key {s} is not 48 bytes"))
}

async fn slashing_protection(cmd: SlashingProtectionCommand) -> anyhow::Result<()> {
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
