//! BLS secret keys read from Azure Key Vault secrets and held in memory
//! ([`crate::keys::MemoryKey`]).
//!
//! Web3Signer's key config, one secret:
//!
//! ```yaml
//! type: azure-secret
//! keyType: BLS
//! vaultName: my-vault
//! secretName: validator-1
//! tenantId: …
//! clientId: …
//! clientSecret: …            # or clientSecretFile / clientSecretEnv
//! ```
//!
//! palisade's bulk type loads every secret of a vault whose tags match (Web3Signer's
//! `--azure-tags` bulk loading), `concurrency` reads in flight:
//!
//! ```yaml
//! type: azure-secrets-bulk
//! vaultName: my-vault
//! tags: { role: validator }  # optional: every tag must match
//! namePrefix: validator-     # optional
//! concurrency: 16            # reads in flight (1–64, default 16)
//! # credentials: see the module above
//! ```
//!
//! A secret's value holds one hex BLS secret key (`0x` optional), or several, one per line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{AzureConfig, Connection, concise};
use crate::keys::LoadError;
use crate::keys::backend::keystore::check_key_type;
use crate::keys::backend::{Backend, KeyLoad, LoadContext, LoadedKey, base_dir, parse};
use crate::keys::remote::{self, RemoteError};
use crate::protection::audit::Chain;

/// The metrics label of Key Vault secret calls.
const BACKEND: &str = "azure-secrets";

/// The `azure-secret` backend (Web3Signer's key config).
pub struct AzureSecret;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OneConfig {
    #[serde(default)]
    key_type: Option<String>,
    #[serde(flatten)]
    azure: AzureConfig,
    secret_name: String,
}

impl Backend for AzureSecret {
    fn kind(&self) -> &'static str {
        "azure-secret"
    }
    fn fields_hint(&self) -> &'static str {
        "vaultName|vaultUrl, secretName, tenantId, clientId, clientSecret, authenticationMode"
    }
    fn remote(&self) -> bool {
        true
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        None
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let c: OneConfig = parse(text, self)?;
        check_key_type(c.key_type.as_deref())?;
        Ok(Box::new(SecretsLoad {
            file: file.to_path_buf(),
            connection: c.azure.connection(base_dir(file))?,
            source: Source::One(c.secret_name.trim().to_string()),
            concurrency: 1,
        }))
    }
}

/// The `azure-secrets-bulk` backend.
pub struct AzureSecretsBulk;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkConfig {
    #[serde(flatten)]
    azure: AzureConfig,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    name_prefix: Option<String>,
    #[serde(default)]
    concurrency: Option<usize>,
}

impl Backend for AzureSecretsBulk {
    fn kind(&self) -> &'static str {
        "azure-secrets-bulk"
    }
    fn fields_hint(&self) -> &'static str {
        "vaultName|vaultUrl, tags, namePrefix, concurrency, tenantId, clientId, \
         clientSecretFile, authenticationMode, timeoutMs"
    }
    fn remote(&self) -> bool {
        true
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        let mut fields = vec!["type", "tags", "namePrefix", "concurrency"];
        fields.extend(super::AZURE_FIELDS);
        Some(fields)
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let c: BulkConfig = parse(text, self)?;
        let concurrency = c.concurrency.unwrap_or(16);
        if !(1..=64).contains(&concurrency) {
            return Err("concurrency must be between 1 and 64".into());
        }
        Ok(Box::new(SecretsLoad {
            file: file.to_path_buf(),
            connection: c.azure.connection(base_dir(file))?,
            source: Source::Filtered {
                prefix: c.name_prefix.filter(|p| !p.is_empty()),
                tags: c.tags,
            },
            concurrency,
        }))
    }
}

enum Source {
    One(String),
    Filtered {
        prefix: Option<String>,
        tags: BTreeMap<String, String>,
    },
}

struct SecretsLoad {
    file: PathBuf,
    connection: Connection,
    source: Source,
    concurrency: usize,
}

use remote::FetchedSecret as Fetched;

/// The config's Key Vault secrets client: one HTTP client, shared by its credential.
fn client(connection: &Connection) -> Result<SecretClient, RemoteError> {
    let http = connection.http()?;
    let options = SecretClientOptions {
        api_version: super::keys::API_VERSION.into(),
        client_options: connection.client_options(&http, BACKEND, 3),
        verify_challenge_resource: Some(connection.verify_challenge()),
    };
    SecretClient::new(
        connection.vault_url(),
        connection.credential(&http, BACKEND)?,
        Some(options),
    )
    .map_err(|e| concise(BACKEND, "client", &e))
}

/// Reads one secret's value.
async fn read(client: &SecretClient, name: &str) -> Result<Zeroizing<String>, RemoteError> {
    let secret = client
        .get_secret(name, None)
        .await
        .map_err(|e| concise(BACKEND, "read_secret", &e))?
        .into_model()
        .map_err(|e| concise(BACKEND, "read_secret", &e))?;
    secret
        .value
        .map(Zeroizing::new)
        .ok_or_else(|| RemoteError("the secret has no value".into()))
}

/// The names of the vault's secrets matching `prefix` and `tags` (every tag must match).
async fn list(
    client: &SecretClient,
    prefix: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<String>, RemoteError> {
    let pager = client
        .list_secret_properties(None)
        .map_err(|e| concise(BACKEND, "list_secrets", &e))?;
    let items: Vec<_> = pager
        .try_collect()
        .await
        .map_err(|e| concise(BACKEND, "list_secrets", &e))?;
    let mut names = Vec::new();
    for item in items {
        let Some(id) = item.id.as_deref() else {
            continue;
        };
        let Some(name) = id.trim_end_matches('/').rsplit('/').next() else {
            continue;
        };
        if prefix.is_some_and(|p| !name.starts_with(p)) {
            continue;
        }
        let item_tags = item.tags.clone().unwrap_or_default();
        if tags.iter().all(|(k, v)| item_tags.get(k) == Some(v)) {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

impl KeyLoad for SecretsLoad {
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        (Some(Chain::Eth2), None)
    }

    fn load(self: Box<Self>, context: &LoadContext<'_>) -> Result<LoadedKey, LoadError> {
        let file = self.file.clone();
        remote::exactly_one(&file, self.load_all(context))
    }

    fn load_all(self: Box<Self>, _context: &LoadContext<'_>) -> Vec<Result<LoadedKey, LoadError>> {
        let started = Instant::now();
        let error = |reason: String| LoadError {
            file: self.file.clone(),
            reason,
        };
        let single = matches!(self.source, Source::One(_));
        let connection = self.connection.clone();
        let concurrency = self.concurrency;
        let source = match &self.source {
            Source::One(n) => (Some(n.clone()), None, BTreeMap::new()),
            Source::Filtered { prefix, tags } => (None, prefix.clone(), tags.clone()),
        };
        let fetched: Result<Vec<Fetched>, RemoteError> = remote::block_on(async move {
            let client = Arc::new(client(&connection)?);
            let names = match source {
                (Some(name), _, _) => vec![name],
                (None, prefix, tags) => list(&client, prefix.as_deref(), &tags).await?,
            };
            Ok(futures_util::stream::iter(names)
                .map(|name| {
                    let client = client.clone();
                    async move {
                        let value = read(&client, &name).await;
                        (name, value)
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await)
        });
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => return vec![Err(error(e.to_string()))],
        };
        let vault = self.connection.vault_url().to_string();
        remote::bls_keys(
            &self.file,
            single,
            fetched,
            |name| format!("azure-secrets {vault} secrets/{name}"),
            "azure secrets",
            started,
        )
    }
}
