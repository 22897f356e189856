//! The key registry (48-byte BLS public key → signer) and its loaders.
//!
//! Keys are loaded once at start-up: EIP-2335 keystores from a directory (passwords from a
//! directory of `<keystore stem>.txt` files or from one file) and Web3Signer-style YAML key
//! files (`type: file-keystore`, `type: file-raw`). Decryption runs in parallel on all cores.
//! A file that fails to load is reported with its name and reason; the others still load.

pub mod eip2335;
pub mod key_config;
pub mod keystore_writer;
pub mod pkcs11;
pub mod tezos;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::chain::tezos::policy::Policy;
use crate::crypto::bls::SecretKey;
use tezos::TezosKey;

/// A key that can sign a 32-byte signing root. Implemented by in-memory keys here and by
/// HSM-held keys elsewhere.
pub trait Signer: Send + Sync {
    /// The 48-byte compressed BLS public key.
    fn public_key(&self) -> [u8; 48];
    /// Signs a 32-byte signing root; returns the 96-byte compressed signature.
    ///
    /// # Errors
    /// [`SignError`] when the backend cannot sign (never for in-memory keys).
    fn sign(&self, signing_root: &[u8; 32]) -> Result<[u8; 96], SignError>;
}

/// A backend failure while signing. Carries no key material.
#[derive(Debug, thiserror::Error)]
#[error("signing backend failed: {0}")]
pub struct SignError(pub String);

/// Runs a CPU-bound closure on the signing pool (one thread per core); `None` if the pool
/// dropped it.
pub async fn on_pool<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.ok()
}

/// Signs on the CPU-bound worker pool (one thread per core), so a burst of requests does not
/// start one OS thread per request; resolves when the signature is ready.
///
/// # Errors
/// The signer's [`SignError`], or one saying the pool dropped the job.
pub async fn sign_on_pool(
    signer: Arc<dyn Signer>,
    signing_root: [u8; 32],
) -> Result<[u8; 96], SignError> {
    on_pool(move || signer.sign(&signing_root))
        .await
        .unwrap_or_else(|| Err(SignError("signing pool dropped the job".into())))
}

/// A BLS key held in process memory (zeroized on drop).
pub struct MemoryKey {
    secret: SecretKey,
    public: [u8; 48],
}

impl MemoryKey {
    /// Wraps a secret key, computing its public key once.
    pub fn new(secret: SecretKey) -> Self {
        let public = secret.public_key();
        MemoryKey { secret, public }
    }
}

impl Signer for MemoryKey {
    fn public_key(&self) -> [u8; 48] {
        self.public
    }
    fn sign(&self, signing_root: &[u8; 32]) -> Result<[u8; 96], SignError> {
        Ok(self.secret.sign(signing_root))
    }
}

/// A key file that did not load: the file and the reason (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The keystore or key config file.
    pub file: PathBuf,
    /// Why it did not load.
    pub reason: String,
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
/// (`tz1…`–`tz4…`), and the files that failed.
#[derive(Default)]
pub struct KeyRegistry {
    keys: HashMap<[u8; 48], Arc<dyn Signer>>,
    tezos: HashMap<String, Arc<TezosKey>>,
    errors: Vec<LoadError>,
}

impl KeyRegistry {
    /// A registry holding `keys` and no load errors (for tests and embedders).
    pub fn from_signers(keys: Vec<Arc<dyn Signer>>) -> Self {
        KeyRegistry {
            keys: keys.into_iter().map(|k| (k.public_key(), k)).collect(),
            tezos: HashMap::new(),
            errors: Vec::new(),
        }
    }

    /// A registry holding eth2 `keys` and Tezos keys and no load errors (for tests and
    /// embedders).
    pub fn from_parts(keys: Vec<Arc<dyn Signer>>, tezos: Vec<TezosKey>) -> Self {
        let mut r = Self::from_signers(keys);
        r.tezos = tezos
            .into_iter()
            .map(|k| (k.pkh.clone(), Arc::new(k)))
            .collect();
        r
    }

    /// The Tezos key with this public key hash (`tz1…`–`tz4…`).
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

    /// Loads every key named by `sources`, decrypting in parallel. Failures are collected,
    /// logged with file and reason, and do not stop the other keys from loading. A public key
    /// that appears twice is kept once.
    pub fn load(sources: &KeySources) -> KeyRegistry {
        let mut jobs: Vec<Job> = Vec::new();
        let mut errors = Vec::new();
        if let Some(dir) = &sources.keystores_path {
            match keystore_jobs(dir, sources) {
                Ok(mut j) => jobs.append(&mut j),
                Err(e) => errors.push(e),
            }
        }
        if let Some(dir) = &sources.key_config_path {
            match key_config::jobs(dir) {
                Ok((mut j, mut errs)) => {
                    jobs.append(&mut j);
                    errors.append(&mut errs);
                }
                Err(e) => errors.push(e),
            }
        }
        let results: Vec<Result<Loaded, LoadError>> = jobs.into_par_iter().map(Job::run).collect();
        let mut keys: HashMap<[u8; 48], Arc<dyn Signer>> = HashMap::new();
        let mut tezos: HashMap<String, Arc<TezosKey>> = HashMap::new();
        for r in results {
            match r {
                Ok(Loaded::Eth2(k)) => {
                    keys.insert(k.public_key(), Arc::new(k));
                }
                Ok(Loaded::Tezos(k)) => {
                    if let Some(first) = tezos.get(&k.pkh) {
                        errors.push(LoadError {
                            file: k.origin.clone(),
                            reason: format!(
                                "{} is already configured by {}; this file is ignored",
                                k.pkh,
                                first.origin.display()
                            ),
                        });
                    } else {
                        tezos.insert(k.pkh.clone(), Arc::new(k));
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        for e in &errors {
            tracing::error!(file = %e.file.display(), reason = %e.reason, "key not loaded");
        }
        KeyRegistry {
            keys,
            tezos,
            errors,
        }
    }
}

/// One key to load: where it is and how to open it.
pub(crate) enum Job {
    /// An EIP-2335 keystore file and its password, read from a file; `origin` is the key
    /// config file that named them, if any (errors are reported against it).
    Keystore {
        file: PathBuf,
        password_file: PathBuf,
        origin: Option<PathBuf>,
    },
    /// A raw 32-byte secret key (hex), from a `file-raw` key config.
    Raw {
        file: PathBuf,
        secret_hex: Zeroizing<String>,
    },
    /// A Tezos key pair in a PKCS#11 token, from a `pkcs11` key config.
    Pkcs11 {
        file: PathBuf,
        token: pkcs11::TokenRef,
        key: pkcs11::KeySelector,
        policy: Policy,
    },
    /// A BLS keystore wrapped under an HSM's AES key, from a `pkcs11-wrapped-bls` key config.
    WrappedBls {
        file: PathBuf,
        token: pkcs11::TokenRef,
        wrapped: PathBuf,
        aes_key_label: Option<String>,
    },
    /// A Tezos secret key URI (`unencrypted:`/`encrypted:`), from a `tezos-secret` key config.
    Tezos {
        file: PathBuf,
        secret_key: Zeroizing<String>,
        password_file: Option<PathBuf>,
        policy: Policy,
    },
}

/// A key a [`Job`] loaded.
enum Loaded {
    Eth2(MemoryKey),
    Tezos(TezosKey),
}

impl Job {
    fn run(self) -> Result<Loaded, LoadError> {
        match self {
            Job::Tezos {
                file,
                secret_key,
                password_file,
                policy,
            } => {
                tezos::load(&file, &secret_key, password_file.as_deref(), policy).map(Loaded::Tezos)
            }
            Job::Pkcs11 {
                file,
                token,
                key,
                policy,
            } => {
                let fail = |reason: String| LoadError {
                    file: file.clone(),
                    reason,
                };
                let token = pkcs11::Token::open(&token).map_err(|e| fail(e.to_string()))?;
                let signer =
                    pkcs11::Pkcs11TezosKey::open(token, key).map_err(|e| fail(e.to_string()))?;
                use tezos::TezosSigner;
                Ok(Loaded::Tezos(TezosKey {
                    pkh: signer.public_key().pkh_b58(),
                    signer: Box::new(signer),
                    policy,
                    origin: file,
                }))
            }
            Job::WrappedBls {
                file,
                token,
                wrapped,
                aes_key_label,
            } => {
                let fail = |reason: String| LoadError {
                    file: file.clone(),
                    reason,
                };
                let token = pkcs11::Token::open(&token).map_err(|e| fail(e.to_string()))?;
                let sk = pkcs11::wrapped::load_file(&token, &wrapped, aes_key_label.as_deref())
                    .map_err(fail)?;
                Ok(Loaded::Eth2(MemoryKey::new(sk)))
            }
            Job::Keystore {
                file,
                password_file,
                origin,
            } => {
                let fail = |reason: String| match &origin {
                    None => LoadError {
                        file: file.clone(),
                        reason,
                    },
                    Some(o) => LoadError {
                        file: o.clone(),
                        reason: format!("keystore {}: {reason}", file.display()),
                    },
                };
                let json = std::fs::read_to_string(&file)
                    .map_err(|e| fail(format!("cannot read keystore: {e}")))?;
                let password = read_password_file(&password_file).map_err(fail)?;
                let sk = eip2335::decrypt_bls(&json, &password).map_err(|e| fail(e.to_string()))?;
                Ok(Loaded::Eth2(MemoryKey::new(sk)))
            }
            Job::Raw { file, secret_hex } => {
                let bytes = Zeroizing::new(
                    hex::decode(secret_hex.trim().trim_start_matches("0x")).map_err(|_| {
                        LoadError {
                            file: file.clone(),
                            reason: "privateKey is not hex".into(),
                        }
                    })?,
                );
                let sk = SecretKey::from_bytes(&bytes).map_err(|e| LoadError {
                    file: file.clone(),
                    reason: format!("privateKey: {e}"),
                })?;
                Ok(Loaded::Eth2(MemoryKey::new(sk)))
            }
        }
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

fn keystore_jobs(dir: &Path, sources: &KeySources) -> Result<Vec<Job>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError {
        file: dir.to_path_buf(),
        reason: format!("cannot read keystores directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut jobs = Vec::with_capacity(files.len());
    for file in files {
        let password_file = if let Some(pf) = &sources.keystores_password_file {
            pf.clone()
        } else {
            let stem = file.file_stem().unwrap_or_default().to_os_string();
            let pw_dir = sources.keystores_passwords_path.as_deref().unwrap_or(dir);
            let mut name = stem;
            name.push(".txt");
            pw_dir.join(name)
        };
        jobs.push(Job::Keystore {
            file,
            password_file,
            origin: None,
        });
    }
    Ok(jobs)
}
