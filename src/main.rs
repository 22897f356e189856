//! The `palisade` binary.

use anyhow::Context;
use clap::Parser;
use palisade::config::{Cli, Command};

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
    }
}
