//! Web3Signer-style YAML key files (camelCase fields), one key per file:
//!
//! ```yaml
//! type: file-keystore
//! keyType: BLS
//! keystoreFile: /path/keystore.json
//! keystorePasswordFile: /path/keystore.txt
//! ```
//! ```yaml
//! type: file-raw
//! keyType: BLS
//! privateKey: 0x…   # 32-byte hex
//! ```
//! ```yaml
//! type: tezos-secret
//! secretKey: unencrypted:edsk…   # see keys::tezos
//! ```
//! `type: pkcs11` (Tezos keys in an HSM) and `type: pkcs11-wrapped-bls` (BLS keystores
//! wrapped under an HSM's AES key) are described in [`super::pkcs11`].
//! Relative paths are resolved against the YAML file's directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use super::pkcs11::{DEFAULT_TIMEOUT_MS, KeySelector, PinSource, TokenRef, TokenSelector};
use super::{Job, LoadError};
use crate::chain::tezos::policy::{Policy, PolicyConfig};

#[derive(Deserialize)]
#[serde(tag = "type")]
enum KeyConfig {
    #[serde(rename = "file-keystore", rename_all = "camelCase")]
    FileKeystore {
        #[serde(default)]
        key_type: Option<String>,
        keystore_file: PathBuf,
        keystore_password_file: PathBuf,
    },
    #[serde(rename = "file-raw", rename_all = "camelCase")]
    FileRaw {
        #[serde(default)]
        key_type: Option<String>,
        private_key: Zeroizing<String>,
    },
    #[serde(rename = "pkcs11", rename_all = "camelCase")]
    Pkcs11 {
        #[serde(flatten)]
        token: TokenFields,
        #[serde(default)]
        key_label: Option<String>,
        #[serde(default)]
        key_id: Option<String>,
        #[serde(default)]
        policy: Option<PolicyConfig>,
    },
    #[serde(rename = "pkcs11-wrapped-bls", rename_all = "camelCase")]
    Pkcs11WrappedBls {
        #[serde(flatten)]
        token: TokenFields,
        wrapped_keystore_file: PathBuf,
        #[serde(default)]
        aes_key_label: Option<String>,
    },
    #[serde(rename = "tezos-secret", rename_all = "camelCase")]
    TezosSecret {
        secret_key: Zeroizing<String>,
        #[serde(default)]
        password_file: Option<PathBuf>,
        #[serde(default)]
        policy: Option<PolicyConfig>,
    },
}

/// The token fields shared by `pkcs11` and `pkcs11-wrapped-bls` key configs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenFields {
    module: PathBuf,
    #[serde(default)]
    token_label: Option<String>,
    #[serde(default)]
    slot_id: Option<u64>,
    #[serde(default)]
    pin_file: Option<PathBuf>,
    #[serde(default)]
    pin_env: Option<String>,
    #[serde(default)]
    sessions: Option<usize>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

impl TokenFields {
    fn resolve(self, base: &Path) -> Result<TokenRef, String> {
        let token = match (self.token_label, self.slot_id) {
            (Some(l), None) => TokenSelector::Label(l),
            (None, Some(s)) => TokenSelector::Slot(s),
            _ => return Err("exactly one of tokenLabel or slotId is required".into()),
        };
        let pin = match (self.pin_file, self.pin_env) {
            (Some(f), None) => PinSource::File(base.join(f)),
            (None, Some(v)) => PinSource::Env(v),
            _ => {
                return Err(
                    "exactly one of pinFile or pinEnv is required (the PIN is never inline)".into(),
                );
            }
        };
        if self.sessions == Some(0) {
            return Err("sessions must be at least 1".into());
        }
        Ok(TokenRef {
            module: self.module,
            token,
            pin,
            sessions: self.sessions,
            timeout_ms: self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        })
    }
}

/// Refuses fields palisade does not know in its own key config types (a misspelled
/// `timeoutMs` or `sessions` must not silently fall back to the default). Web3Signer's types
/// (`file-keystore`, `file-raw`) stay lenient, as configs shared with it may carry more.
fn check_fields(text: &str) -> Result<(), String> {
    const TOKEN: &[&str] = &[
        "type",
        "module",
        "tokenLabel",
        "slotId",
        "pinFile",
        "pinEnv",
        "sessions",
        "timeoutMs",
    ];
    let Ok(serde_norway::Value::Mapping(map)) = serde_norway::from_str(text) else {
        return Ok(());
    };
    let kind = map
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .to_string();
    let extra: &[&str] = match kind.as_str() {
        "tezos-secret" => &["type", "secretKey", "passwordFile", "policy"],
        "pkcs11" => &["keyLabel", "keyId", "policy"],
        "pkcs11-wrapped-bls" => &["wrappedKeystoreFile", "aesKeyLabel"],
        _ => return Ok(()),
    };
    let uses_token = kind.starts_with("pkcs11");
    for key in map.keys() {
        let name = key.as_str().unwrap_or_default();
        let known = extra.contains(&name) || (uses_token && TOKEN.contains(&name));
        if !known {
            let mut allowed: Vec<&str> = extra.to_vec();
            if uses_token {
                allowed.extend_from_slice(TOKEN);
            }
            return Err(format!(
                "unknown field `{name}` in a `{kind}` key config (known: {})",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

fn check_key_type(key_type: &Option<String>, file: &Path) -> Result<(), LoadError> {
    match key_type.as_deref() {
        None | Some("BLS") => Ok(()),
        Some(other) => Err(LoadError {
            file: file.to_path_buf(),
            reason: format!("keyType `{other}` is not supported for eth2 (BLS expected)"),
        }),
    }
}

/// Reads every `*.yaml`/`*.yml` in `dir`; returns the keys to load and the files that failed.
pub(crate) fn jobs(dir: &Path) -> Result<(Vec<Job>, Vec<LoadError>), LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError {
        file: dir.to_path_buf(),
        reason: format!("cannot read key config directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match job(&file) {
            Ok(j) => jobs.push(j),
            Err(e) => errors.push(e),
        }
    }
    Ok((jobs, errors))
}

fn job(file: &Path) -> Result<Job, LoadError> {
    let fail = |reason: String| LoadError {
        file: file.to_path_buf(),
        reason,
    };
    let text = Zeroizing::new(
        std::fs::read_to_string(file).map_err(|e| fail(format!("cannot read: {e}")))?,
    );
    // serde_norway's messages quote the offending input only for syntax errors, which
    // cannot carry a complete key; still, keep only the location to be safe.
    let config: KeyConfig = serde_norway::from_str(&text).map_err(|e| {
        let loc = e.location().map(|l| format!(" at line {}", l.line())).unwrap_or_default();
        let kind = if text.contains("type:") {
            "unknown `type`, unknown field or missing field (file-keystore: keystoreFile, keystorePasswordFile; file-raw: privateKey; tezos-secret: secretKey, passwordFile, policy; pkcs11: module, tokenLabel|slotId, pinFile|pinEnv, keyLabel|keyId, policy; pkcs11-wrapped-bls: module, tokenLabel|slotId, pinFile|pinEnv, wrappedKeystoreFile, aesKeyLabel)"
        } else {
            "missing `type`"
        };
        fail(format!("invalid key config{loc}: {kind}"))
    })?;
    check_fields(&text).map_err(fail)?;
    let base = file.parent().unwrap_or(Path::new("."));
    match config {
        KeyConfig::FileKeystore {
            key_type,
            keystore_file,
            keystore_password_file,
        } => {
            check_key_type(&key_type, file)?;
            Ok(Job::Keystore {
                file: base.join(keystore_file),
                password_file: base.join(keystore_password_file),
                origin: Some(file.to_path_buf()),
            })
        }
        KeyConfig::FileRaw {
            key_type,
            private_key,
        } => {
            check_key_type(&key_type, file)?;
            Ok(Job::Raw {
                file: file.to_path_buf(),
                secret_hex: private_key,
            })
        }
        KeyConfig::Pkcs11 {
            token,
            key_label,
            key_id,
            policy,
        } => {
            let token = token.resolve(base).map_err(fail)?;
            let id = key_id
                .map(|h| hex::decode(h.trim_start_matches("0x")))
                .transpose()
                .map_err(|_| fail("keyId is not hex".into()))?;
            if key_label.is_none() && id.is_none() {
                return Err(fail("keyLabel or keyId is required".into()));
            }
            let policy = match policy {
                Some(p) => Policy::from_config(&p).map_err(fail)?,
                None => Policy::default(),
            };
            Ok(Job::Pkcs11 {
                file: file.to_path_buf(),
                token,
                key: KeySelector {
                    label: key_label,
                    id,
                },
                policy,
            })
        }
        KeyConfig::Pkcs11WrappedBls {
            token,
            wrapped_keystore_file,
            aes_key_label,
        } => Ok(Job::WrappedBls {
            file: file.to_path_buf(),
            token: token.resolve(base).map_err(fail)?,
            wrapped: base.join(wrapped_keystore_file),
            aes_key_label,
        }),
        KeyConfig::TezosSecret {
            secret_key,
            password_file,
            policy,
        } => {
            let policy = match policy {
                Some(p) => Policy::from_config(&p).map_err(fail)?,
                None => Policy::default(),
            };
            Ok(Job::Tezos {
                file: file.to_path_buf(),
                secret_key,
                password_file: password_file.map(|p| base.join(p)),
                policy,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_fields;

    #[test]
    fn palisade_key_configs_refuse_unknown_fields() {
        let pkcs11 = "type: pkcs11\nmodule: /m.so\ntokenLabel: t\npinFile: p\nkeyLabel: k\n";
        assert!(check_fields(pkcs11).is_ok());
        let misspelled = format!("{pkcs11}timeoutMS: 1\n");
        let err = check_fields(&misspelled).unwrap_err();
        assert!(
            err.contains("`timeoutMS`") && err.contains("timeoutMs"),
            "{err}"
        );
        assert!(check_fields(&format!("{pkcs11}sesions: 2\n")).is_err());
        let wrapped = "type: pkcs11-wrapped-bls\nmodule: /m.so\nslotId: 1\npinEnv: P\n\
                       wrappedKeystoreFile: w.json\naesKeyLabel: a\n";
        assert!(check_fields(wrapped).is_ok());
        assert!(check_fields(&format!("{wrapped}keyLabel: k\n")).is_err());
        assert!(check_fields("type: tezos-secret\nsecretKey: x\npasword: y\n").is_err());
        // Web3Signer's own types stay lenient.
        assert!(check_fields("type: file-raw\nprivateKey: 0x01\ndescription: d\n").is_ok());
    }
}
