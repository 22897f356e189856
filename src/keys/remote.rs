//! What the network key backends (HashiCorp Vault / OpenBao, cloud KMS and secret stores)
//! share: their I/O runtime, an HTTPS client with the system roots or a configured CA,
//! credentials read from files or the environment, bounded retries of idempotent calls, and
//! the `palisade_backend_*` metrics.
//!
//! Every vault call runs on one small multi-threaded runtime of its own ([`spawn`],
//! [`block_on`]), whoever asks: the signing path awaits it from an HTTP worker, key loads block
//! on it from the key-decryption pool. Its connections therefore outlive any one caller, and a
//! vault that stops answering holds none of the HTTP workers: each call ends at its timeout.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::metrics::METRICS;

/// A failed vault call. The message names the backend, the operation and the cause; it never
/// holds a credential or key material.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RemoteError(pub String);

/// The runtime every vault call runs on: two worker threads named `palisade-vault-io`.
///
/// # Panics
/// When the runtime's threads cannot be started at all (the process cannot serve then).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("palisade-vault-io")
            .enable_all()
            .build()
            .expect("the vault I/O runtime starts")
    });
    &RUNTIME
}

/// Runs `call` on the vault runtime and awaits its result from any runtime.
///
/// # Errors
/// The call's error; a [`RemoteError`] if the task panicked.
pub async fn spawn<T, F>(call: F) -> Result<T, RemoteError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, RemoteError>> + Send + 'static,
{
    runtime()
        .spawn(call)
        .await
        .unwrap_or_else(|_| Err(RemoteError("vault call task failed".into())))
}

/// Runs `call` on the vault runtime and blocks the calling thread until it finishes (key
/// loads, on the key-decryption pool). Safe from any thread, async workers included (it
/// then blocks that worker: do not).
///
/// # Errors
/// The call's error; a [`RemoteError`] if the task panicked.
pub fn block_on<T, F>(call: F) -> Result<T, RemoteError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, RemoteError>> + Send + 'static,
{
    futures_executor::block_on(spawn(call))
}

/// A credential: given in the key config, read from a file, or read from an environment
/// variable. Never printed: `Debug` shows only where it comes from.
#[derive(Clone)]
pub enum Secret {
    /// Written in the key config itself (Web3Signer's formats do this).
    Inline(Zeroizing<String>),
    /// The content of a file, without trailing newlines; read at every load.
    File(PathBuf),
    /// The value of an environment variable.
    Env(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("Secret::Inline(<redacted>)"),
            Secret::File(p) => write!(f, "Secret::File({})", p.display()),
            Secret::Env(v) => write!(f, "Secret::Env({v})"),
        }
    }
}

impl Secret {
    /// Picks the one source a config gives among its inline value, file and variable fields
    /// (`what` names them in the message, e.g. `token, tokenFile or tokenEnv`). Relative
    /// files resolve against `base`.
    ///
    /// # Errors
    /// None or more than one given.
    pub fn choose(
        inline: Option<Zeroizing<String>>,
        file: Option<PathBuf>,
        env: Option<String>,
        base: &Path,
        what: &str,
    ) -> Result<Secret, String> {
        match (inline, file, env) {
            (Some(v), None, None) => Ok(Secret::Inline(v)),
            (None, Some(p), None) => Ok(Secret::File(base.join(p))),
            (None, None, Some(v)) => Ok(Secret::Env(v)),
            (None, None, None) => Err(format!("one of {what} is required")),
            _ => Err(format!("give only one of {what}")),
        }
    }

    /// The credential's value.
    ///
    /// # Errors
    /// A message naming the file or variable (never the value) when it cannot be read or is
    /// empty.
    pub fn read(&self) -> Result<Zeroizing<String>, String> {
        let value = match self {
            Secret::Inline(v) => v.clone(),
            Secret::File(p) => crate::keys::read_password_file(p)?,
            Secret::Env(name) => Zeroizing::new(
                std::env::var(name)
                    .map_err(|_| format!("environment variable {name} is not set"))?,
            ),
        };
        if value.trim().is_empty() {
            return Err(format!("the credential from {} is empty", self.origin()));
        }
        Ok(value)
    }

    /// Where it comes from, for messages: `the key config`, `file /p`, `$NAME`.
    pub fn origin(&self) -> String {
        match self {
            Secret::Inline(_) => "the key config".into(),
            Secret::File(p) => format!("file {}", p.display()),
            Secret::Env(v) => format!("${v}"),
        }
    }
}

/// Builds the HTTPS client of one vault: the system's root certificates plus `ca_file` (PEM,
/// one or more certificates) when given, HTTP/1.1 or HTTP/2, keep-alive, a connect timeout of
/// `timeout` (each request sets its own overall timeout).
///
/// # Errors
/// A message when the CA file cannot be read or holds no certificate.
pub fn http_client(ca_file: Option<&Path>, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read tlsCaFile {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| format!("tlsCaFile {} is not PEM", path.display()))?;
        if certs.is_empty() {
            return Err(format!("tlsCaFile {} holds no certificate", path.display()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTPS client: {e}"))
}

/// Attempts of an idempotent call (reads, logins): the first and two retries.
pub const IDEMPOTENT_ATTEMPTS: u32 = 3;

/// Whether an answer is worth retrying: throttling and server-side failures.
pub fn retryable_status(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::BAD_GATEWAY
        || status == reqwest::StatusCode::SERVICE_UNAVAILABLE
        || status == reqwest::StatusCode::GATEWAY_TIMEOUT
        || status == reqwest::StatusCode::INTERNAL_SERVER_ERROR
}

/// Sends a request built by `request` and reads its whole body; for idempotent calls
/// (`attempts` > 1) retries connection failures, timeouts and [`retryable_status`] answers
/// after 100 ms, 200 ms, … Records `palisade_backend_call_duration_seconds{backend,
/// operation}` per attempt and `palisade_backend_call_errors_total` per failed attempt.
/// Returns the final status and body (the body buffer is the caller's to zeroize).
///
/// # Errors
/// [`RemoteError`] `<backend> <operation>: <cause>` when no answer came; an answer with any
/// status is returned, not an error.
pub async fn send(
    backend: &'static str,
    operation: &'static str,
    attempts: u32,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, Vec<u8>), RemoteError> {
    let mut last = String::new();
    for attempt in 0..attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << (attempt - 1))).await;
        }
        let started = Instant::now();
        let outcome = async {
            let response = request().send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, Vec::from(body)))
        }
        .await;
        METRICS
            .backend_duration
            .with_label_values(&[backend, operation])
            .observe(started.elapsed().as_secs_f64());
        match outcome {
            Ok((status, body)) if retryable_status(status) && attempt + 1 < attempts => {
                METRICS
                    .backend_errors
                    .with_label_values(&[backend, operation])
                    .inc();
                last = format!("HTTP {status}");
                let mut body = body;
                zeroize::Zeroize::zeroize(&mut body);
            }
            Ok((status, body)) => {
                if !status.is_success() {
                    METRICS
                        .backend_errors
                        .with_label_values(&[backend, operation])
                        .inc();
                }
                return Ok((status, body));
            }
            Err(e) => {
                METRICS
                    .backend_errors
                    .with_label_values(&[backend, operation])
                    .inc();
                last = describe(&e);
            }
        }
    }
    Err(RemoteError(format!("{backend} {operation}: {last}")))
}

/// A transport error in words, without the URL's query (which may carry names an operator
/// considers private) and without the error's source chain repeated.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({cause})")
    }
}

/// Decodes a JSON answer into `T`, then zeroizes the body buffer (it may hold a secret).
///
/// # Errors
/// A message naming what was expected; serde's message is not kept (it may quote the body).
pub fn decode<T: serde::de::DeserializeOwned>(
    mut body: Vec<u8>,
    what: &str,
) -> Result<T, RemoteError> {
    let parsed = serde_json::from_slice(&body);
    zeroize::Zeroize::zeroize(&mut body);
    parsed.map_err(|_| RemoteError(format!("unexpected answer: not {what}")))
}

/// The first error message of a vault's JSON error body (`{"errors":[..]}` for Vault,
/// `{"error":{"message":..}}` for Azure, `{"message":..}` or `{"__type":..}` for AWS),
/// cut to 200 characters; empty when there is none.
pub fn error_message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let text = v["errors"][0]
        .as_str()
        .or_else(|| v["error"]["message"].as_str())
        .or_else(|| v["message"].as_str())
        .or_else(|| v["Message"].as_str())
        .or_else(|| v["__type"].as_str())
        .or_else(|| v["error_description"].as_str())
        .unwrap_or_default();
    text.chars().take(200).collect()
}

/// Decodes a hex BLS secret key (with or without `0x`) into a [`crate::keys::MemoryKey`].
///
/// # Errors
/// A message without the value.
pub fn bls_key_from_hex(text: &str) -> Result<crate::keys::MemoryKey, String> {
    let bytes = Zeroizing::new(
        hex::decode(text.trim().trim_start_matches("0x"))
            .map_err(|_| "the secret is not a hex BLS secret key".to_string())?,
    );
    let sk = crate::crypto::bls::SecretKey::from_bytes(&bytes)
        .map_err(|e| format!("the secret is not a BLS secret key: {e}"))?;
    Ok(crate::keys::MemoryKey::new(sk))
}

/// A secret read from a vault: its name (path, secret name) and its value, or why it could
/// not be read.
pub type FetchedSecret = (String, Result<Zeroizing<String>, RemoteError>);

/// Turns the secrets a secret-store backend read into eth2 keys, in parallel on the
/// key-decryption pool the load runs on: each value holds one hex BLS secret key, or for a
/// bulk load (`single` false) one or more, one per line. A secret that is not a key fails
/// alone, named in its error. `backend` gives each key's inventory backend from its secret's
/// name; `label` names the backend in the bulk-load log line (`vault bulk load`), which
/// counts what loaded and how long it took since `started`.
pub(crate) fn bls_keys(
    file: &Path,
    single: bool,
    fetched: Vec<FetchedSecret>,
    backend: impl Fn(&str) -> String + Sync,
    label: &str,
    started: Instant,
) -> Vec<Result<crate::keys::backend::LoadedKey, crate::keys::LoadError>> {
    use rayon::prelude::*;
    let error = |name: &str, reason: String| crate::keys::LoadError {
        file: file.to_path_buf(),
        reason: if single {
            reason
        } else {
            format!("secret {name}: {reason}")
        },
    };
    let count = fetched.len();
    let results: Vec<_> = fetched
        .into_par_iter()
        .flat_map_iter(|(name, value)| {
            let value = match value {
                Ok(v) => v,
                Err(e) => return vec![Err(error(&name, e.to_string()))],
            };
            let lines: Vec<&str> = value
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if lines.is_empty() || (single && lines.len() > 1) {
                let expected = if single { "one" } else { "one or more" };
                let reason = format!("the secret holds {} keys; {expected} expected", lines.len());
                return vec![Err(error(&name, reason))];
            }
            lines
                .into_iter()
                .map(|line| {
                    let key = bls_key_from_hex(line).map_err(|e| error(&name, e))?;
                    Ok(crate::keys::backend::LoadedKey::Eth2 {
                        key: std::sync::Arc::new(key) as std::sync::Arc<dyn crate::keys::Signer>,
                        backend: backend(&name),
                        source: file.to_path_buf(),
                    })
                })
                .collect()
        })
        .collect();
    if !single {
        let loaded = results.iter().filter(|r| r.is_ok()).count();
        tracing::info!(
            file = %file.display(),
            secrets = count,
            keys = loaded,
            failed = results.len() - loaded,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "{label} bulk load"
        );
    }
    results
}

/// The one key of a load that must name exactly one ([`crate::keys::backend::KeyLoad::load`]
/// of a secret-store backend whose config names one secret).
///
/// # Errors
/// The load's error, or a [`crate::keys::LoadError`] when it gave no key or several.
pub(crate) fn exactly_one(
    file: &Path,
    mut keys: Vec<Result<crate::keys::backend::LoadedKey, crate::keys::LoadError>>,
) -> Result<crate::keys::backend::LoadedKey, crate::keys::LoadError> {
    match keys.len() {
        1 => keys.pop().expect("one key"),
        n => Err(crate::keys::LoadError {
            file: file.to_path_buf(),
            reason: format!("{n} keys where one was expected"),
        }),
    }
}

/// A vault's ECDSA or Ed25519 signature (`r‖s` or 64 raw bytes) over `data`, normalised to
/// low-S and verified against the key loaded from that vault (`vault` names it in errors).
///
/// # Errors
/// [`crate::keys::BackendError`] for a signature that is malformed or does not verify.
pub(crate) fn checked_signature(
    public: &crate::crypto::tezos::PublicKey,
    raw: &[u8],
    data: &[u8],
    version: u8,
    vault: &str,
) -> Result<crate::crypto::tezos::Signature, crate::keys::BackendError> {
    let signature =
        crate::crypto::tezos::Signature::from_raw_low_s(public.curve(), raw).map_err(|e| {
            crate::keys::BackendError(format!("{vault} returned an unusable signature: {e}"))
        })?;
    if !public.verify(data, &signature, version) {
        return Err(crate::keys::BackendError(format!(
            "{vault} returned a signature that does not verify with the loaded key"
        )));
    }
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_their_value() {
        let s = Secret::Inline(Zeroizing::new("hunter2".into()));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.origin(), "the key config");
        let base = Path::new("/etc/palisade");
        assert!(matches!(
            Secret::choose(None, Some("t".into()), None, base, "a, b or c").unwrap(),
            Secret::File(p) if p == Path::new("/etc/palisade/t")
        ));
        let err = Secret::choose(None, None, None, base, "token, tokenFile or tokenEnv");
        assert!(err.unwrap_err().contains("token, tokenFile or tokenEnv"));
        let two = Secret::choose(
            Some(Zeroizing::new("x".into())),
            None,
            Some("V".into()),
            base,
            "x",
        );
        assert!(two.unwrap_err().contains("only one"));
        let missing = Secret::Env("PALISADE_TEST_SURELY_UNSET_VARIABLE".into()).read();
        assert!(missing.unwrap_err().contains("is not set"));
    }

    #[test]
    fn error_messages_come_from_each_vaults_shape() {
        assert_eq!(
            error_message(br#"{"errors":["permission denied"]}"#),
            "permission denied"
        );
        assert_eq!(
            error_message(br#"{"error":{"code":"Forbidden","message":"no access"}}"#),
            "no access"
        );
        assert_eq!(
            error_message(br#"{"__type":"NotFoundException","message":"gone"}"#),
            "gone"
        );
        assert_eq!(error_message(b"<html>"), "");
    }

    #[test]
    fn blocking_calls_run_on_the_vault_runtime() {
        let name = block_on(async {
            Ok::<_, RemoteError>(std::thread::current().name().map(str::to_string))
        })
        .unwrap();
        assert_eq!(name.as_deref(), Some("palisade-vault-io"));
        let err = block_on(async { Err::<(), _>(RemoteError("x".into())) }).unwrap_err();
        assert_eq!(err.0, "x");
    }
}
