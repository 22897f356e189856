//! The `palisade` binary: parses the command line, starts logging, hardens the process and
//! runs the sub-command ([`palisade::cli`]).

use clap::Parser;
use palisade::cli::Cli;

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

/// Runs the command; an error is printed as one line with its causes (`palisade: …: …`),
/// never with a backtrace, and the process exits with status 1.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palisade: {}", palisade::cli::one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    palisade::logging::init(cli.logging_format, cli.log_file.as_deref())
        .map_err(anyhow::Error::msg)?;
    harden_process();
    palisade::cli::run(cli.command)
}
