//! The key registry (48-byte BLS public key → eth2 signer, public key hash → Tezos key) and
//! how keys are loaded into it.
//!
//! - [`signer`]: the signing traits ([`Signer`] for eth2, [`TezosSigner`] for Tezos, the
//!   optional [`ProvePossession`] capability) and each backend's [`Execution`] hint.
//! - [`backend`]: one file per key backend, chosen by the key-config `type:` from one
//!   registry; EIP-2335 keystores of `--keystores-path` load through its `keystore` backend.
//! - [`dispatch`]: the one dispatcher that runs every backend call where its hint says (CPU
//!   signing pool, blocking pool with a timeout, the runtime with a timeout), and the pools.
//! - [`memory`]: the in-memory keys the decrypting backends produce.
//! - [`remote`]: what the network backends (vaults, cloud KMS) share: their I/O runtime,
//!   HTTPS client, credentials, retries and metrics.
//!
//! A file that fails to load is reported with its name and reason; the others still load.
//! Key decryption (EIP-2335 KDFs, and every other key load) runs on its own bounded thread
//! pool, [`kdf_pool`] (half the cores, at least one thread), never on the signing pool: a
//! reload, SIGHUP or Keymanager import decrypting many scrypt keystores does not make
//! signatures with the other keys queue behind it. Keystores whose file and password did not
//! change are not decrypted again on a reload ([`backend::keystore`]).

pub mod backend;
pub mod dispatch;
pub mod eip2335;
pub mod keystore_writer;
pub mod locked;
pub mod memory;
pub mod reload;
pub mod remote;
pub mod signer;
pub mod tezos;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::protection::audit::{Chain, now_ms};
use backend::{KeyLoad, LoadContext, LoadedKey};
use tezos::TezosKey;

pub use backend::keystore::forget_decrypted;
pub use backend::pkcs11;
pub use dispatch::{DispatchError, in_kdf_pool, kdf_pool, on_kdf_pool, on_pool};
pub use memory::{MemoryKey, MemoryTezosKey};
pub use reload::{Keys, Reloader};
pub use signer::{BackendError, Execution, ProvePossession, Signer, TezosSigner};

/// A key file that did not load: the file and the reason (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The keystore or key config file.
    pub file: PathBuf,
    /// Why it did not load.
    pub reason: String,
}

/// Where a loaded key lives and when it was loaded, for the key inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's chain.
    pub chain: Chain,
    /// `0x` + 96 hex characters (eth2) or the public key hash `tz1…`–`tz5…` (Tezos).
    pub key: String,
    /// Tezos only: the base58 public key (`edpk…`, `sppk…`, `p2pk…`, `BLpk…`).
    pub public_key: Option<String>,
    /// The backend: `keystore`, `file-raw`, `memory` (a Tezos secret key),
    /// `pkcs11 token `T` label `L``, `pkcs11-wrapped keystore (token `T`)`.
    pub backend: String,
    /// The keystore or key config file it came from.
    pub source: PathBuf,
    /// When it was loaded: Unix time in milliseconds.
    pub loaded_at_ms: i64,
}

/// What a failed key file is known to be, read without its secret: the chain from the kind
/// of file, and for EIP-2335 keystores the `pubkey` field when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedKey {
    /// The chain, when the kind of file tells it.
    pub chain: Option<Chain>,
    /// The public key or pkh, when the file states it in the clear.
    pub key: Option<String>,
    /// The file and the reason.
    pub error: LoadError,
}

/// Where keys come from; all optional.
#[derive(Debug, Clone, Default)]
pub struct KeySources {
    /// Directory of EIP-2335 keystore `*.json` files.
    pub keystores_path: Option<PathBuf>,
    /// Directory holding `<keystore stem>.txt` password files.
    pub keystores_passwords_path: Option<PathBuf>,
    /// One password file for every keystore in `keystores_path`.
    pub keystores_password_file: Option<PathBuf>,
    /// Directory of Web3Signer-style YAML key files.
    pub key_config_path: Option<PathBuf>,
}

/// The loaded keys: eth2 keys by 48-byte public key, Tezos keys by public key hash
/// (`tz1…`–`tz5…`), and the files that failed.
#[derive(Default)]
pub struct KeyRegistry {
    keys: HashMap<[u8; 48], Arc<dyn Signer>>,
    tezos: HashMap<String, Arc<TezosKey>>,
    errors: Vec<LoadError>,
    /// Inventory data of the loaded keys, by [`KeyInfo::key`].
    info: HashMap<String, KeyInfo>,
    /// Inventory data of the files that failed, in `errors` order.
    failed: Vec<FailedKey>,
    /// How many keystores the load that built this registry decrypted and reused.
    decryption: DecryptionCounts,
}

/// Keystores a [`KeyRegistry::load`] decrypted, and those whose key (or failure) it reused
/// from an earlier load because neither the file nor its password changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecryptionCounts {
    /// Keystores decrypted (their KDF ran).
    pub decrypted: usize,
    /// Keystores whose earlier outcome was reused without running the KDF.
    pub reused: usize,
}

impl KeyRegistry {
    /// A registry holding `keys` and no load errors (for tests and embedders).
    pub fn from_signers(keys: Vec<Arc<dyn Signer>>) -> Self {
        let now = now_ms();
        let info = keys
            .iter()
            .map(|k| {
                let key = format!("0x{}", hex::encode(k.public_key()));
                let i = KeyInfo {
                    chain: Chain::Eth2,
                    key: key.clone(),
                    public_key: None,
                    backend: "embedded".into(),
                    source: PathBuf::new(),
                    loaded_at_ms: now,
                };
                (key, i)
            })
            .collect();
        KeyRegistry {
            keys: keys.into_iter().map(|k| (k.public_key(), k)).collect(),
            tezos: HashMap::new(),
            errors: Vec::new(),
            info,
            failed: Vec::new(),
            decryption: DecryptionCounts::default(),
        }
    }

    /// A registry holding eth2 `keys` and Tezos keys and no load errors (for tests and
    /// embedders).
    pub fn from_parts(keys: Vec<Arc<dyn Signer>>, tezos: Vec<TezosKey>) -> Self {
        let mut r = Self::from_signers(keys);
        let now = now_ms();
        for k in &tezos {
            r.info.insert(k.pkh.clone(), tezos_info(k, now));
        }
        r.tezos = tezos
            .into_iter()
            .map(|k| (k.pkh.clone(), Arc::new(k)))
            .collect();
        r
    }

    /// Inventory data of every loaded key, eth2 first, each chain sorted by key.
    pub fn inventory(&self) -> Vec<KeyInfo> {
        let mut v: Vec<KeyInfo> = self.info.values().cloned().collect();
        v.sort_by(|a, b| (a.chain, &a.key).cmp(&(b.chain, &b.key)));
        v
    }

    /// Inventory data of the key files that failed to load.
    pub fn failed(&self) -> &[FailedKey] {
        &self.failed
    }

    /// Inventory data of one loaded key (`0x`-hex eth2 public key or Tezos pkh).
    pub fn info(&self, key: &str) -> Option<&KeyInfo> {
        self.info.get(key)
    }

    fn clone_parts(&self) -> KeyRegistry {
        KeyRegistry {
            keys: self.keys.clone(),
            tezos: self.tezos.clone(),
            errors: self.errors.clone(),
            info: self.info.clone(),
            failed: self.failed.clone(),
            decryption: self.decryption,
        }
    }

    /// How many keystores the load that built this registry decrypted and reused.
    pub fn decryption_counts(&self) -> DecryptionCounts {
        self.decryption
    }

    /// This registry plus eth2 keys loaded at run time (Keymanager import).
    pub fn with_eth2(&self, added: Vec<(Arc<dyn Signer>, KeyInfo)>) -> KeyRegistry {
        let mut r = self.clone_parts();
        for (signer, info) in added {
            r.keys.insert(signer.public_key(), signer);
            r.info.insert(info.key.clone(), info);
        }
        r
    }

    /// This registry without the given eth2 keys (Keymanager delete).
    pub fn without_eth2(&self, removed: &[[u8; 48]]) -> KeyRegistry {
        let mut r = self.clone_parts();
        for pk in removed {
            r.keys.remove(pk);
            r.info.remove(&format!("0x{}", hex::encode(pk)));
        }
        r
    }

    /// The Tezos key with this public key hash (`tz1…`–`tz5…`).
    pub fn tezos(&self, pkh: &str) -> Option<Arc<TezosKey>> {
        self.tezos.get(pkh).cloned()
    }

    /// Every Tezos public key hash, sorted.
    pub fn tezos_pkhs(&self) -> Vec<String> {
        let mut v: Vec<_> = self.tezos.keys().cloned().collect();
        v.sort_unstable();
        v
    }

    /// Number of Tezos keys loaded.
    pub fn tezos_len(&self) -> usize {
        self.tezos.len()
    }

    /// The signer for a 48-byte public key.
    pub fn get(&self, public_key: &[u8; 48]) -> Option<Arc<dyn Signer>> {
        self.keys.get(public_key).cloned()
    }

    /// All public keys, sorted.
    pub fn public_keys(&self) -> Vec<[u8; 48]> {
        let mut v: Vec<_> = self.keys.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Number of keys loaded.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key loaded.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The files that failed to load.
    pub fn errors(&self) -> &[LoadError] {
        &self.errors
    }

    /// Loads every key named by `sources`, decrypting in parallel on the key-decryption pool
    /// ([`kdf_pool`]; this call blocks until done: run it on a blocking thread). Keystores
    /// whose file and password are unchanged since an earlier load are not decrypted again.
    /// Failures are collected, logged with file and reason, and do not stop the other keys
    /// from loading. A public key that appears twice is kept once.
    pub fn load(sources: &KeySources) -> KeyRegistry {
        let mut jobs: Vec<Box<dyn KeyLoad>> = Vec::new();
        let mut errors = Vec::new();
        if let Some(dir) = &sources.keystores_path {
            match backend::keystore::directory(dir, sources) {
                Ok(mut j) => jobs.append(&mut j),
                Err(e) => errors.push(e),
            }
        }
        if let Some(dir) = &sources.key_config_path {
            match backend::key_configs(dir) {
                Ok((mut j, mut errs)) => {
                    jobs.append(&mut j);
                    errors.append(&mut errs);
                }
                Err(e) => errors.push(e),
            }
        }
        let mut failed: Vec<FailedKey> = errors
            .iter()
            .map(|e| FailedKey {
                chain: None,
                key: None,
                error: e.clone(),
            })
            .collect();
        let decrypted = std::sync::atomic::AtomicUsize::new(0);
        let reused = std::sync::atomic::AtomicUsize::new(0);
        let seen = Mutex::new(std::collections::HashSet::new());
        let context = LoadContext {
            decrypted: &decrypted,
            reused: &reused,
            seen: &seen,
        };
        let results: Vec<Result<LoadedKey, FailedKey>> = in_kdf_pool(|| {
            jobs.into_par_iter()
                .flat_map_iter(|job| {
                    let (chain, key) = job.identity();
                    job.load_all(&context).into_iter().map(move |r| {
                        r.map_err(|error| FailedKey {
                            chain,
                            key: key.clone(),
                            error,
                        })
                    })
                })
                .collect()
        });
        // Keystores no longer configured (or no longer readable) are forgotten.
        backend::keystore::forget_unseen(&seen.into_inner());
        let decryption = DecryptionCounts {
            decrypted: decrypted.into_inner(),
            reused: reused.into_inner(),
        };
        let now = now_ms();
        let mut keys: HashMap<[u8; 48], Arc<dyn Signer>> = HashMap::new();
        let mut tezos: HashMap<String, Arc<TezosKey>> = HashMap::new();
        let mut info: HashMap<String, KeyInfo> = HashMap::new();
        for r in results {
            match r {
                Ok(LoadedKey::Eth2 {
                    key,
                    backend,
                    source,
                }) => {
                    let id = format!("0x{}", hex::encode(key.public_key()));
                    info.entry(id.clone()).or_insert(KeyInfo {
                        chain: Chain::Eth2,
                        key: id,
                        public_key: None,
                        backend,
                        source,
                        loaded_at_ms: now,
                    });
                    keys.insert(key.public_key(), key);
                }
                Ok(LoadedKey::Tezos(k)) => {
                    if let Some(first) = tezos.get(&k.pkh) {
                        failed.push(FailedKey {
                            chain: Some(Chain::Tezos),
                            key: Some(k.pkh.clone()),
                            error: LoadError {
                                file: k.origin.clone(),
                                reason: format!(
                                    "{} is already configured by {}; this file is ignored",
                                    k.pkh,
                                    first.origin.display()
                                ),
                            },
                        });
                    } else {
                        info.insert(k.pkh.clone(), tezos_info(&k, now));
                        tezos.insert(k.pkh.clone(), Arc::new(k));
                    }
                }
                Err(f) => failed.push(f),
            }
        }
        let errors: Vec<LoadError> = failed.iter().map(|f| f.error.clone()).collect();
        for e in &errors {
            tracing::error!(file = %e.file.display(), reason = %e.reason, "key not loaded");
        }
        KeyRegistry {
            keys,
            tezos,
            errors,
            info,
            failed,
            decryption,
        }
    }
}

/// Inventory data of a loaded Tezos key.
fn tezos_info(k: &TezosKey, loaded_at_ms: i64) -> KeyInfo {
    KeyInfo {
        chain: Chain::Tezos,
        key: k.pkh.clone(),
        public_key: Some(k.signer.public_key().to_b58()),
        backend: k.signer.backend(),
        source: k.origin.clone(),
        loaded_at_ms,
    }
}

/// Reads a password file: its text without trailing newlines, zeroized on drop.
///
/// # Errors
/// A message naming the file (never its content).
pub fn read_password_file(path: &Path) -> Result<Zeroizing<String>, String> {
    let mut text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read password file {}: {e}", path.display()))?,
    );
    let len = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(len);
    Ok(text)
}
