//! HashiCorp Vault and OpenBao (same HTTP API): BLS secrets read from the KV v2 engine and
//! held in memory, and Tezos keys that sign inside the Transit engine.
//!
//! - [`kv`]: `type: hashicorp` (Web3Signer's key config, one BLS secret) and
//!   `type: vault-kv-bulk` (every secret under a KV path, loaded in parallel).
//! - [`transit`]: `type: vault-transit`, tz1 (`ed25519`) and tz3 (`ecdsa-p256`) Transit keys;
//!   Transit has no secp256k1, so no tz2.
//!
//! palisade's own types share these fields:
//!
//! ```yaml
//! address: https://vault.example:8200   # scheme, host and port of the API
//! namespace: ops/validators            # optional: X-Vault-Namespace (Vault Enterprise)
//! tlsCaFile: vault-ca.pem              # optional: PEM CA bundle added to the system roots
//! timeoutMs: 5000                      # per call (default 5000)
//! tokenFile: /run/secrets/vault-token  # or tokenEnv: VAULT_TOKEN, or:
//! appRole: { mount: approle, roleId: 3d…, secretIdFile: /run/secrets/secret-id }
//! ```
//!
//! A token file is read again after Vault answers 403, so a Vault Agent that rotates its
//! sink file keeps working; an AppRole login is renewed before its lease ends and after a
//! 403. Reads and logins are retried twice (connection failures, 429, 5xx); signing calls are
//! not retried.

pub mod kv;
pub mod transit;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::keys::remote::{self, RemoteError, Secret};

/// The metrics label of every Vault call (`palisade_backend_call_*{backend="vault"}`).
const BACKEND: &str = "vault";

/// Default per-call timeout, milliseconds.
const DEFAULT_TIMEOUT_MS: u64 = 5000;

/// The connection and authentication fields of palisade's own Vault key configs, flattened
/// into each (the registry's strict field check refuses unknown fields).
#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectionConfig {
    pub address: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub app_role: Option<AppRoleConfig>,
}

/// The fields [`ConnectionConfig`] gives a key config.
pub(crate) const CONNECTION_FIELDS: [&str; 7] = [
    "address",
    "namespace",
    "tlsCaFile",
    "timeoutMs",
    "tokenFile",
    "tokenEnv",
    "appRole",
];

/// AppRole login (`auth/<mount>/login`).
#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AppRoleConfig {
    #[serde(default)]
    pub mount: Option<String>,
    #[serde(default)]
    pub role_id: Option<String>,
    #[serde(default)]
    pub role_id_file: Option<PathBuf>,
    #[serde(default)]
    pub secret_id_file: Option<PathBuf>,
    #[serde(default)]
    pub secret_id_env: Option<String>,
}

/// How a client authenticates.
enum Auth {
    /// A token (inline, file or variable).
    Token(Secret),
    /// An AppRole login.
    AppRole {
        mount: String,
        role_id: Secret,
        secret_id: Secret,
    },
}

/// A token in use and when it stops being usable (`None`: no expiry known).
struct CachedToken {
    token: Zeroizing<String>,
    renew_at: Option<Instant>,
}

/// A client of one Vault / OpenBao server.
pub struct VaultClient {
    address: String,
    namespace: Option<String>,
    http: reqwest::Client,
    timeout: Duration,
    auth: Auth,
    token: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Checks a server address: `http://` or `https://`, a host, no path or query.
fn check_address(address: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(address).map_err(|_| format!("address `{address}` is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("address `{address}` must be http(s)://host[:port]"));
    }
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        return Err(format!(
            "address `{address}` must be http(s)://host[:port] without a path, query or user"
        ));
    }
    Ok(address.trim_end_matches('/').to_string())
}

impl ConnectionConfig {
    /// The client this config describes; relative files resolve against `base`. Reads no
    /// credential yet.
    ///
    /// # Errors
    /// A message naming the field at fault.
    pub(crate) fn client(&self, base: &Path) -> Result<VaultClient, String> {
        let address = check_address(&self.address)?;
        let timeout = Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
        if timeout.is_zero() || timeout > Duration::from_secs(120) {
            return Err("timeoutMs must be between 1 and 120000".into());
        }
        let auth = match (&self.app_role, &self.token_file, &self.token_env) {
            (Some(role), None, None) => {
                let role_id = match (&role.role_id, &role.role_id_file) {
                    (Some(id), None) => Secret::Inline(Zeroizing::new(id.clone())),
                    (None, Some(p)) => Secret::File(base.join(p)),
                    _ => return Err("appRole needs one of roleId or roleIdFile".into()),
                };
                let secret_id = Secret::choose(
                    None,
                    role.secret_id_file.clone(),
                    role.secret_id_env.clone(),
                    base,
                    "appRole.secretIdFile or appRole.secretIdEnv",
                )?;
                Auth::AppRole {
                    mount: role.mount.clone().unwrap_or_else(|| "approle".into()),
                    role_id,
                    secret_id,
                }
            }
            (None, file, env) => Auth::Token(Secret::choose(
                None,
                file.clone(),
                env.clone(),
                base,
                "tokenFile, tokenEnv or appRole",
            )?),
            _ => return Err("give only one of tokenFile, tokenEnv or appRole".into()),
        };
        let ca = self.tls_ca_file.as_ref().map(|p| base.join(p));
        Ok(VaultClient {
            address,
            namespace: self.namespace.clone(),
            http: remote::http_client(ca.as_deref(), timeout)?,
            timeout,
            auth,
            token: Mutex::new(None),
        })
    }
}

/// The parts of a Vault answer palisade reads: `data`, and `auth` for logins.
#[derive(Deserialize)]
struct Answer<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct LoginAnswer {
    auth: Option<LoginAuth>,
}

#[derive(Deserialize)]
struct LoginAuth {
    client_token: Zeroizing<String>,
    #[serde(default)]
    lease_duration: u64,
}

impl VaultClient {
    /// A client of `address` authenticating with `token` (Web3Signer's `hashicorp` type).
    ///
    /// # Errors
    /// A message for a bad CA file.
    pub(crate) fn with_token(
        address: String,
        token: Secret,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<VaultClient, String> {
        Ok(VaultClient {
            address,
            namespace: None,
            http: remote::http_client(ca_file, timeout)?,
            timeout,
            auth: Auth::Token(token),
            token: Mutex::new(None),
        })
    }

    /// `scheme://host:port` of the server.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The token to send: the cached one while it is valid, else a fresh read or login.
    async fn token(&self) -> Result<Zeroizing<String>, RemoteError> {
        if let Some(cached) = self.token.lock().as_ref()
            && cached.renew_at.is_none_or(|t| Instant::now() < t)
        {
            return Ok(cached.token.clone());
        }
        let fresh = match &self.auth {
            Auth::Token(secret) => CachedToken {
                token: Zeroizing::new(
                    secret
                        .read()
                        .map_err(|e| RemoteError(format!("vault token: {e}")))?
                        .trim()
                        .to_string(),
                ),
                renew_at: None,
            },
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => self.login(mount, role_id, secret_id).await?,
        };
        let token = fresh.token.clone();
        *self.token.lock() = Some(fresh);
        Ok(token)
    }

    /// AppRole login; the token is renewed at 80 % of its lease.
    async fn login(
        &self,
        mount: &str,
        role_id: &Secret,
        secret_id: &Secret,
    ) -> Result<CachedToken, RemoteError> {
        let read = |s: &Secret, what: &str| {
            s.read()
                .map_err(|e| RemoteError(format!("vault appRole {what}: {e}")))
        };
        let body = serde_json::json!({
            "role_id": read(role_id, "roleId")?.trim(),
            "secret_id": read(secret_id, "secretId")?.trim(),
        });
        let body = Zeroizing::new(body.to_string());
        let url = format!("{}/v1/auth/{mount}/login", self.address);
        let (status, answer) = remote::send(BACKEND, "login", remote::IDEMPOTENT_ATTEMPTS, || {
            self.request(reqwest::Method::POST, &url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.as_str().to_owned())
        })
        .await?;
        if !status.is_success() {
            return Err(RemoteError(format!(
                "vault appRole login at auth/{mount} refused: HTTP {} {}",
                status.as_u16(),
                remote::error_message(&answer)
            )));
        }
        let answer: LoginAnswer = remote::decode(answer, "a Vault login answer")?;
        let auth = answer
            .auth
            .ok_or_else(|| RemoteError("vault appRole login answered without a token".into()))?;
        let renew_at = (auth.lease_duration > 0)
            .then(|| Instant::now() + Duration::from_secs(auth.lease_duration) * 4 / 5);
        Ok(CachedToken {
            token: auth.client_token,
            renew_at,
        })
    }

    /// A request to `url` with the namespace header and the per-call timeout.
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, url).timeout(self.timeout);
        if let Some(ns) = &self.namespace {
            r = r.header("X-Vault-Namespace", ns);
        }
        r
    }

    /// Calls `path` (after `/v1/`) with a token; after a 403 the token is read or logged in
    /// again once. Returns the status and body of the answer (404 included).
    ///
    /// # Errors
    /// [`RemoteError`] when no answer came or no token could be had.
    async fn call(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        attempts: u32,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), RemoteError> {
        let url = format!("{}/v1/{path}", self.address);
        let body = body.map(|b| b.to_string());
        let mut renewed = false;
        loop {
            let token = self.token().await?;
            let (status, answer) = remote::send(BACKEND, operation, attempts, || {
                let mut r = self
                    .request(method.clone(), &url)
                    .header("X-Vault-Token", token.as_str());
                if let Some(b) = &body {
                    r = r
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(b.clone());
                }
                r
            })
            .await?;
            if status == reqwest::StatusCode::FORBIDDEN && !renewed {
                *self.token.lock() = None;
                renewed = true;
                continue;
            }
            return Ok((status, answer));
        }
    }

    /// Calls `path` and decodes `data` of a successful answer.
    ///
    /// # Errors
    /// [`RemoteError`]: no answer, an error status (with Vault's message), no `data`.
    async fn data<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        attempts: u32,
    ) -> Result<T, RemoteError> {
        let (status, answer) = self.call(operation, method, path, body, attempts).await?;
        if !status.is_success() {
            return Err(status_error(status, &answer, path));
        }
        let answer: Answer<T> = remote::decode(answer, "a Vault answer")?;
        answer
            .data
            .ok_or_else(|| RemoteError(format!("vault {path}: answer without data")))
    }
}

/// A Vault error status in words, with Vault's own message.
fn status_error(status: reqwest::StatusCode, body: &[u8], path: &str) -> RemoteError {
    let what = match status.as_u16() {
        403 => "permission denied",
        404 => "not found",
        400 => "bad request",
        429 => "rate limited",
        503 => "sealed or unavailable",
        _ => "failed",
    };
    let message = remote::error_message(body);
    let message = if message.is_empty() || message == what {
        String::new()
    } else {
        format!(": {message}")
    };
    RemoteError(format!(
        "vault {path}: {what} (HTTP {}){message}",
        status.as_u16()
    ))
}

/// Shares one client between the keys of one config.
pub(crate) type Client = Arc<VaultClient>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert_eq!(
            check_address("https://v.example:8200/").unwrap(),
            "https://v.example:8200"
        );
        assert!(check_address("v.example:8200").is_err());
        assert!(check_address("https://v.example:8200/v1/secret").is_err());
        assert!(check_address("ftp://v.example").is_err());
    }

    #[test]
    fn one_credential_source_is_required() {
        let base = Path::new("/etc");
        let mut c = ConnectionConfig {
            address: "http://127.0.0.1:8200".into(),
            namespace: None,
            tls_ca_file: None,
            timeout_ms: None,
            token_file: None,
            token_env: None,
            app_role: None,
        };
        assert!(
            c.client(base)
                .unwrap_err()
                .contains("tokenFile, tokenEnv or appRole")
        );
        c.token_env = Some("VAULT_TOKEN".into());
        assert!(c.client(base).is_ok());
        c.token_file = Some("t".into());
        assert!(c.client(base).unwrap_err().contains("only one"));
        c.token_file = None;
        c.timeout_ms = Some(0);
        assert!(c.client(base).unwrap_err().contains("timeoutMs"));
    }
}
