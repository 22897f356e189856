//! Tezos keys: [`TezosKey`] (a signer with its pkh and policy), octez secret key URIs
//! ([`decode_secret_key`], used by the `tezos-secret` backend), and the conversion of an
//! octez client's `secret_keys` file into key configs (`palisade keys import-octez`).
//! The signing trait is [`TezosSigner`] (re-exported from [`super::signer`]).

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::read_password_file;
use crate::chain::tezos::policy::Policy;
use crate::crypto::tezos::SecretKey;

pub use super::memory::MemoryTezosKey;
pub use super::signer::TezosSigner;

/// A loaded Tezos key: its signer, public key hash and policy.
pub struct TezosKey {
    /// `tz1…`–`tz5…`.
    pub pkh: String,
    /// The signing backend.
    pub signer: Box<dyn TezosSigner>,
    /// What it may sign.
    pub policy: Policy,
    /// The key config file it came from.
    pub origin: PathBuf,
}

/// Decodes an octez secret key URI: `unencrypted:<b58>`, `encrypted:<b58>` (needs the
/// password) or a bare base58 secret key.
///
/// # Errors
/// A message without key material: unknown scheme, bad encoding, wrong password.
pub fn decode_secret_key(uri: &str, password: Option<&[u8]>) -> Result<SecretKey, String> {
    let uri = uri.trim();
    if let Some(b58) = uri.strip_prefix("encrypted:") {
        let password = password.ok_or("an encrypted secret key needs passwordFile")?;
        SecretKey::from_encrypted_b58(b58, password).map_err(|e| e.to_string())
    } else {
        let b58 = uri.strip_prefix("unencrypted:").unwrap_or(uri);
        if b58.contains(':') {
            return Err(format!(
                "unsupported secret key scheme `{}` (unencrypted: or encrypted: expected)",
                b58.split(':').next().unwrap_or_default()
            ));
        }
        SecretKey::from_b58(b58).map_err(|e| e.to_string())
    }
}

/// One entry of an octez client's `secret_keys` file (`[{"name": …, "value": …}]`).
/// `Debug` shows the alias and the URI's scheme only, never the key.
#[derive(serde::Deserialize)]
struct OctezSecretKey {
    name: String,
    value: Zeroizing<String>,
}

impl std::fmt::Debug for OctezSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self
            .value
            .trim()
            .split_once(':')
            .map_or("", |(scheme, _)| scheme);
        f.debug_struct("OctezSecretKey")
            .field("name", &self.name)
            .field("value", &format_args!("{scheme}:<redacted>"))
            .finish()
    }
}

/// A `tezos-secret` key config as `import-octez` writes it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportedConfig<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    secret_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    password_file: Option<String>,
}

/// What `import-octez` wrote for one alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedKey {
    /// The octez alias.
    pub name: String,
    /// The key config file written.
    pub file: PathBuf,
    /// The key's pkh, when it could be decoded (always for unencrypted keys; for encrypted
    /// ones only when a password file was given).
    pub pkh: Option<String>,
}

/// Turns an octez `secret_keys` file into one `tezos-secret` key config per alias in
/// `out_dir` (`<alias>.yaml`, mode 0600). Unencrypted keys are checked by decoding them;
/// encrypted ones are checked against `password_file` when it is given, which every written
/// config then names. Only `unencrypted:` and `encrypted:` URIs are accepted (others, such as
/// `ledger://` or `remote:`, are refused with the alias named). Nothing is written unless every
/// entry is valid; existing files are never overwritten.
///
/// # Errors
/// A message naming the alias or file at fault; never key material.
pub fn import_octez(
    secret_keys: &Path,
    out_dir: &Path,
    password_file: Option<&Path>,
) -> Result<Vec<ImportedKey>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(secret_keys)
            .map_err(|e| format!("cannot read {}: {e}", secret_keys.display()))?,
    );
    let entries: Vec<OctezSecretKey> = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not an octez secret_keys file (a JSON list of {{\"name\", \"value\"}}) at line {}",
            secret_keys.display(),
            e.line()
        )
    })?;
    let password = password_file.map(read_password_file).transpose()?;
    let password = password.as_ref().map(|p| p.as_bytes());
    let mut planned = Vec::new();
    let mut aliases = std::collections::HashSet::new();
    for entry in &entries {
        // Checked while planning, so that a repeated alias refuses the import before any file
        // is written (found by the `octez_secret_keys` fuzz target: the second write failed
        // after the first had landed).
        if !aliases.insert(entry.name.as_str()) {
            return Err(format!(
                "alias `{}` appears more than once; nothing imported",
                entry.name
            ));
        }
        if entry.name.is_empty()
            || !entry
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            || entry.name.starts_with('.')
        {
            return Err(format!(
                "alias `{}` cannot be used as a file name (letters, digits, _ - . only)",
                entry.name
            ));
        }
        let value = entry.value.trim();
        let encrypted = value.starts_with("encrypted:");
        if !encrypted && !value.starts_with("unencrypted:") {
            return Err(format!(
                "alias `{}`: only unencrypted: and encrypted: secret keys can be imported",
                entry.name
            ));
        }
        let pkh = if encrypted && password.is_none() {
            None
        } else {
            let sk = decode_secret_key(value, password)
                .map_err(|e| format!("alias `{}`: {e}", entry.name))?;
            Some(sk.public_key().pkh_b58())
        };
        let file = out_dir.join(format!("{}.yaml", entry.name));
        if file.exists() {
            return Err(format!(
                "{} already exists; not overwritten",
                file.display()
            ));
        }
        let config = ImportedConfig {
            kind: "tezos-secret",
            secret_key: value,
            // Absolute: key configs resolve relative paths against their own directory.
            password_file: encrypted.then(|| match password_file {
                Some(p) => std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.to_path_buf())
                    .display()
                    .to_string(),
                None => "CHANGE-ME: file holding the password".into(),
            }),
        };
        let body = serde_norway::to_string(&config)
            .map_err(|e| format!("alias `{}`: cannot write YAML: {e}", entry.name))?;
        let yaml = Zeroizing::new(format!(
            "# Imported from octez alias `{}`{}\n{body}",
            entry.name,
            pkh.as_deref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default(),
        ));
        planned.push((
            ImportedKey {
                name: entry.name.clone(),
                file,
                pkh,
            },
            yaml,
        ));
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let mut written = Vec::new();
    for (key, yaml) in planned {
        write_private(&key.file, yaml.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", key.file.display()))?;
        written.push(key);
    }
    Ok(written)
}

/// Creates `path` with mode 0600 (fails if it exists) and writes `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octez_secret_key_debug_is_redacted() {
        let entry = OctezSecretKey {
            name: "baker".into(),
            value: Zeroizing::new(
                "unencrypted:edsk4TjJWEszkHKono7XMnepVqwi37FrpbVt1KCsifJeAGimxheShG".into(),
            ),
        };
        let shown = format!("{entry:?}");
        assert!(shown.contains("baker"), "{shown}");
        assert!(shown.contains("unencrypted:<redacted>"), "{shown}");
        assert!(!shown.contains("edsk"), "{shown}");
    }

    #[test]
    fn a_repeated_alias_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret_keys");
        let sk = "unencrypted:edsk4TjJWEszkHKono7XMnepVqwi37FrpbVt1KCsifJeAGimxheShG";
        std::fs::write(
            &file,
            format!(
                r#"[{{"name": "baker", "value": "{sk}"}}, {{"name": "baker", "value": "{sk}"}}]"#
            ),
        )
        .unwrap();
        let out = dir.path().join("out");
        let err = import_octez(&file, &out, None).unwrap_err();
        assert!(err.contains("more than once"), "{err}");
        assert!(!err.contains("edsk"), "{err}");
        assert!(!out.join("baker.yaml").exists(), "nothing written");
    }
}
