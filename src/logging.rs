//! Log output of the `palisade` binary: `plain` or `json` lines on stderr, optionally also
//! appended to a file, filtered by `PALISADE_LOG` (a `tracing` filter, default `info`); and the
//! access log middleware of the HTTP listeners.
//!
//! Nothing logged carries key material, passwords, PINs or tokens: handlers log public keys,
//! pkhs, kinds, positions and reasons only, and the access log writes the path without its
//! query string.

use std::path::Path;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoggingFormat {
    /// Human-readable text: time, level, target, message, `key=value` fields.
    Plain,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`), for log shippers.
    Json,
}

type BoxedLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

fn layer<W>(format: LoggingFormat, writer: W, ansi: bool) -> BoxedLayer
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LoggingFormat::Plain => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .boxed(),
        LoggingFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .boxed(),
    }
}

/// Installs the global subscriber: `format` lines on stderr (ANSI colours only when stderr is
/// a terminal and there is no log file) and, when `file` is given, the same lines appended to
/// it (created with mode 0600 if missing). Each line is formatted once and written to both.
///
/// # Errors
/// A message naming the log file when it cannot be opened.
pub fn init(format: LoggingFormat, file: Option<&Path>) -> Result<(), String> {
    use std::io::IsTerminal;
    use tracing_subscriber::fmt::writer::MakeWriterExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PALISADE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let output = match file {
        None => layer(format, std::io::stderr, std::io::stderr().is_terminal()),
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            layer(format, std::io::stderr.and(std::sync::Mutex::new(f)), false)
        }
    };
    tracing_subscriber::registry()
        .with(output.with_filter(filter))
        .init();
    Ok(())
}

/// Access log middleware: one `info` line per request on target `palisade::access` with the
/// method, the path (never the query string), the status, the time to the response in
/// microseconds and the client's IP address.
///
/// # Errors
/// The inner service's error, unchanged.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.path().to_string();
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let res = next.call(req).await?;
    tracing::info!(
        target: "palisade::access",
        %method,
        %path,
        status = res.status().as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64,
        %peer,
        "request"
    );
    Ok(res)
}
