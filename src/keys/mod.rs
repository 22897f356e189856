//! The key registry (48-byte BLS public key → signer) and its loaders.
//!
//! Keys are loaded once at start-up: EIP-2335 keystores from a directory (passwords from a
//! directory of `<keystore stem>.txt` files or from one file) and Web3Signer-style YAML key
//! files (`type: file-keystore`, `type: file-raw`). A file that fails to load is reported with
//! its name and reason; the others still load.
//!
//! Key decryption (EIP-2335 KDFs, and every other key load) runs on its own bounded thread
//! pool, [`kdf_pool`] (half the cores, at least one thread), never on the signing pool that
//! [`sign_on_pool`] uses: a reload, SIGHUP or Keymanager import decrypting many scrypt
//! keystores does not make signatures with the other keys queue behind it. Decrypted keystores
//! are remembered per file, with a SHA-256 fingerprint of the keystore's bytes and its
//! password: a reload decrypts again only the keystores whose file or password changed, and
//! reuses the key already in memory for the others (failures are remembered the same way).

pub mod eip2335;
pub mod key_config;
pub mod keystore_writer;
pub mod locked;
pub mod pkcs11;
pub mod reload;
pub mod tezos;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::chain::tezos::policy::Policy;
use crate::crypto::bls::SecretKey;
use crate::protection::audit::{Chain, now_ms};
use tezos::TezosKey;

pub use reload::{Keys, Reloader};

/// A key that can sign a 32-byte signing root. Implemented by in-memory keys here and by
/// HSM-held keys elsewhere.
pub trait Signer: Send + Sync {
    /// The 48-byte compressed BLS public key.
    fn public_key(&self) -> [u8; 48];
    /// Signs a 32-byte signing root; returns the 96-byte compressed signature.
    ///
    /// # Errors
    /// [`BackendError`] when the backend cannot sign (never for in-memory keys).
    fn sign(&self, signing_root: &[u8; 32]) -> Result<[u8; 96], BackendError>;
}

/// A backend failure while signing. Carries no key material.
#[derive(Debug, thiserror::Error)]
#[error("signing backend failed: {0}")]
pub struct BackendError(pub String);

/// The key-decryption pool: `max(1, cores / 2)` threads named `palisade-kdf-N`, separate from
/// the signing pool (rayon's global pool), so that key derivation never delays a signature in
/// the signing pool's queue. `None` when its threads could not be started (decryption then
/// runs on the calling thread).
pub fn kdf_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: LazyLock<Option<rayon::ThreadPool>> = LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match rayon::ThreadPoolBuilder::new()
            .num_threads((cores / 2).max(1))
            .thread_name(|i| format!("palisade-kdf-{i}"))
            .build()
        {
            Ok(pool) => Some(pool),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the key-decryption pool; keys are decrypted on the calling thread");
                None
            }
        }
    });
    POOL.as_ref()
}

/// Runs a blocking closure on the key-decryption pool ([`kdf_pool`]) and waits for it: rayon
/// parallel iterators inside `f` use that pool too. Call it from a blocking thread, not an
/// async worker.
pub fn in_kdf_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match kdf_pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Runs a CPU-bound closure on the key-decryption pool ([`kdf_pool`]) from async code;
/// `None` if the pool dropped it.
pub async fn on_kdf_pool<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    match kdf_pool() {
        Some(pool) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            pool.spawn(move || {
                let _ = tx.send(f());
            });
            rx.await.ok()
        }
        None => tokio::task::spawn_blocking(f).await.ok(),
    }
}

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
/// The signer's [`BackendError`], or one saying the pool dropped the job.
pub async fn sign_on_pool(
    signer: Arc<dyn Signer>,
    signing_root: [u8; 32],
) -> Result<[u8; 96], BackendError> {
    on_pool(move || signer.sign(&signing_root))
        .await
        .unwrap_or_else(|| Err(BackendError("signing pool dropped the job".into())))
}

/// A BLS key held in process memory: zeroized on drop, its pages locked in RAM where the
/// platform and `RLIMIT_MEMLOCK` allow ([`locked::Locked`]). `Debug` prints the public key only.
pub struct MemoryKey {
    secret: locked::Locked<SecretKey>,
    public: [u8; 48],
}

impl MemoryKey {
    /// Wraps a secret key, computing its public key once.
    pub fn new(secret: SecretKey) -> Self {
        let public = secret.public_key();
        MemoryKey {
            secret: locked::Locked::new(secret),
            public,
        }
    }
}

impl std::fmt::Debug for MemoryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MemoryKey(0x{}, <secret redacted>)",
            hex::encode(self.public)
        )
    }
}

impl Signer for MemoryKey {
    fn public_key(&self) -> [u8; 48] {
        self.public
    }
    fn sign(&self, signing_root: &[u8; 32]) -> Result<[u8; 96], BackendError> {
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

/// Where a loaded key lives and when it was loaded, for the key inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's chain.
    pub chain: Chain,
    /// `0x` + 96 hex characters (eth2) or the public key hash `tz1…`–`tz4…` (Tezos).
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
/// (`tz1…`–`tz4…`), and the files that failed.
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

    /// Loads every key named by `sources`, decrypting in parallel on the key-decryption pool
    /// ([`kdf_pool`]; this call blocks until done: run it on a blocking thread). Keystores
    /// whose file and password are unchanged since an earlier load are not decrypted again.
    /// Failures are collected, logged with file and reason, and do not stop the other keys
    /// from loading. A public key that appears twice is kept once.
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
        let counts = Counts {
            decrypted: &decrypted,
            reused: &reused,
            seen: &seen,
        };
        let results: Vec<Result<Loaded, FailedKey>> = in_kdf_pool(|| {
            jobs.into_par_iter()
                .map(|job| {
                    let (chain, key) = job.identity();
                    job.run(counts)
                        .map_err(|error| FailedKey { chain, key, error })
                })
                .collect()
        });
        // Keystores no longer configured (or no longer readable) are forgotten.
        let seen = seen.into_inner();
        DECRYPTED.lock().retain(|path, _| seen.contains(path));
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
                Ok(Loaded::Eth2 {
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
                Ok(Loaded::Tezos(k)) => {
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

/// Counters shared by the jobs of one load.
#[derive(Clone, Copy)]
struct Counts<'a> {
    decrypted: &'a std::sync::atomic::AtomicUsize,
    reused: &'a std::sync::atomic::AtomicUsize,
    /// The keystore files this load decrypted or reused.
    seen: &'a Mutex<std::collections::HashSet<PathBuf>>,
}

/// One remembered keystore decryption.
struct Remembered {
    /// SHA-256 over the keystore's bytes and its normalised password (length-prefixed).
    fingerprint: [u8; 32],
    /// The key, or the error message.
    outcome: Result<Arc<MemoryKey>, String>,
}

/// Remembered keystore decryptions, by keystore file.
static DECRYPTED: LazyLock<Mutex<HashMap<PathBuf, Remembered>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Forgets the remembered decryption of a keystore file (its key is dropped once no
/// registry serves it), so that a deleted keystore's secret does not stay in memory until
/// the next reload. Used by the Keymanager API's delete.
pub fn forget_decrypted(file: &Path) {
    DECRYPTED.lock().remove(file);
}

/// The fingerprint of a keystore file's content and password (see [`Remembered`]).
fn fingerprint(json: &str, password: &str) -> [u8; 32] {
    let password = eip2335::normalize_password(password);
    let mut h = Sha256::new();
    h.update(b"palisade keystore fingerprint v1");
    h.update((json.len() as u64).to_be_bytes());
    h.update(json.as_bytes());
    h.update((password.len() as u64).to_be_bytes());
    h.update(&*password);
    h.finalize().into()
}

/// Decrypts a keystore file's JSON, or reuses the outcome of an earlier decryption of the
/// same file when its content and password are unchanged.
fn decrypt_remembered(
    file: &Path,
    json: &str,
    password: &str,
    counts: Counts<'_>,
) -> Result<Arc<MemoryKey>, String> {
    use std::sync::atomic::Ordering::Relaxed;
    let fp = fingerprint(json, password);
    counts.seen.lock().insert(file.to_path_buf());
    if let Some(r) = DECRYPTED.lock().get(file)
        && r.fingerprint == fp
    {
        counts.reused.fetch_add(1, Relaxed);
        return r.outcome.clone();
    }
    counts.decrypted.fetch_add(1, Relaxed);
    let outcome = eip2335::decrypt_bls(json, password)
        .map(|sk| Arc::new(MemoryKey::new(sk)))
        .map_err(|e| e.to_string());
    DECRYPTED.lock().insert(
        file.to_path_buf(),
        Remembered {
            fingerprint: fp,
            outcome: outcome.clone(),
        },
    );
    outcome
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
    Eth2 {
        key: Arc<MemoryKey>,
        /// As in [`KeyInfo::backend`].
        backend: String,
        source: PathBuf,
    },
    Tezos(TezosKey),
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

/// The `pubkey` field of an EIP-2335 keystore file (`0x` + 96 hex), read without decrypting.
fn keystore_pubkey(file: &Path) -> Option<String> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?;
    let hex_part = json.get("pubkey")?.as_str()?.trim_start_matches("0x");
    let bytes = hex::decode(hex_part).ok()?;
    (bytes.len() == 48).then(|| format!("0x{}", hex::encode(bytes)))
}

impl Job {
    /// What the job's file says about its key before it is opened: its chain, and for
    /// keystores the public key they state in the clear.
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        match self {
            Job::Keystore { file, .. } => (Some(Chain::Eth2), keystore_pubkey(file)),
            Job::WrappedBls { wrapped, .. } => (Some(Chain::Eth2), keystore_pubkey(wrapped)),
            Job::Raw { .. } => (Some(Chain::Eth2), None),
            Job::Pkcs11 { .. } | Job::Tezos { .. } => (Some(Chain::Tezos), None),
        }
    }

    fn run(self, counts: Counts<'_>) -> Result<Loaded, LoadError> {
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
                Ok(Loaded::Eth2 {
                    key: Arc::new(MemoryKey::new(sk)),
                    backend: format!(
                        "pkcs11-wrapped keystore {} (token `{}`)",
                        wrapped.display(),
                        token.label()
                    ),
                    source: file,
                })
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
                let json = read_keystore_file(&file).map_err(fail)?;
                let password = read_password_file(&password_file).map_err(fail)?;
                let key = decrypt_remembered(&file, &json, &password, counts).map_err(fail)?;
                Ok(Loaded::Eth2 {
                    key,
                    backend: match &origin {
                        None => "keystore".into(),
                        Some(_) => format!("keystore {} (file-keystore)", file.display()),
                    },
                    source: origin.unwrap_or(file),
                })
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
                Ok(Loaded::Eth2 {
                    key: Arc::new(MemoryKey::new(sk)),
                    backend: "file-raw".into(),
                    source: file,
                })
            }
        }
    }
}

/// Reads an EIP-2335 keystore file, refusing one over [`eip2335::MAX_KEYSTORE_BYTES`]
/// before reading it.
///
/// # Errors
/// A message naming the problem (never the content).
fn read_keystore_file(file: &Path) -> Result<String, String> {
    let len = std::fs::metadata(file)
        .map_err(|e| format!("cannot read keystore: {e}"))?
        .len();
    if len > eip2335::MAX_KEYSTORE_BYTES as u64 {
        return Err(format!(
            "keystore of {len} bytes, over the limit of {} bytes",
            eip2335::MAX_KEYSTORE_BYTES
        ));
    }
    std::fs::read_to_string(file).map_err(|e| format!("cannot read keystore: {e}"))
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
