//! The Keymanager service (ethereum/keymanager-APIs `/eth/v1/keystores`): list, import and
//! delete validator keystores, with no HTTP types. The HTTP API (`api::keymanager`) checks
//! the bearer token, decodes the JSON body and encodes these answers.
//!
//! Imported keystores are written under the key-config directory (mode 0600) as
//! `keymanager/<pubkey>.json` and `.txt` plus a `keymanager-<pubkey>.yaml` `file-keystore`
//! config, so they load again after a restart or reload. Keys from other sources are
//! `readonly` and cannot be deleted here. Secrets (keystores, passwords, the
//! `slashing_protection` document) stay in zeroize-on-drop buffers and are never printed.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::keys::{KeyInfo, Keys, MemoryKey, Signer, eip2335};
use crate::protection::audit::{Chain, now_ms};
use crate::protection::{ProtectionError, ProtectionStore, interchange};

/// A fault that fails a whole Keymanager request (per-key problems are statuses instead).
#[derive(Debug, thiserror::Error)]
pub enum KeymanagerError {
    /// `keystores` and `passwords` differ in length (a client error).
    #[error("keystores and passwords must have the same length")]
    LengthMismatch,
    /// The protection database refused or is unavailable.
    #[error(transparent)]
    Protection(#[from] ProtectionError),
    /// An internal fault (a dropped pool job, an encoding failure).
    #[error("internal error: {0}")]
    Internal(String),
}

/// One key of `GET /eth/v1/keystores`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedKey {
    /// `0x` + 96 hex characters.
    pub validating_pubkey: String,
    /// The EIP-2334 path the keystore states, or empty.
    pub derivation_path: String,
    /// Not imported through this API (it cannot be deleted here).
    pub readonly: bool,
}

/// The outcome of one keystore of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportStatus {
    /// Decrypted, written, enabled and now served.
    Imported,
    /// Already served (or twice in the request).
    Duplicate,
    /// Not imported, and why (never secret material).
    Error(String),
}

/// The outcome of one public key of a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteStatus {
    /// Disabled in the database, no longer served, its files deleted.
    Deleted,
    /// Known to the database but not served here.
    NotActive,
    /// Unknown.
    NotFound,
    /// Not deleted, and why (malformed, or a read-only key from another source).
    Error(String),
}

/// The Keymanager service over the keys, the protection store and the key-config directory.
pub struct KeymanagerService<'a> {
    /// The keys being served (replaced whole on import and delete).
    pub keys: &'a Keys,
    /// The protection record (imports, enabling and disabling keys, exports).
    pub store: &'a dyn ProtectionStore,
    /// `--key-config-path`: where imported keystores are written.
    pub key_config_dir: &'a Path,
}

/// Whether a key was imported through this API (its config is a `keymanager-*.yaml`).
fn imported_here(info: &KeyInfo) -> bool {
    info.source
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("keymanager-") && n.ends_with(".yaml"))
}

/// The EIP-2334 `path` a keystore file states, if any.
fn derivation_path(file: &Path) -> String {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("path").and_then(|p| p.as_str()).map(str::to_string))
        .unwrap_or_default()
}

fn write_0600(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl KeymanagerService<'_> {
    /// The keystore, password and config files of an imported key (`pubkey_hex`: 96 hex
    /// characters, no `0x`).
    fn files(&self, pubkey_hex: &str) -> (PathBuf, PathBuf, PathBuf) {
        let dir = self.key_config_dir.join("keymanager");
        (
            dir.join(format!("{pubkey_hex}.json")),
            dir.join(format!("{pubkey_hex}.txt")),
            self.key_config_dir
                .join(format!("keymanager-{pubkey_hex}.yaml")),
        )
    }

    /// Every served eth2 key, with its derivation path and whether it is read-only here.
    pub fn list(&self) -> Vec<ListedKey> {
        self.keys
            .current()
            .inventory()
            .into_iter()
            .filter(|k| k.chain == Chain::Eth2)
            .map(|k| {
                let readonly = !imported_here(&k);
                let path = if readonly {
                    if k.source.extension().is_some_and(|e| e == "json") {
                        derivation_path(&k.source)
                    } else {
                        String::new()
                    }
                } else {
                    derivation_path(&self.files(k.key.trim_start_matches("0x")).0)
                };
                ListedKey {
                    validating_pubkey: k.key,
                    derivation_path: path,
                    readonly,
                }
            })
            .collect()
    }

    /// Decrypts every keystore with its password (on the key-decryption pool); imports the
    /// optional EIP-3076 `slashing_protection` document first (if it fails, no key is
    /// activated and every entry is an error); writes the new keystores (0600), enables them
    /// in the protection database and serves them. One status per keystore, in order.
    ///
    /// # Errors
    /// [`KeymanagerError::LengthMismatch`]; [`KeymanagerError::Internal`] when a pool
    /// dropped the job.
    pub async fn import(
        &self,
        keystores: &[Zeroizing<String>],
        passwords: &[Zeroizing<String>],
        slashing_protection: Option<Zeroizing<String>>,
    ) -> Result<Vec<ImportStatus>, KeymanagerError> {
        if keystores.len() != passwords.len() {
            return Err(KeymanagerError::LengthMismatch);
        }
        let n = keystores.len();
        // Decrypt on the key-decryption pool (scrypt is slow by design), never the signing
        // pool.
        let (ks, pw) = (keystores.to_vec(), passwords.to_vec());
        let decrypted: Vec<Result<(MemoryKey, String), String>> =
            crate::keys::on_kdf_pool(move || {
                use rayon::prelude::*;
                ks.par_iter()
                    .zip(pw.par_iter())
                    .map(|(ks, pw)| {
                        eip2335::decrypt_bls(ks, pw)
                            .map(|sk| {
                                let key = MemoryKey::new(sk);
                                let hex_pk = hex::encode(key.public_key());
                                (key, hex_pk)
                            })
                            .map_err(|e| e.to_string())
                    })
                    .collect()
            })
            .await
            .ok_or_else(|| {
                KeymanagerError::Internal("decryption failed: the pool dropped the job".into())
            })?;

        let all_error = |msg: String| vec![ImportStatus::Error(msg); n];
        if let Some(text) = slashing_protection {
            // Parsing a large document is CPU work: off the async workers.
            let parsed = tokio::task::spawn_blocking(move || interchange::parse(&text))
                .await
                .map_err(|e| {
                    KeymanagerError::Internal(format!("slashing_protection parsing failed: {e}"))
                })?;
            let prepared = match parsed {
                Ok(p) => p,
                Err(e) => return Ok(all_error(format!("slashing_protection not imported: {e}"))),
            };
            if let Err(e) = self.store.import(&prepared).await {
                return Ok(all_error(format!("slashing_protection not imported: {e}")));
            }
        }

        let registry = self.keys.current();
        let mut statuses = Vec::with_capacity(n);
        let mut added: Vec<(Arc<dyn Signer>, KeyInfo)> = Vec::new();
        let mut seen = HashSet::new();
        for (i, d) in decrypted.into_iter().enumerate() {
            let (key, hex_pk) = match d {
                Ok(v) => v,
                Err(e) => {
                    statuses.push(ImportStatus::Error(e));
                    continue;
                }
            };
            let id = format!("0x{hex_pk}");
            if registry.get(&key.public_key()).is_some() || !seen.insert(hex_pk.clone()) {
                statuses.push(ImportStatus::Duplicate);
                continue;
            }
            let (ks_file, pw_file, yaml) = self.files(&hex_pk);
            let written = (|| -> std::io::Result<()> {
                std::fs::create_dir_all(ks_file.parent().unwrap_or(Path::new(".")))?;
                write_0600(&ks_file, keystores[i].as_bytes())?;
                write_0600(&pw_file, passwords[i].as_bytes())?;
                write_0600(
                    &yaml,
                    format!(
                        "type: file-keystore\nkeyType: BLS\nkeystoreFile: keymanager/{hex_pk}.json\nkeystorePasswordFile: keymanager/{hex_pk}.txt\n"
                    )
                    .as_bytes(),
                )
            })();
            let remove_files = || {
                for f in [&ks_file, &pw_file, &yaml] {
                    let _ = std::fs::remove_file(f);
                }
            };
            if let Err(e) = written {
                remove_files();
                statuses.push(ImportStatus::Error(format!(
                    "cannot persist the keystore: {e}"
                )));
                continue;
            }
            if let Err(e) = self.store.set_enabled(&[key.public_key()], true).await {
                remove_files();
                statuses.push(ImportStatus::Error(e.to_string()));
                continue;
            }
            added.push((
                Arc::new(key),
                KeyInfo {
                    chain: Chain::Eth2,
                    key: id,
                    public_key: None,
                    backend: format!("keystore {} (file-keystore)", ks_file.display()),
                    source: yaml,
                    loaded_at_ms: now_ms(),
                },
            ));
            statuses.push(ImportStatus::Imported);
        }
        if !added.is_empty() {
            let count = added.len();
            let next = self.keys.current().with_eth2(added);
            crate::metrics::METRICS.set_keys(&next);
            self.keys.replace(next);
            tracing::info!(
                keys = count,
                "keystores imported through the Keymanager API"
            );
        }
        Ok(statuses)
    }

    /// Disables the keys in the protection database (every instance sharing it then refuses
    /// them; their records stay), stops serving them, deletes their files, and returns one
    /// status per requested key with the EIP-3076 export (JSON text) of every listed key the
    /// database knows.
    ///
    /// # Errors
    /// [`KeymanagerError::Protection`] when the database is unavailable (nothing deleted if
    /// disabling failed); [`KeymanagerError::Internal`] when the export cannot be encoded.
    pub async fn delete(
        &self,
        pubkeys: &[String],
    ) -> Result<(Vec<DeleteStatus>, String), KeymanagerError> {
        let registry = self.keys.current();
        let known: HashSet<[u8; 48]> = self.store.validators().await?.into_iter().collect();
        let mut statuses = Vec::new();
        let mut to_delete: Vec<[u8; 48]> = Vec::new();
        let mut exported: Vec<[u8; 48]> = Vec::new();
        for pk in pubkeys {
            let parsed = hex::decode(pk.trim_start_matches("0x"))
                .ok()
                .and_then(|b| <[u8; 48]>::try_from(b).ok());
            let Some(key) = parsed else {
                statuses.push(DeleteStatus::Error(format!(
                    "`{pk}` is not a 48-byte public key"
                )));
                continue;
            };
            let id = format!("0x{}", hex::encode(key));
            match registry.info(&id) {
                Some(info) if !imported_here(info) => {
                    statuses.push(DeleteStatus::Error(format!(
                        "{id} is read-only: it was not imported through this API"
                    )));
                }
                Some(_) => {
                    to_delete.push(key);
                    exported.push(key);
                    statuses.push(DeleteStatus::Deleted);
                }
                None if known.contains(&key) => {
                    exported.push(key);
                    statuses.push(DeleteStatus::NotActive);
                }
                None => statuses.push(DeleteStatus::NotFound),
            }
        }
        if !to_delete.is_empty() {
            // Disable first: from the commit on, no instance records (so signs) for these keys.
            self.store.set_enabled(&to_delete, false).await?;
            let next = self.keys.current().without_eth2(&to_delete);
            crate::metrics::METRICS.set_keys(&next);
            self.keys.replace(next);
            for key in &to_delete {
                let (ks, pw, yaml) = self.files(&hex::encode(key));
                crate::keys::forget_decrypted(&ks);
                for f in [yaml, ks, pw] {
                    let _ = std::fs::remove_file(f);
                }
            }
            tracing::info!(
                keys = to_delete.len(),
                "keystores deleted through the Keymanager API"
            );
        }
        let slashing_protection = if exported.is_empty() {
            self.empty_interchange().await?
        } else {
            match crate::protection::export(self.store, Some(&exported)).await {
                Ok(i) => serde_json::to_string(&i)
                    .map_err(|e| KeymanagerError::Internal(e.to_string()))?,
                Err(ProtectionError::Import(_)) => self.empty_interchange().await?,
                Err(e) => return Err(e.into()),
            }
        };
        Ok((statuses, slashing_protection))
    }

    /// An interchange with no records: the database's genesis validators root, or zeros
    /// when it has none yet (nothing was ever signed or imported).
    async fn empty_interchange(&self) -> Result<String, KeymanagerError> {
        let root = self
            .store
            .genesis_validators_root()
            .await?
            .unwrap_or([0; 32]);
        serde_json::to_string(&interchange::build(root, Vec::new()))
            .map_err(|e| KeymanagerError::Internal(e.to_string()))
    }
}
