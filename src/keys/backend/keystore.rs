//! `type: file-keystore` and the `--keystores-path` directory: EIP-2335 keystores, decrypted
//! into memory ([`MemoryKey`]) with their password files.
//!
//! ```yaml
//! type: file-keystore
//! keyType: BLS                       # optional; BLS is the only eth2 key type
//! keystoreFile: /path/keystore.json
//! keystorePasswordFile: /path/keystore.txt
//! ```
//!
//! Decrypted keystores are remembered per file, with a SHA-256 fingerprint of the keystore's
//! bytes and its password: a reload decrypts again only the keystores whose file or password
//! changed, and reuses the key already in memory for the others (failures are remembered the
//! same way).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Backend, KeyLoad, LoadContext, LoadedKey, base_dir, parse};
use crate::keys::memory::MemoryKey;
use crate::keys::{KeySources, LoadError, eip2335, read_password_file};
use crate::protection::audit::Chain;

/// The `file-keystore` backend.
pub struct FileKeystore;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    key_type: Option<String>,
    keystore_file: PathBuf,
    keystore_password_file: PathBuf,
}

impl Backend for FileKeystore {
    fn kind(&self) -> &'static str {
        "file-keystore"
    }
    fn fields_hint(&self) -> &'static str {
        "keystoreFile, keystorePasswordFile"
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        None
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let config: Config = parse(text, self)?;
        check_key_type(config.key_type.as_deref())?;
        let base = base_dir(file);
        Ok(Box::new(Keystore {
            file: base.join(config.keystore_file),
            password_file: base.join(config.keystore_password_file),
            origin: Some(file.to_path_buf()),
        }))
    }
}

/// Refuses an eth2 `keyType` other than `BLS` (Web3Signer's `file-keystore`/`file-raw`).
///
/// # Errors
/// A message naming the key type.
pub(crate) fn check_key_type(key_type: Option<&str>) -> Result<(), String> {
    match key_type {
        None | Some("BLS") => Ok(()),
        Some(other) => Err(format!(
            "keyType `{other}` is not supported for eth2 (BLS expected)"
        )),
    }
}

/// An EIP-2335 keystore file and its password file; `origin` is the key config that named
/// them, if any (errors are reported against it).
struct Keystore {
    file: PathBuf,
    password_file: PathBuf,
    origin: Option<PathBuf>,
}

impl KeyLoad for Keystore {
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        (Some(Chain::Eth2), keystore_pubkey(&self.file))
    }

    fn load(self: Box<Self>, context: &LoadContext<'_>) -> Result<LoadedKey, LoadError> {
        let Keystore {
            file,
            password_file,
            origin,
        } = *self;
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
        let key = decrypt_remembered(&file, &json, &password, context).map_err(fail)?;
        Ok(LoadedKey::Eth2 {
            key,
            backend: match &origin {
                None => "keystore".into(),
                Some(_) => format!("keystore {} (file-keystore)", file.display()),
            },
            source: origin.unwrap_or(file),
        })
    }
}

/// The keystores of a `--keystores-path` directory (`*.json`, sorted), each with its
/// password file: `--keystores-password-file`, or `<keystore stem>.txt` in
/// `--keystores-passwords-path` (default: the keystores directory).
///
/// # Errors
/// [`LoadError`] when the directory cannot be read.
pub(crate) fn directory(
    dir: &Path,
    sources: &KeySources,
) -> Result<Vec<Box<dyn KeyLoad>>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError {
        file: dir.to_path_buf(),
        reason: format!("cannot read keystores directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut loads: Vec<Box<dyn KeyLoad>> = Vec::with_capacity(files.len());
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
        loads.push(Box::new(Keystore {
            file,
            password_file,
            origin: None,
        }));
    }
    Ok(loads)
}

/// The `pubkey` field of an EIP-2335 keystore file (`0x` + 96 hex), read without decrypting.
pub(crate) fn keystore_pubkey(file: &Path) -> Option<String> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?;
    let hex_part = json.get("pubkey")?.as_str()?.trim_start_matches("0x");
    let bytes = hex::decode(hex_part).ok()?;
    (bytes.len() == 48).then(|| format!("0x{}", hex::encode(bytes)))
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

/// Forgets the remembered decryptions of the keystore files a load did not see (no longer
/// configured or no longer readable).
pub(crate) fn forget_unseen(seen: &std::collections::HashSet<PathBuf>) {
    DECRYPTED.lock().retain(|path, _| seen.contains(path));
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
    context: &LoadContext<'_>,
) -> Result<Arc<MemoryKey>, String> {
    let fp = fingerprint(json, password);
    context.seen.lock().insert(file.to_path_buf());
    if let Some(r) = DECRYPTED.lock().get(file)
        && r.fingerprint == fp
    {
        context.reused.fetch_add(1, Relaxed);
        return r.outcome.clone();
    }
    context.decrypted.fetch_add(1, Relaxed);
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
