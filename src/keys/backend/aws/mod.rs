//! AWS: Tezos keys that sign inside KMS ([`kms`], tz2 and tz3), and BLS secrets read from
//! Secrets Manager and held in memory ([`secrets`]). Both go through the official AWS SDK for
//! Rust (`aws-config`, `aws-sdk-kms`, `aws-sdk-secretsmanager`).
//!
//! The fields every AWS key config shares:
//!
//! ```yaml
//! region: eu-west-1                   # required
//! authenticationMode: ENVIRONMENT     # default: the SDK's standard credential chain
//!                                     # (AWS_* variables, web identity, ~/.aws profiles,
//!                                     # ECS / EC2 instance roles); SPECIFIED: the keys below
//! profile: signer                     # optional, ENVIRONMENT only: a named profile
//! accessKeyId: AKIA…                  # SPECIFIED only (Web3Signer's format), or
//! secretAccessKeyFile: /run/secrets/aws-secret   # …File / …Env instead of the inline value
//! endpointOverride: https://kms.eu-west-1.amazonaws.com   # optional (VPC endpoints, tests)
//! tlsCaFile: ca.pem                   # optional: PEM CA added to the system roots
//! timeoutMs: 5000                     # per attempt (default 5000)
//! ```
//!
//! Reads are retried by the SDK's standard retry strategy (3 attempts, on throttling, 5xx and
//! transport errors); a KMS signature is attempted once. Every call is timed into
//! `palisade_backend_call_*{backend="aws-kms"|"aws-secrets"}`.

pub mod kms;
pub mod secrets;

use std::path::Path;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::keys::remote::{RemoteError, Secret};
use crate::metrics::METRICS;

/// The connection and credential fields of an AWS key config, flattened into each.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AwsConfig {
    pub region: String,
    #[serde(default)]
    pub authentication_mode: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<Zeroizing<String>>,
    #[serde(default)]
    pub secret_access_key_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub secret_access_key_env: Option<String>,
    #[serde(default)]
    pub session_token_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub endpoint_override: Option<String>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub tls_ca_file: Option<std::path::PathBuf>,
}

/// The fields [`AwsConfig`] gives a key config.
pub(crate) const AWS_FIELDS: [&str; 12] = [
    "tlsCaFile",
    "region",
    "authenticationMode",
    "profile",
    "accessKeyId",
    "secretAccessKey",
    "secretAccessKeyFile",
    "secretAccessKeyEnv",
    "sessionTokenFile",
    "endpointOverride",
    "timeoutMs",
    "keyType",
];

/// Where an AWS client's credentials come from.
#[derive(Clone, Debug)]
enum Credentials {
    /// The SDK's standard chain, optionally with a named profile.
    Chain { profile: Option<String> },
    /// An access key given in the config (`SPECIFIED`).
    Specified {
        access_key_id: String,
        secret_access_key: Secret,
        session_token: Option<Secret>,
    },
}

/// A checked [`AwsConfig`]: what building the SDK configuration needs.
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    region: String,
    credentials: Credentials,
    endpoint: Option<String>,
    /// A PEM CA bundle trusted besides the system roots.
    ca_pem: Option<Vec<u8>>,
    timeout: Duration,
}

impl AwsConfig {
    /// Checks the fields; relative files resolve against `base`. Reads no credential yet.
    ///
    /// # Errors
    /// A message naming the field at fault.
    pub(crate) fn connection(self, base: &Path) -> Result<Connection, String> {
        let region = self.region.trim().to_string();
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err("region must be an AWS region name (eu-west-1)".into());
        }
        let timeout = Duration::from_millis(self.timeout_ms.unwrap_or(5000));
        if timeout.is_zero() || timeout > Duration::from_secs(120) {
            return Err("timeoutMs must be between 1 and 120000".into());
        }
        let mode = self
            .authentication_mode
            .as_deref()
            .unwrap_or("ENVIRONMENT")
            .to_ascii_uppercase();
        let given_key = self.access_key_id.is_some()
            || self.secret_access_key.is_some()
            || self.secret_access_key_file.is_some()
            || self.secret_access_key_env.is_some();
        let credentials = match mode.as_str() {
            "ENVIRONMENT" | "DEFAULT" => {
                if given_key {
                    return Err(
                        "accessKeyId/secretAccessKey need authenticationMode: SPECIFIED".into(),
                    );
                }
                Credentials::Chain {
                    profile: self.profile,
                }
            }
            "SPECIFIED" => {
                if self.profile.is_some() {
                    return Err("profile is for authenticationMode: ENVIRONMENT".into());
                }
                let access_key_id = self
                    .access_key_id
                    .filter(|k| !k.trim().is_empty())
                    .ok_or("authenticationMode SPECIFIED needs accessKeyId")?;
                Credentials::Specified {
                    access_key_id: access_key_id.trim().to_string(),
                    secret_access_key: Secret::choose(
                        self.secret_access_key,
                        self.secret_access_key_file,
                        self.secret_access_key_env,
                        base,
                        "secretAccessKey, secretAccessKeyFile or secretAccessKeyEnv",
                    )?,
                    session_token: self.session_token_file.map(|p| Secret::File(base.join(p))),
                }
            }
            other => {
                return Err(format!(
                    "authenticationMode `{other}` is not supported (ENVIRONMENT or SPECIFIED)"
                ));
            }
        };
        let endpoint = match self.endpoint_override {
            Some(e) => {
                let url = reqwest::Url::parse(e.trim())
                    .map_err(|_| format!("endpointOverride `{e}` is not a URL"))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(format!(
                        "endpointOverride `{e}` must be http(s)://host[:port]"
                    ));
                }
                Some(e.trim().trim_end_matches('/').to_string())
            }
            None => None,
        };
        let ca_pem = match self.tls_ca_file {
            Some(p) => {
                let path = base.join(p);
                let pem = std::fs::read(&path)
                    .map_err(|e| format!("cannot read tlsCaFile {}: {e}", path.display()))?;
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(format!(
                        "tlsCaFile {} holds no PEM certificate",
                        path.display()
                    ));
                }
                Some(pem)
            }
            None => None,
        };
        Ok(Connection {
            region,
            credentials,
            endpoint,
            ca_pem,
            timeout,
        })
    }
}

impl Connection {
    /// The endpoint override, or `region`, for messages and the inventory.
    pub(crate) fn describe(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{} ({e})", self.region),
            None => self.region.clone(),
        }
    }

    /// The per-attempt timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Builds the SDK configuration: region, credentials, endpoint, timeouts, and
    /// `attempts` attempts per call. Runs on the vault runtime.
    ///
    /// # Errors
    /// A message naming a credential file or variable that cannot be read.
    pub(crate) async fn sdk_config(
        &self,
        attempts: u32,
    ) -> Result<aws_config::SdkConfig, RemoteError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.timeout)
                    .operation_attempt_timeout(self.timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(attempts.max(1)));
        if let Some(e) = &self.endpoint {
            loader = loader.endpoint_url(e);
        }
        if let Some(pem) = &self.ca_pem {
            use aws_smithy_http_client::tls;
            let context = tls::TlsContext::builder()
                .with_trust_store(tls::TrustStore::default().with_pem_certificate(pem.clone()))
                .build()
                .map_err(|e| RemoteError(format!("AWS tlsCaFile: {e}")))?;
            loader = loader.http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::AwsLc,
                    ))
                    .tls_context(context)
                    .build_https(),
            );
        }
        match &self.credentials {
            Credentials::Chain { profile } => {
                if let Some(p) = profile {
                    loader = loader.profile_name(p);
                }
            }
            Credentials::Specified {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let secret = secret_access_key
                    .read()
                    .map_err(|e| RemoteError(format!("AWS secretAccessKey: {e}")))?;
                let token = session_token
                    .as_ref()
                    .map(Secret::read)
                    .transpose()
                    .map_err(|e| RemoteError(format!("AWS session token: {e}")))?;
                loader = loader.credentials_provider(aws_sdk_kms::config::Credentials::new(
                    access_key_id.clone(),
                    secret.trim().to_string(),
                    token.map(|t| t.trim().to_string()),
                    None,
                    "palisade-key-config",
                ));
            }
        }
        Ok(loader.load().await)
    }
}

/// Runs one SDK call, timing it into `palisade_backend_call_*{backend, operation}` and
/// turning its error into words: AWS's error code and message for a service error, else the
/// SDK's kind of failure and its innermost cause (no credential, no request or response dump).
///
/// # Errors
/// [`RemoteError`] `<backend> <operation>: <cause>`.
pub(crate) async fn observe<T, E>(
    backend: &'static str,
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, RemoteError>
where
    E: std::error::Error + aws_sdk_kms::error::ProvideErrorMetadata + 'static,
{
    let started = Instant::now();
    let outcome = call.await;
    METRICS
        .backend_duration
        .with_label_values(&[backend, operation])
        .observe(started.elapsed().as_secs_f64());
    outcome.map_err(|e| {
        METRICS
            .backend_errors
            .with_label_values(&[backend, operation])
            .inc();
        RemoteError(format!("{backend} {operation}: {}", concise(&e)))
    })
}

/// An SDK error in one line.
fn concise<E: std::error::Error + aws_sdk_kms::error::ProvideErrorMetadata>(e: &E) -> String {
    if let Some(code) = e.code() {
        let message: String = e.message().unwrap_or_default().chars().take(200).collect();
        return if message.is_empty() {
            code.to_string()
        } else {
            format!("{code}: {message}")
        };
    }
    let mut innermost = None;
    let mut source = e.source();
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    match innermost {
        Some(cause) => format!("{e} ({})", cause.chars().take(200).collect::<String>()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Result<Connection, String> {
        let c: AwsConfig = serde_norway::from_str(yaml).unwrap();
        c.connection(Path::new("/etc/palisade"))
    }

    #[test]
    fn credentials_come_from_one_place() {
        assert!(config("region: eu-west-1\n").is_ok());
        assert!(config("region: eu west\n").unwrap_err().contains("region"));
        let err = config("region: eu-west-1\naccessKeyId: AKIA\nsecretAccessKey: s\n");
        assert!(err.unwrap_err().contains("SPECIFIED"));
        let specified = "region: eu-west-1\nauthenticationMode: SPECIFIED\naccessKeyId: AKIA\n";
        assert!(
            config(specified)
                .unwrap_err()
                .contains("secretAccessKeyFile")
        );
        let ok = config(&format!("{specified}secretAccessKeyFile: aws-secret\n")).unwrap();
        assert!(format!("{ok:?}").contains("/etc/palisade/aws-secret"));
        let inline = config(&format!("{specified}secretAccessKey: hunter2\n")).unwrap();
        assert!(!format!("{inline:?}").contains("hunter2"));
        assert!(config("region: r1\nauthenticationMode: SSO\n").is_err());
        assert!(config("region: r1\nendpointOverride: localhost:4566\n").is_err());
    }
}
