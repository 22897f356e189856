//! BLS secret keys read from a Vault / OpenBao KV engine and held in memory
//! ([`crate::keys::MemoryKey`]): BLS cannot be computed inside Vault.
//!
//! Web3Signer's key config, one secret, so its files move over unchanged:
//!
//! ```yaml
//! type: hashicorp
//! keyType: BLS                        # optional
//! serverHost: vault.example
//! serverPort: 8200                    # default 8200
//! tlsEnabled: true                    # default false
//! keyPath: /v1/secret/data/validator-1   # KV v2 (`data.data`) or v1 (`data`) API path
//! keyName: value                      # the field holding the hex secret (default `value`)
//! token: hvs.…                        # Web3Signer puts the token here; palisade also takes
//!                                     # tokenFile or tokenEnv instead
//! timeout: 10000                      # milliseconds (default 10000)
//! tlsCaFile: vault-ca.pem             # palisade's: a PEM CA (Web3Signer's
//!                                     # tlsKnownServersPath is refused, not ignored)
//! ```
//!
//! palisade's bulk type loads every secret under a KV v2 path, `concurrency` reads at a time
//! over one connection pool (the listing is paged by Vault's `LIST`, recursing into folders):
//!
//! ```yaml
//! type: vault-kv-bulk
//! address: https://vault.example:8200
//! tokenFile: /run/secrets/vault-token  # or tokenEnv, appRole (see the module above)
//! mount: secret                        # KV v2 mount (default `secret`)
//! path: validators/                    # folder to load, recursively ("" = whole mount)
//! keyName: value                       # default `value`
//! concurrency: 16                      # reads in flight (1–256, default 16)
//! ```
//!
//! A secret's field holds one hex BLS secret key (`0x` optional), or several, one per line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Client, ConnectionConfig, VaultClient};
use crate::keys::LoadError;
use crate::keys::backend::keystore::check_key_type;
use crate::keys::backend::{Backend, KeyLoad, LoadContext, LoadedKey, base_dir, parse};
use crate::keys::remote::{self, RemoteError, Secret};
use crate::protection::audit::Chain;

/// The `hashicorp` backend (Web3Signer's key config).
pub struct Hashicorp;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashicorpConfig {
    #[serde(default)]
    key_type: Option<String>,
    server_host: String,
    #[serde(default)]
    server_port: Option<u16>,
    #[serde(default)]
    tls_enabled: Option<Flag>,
    key_path: String,
    #[serde(default)]
    key_name: Option<String>,
    #[serde(default)]
    token: Option<Zeroizing<String>>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    token_env: Option<String>,
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default)]
    tls_ca_file: Option<PathBuf>,
    #[serde(default)]
    tls_known_servers_path: Option<PathBuf>,
    #[serde(default)]
    auth_method: Option<String>,
}

/// Web3Signer writes booleans as `true` or `"true"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    fn value(&self) -> Result<bool, String> {
        match self {
            Flag::Bool(b) => Ok(*b),
            Flag::Text(t) if t.eq_ignore_ascii_case("true") => Ok(true),
            Flag::Text(t) if t.eq_ignore_ascii_case("false") => Ok(false),
            Flag::Text(_) => Err("tlsEnabled must be true or false".into()),
        }
    }
}

impl Backend for Hashicorp {
    fn kind(&self) -> &'static str {
        "hashicorp"
    }
    fn fields_hint(&self) -> &'static str {
        "serverHost, keyPath, token|tokenFile|tokenEnv, serverPort, keyName, tlsEnabled, timeout"
    }
    fn remote(&self) -> bool {
        true
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        None
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let c: HashicorpConfig = parse(text, self)?;
        check_key_type(c.key_type.as_deref())?;
        if c.tls_known_servers_path.is_some() {
            return Err(
                "tlsKnownServersPath (Web3Signer's fingerprint file) is not supported: \
                        give the server's CA as tlsCaFile"
                    .into(),
            );
        }
        if let Some(m) = c.auth_method.as_deref()
            && !m.eq_ignore_ascii_case("TOKEN")
        {
            return Err(format!("authMethod `{m}` is not supported (TOKEN is)"));
        }
        let tls = c
            .tls_enabled
            .as_ref()
            .map(Flag::value)
            .transpose()?
            .unwrap_or(false);
        let host = c.server_host.trim();
        if host.is_empty() || host.contains(['/', '?', '#', '@']) {
            return Err("serverHost must be a host name or address".into());
        }
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let address = format!(
            "{}://{host}:{}",
            if tls { "https" } else { "http" },
            c.server_port.unwrap_or(8200)
        );
        let path = c.key_path.trim();
        let Some(path) = path.strip_prefix("/v1/") else {
            return Err("keyPath must be the API path, starting /v1/ (/v1/secret/data/…)".into());
        };
        let base = base_dir(file);
        let token = Secret::choose(
            c.token,
            c.token_file,
            c.token_env,
            base,
            "token, tokenFile or tokenEnv",
        )?;
        let timeout = Duration::from_millis(c.timeout.unwrap_or(10_000).clamp(1, 120_000));
        let ca = c.tls_ca_file.map(|p| base.join(p));
        let client = VaultClient::with_token(address, token, ca.as_deref(), timeout)?;
        Ok(Box::new(SecretLoad {
            file: file.to_path_buf(),
            client: Arc::new(client),
            source: Source::One {
                path: path.to_string(),
            },
            key_name: c.key_name.unwrap_or_else(|| "value".into()),
            concurrency: 1,
        }))
    }
}

/// The `vault-kv-bulk` backend.
pub struct VaultKvBulk;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkConfig {
    #[serde(flatten)]
    connection: ConnectionConfig,
    #[serde(default)]
    mount: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    key_name: Option<String>,
    #[serde(default)]
    concurrency: Option<usize>,
}

/// Most reads a bulk load keeps in flight.
const MAX_CONCURRENCY: usize = 256;

impl Backend for VaultKvBulk {
    fn kind(&self) -> &'static str {
        "vault-kv-bulk"
    }
    fn fields_hint(&self) -> &'static str {
        "address, tokenFile|tokenEnv|appRole, mount, path, keyName, concurrency, namespace, \
         tlsCaFile, timeoutMs"
    }
    fn remote(&self) -> bool {
        true
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        let mut fields = vec!["type", "mount", "path", "keyName", "concurrency"];
        fields.extend(super::CONNECTION_FIELDS);
        Some(fields)
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let c: BulkConfig = parse(text, self)?;
        let concurrency = c.concurrency.unwrap_or(16);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(format!(
                "concurrency must be between 1 and {MAX_CONCURRENCY}"
            ));
        }
        let mount = clean_segment(c.mount.as_deref().unwrap_or("secret"), "mount")?;
        let mut folder = clean_segment(c.path.as_deref().unwrap_or(""), "path")?;
        if !folder.is_empty() {
            folder.push('/');
        }
        let client = c.connection.client(base_dir(file))?;
        Ok(Box::new(SecretLoad {
            file: file.to_path_buf(),
            client: Arc::new(client),
            source: Source::Folder { mount, folder },
            key_name: c.key_name.unwrap_or_else(|| "value".into()),
            concurrency,
        }))
    }
}

/// A mount or path without leading/trailing slashes, refusing `..` and empty segments.
fn clean_segment(text: &str, field: &str) -> Result<String, String> {
    let t = text.trim().trim_matches('/');
    if t.split('/').any(|s| s == ".." || s == ".") || t.contains("//") || t.contains(['?', '#']) {
        return Err(format!("{field} `{text}` is not a plain Vault path"));
    }
    Ok(t.to_string())
}

/// What to read.
enum Source {
    /// One secret at an API path after `/v1/` (KV v1 or v2).
    One { path: String },
    /// Every secret under `folder` of the KV v2 engine at `mount`.
    Folder { mount: String, folder: String },
}

/// Secrets to read from one Vault.
struct SecretLoad {
    file: PathBuf,
    client: Client,
    source: Source,
    key_name: String,
    concurrency: usize,
}

impl SecretLoad {
    fn error(&self, reason: String) -> LoadError {
        LoadError {
            file: self.file.clone(),
            reason,
        }
    }
}

/// A KV read answer's `data`: KV v2 nests the fields in `data.data`, v1 has them in `data`.
#[derive(Deserialize)]
#[serde(untagged)]
enum KvData {
    V2 {
        data: serde_json::Map<String, serde_json::Value>,
    },
    V1(serde_json::Map<String, serde_json::Value>),
}

#[derive(Deserialize)]
struct ListData {
    #[serde(default)]
    keys: Vec<String>,
}

use remote::FetchedSecret as Fetched;

/// Reads the hex field `key_name` of the secret at `path` (after `/v1/`).
async fn read_secret(
    client: &VaultClient,
    path: &str,
    key_name: &str,
) -> Result<Zeroizing<String>, RemoteError> {
    let data: KvData = client
        .data(
            "read_secret",
            reqwest::Method::GET,
            path,
            None,
            remote::IDEMPOTENT_ATTEMPTS,
        )
        .await?;
    let mut fields = match data {
        KvData::V2 { data } => data,
        KvData::V1(data) => data,
    };
    let value = match fields.remove(key_name) {
        Some(serde_json::Value::String(s)) => Zeroizing::new(s),
        Some(_) => {
            return Err(RemoteError(format!(
                "vault {path}: field `{key_name}` is not a string"
            )));
        }
        None => return Err(RemoteError(format!("vault {path}: no field `{key_name}`"))),
    };
    for (_, v) in fields.iter_mut() {
        if let serde_json::Value::String(s) = v {
            zeroize::Zeroize::zeroize(s);
        }
    }
    Ok(value)
}

/// Every secret path (after `/v1/`) under `folder` of KV v2 `mount`, depth-first; folders
/// are listed `concurrency` at a time.
async fn list_secrets(
    client: &VaultClient,
    mount: &str,
    folder: &str,
) -> Result<Vec<String>, RemoteError> {
    let mut pending = vec![folder.to_string()];
    let mut secrets = Vec::new();
    while let Some(dir) = pending.pop() {
        let path = format!("{mount}/metadata/{dir}");
        let list = reqwest::Method::from_bytes(b"LIST").expect("valid method");
        let (status, body) = client
            .call(
                "list_secrets",
                list,
                &path,
                None,
                remote::IDEMPOTENT_ATTEMPTS,
            )
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            continue;
        }
        if !status.is_success() {
            return Err(super::status_error(status, &body, &path));
        }
        let answer: super::Answer<ListData> = remote::decode(body, "a Vault list answer")?;
        for name in answer.data.map(|d| d.keys).unwrap_or_default() {
            if name.contains("..") {
                continue;
            }
            if name.ends_with('/') {
                pending.push(format!("{dir}{name}"));
            } else {
                secrets.push(format!("{mount}/data/{dir}{name}"));
            }
        }
    }
    secrets.sort();
    Ok(secrets)
}

impl KeyLoad for SecretLoad {
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        (Some(Chain::Eth2), None)
    }

    fn load(self: Box<Self>, context: &LoadContext<'_>) -> Result<LoadedKey, LoadError> {
        let file = self.file.clone();
        remote::exactly_one(&file, self.load_all(context))
    }

    fn load_all(self: Box<Self>, _context: &LoadContext<'_>) -> Vec<Result<LoadedKey, LoadError>> {
        let started = Instant::now();
        let client = self.client.clone();
        let key_name = self.key_name.clone();
        let concurrency = self.concurrency;
        let (paths, single) = match &self.source {
            Source::One { path } => (Ok(vec![path.clone()]), true),
            Source::Folder { mount, folder } => {
                let (client, mount, folder) = (client.clone(), mount.clone(), folder.clone());
                (
                    remote::block_on(async move { list_secrets(&client, &mount, &folder).await }),
                    false,
                )
            }
        };
        let paths = match paths {
            Ok(p) => p,
            Err(e) => return vec![Err(self.error(e.to_string()))],
        };
        let fetched: Result<Vec<Fetched>, _> = remote::block_on(async move {
            Ok(futures_util::stream::iter(paths)
                .map(|path| {
                    let (client, key_name) = (client.clone(), key_name.clone());
                    async move {
                        let value = read_secret(&client, &path, &key_name).await;
                        (path, value)
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await)
        });
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => return vec![Err(self.error(e.to_string()))],
        };
        let address = self.client.address().to_string();
        remote::bls_keys(
            &self.file,
            single,
            fetched,
            |path| format!("vault {address} {path}"),
            "vault",
            started,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_plain() {
        assert_eq!(clean_segment("/validators/", "path").unwrap(), "validators");
        assert_eq!(clean_segment("", "path").unwrap(), "");
        assert!(clean_segment("a/../b", "path").is_err());
        assert!(clean_segment("a//b", "path").is_err());
    }

    #[test]
    fn web3signer_configs_are_read() {
        let f = Path::new("/k/v.yaml");
        let ok = "type: hashicorp\nserverHost: 127.0.0.1\nkeyPath: /v1/secret/data/k\n\
                  token: t\ntlsEnabled: \"true\"\nunknownWeb3signerField: 1\n";
        assert!(Hashicorp.prepare(ok, f).is_ok());
        let pinned = format!("{ok}tlsKnownServersPath: /k/known\n");
        assert!(
            Hashicorp
                .prepare(&pinned, f)
                .err()
                .unwrap()
                .contains("tlsCaFile")
        );
        let no_v1 = ok.replace("/v1/secret", "/secret");
        assert!(Hashicorp.prepare(&no_v1, f).err().unwrap().contains("/v1/"));
        let no_token = ok.replace("token: t\n", "");
        assert!(
            Hashicorp
                .prepare(&no_token, f)
                .err()
                .unwrap()
                .contains("token, tokenFile")
        );
        let k8s = format!("{ok}authMethod: KUBERNETES\n");
        assert!(
            Hashicorp
                .prepare(&k8s, f)
                .err()
                .unwrap()
                .contains("KUBERNETES")
        );
    }
}
