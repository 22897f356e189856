//! Key backends, one file each, behind one trait ([`Backend`]) and one registry
//! ([`BACKENDS`], keyed by the key-config `type:`).
//!
//! A key config is a Web3Signer-style YAML file (camelCase fields), one key per file, in the
//! `--key-config-path` directory:
//!
//! ```yaml
//! type: file-keystore              # keystore.rs: an EIP-2335 keystore and its password file
//! keyType: BLS
//! keystoreFile: /path/keystore.json
//! keystorePasswordFile: /path/keystore.txt
//! ```
//! ```yaml
//! type: file-raw                   # raw.rs: a 32-byte BLS secret key, hex
//! keyType: BLS
//! privateKey: 0x…
//! ```
//! ```yaml
//! type: tezos-secret               # tezos_secret.rs: an octez secret key URI
//! secretKey: unencrypted:edsk…
//! ```
//! `type: pkcs11` (Tezos keys in an HSM, [`pkcs11`]) and `type: pkcs11-wrapped-bls` (BLS
//! keystores wrapped under an HSM's AES key, [`pkcs11_wrapped_bls`]) are described in their
//! files. Relative paths are resolved against the YAML file's directory.
//!
//! Loading has two steps: [`Backend::prepare`] reads the config (cheap, no key work, no
//! secret decrypted), then [`KeyLoad::load`] opens the key on the key-decryption pool. The
//! key it returns signs through the chain's signing trait ([`crate::keys::Signer`],
//! [`crate::keys::TezosSigner`]), whose execution hint the one dispatcher
//! ([`crate::keys::dispatch`]) runs.
//!
//! Adding a backend is one file here and one line in [`BACKENDS`].

#[cfg(feature = "cloud-vaults")]
pub mod aws;
#[cfg(feature = "cloud-vaults")]
pub mod azure;
pub mod keystore;
pub mod pkcs11;
pub mod pkcs11_wrapped_bls;
pub mod raw;
pub mod tezos_secret;
pub mod vault;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::LoadError;
use super::signer::Signer;
use super::tezos::TezosKey;
use crate::protection::audit::Chain;

/// Every key backend, by key-config `type:`.
pub static BACKENDS: &[&dyn Backend] = &[
    &keystore::FileKeystore,
    &raw::FileRaw,
    &tezos_secret::TezosSecret,
    &pkcs11::Pkcs11,
    &pkcs11_wrapped_bls::Pkcs11WrappedBls,
    &vault::kv::Hashicorp,
    &vault::kv::VaultKvBulk,
    &vault::transit::VaultTransit,
    #[cfg(feature = "cloud-vaults")]
    &aws::kms::AwsKms,
    #[cfg(feature = "cloud-vaults")]
    &aws::secrets::AwsSecret,
    #[cfg(feature = "cloud-vaults")]
    &aws::secrets::AwsSecretsBulk,
    #[cfg(feature = "cloud-vaults")]
    &azure::keys::AzureKey,
    #[cfg(feature = "cloud-vaults")]
    &azure::secrets::AzureSecret,
    #[cfg(feature = "cloud-vaults")]
    &azure::secrets::AzureSecretsBulk,
];

/// A key backend: reads the key configs of one `type:` and loads their keys.
pub trait Backend: Sync {
    /// The key-config `type:` it serves (`file-keystore`, `pkcs11`, …).
    fn kind(&self) -> &'static str;
    /// Its fields, for the message of a config that does not parse (`privateKey`).
    fn fields_hint(&self) -> &'static str;
    /// Every field its configs may hold (`type` included), or `None` to let unknown fields
    /// pass (Web3Signer's own types, whose configs shared with it may carry more). A strict
    /// backend refuses a misspelled `timeoutMs` instead of falling back to the default.
    fn known_fields(&self) -> Option<Vec<&'static str>>;
    /// Whether loading or using its keys calls a network service (the vault backends):
    /// `false` by default.
    fn remote(&self) -> bool {
        false
    }
    /// Reads one key config: its YAML `text`, from `file` (relative paths resolve against
    /// its directory). Does no key work: no decryption, no token login.
    ///
    /// # Errors
    /// A message naming the field at fault (never a secret); [`parse`] gives the message
    /// for a config that does not deserialize.
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String>;
}

/// One key to load, as a backend read it from its config.
pub trait KeyLoad: Send {
    /// What the config tells about its key before it is opened: the chain, and the public
    /// key when the config states it in the clear (an EIP-2335 keystore's `pubkey`).
    fn identity(&self) -> (Option<Chain>, Option<String>);
    /// Opens the key: decrypts it, or finds it on its token. Runs on the key-decryption
    /// pool.
    ///
    /// # Errors
    /// [`LoadError`] naming the file and the reason (never a secret).
    fn load(self: Box<Self>, context: &LoadContext<'_>) -> Result<LoadedKey, LoadError>;
    /// Opens every key of a config that names many (a bulk load of a vault's secrets), each
    /// with its own outcome. The default is [`KeyLoad::load`]'s one key.
    fn load_all(self: Box<Self>, context: &LoadContext<'_>) -> Vec<Result<LoadedKey, LoadError>> {
        vec![self.load(context)]
    }
}

/// A key a [`KeyLoad`] opened.
pub enum LoadedKey {
    /// An eth2 key.
    Eth2 {
        /// Its signer.
        key: Arc<dyn Signer>,
        /// Where it lives, as in [`super::KeyInfo::backend`].
        backend: String,
        /// The file it came from (the key config, or the keystore of `--keystores-path`).
        source: PathBuf,
    },
    /// A Tezos key.
    Tezos(TezosKey),
}

/// State shared by the loads of one [`super::KeyRegistry::load`]: the counts of keystores
/// decrypted and reused, and the keystore files seen (see [`keystore`]).
pub struct LoadContext<'a> {
    pub(crate) decrypted: &'a AtomicUsize,
    pub(crate) reused: &'a AtomicUsize,
    pub(crate) seen: &'a Mutex<HashSet<PathBuf>>,
}

/// The backend serving a key-config `type:`.
pub fn backend(kind: &str) -> Option<&'static dyn Backend> {
    BACKENDS.iter().copied().find(|b| b.kind() == kind)
}

/// Whether the backend serving `kind` reaches a network service when it loads or signs
/// (`false` for an unknown `kind`). The key-config fuzz target skips those.
pub fn is_remote(kind: &str) -> bool {
    backend(kind).is_some_and(|b| b.remote())
}

/// The key-config types of the backends that reach a network service ([`Backend::remote`]),
/// in registry order.
pub fn remote_kinds() -> Vec<&'static str> {
    BACKENDS
        .iter()
        .filter(|b| b.remote())
        .map(|b| b.kind())
        .collect()
}

/// Deserializes a key config for `backend`. The message keeps only the error's location:
/// serde's messages may quote the input.
///
/// # Errors
/// `invalid key config at line N: unknown field or missing field (<kind>: <fields>)`.
pub fn parse<T: DeserializeOwned>(text: &str, backend: &dyn Backend) -> Result<T, String> {
    serde_norway::from_str(text).map_err(|e| {
        format!(
            "invalid key config{}: unknown field or missing field ({}: {})",
            location(&e),
            backend.kind(),
            backend.fields_hint()
        )
    })
}

fn location(e: &serde_norway::Error) -> String {
    e.location()
        .map(|l| format!(" at line {}", l.line()))
        .unwrap_or_default()
}

/// The `type:` of a key config.
#[derive(serde::Deserialize)]
struct Kind {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Refuses fields a strict backend does not know (see [`Backend::known_fields`]).
fn check_fields(text: &str, backend: &dyn Backend) -> Result<(), String> {
    let Some(known) = backend.known_fields() else {
        return Ok(());
    };
    let Ok(serde_norway::Value::Mapping(map)) = serde_norway::from_str(text) else {
        return Ok(());
    };
    for key in map.keys() {
        let name = key.as_str().unwrap_or_default();
        if !known.contains(&name) {
            return Err(format!(
                "unknown field `{name}` in a `{}` key config (known: {})",
                backend.kind(),
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// The keys a directory of key configs names, and the files that failed.
pub(crate) type KeyConfigs = (Vec<Box<dyn KeyLoad>>, Vec<LoadError>);

/// Reads every `*.yaml`/`*.yml` in `dir`; returns the keys to load and the files that failed.
///
/// # Errors
/// [`LoadError`] when the directory cannot be read.
pub(crate) fn key_configs(dir: &Path) -> Result<KeyConfigs, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError {
        file: dir.to_path_buf(),
        reason: format!("cannot read key config directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut loads = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match key_config(&file) {
            Ok(l) => loads.push(l),
            Err(reason) => errors.push(LoadError { file, reason }),
        }
    }
    Ok((loads, errors))
}

/// Reads one key config file and hands it to the backend of its `type:`.
fn key_config(file: &Path) -> Result<Box<dyn KeyLoad>, String> {
    let text =
        Zeroizing::new(std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"))?);
    let kind: Kind = serde_norway::from_str(&text)
        .map_err(|e| format!("invalid key config{}: not a YAML mapping", location(&e)))?;
    let Some(kind) = kind.kind else {
        return Err("invalid key config: missing `type`".into());
    };
    let Some(backend) = backend(&kind) else {
        let known: Vec<&str> = BACKENDS.iter().map(|b| b.kind()).collect();
        return Err(format!(
            "invalid key config: unknown `type` (known: {})",
            known.join(", ")
        ));
    };
    check_fields(&text, backend)?;
    backend.prepare(&text, file)
}

/// The directory of a key config file, against which its relative paths resolve.
pub(crate) fn base_dir(file: &Path) -> &Path {
    file.parent().unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), String> {
        let kind: Kind = serde_norway::from_str(text).unwrap();
        check_fields(text, backend(&kind.kind.unwrap()).unwrap())
    }

    #[test]
    fn palisade_key_configs_refuse_unknown_fields() {
        let pkcs11 = "type: pkcs11\nmodule: /m.so\ntokenLabel: t\npinFile: p\nkeyLabel: k\n";
        assert!(check(pkcs11).is_ok());
        let misspelled = format!("{pkcs11}timeoutMS: 1\n");
        let err = check(&misspelled).unwrap_err();
        assert!(
            err.contains("`timeoutMS`") && err.contains("timeoutMs"),
            "{err}"
        );
        assert!(check(&format!("{pkcs11}sesions: 2\n")).is_err());
        let wrapped = "type: pkcs11-wrapped-bls\nmodule: /m.so\nslotId: 1\npinEnv: P\n\
                       wrappedKeystoreFile: w.json\naesKeyLabel: a\n";
        assert!(check(wrapped).is_ok());
        assert!(check(&format!("{wrapped}keyLabel: k\n")).is_err());
        assert!(check("type: tezos-secret\nsecretKey: x\npasword: y\n").is_err());
        // Web3Signer's own types stay lenient.
        assert!(check("type: file-raw\nprivateKey: 0x01\ndescription: d\n").is_ok());
    }

    #[test]
    fn every_backend_kind_is_registered_once() {
        let mut kinds: Vec<&str> = BACKENDS.iter().map(|b| b.kind()).collect();
        let n = kinds.len();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), n, "two backends serve the same `type:`");
        for kind in [
            "file-keystore",
            "file-raw",
            "tezos-secret",
            "pkcs11",
            "pkcs11-wrapped-bls",
        ] {
            assert!(backend(kind).is_some(), "{kind}");
        }
        assert!(backend("file-rawx").is_none());
    }

    #[test]
    fn unknown_and_missing_types_are_named() {
        let dir = std::env::temp_dir().join(format!("palisade-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let unknown = dir.join("u.yaml");
        std::fs::write(&unknown, "type: aws-kms-typo\nkeyId: k\n").unwrap();
        let err = key_config(&unknown).err().unwrap();
        assert!(
            err.contains("unknown `type`") && err.contains("pkcs11-wrapped-bls"),
            "{err}"
        );
        let missing = dir.join("m.yaml");
        std::fs::write(&missing, "privateKey: 0x01\n").unwrap();
        assert!(
            key_config(&missing)
                .err()
                .unwrap()
                .contains("missing `type`")
        );
        let bad = dir.join("b.yaml");
        std::fs::write(&bad, "type: file-raw\nkeyType: BLS\n").unwrap();
        let err = key_config(&bad).err().unwrap();
        assert!(err.contains("file-raw: privateKey"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
