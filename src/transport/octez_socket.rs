//! octez's binary remote-signer protocol (`octez-client` / `octez-baker` remote keys
//! `tcp://HOST:PORT/<pkh>` and `unix:/PATH?pkh=<pkh>`) over a TCP listener
//! (`--tezos-tcp-listen-host/-port`) and a Unix socket (`--tezos-unix-socket`).
//!
//! Each connection is served in a loop, one request at a time, in order: read a frame (2-byte
//! big-endian length and payload), decode it ([`crate::chain::tezos::signer_messages`]), call
//! the Tezos signing service ([`crate::service::tezos`], the one the HTTP API calls: the same
//! authentication, magic-byte list, policy, high watermarks, audit trail and metrics), send the
//! answer. A refusal or failure is answered with octez's generic `failure` error carrying the
//! message the HTTP API would put in its JSON error; a request that does not decode is
//! answered with an error too and the connection goes on (its framing is intact).
//!
//! Bounds: a connection idle for [`IDLE_TIMEOUT`] between requests is closed; a frame that
//! started must arrive, and an answer must be taken, within [`FRAME_TIMEOUT`] (octez's own
//! socket timeout); at most [`MAX_CONNECTIONS`] connections are served at once (more are
//! closed at once, so that a flood cannot starve the HTTP listener of file descriptors).
//!
//! Neither listener has TLS or a Host check: the TCP listener belongs on loopback, a private
//! network or a tunnel, and the Unix socket is created with mode 0600 (0660 and the configured
//! group with `--tezos-unix-socket-group`).

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::api::tezos::{TezosError, TezosState};
use crate::chain::tezos::signer_messages::{
    self, Answer, Authenticated, PkhBytes, Request, decode_request,
};
use crate::crypto::tezos::{Curve, PublicKey, decode_pkh_bytes, encode_pkh};
use crate::metrics::METRICS;
use crate::service::tezos::{AuthenticationInput, TezosSignError, TezosSignRequest};

/// A connection idle this long between two requests is closed: 60 s (octez's client opens
/// one connection per operation).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Time allowed to receive the rest of a frame once its first byte arrived, and to send an
/// answer: 8 s (octez's `default_net_timeout`).
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(8);

/// Connections served at once, over both listeners: 512.
pub const MAX_CONNECTIONS: usize = 512;

/// The running binary-protocol listeners.
pub struct Listeners {
    tasks: Vec<JoinHandle<()>>,
    unix_path: Option<PathBuf>,
}

impl Listeners {
    /// Stops accepting, closes the connections being served and removes the Unix socket file.
    pub fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Binds the TCP listener (`port` 0 picks a free one).
///
/// # Errors
/// The bind error, with the address.
pub fn bind_tcp(host: &str, port: u16) -> Result<std::net::TcpListener, String> {
    let listener = std::net::TcpListener::bind((host, port))
        .map_err(|e| format!("cannot listen on tcp://{host}:{port}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("tcp://{host}:{port}: {e}"))?;
    if let Ok(a) = listener.local_addr()
        && !a.ip().is_loopback()
    {
        tracing::warn!(%a, "the octez binary-protocol TCP listener has no TLS and no authentication of its own: keep it on loopback, a private network or a tunnel, and consider --tezos-require-authentication");
    }
    Ok(listener)
}

/// Creates the Unix socket at `path` with mode 0600, or 0660 owned by `group` (a name or a
/// number). A stale socket file (nobody answering on it) is replaced; any other file, or a
/// socket another process serves, is an error.
///
/// # Errors
/// A message naming the path or the group.
pub fn bind_unix(
    path: &Path,
    group: Option<&str>,
) -> Result<std::os::unix::net::UnixListener, String> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(format!("{shown}: another process is serving this socket"));
            }
            std::fs::remove_file(path).map_err(|e| format!("{shown}: stale socket: {e}"))?;
        }
        Ok(_) => return Err(format!("{shown} exists and is not a socket")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{shown}: {e}")),
    }
    let gid = group.map(group_id).transpose()?;
    // The socket is created with no access for group and others, whatever the process's
    // umask (a stricter umask during the bind can only make other files stricter).
    use nix::sys::stat::{Mode, umask};
    let previous = umask(Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    umask(previous);
    let listener = bound.map_err(|e| format!("cannot listen on {shown}: {e}"))?;
    let mode = if let Some(gid) = gid {
        nix::unistd::chown(path, None, Some(gid))
            .map_err(|e| format!("{shown}: cannot give it to group {gid}: {e}"))?;
        0o660
    } else {
        0o600
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{shown}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok(listener)
}

/// A group given by name or number.
fn group_id(group: &str) -> Result<nix::unistd::Gid, String> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(nix::unistd::Gid::from_raw(n));
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(format!("--tezos-unix-socket-group: no group `{group}`")),
        Err(e) => Err(format!("--tezos-unix-socket-group `{group}`: {e}")),
    }
}

/// Serves the bound listeners on the current Tokio runtime until [`Listeners::shutdown`].
///
/// # Errors
/// A listener the runtime cannot register.
pub fn spawn(
    state: TezosState,
    tcp: Option<std::net::TcpListener>,
    unix: Option<(std::os::unix::net::UnixListener, PathBuf)>,
) -> std::io::Result<Listeners> {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = Vec::new();
    if let Some(l) = tcp {
        let l = tokio::net::TcpListener::from_std(l)?;
        let (state, permits) = (state.clone(), permits.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let (stream, peer): (_, SocketAddr) = match l.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(reason = %e, "tezos tcp accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "tezos socket connection refused: {MAX_CONNECTIONS} connections already served");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                tokio::spawn(async move {
                    serve(stream, &state, Some(peer.ip().to_string())).await;
                    drop(permit);
                });
            }
        }));
    }
    let mut unix_path = None;
    if let Some((l, path)) = unix {
        let l = tokio::net::UnixListener::from_std(l)?;
        unix_path = Some(path);
        tasks.push(tokio::spawn(async move {
            loop {
                let stream = match l.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(reason = %e, "tezos unix socket accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!("tezos socket connection refused: {MAX_CONNECTIONS} connections already served");
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    serve(stream, &state, Some("unix".into())).await;
                    drop(permit);
                });
            }
        }));
    }
    Ok(Listeners { tasks, unix_path })
}

/// Serves one connection until the peer closes it, it idles, a frame is cut short or an
/// answer cannot be sent.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    state: &TezosState,
    caller: Option<String>,
) {
    loop {
        let first = match tokio::time::timeout(IDLE_TIMEOUT, stream.read_u8()).await {
            Ok(Ok(b)) => b,
            _ => return,
        };
        let read = async {
            let second = stream.read_u8().await?;
            let mut payload = vec![0u8; usize::from(u16::from_be_bytes([first, second]))];
            stream.read_exact(&mut payload).await?;
            Ok::<_, std::io::Error>(payload)
        };
        let payload = match tokio::time::timeout(FRAME_TIMEOUT, read).await {
            Ok(Ok(p)) => p,
            _ => return,
        };
        let answer = handle(state, &payload, caller.clone()).await.encode();
        let framed = signer_messages::frame(&answer).unwrap_or_else(|| {
            let e = Answer::Error("the answer is longer than the protocol's 65,535 bytes".into());
            signer_messages::frame(&e.encode()).unwrap_or_default()
        });
        let sent = tokio::time::timeout(FRAME_TIMEOUT, stream.write_all(&framed)).await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
}

/// The base58 pkh (`tz1…`–`tz5…`) of a binary one; `None` for a tag no curve has (the decoder
/// already refuses those).
fn pkh_b58(pkh: &PkhBytes) -> Option<String> {
    let curve = Curve::from_pkh_tag(pkh[0])?;
    let mut hash = [0u8; 20];
    hash.copy_from_slice(&pkh[1..]);
    Some(encode_pkh(curve, &hash))
}

fn refusal(e: TezosSignError) -> (u16, Answer) {
    let e = TezosError::from(e);
    (e.status_u16(), Answer::Error(e.message().to_string()))
}

/// The refusal of a pkh [`pkh_b58`] cannot name.
fn not_served() -> TezosSignError {
    TezosSignError::UnknownKey("a public key hash of an unknown kind".into())
}

/// Answers one request payload. Sign requests are counted in the request metrics as the HTTP
/// API counts them (`palisade_requests_total{chain="tezos"}` with the HTTP status the same
/// outcome has there).
pub async fn handle(state: &TezosState, payload: &[u8], caller: Option<String>) -> Answer {
    let started = Instant::now();
    let request = match decode_request(payload) {
        Ok(r) => r,
        Err(e) => {
            METRICS.request("tezos", "unknown", 400, started.elapsed());
            return Answer::Error(format!("malformed signer request: {e}"));
        }
    };
    let service = state.service();
    let nonce_hash = matches!(request, Request::DeterministicNonceHash(_));
    let with_pkh = |pkh: &PkhBytes| pkh_b58(pkh).ok_or_else(not_served);
    match request {
        Request::Sign(Authenticated {
            pkh,
            version,
            data,
            authentication,
        }) => {
            let (kind, outcome) = match with_pkh(&pkh) {
                Err(e) => ("unknown", Err(e)),
                Ok(b58) => {
                    let version = version.map(|v| v.to_string());
                    service
                        .sign(TezosSignRequest {
                            pkh: &b58,
                            data,
                            authentication: authentication.as_deref().map(AuthenticationInput::Raw),
                            version: version.as_deref(),
                            caller,
                        })
                        .await
                }
            };
            let (status, answer) = match outcome {
                Ok(sig) => (200, Answer::Signature(sig.as_bytes().to_vec())),
                Err(e) => refusal(e),
            };
            METRICS.request("tezos", kind, status, started.elapsed());
            answer
        }
        Request::PublicKey(pkh) => match with_pkh(&pkh).and_then(|b58| service.key(&b58)) {
            Ok(key) => {
                let pk = key.signer.public_key();
                Answer::PublicKey(pk.curve().pkh_tag(), pk.as_bytes().to_vec())
            }
            Err(e) => refusal(e).1,
        },
        Request::AuthorizedKeys => Answer::AuthorizedKeys(
            state
                .authorized_keys
                .as_ref()
                .map(|a| a.keys().iter().map(PublicKey::pkh_bytes).collect()),
        ),
        Request::DeterministicNonce(a) | Request::DeterministicNonceHash(a) => {
            let outcome = match with_pkh(&a.pkh) {
                Err(e) => Err(e),
                Ok(b58) => {
                    service
                        .deterministic_nonce(
                            &b58,
                            a.data,
                            a.authentication.as_deref().map(AuthenticationInput::Raw),
                            nonce_hash,
                        )
                        .await
                }
            };
            match outcome {
                Ok(bytes) => Answer::Bytes(bytes),
                Err(e) => refusal(e).1,
            }
        }
        Request::SupportsDeterministicNonces(pkh) => {
            match with_pkh(&pkh).and_then(|b58| service.supports_deterministic_nonces(&b58)) {
                Ok(b) => Answer::Bool(b),
                Err(e) => refusal(e).1,
            }
        }
        Request::KnownKeys => {
            if !state.allow_list_known_keys {
                return Answer::Error(
                    "listing known keys is not allowed (--tezos-allow-list-known-keys)".into(),
                );
            }
            Answer::KnownKeys(
                state
                    .keys
                    .current()
                    .tezos_pkhs()
                    .iter()
                    .filter_map(|p| decode_pkh_bytes(p).ok())
                    .collect(),
            )
        }
        Request::BlsProvePossession(pkh, override_pk) => {
            let override_b58 = match override_pk.map(|pk| PublicKey::from_raw(Curve::Bls, &pk)) {
                None => None,
                Some(Ok(pk)) => Some(pk.to_b58()),
                Some(Err(e)) => {
                    return Answer::Error(format!("override public key: {e}"));
                }
            };
            let outcome = match with_pkh(&pkh) {
                Err(e) => Err(e),
                Ok(b58) => {
                    service
                        .prove_possession(&b58, override_b58.as_deref())
                        .await
                }
            };
            match outcome {
                Ok(proof) => Answer::Proof(proof.as_bytes().to_vec()),
                Err(e) => refusal(e).1,
            }
        }
    }
}
