//! Azure Key Vault: Tezos keys that sign inside Key Vault ([`keys`], tz2 `P-256K` and tz3
//! `P-256` EC keys), and BLS secrets read from Key Vault secrets and held in memory
//! ([`secrets`]). Both go through the official Azure SDK for Rust (`azure_identity`,
//! `azure_security_keyvault_keys`, `azure_security_keyvault_secrets`), whose HTTP calls
//! palisade carries itself ([`Transport`]: `reqwest` with the system roots or a configured
//! CA, a per-call timeout, and the `palisade_backend_call_*` metrics).
//!
//! The fields every Azure key config shares (Web3Signer's names, plus palisade's):
//!
//! ```yaml
//! vaultName: my-vault                 # https://my-vault.vault.azure.net, or:
//! vaultUrl: https://my-vault.vault.azure.net
//! authenticationMode: CLIENT_SECRET   # default; or CLIENT_CERTIFICATE (clientCertificateFile:
//!                                     # a PKCS#12 file with an RSA key, optional
//!                                     # clientCertificatePasswordFile),
//!                                     # SYSTEM_ASSIGNED_MANAGED_IDENTITY, or
//!                                     # USER_ASSIGNED_MANAGED_IDENTITY (clientId = the identity)
//! tenantId: 0c…                       # CLIENT_SECRET
//! clientId: 5e…                       # CLIENT_SECRET, USER_ASSIGNED_MANAGED_IDENTITY
//! clientSecret: …                     # Web3Signer's; or clientSecretFile / clientSecretEnv
//! authorityHost: https://login.microsoftonline.com   # optional (sovereign clouds, tests)
//! tlsCaFile: ca.pem                   # optional: added to the system roots
//! timeoutMs: 5000                     # per call (default 5000)
//! ```
//!
//! Reads and token requests are retried by the SDK (3 attempts, on 429, 5xx and transport
//! errors); a signature is attempted once. Key Vault's authentication challenge is followed
//! as the SDK does; its check that the challenge names a `*.vault.azure.net` resource is kept
//! for `vaultName`, and relaxed only for an explicit `vaultUrl` elsewhere (a private link or a
//! test stand-in).

pub mod keys;
pub mod secrets;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{
    AsyncRawResponse, ClientOptions, HttpClient, Request, RetryOptions, Transport, request::Body,
};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::keys::remote::{self, RemoteError, Secret};
use crate::metrics::METRICS;

/// The connection and credential fields of an Azure key config, flattened into each.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AzureConfig {
    #[serde(default)]
    pub vault_name: Option<String>,
    #[serde(default)]
    pub vault_url: Option<String>,
    #[serde(default)]
    pub authentication_mode: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<Zeroizing<String>>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub client_certificate_file: Option<PathBuf>,
    #[serde(default)]
    pub client_certificate_password_file: Option<PathBuf>,
    #[serde(default)]
    pub authority_host: Option<String>,
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// The fields [`AzureConfig`] gives a key config.
pub(crate) const AZURE_FIELDS: [&str; 14] = [
    "clientCertificateFile",
    "clientCertificatePasswordFile",
    "vaultName",
    "vaultUrl",
    "authenticationMode",
    "tenantId",
    "clientId",
    "clientSecret",
    "clientSecretFile",
    "clientSecretEnv",
    "authorityHost",
    "tlsCaFile",
    "timeoutMs",
    "keyType",
];

/// How a client gets its Entra ID tokens.
#[derive(Clone, Debug)]
enum Identity {
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: Secret,
    },
    ClientCertificate {
        tenant_id: String,
        client_id: String,
        /// A PKCS#12 (`.pfx`) file: an RSA key and its certificate.
        file: PathBuf,
        password: Option<Secret>,
    },
    SystemManaged,
    UserManaged {
        client_id: String,
    },
}

/// A checked [`AzureConfig`].
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    vault_url: String,
    verify_challenge: bool,
    identity: Identity,
    authority_host: Option<String>,
    ca_file: Option<PathBuf>,
    timeout: Duration,
}

/// An https URL with a host and nothing after it.
fn check_https(url: &str, field: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| format!("{field} `{url}` is not a URL"))?;
    if parsed.scheme() != "https" || parsed.host_str().is_none() || parsed.path() != "/" {
        return Err(format!("{field} `{url}` must be https://host[:port]"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

impl AzureConfig {
    /// Checks the fields; relative files resolve against `base`. Reads no credential yet.
    ///
    /// # Errors
    /// A message naming the field at fault.
    pub(crate) fn connection(self, base: &Path) -> Result<Connection, String> {
        let (vault_url, verify_challenge) = match (&self.vault_name, &self.vault_url) {
            (Some(name), None) => {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(format!("vaultName `{name}` is not a Key Vault name"));
                }
                (format!("https://{name}.vault.azure.net"), true)
            }
            (None, Some(url)) => {
                let url = check_https(url, "vaultUrl")?;
                let azure = reqwest::Url::parse(&url)
                    .ok()
                    .and_then(|u| u.host_str().map(|h| h.ends_with(".vault.azure.net")))
                    .unwrap_or(false);
                (url, azure)
            }
            _ => return Err("give one of vaultName or vaultUrl".into()),
        };
        let mode = self
            .authentication_mode
            .as_deref()
            .unwrap_or("CLIENT_SECRET")
            .to_ascii_uppercase();
        let has_secret = self.client_secret.is_some()
            || self.client_secret_file.is_some()
            || self.client_secret_env.is_some();
        let identity = match mode.as_str() {
            "CLIENT_SECRET" => Identity::ClientSecret {
                tenant_id: self
                    .tenant_id
                    .filter(|t| !t.trim().is_empty())
                    .ok_or("CLIENT_SECRET needs tenantId")?,
                client_id: self
                    .client_id
                    .filter(|t| !t.trim().is_empty())
                    .ok_or("CLIENT_SECRET needs clientId")?,
                secret: Secret::choose(
                    self.client_secret,
                    self.client_secret_file,
                    self.client_secret_env,
                    base,
                    "clientSecret, clientSecretFile or clientSecretEnv",
                )?,
            },
            "CLIENT_CERTIFICATE" if !has_secret => Identity::ClientCertificate {
                tenant_id: self
                    .tenant_id
                    .filter(|t| !t.trim().is_empty())
                    .ok_or("CLIENT_CERTIFICATE needs tenantId")?,
                client_id: self
                    .client_id
                    .filter(|t| !t.trim().is_empty())
                    .ok_or("CLIENT_CERTIFICATE needs clientId")?,
                file: base.join(
                    self.client_certificate_file
                        .ok_or("CLIENT_CERTIFICATE needs clientCertificateFile")?,
                ),
                password: self
                    .client_certificate_password_file
                    .map(|p| Secret::File(base.join(p))),
            },
            "SYSTEM_ASSIGNED_MANAGED_IDENTITY" if !has_secret => Identity::SystemManaged,
            "USER_ASSIGNED_MANAGED_IDENTITY" if !has_secret => Identity::UserManaged {
                client_id: self
                    .client_id
                    .ok_or("USER_ASSIGNED_MANAGED_IDENTITY needs clientId")?,
            },
            "CLIENT_CERTIFICATE"
            | "SYSTEM_ASSIGNED_MANAGED_IDENTITY"
            | "USER_ASSIGNED_MANAGED_IDENTITY" => {
                return Err(format!("a client secret is not used with {mode}"));
            }
            other => {
                return Err(format!(
                    "authenticationMode `{other}` is not supported (CLIENT_SECRET, \
                     CLIENT_CERTIFICATE, SYSTEM_ASSIGNED_MANAGED_IDENTITY, USER_ASSIGNED_MANAGED_IDENTITY)"
                ));
            }
        };
        let timeout = Duration::from_millis(self.timeout_ms.unwrap_or(5000));
        if timeout.is_zero() || timeout > Duration::from_secs(120) {
            return Err("timeoutMs must be between 1 and 120000".into());
        }
        Ok(Connection {
            vault_url,
            verify_challenge,
            identity,
            authority_host: self
                .authority_host
                .map(|a| check_https(&a, "authorityHost"))
                .transpose()?,
            ca_file: self.tls_ca_file.map(|p| base.join(p)),
            timeout,
        })
    }
}

/// palisade's HTTP transport for the Azure SDK: `reqwest` with palisade's TLS roots, the
/// per-call timeout, and the `palisade_backend_call_*{backend}` metrics, one observation per
/// attempt (`operation` is the HTTP method and the first path segment: `POST keys`).
#[derive(Debug)]
struct Transport_ {
    http: reqwest::Client,
    timeout: Duration,
    backend: &'static str,
}

#[async_trait]
impl HttpClient for Transport_ {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let method =
            reqwest::Method::from_bytes(request.method().as_str().as_bytes()).map_err(|_| {
                azure_core::Error::with_message(azure_core::error::ErrorKind::Other, "bad method")
            })?;
        let url = request.url().clone();
        let mut builder = self
            .http
            .request(method, url.as_str())
            .timeout(self.timeout);
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder = match request.body() {
            Body::Bytes(bytes) => builder.body(bytes.to_vec()),
            #[allow(unreachable_patterns)]
            _ => {
                return Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Other,
                    "streamed request bodies are not used",
                ));
            }
        };
        let operation = operation_of(request.method().as_str(), url.path());
        let started = Instant::now();
        let outcome = async {
            let response = builder.send().await?;
            let status = response.status().as_u16();
            let headers: std::collections::HashMap<_, _> = response
                .headers()
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        azure_core::http::headers::HeaderName::from(k.as_str().to_owned()),
                        azure_core::http::headers::HeaderValue::from(v.to_str().ok()?.to_owned()),
                    ))
                })
                .collect();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        }
        .await;
        let labels = [self.backend, operation];
        METRICS
            .backend_duration
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
        let (status, headers, body) = outcome.map_err(|e| {
            METRICS.backend_errors.with_label_values(&labels).inc();
            let kind = if e.is_connect() {
                azure_core::error::ErrorKind::Connection
            } else {
                azure_core::error::ErrorKind::Io
            };
            azure_core::Error::with_message(
                kind,
                if e.is_timeout() {
                    format!("{} timed out", self.backend)
                } else if e.is_connect() {
                    format!("cannot connect to {}", url.host_str().unwrap_or_default())
                } else {
                    format!("{} request failed", self.backend)
                },
            )
        })?;
        if !(200..300).contains(&status) {
            METRICS.backend_errors.with_label_values(&labels).inc();
        }
        let stream: azure_core::http::response::PinnedStream =
            Box::pin(futures_util::stream::once(async move { Ok(body) }));
        Ok(AsyncRawResponse::new(
            status.into(),
            azure_core::http::headers::Headers::from(headers),
            stream,
        ))
    }
}

/// The metrics operation of a Key Vault or token call.
fn operation_of(method: &str, path: &str) -> &'static str {
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    match (method, last) {
        ("POST", "sign") => "sign",
        ("POST", "token") | ("GET", "token") => "token",
        _ if path.starts_with("/keys") => "read_key",
        _ if path == "/secrets" => "list_secrets",
        _ if path.starts_with("/secrets") => "read_secret",
        _ => "other",
    }
}

/// Retries of the SDK's policy: 3 attempts for reads and tokens, none for signatures.
fn retry(attempts: u32) -> RetryOptions {
    if attempts <= 1 {
        RetryOptions::none()
    } else {
        RetryOptions::exponential(azure_core::http::ExponentialRetryOptions {
            max_retries: attempts - 1,
            initial_delay: azure_core::time::Duration::milliseconds(100),
            ..Default::default()
        })
    }
}

impl Connection {
    /// The vault's URL, for the inventory and messages.
    pub(crate) fn vault_url(&self) -> &str {
        &self.vault_url
    }

    /// The per-call timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the SDK checks the challenge's resource domain.
    pub(crate) fn verify_challenge(&self) -> bool {
        self.verify_challenge
    }

    /// The HTTP client of this config (system roots plus `tlsCaFile`, the per-call timeout):
    /// one per config, shared by its credential and its Key Vault clients (one pool).
    ///
    /// # Errors
    /// A message for a bad CA file.
    pub(crate) fn http(&self) -> Result<reqwest::Client, RemoteError> {
        remote::http_client(self.ca_file.as_deref(), self.timeout).map_err(RemoteError)
    }

    /// Client options for the SDK: palisade's transport over `http` for `backend`, `attempts`
    /// attempts.
    pub(crate) fn client_options(
        &self,
        http: &reqwest::Client,
        backend: &'static str,
        attempts: u32,
    ) -> ClientOptions {
        let mut options = ClientOptions {
            transport: Some(Transport::new(Arc::new(Transport_ {
                http: http.clone(),
                timeout: self.timeout,
                backend,
            }))),
            retry: retry(attempts),
            ..Default::default()
        };
        if let Some(host) = &self.authority_host {
            let mut custom = azure_core::cloud::CustomConfiguration::default();
            custom.authority_host = host.clone();
            options.cloud = Some(Arc::new(azure_core::cloud::CloudConfiguration::Custom(
                custom,
            )));
        }
        options
    }

    /// The token credential of this config, its token requests sent over `http`. One per
    /// config: its clients share it, and with it one token.
    ///
    /// # Errors
    /// A message naming a credential that cannot be read, or the SDK's refusal.
    pub(crate) fn credential(
        &self,
        http: &reqwest::Client,
        backend: &'static str,
    ) -> Result<Arc<dyn TokenCredential>, RemoteError> {
        let client_options = self.client_options(http, backend, 3);
        let sdk = |e: azure_core::Error| RemoteError(format!("{backend} credential: {e}"));
        Ok(match &self.identity {
            Identity::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => {
                let value = secret
                    .read()
                    .map_err(|e| RemoteError(format!("{backend} clientSecret: {e}")))?;
                azure_identity::ClientSecretCredential::new(
                    tenant_id,
                    client_id.clone(),
                    azure_core::credentials::Secret::new(value.trim().to_string()),
                    Some(azure_identity::ClientSecretCredentialOptions { client_options }),
                )
                .map_err(sdk)?
            }
            Identity::ClientCertificate {
                tenant_id,
                client_id,
                file,
                password,
            } => {
                let bytes = zeroize::Zeroizing::new(std::fs::read(file).map_err(|e| {
                    RemoteError(format!(
                        "{backend} clientCertificateFile {}: {e}",
                        file.display()
                    ))
                })?);
                let password = password
                    .as_ref()
                    .map(Secret::read)
                    .transpose()
                    .map_err(|e| RemoteError(format!("{backend} certificate password: {e}")))?
                    .map(|p| azure_core::credentials::Secret::new(p.trim().to_string()));
                azure_identity::ClientCertificateCredential::new(
                    tenant_id.clone(),
                    client_id.clone(),
                    azure_core::credentials::SecretBytes::new(bytes.to_vec()),
                    Some(azure_identity::ClientCertificateCredentialOptions {
                        client_options,
                        password,
                    }),
                )
                .map_err(|e| {
                    RemoteError(format!(
                        "{backend} clientCertificateFile {}: {e}",
                        file.display()
                    ))
                })?
            }
            Identity::SystemManaged | Identity::UserManaged { .. } => {
                let user_assigned_id = match &self.identity {
                    Identity::UserManaged { client_id } => {
                        Some(azure_identity::UserAssignedId::ClientId(client_id.clone()))
                    }
                    _ => None,
                };
                azure_identity::ManagedIdentityCredential::new(Some(
                    azure_identity::ManagedIdentityCredentialOptions {
                        user_assigned_id,
                        client_options,
                    },
                ))
                .map_err(sdk)?
            }
        })
    }
}

/// An SDK error in one line: the HTTP status and Key Vault's error code and message when the
/// service answered, else the SDK's message (which names no credential).
pub(crate) fn concise(backend: &str, operation: &str, e: &azure_core::Error) -> RemoteError {
    let text = match e.kind() {
        azure_core::error::ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            let message: String = e
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            format!(
                "HTTP {} {}{}",
                u16::from(*status),
                error_code.as_deref().unwrap_or_default(),
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            )
        }
        _ => {
            // The SDK wraps a credential's refusal ("non-transport error … not retried"): the
            // causes below it say what happened (AADSTS code and message).
            let mut parts = vec![e.to_string()];
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                let text = s.to_string();
                if !parts.iter().any(|p| p.contains(&text)) {
                    parts.push(text);
                }
                source = s.source();
            }
            let joined = parts
                .iter()
                .map(|p| p.lines().next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(": ");
            joined.chars().take(300).collect()
        }
    };
    RemoteError(format!("{backend} {operation}: {text}"))
}
