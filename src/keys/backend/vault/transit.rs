//! Tezos keys that sign inside Vault's / OpenBao's Transit engine: tz1 (`ed25519` keys) and
//! tz3 (`ecdsa-p256` keys). The key never leaves Vault; its public key and pkh are read from
//! Vault at load.
//!
//! ```yaml
//! type: vault-transit
//! address: https://vault.example:8200
//! tokenFile: /run/secrets/vault-token   # or tokenEnv, appRole (see the module above)
//! mount: transit                        # default `transit`
//! keyName: baker
//! timeoutMs: 2000                       # per call; a slower answer is a 503 (default 5000)
//! policy: { allow: [block, preattestation, attestation] }
//! ```
//!
//! Signing sends the blake2b-256 digest of the request bytes, as octez signs: Ed25519 signs
//! the digest as its message; P-256 signs it as a prehashed SHA-256-sized digest
//! (`prehashed: true`, `marshaling_algorithm: jws`, so Vault answers `r‖s`), normalised to
//! low-S (Vault answers high-S about half the time; Tezos refuses those). Each signature is
//! verified against the loaded public key before it is returned. The key version is fixed at
//! load: a key rotated in Vault changes its pkh, so it is picked up by a reload, never in the
//! middle of serving one pkh.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;

use super::{Client, ConnectionConfig};
use crate::chain::tezos::policy::PolicyConfig;
use crate::crypto::tezos::{Curve, PublicKey, Signature, blake2b_256};
use crate::keys::LoadError;
use crate::keys::backend::tezos_secret::policy;
use crate::keys::backend::{Backend, KeyLoad, LoadContext, LoadedKey, base_dir, parse};
use crate::keys::remote::{self, RemoteError};
use crate::keys::signer::{BackendError, Execution, TezosSigner};
use crate::keys::tezos::TezosKey;
use crate::protection::audit::Chain;

/// The `vault-transit` backend.
pub struct VaultTransit;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(flatten)]
    connection: ConnectionConfig,
    #[serde(default)]
    mount: Option<String>,
    key_name: String,
    #[serde(default)]
    policy: Option<PolicyConfig>,
}

impl Backend for VaultTransit {
    fn kind(&self) -> &'static str {
        "vault-transit"
    }
    fn fields_hint(&self) -> &'static str {
        "address, keyName, tokenFile|tokenEnv|appRole, mount, policy, namespace, tlsCaFile, \
         timeoutMs"
    }
    fn remote(&self) -> bool {
        true
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        let mut fields = vec!["type", "mount", "keyName", "policy"];
        fields.extend(super::CONNECTION_FIELDS);
        Some(fields)
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let c: Config = parse(text, self)?;
        let name = c.key_name.trim();
        if name.is_empty() || name.contains(['/', '?', '#']) {
            return Err("keyName must be a Transit key name".into());
        }
        let mount = c.mount.as_deref().unwrap_or("transit").trim_matches('/');
        if mount.is_empty() || mount.split('/').any(|s| s.is_empty() || s == "..") {
            return Err("mount must be a Vault path".into());
        }
        Ok(Box::new(TransitLoad {
            file: file.to_path_buf(),
            client: Arc::new(c.connection.client(base_dir(file))?),
            mount: mount.to_string(),
            name: name.to_string(),
            policy: policy(c.policy)?,
        }))
    }
}

/// A Transit key to open.
struct TransitLoad {
    file: PathBuf,
    client: Client,
    mount: String,
    name: String,
    policy: crate::chain::tezos::policy::Policy,
}

/// `GET <mount>/keys/<name>`'s data.
#[derive(Deserialize)]
struct KeyData {
    #[serde(rename = "type")]
    kind: String,
    latest_version: u64,
    keys: std::collections::HashMap<String, KeyVersion>,
    #[serde(default)]
    supports_signing: bool,
}

#[derive(Deserialize)]
struct KeyVersion {
    #[serde(default)]
    public_key: String,
}

/// `POST <mount>/sign/<name>`'s data.
#[derive(Deserialize)]
struct SignData {
    signature: String,
}

/// The curve and public key of a Transit key version: `ed25519` (base64 of 32 bytes) or
/// `ecdsa-p256` (PEM SubjectPublicKeyInfo).
fn public_key(kind: &str, text: &str) -> Result<PublicKey, String> {
    match kind {
        "ed25519" => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| "its ed25519 public key is not base64".to_string())?;
            PublicKey::from_raw(Curve::Ed25519, &raw).map_err(|e| e.to_string())
        }
        "ecdsa-p256" => {
            use p256::pkcs8::DecodePublicKey;
            let key = p256::PublicKey::from_public_key_pem(text.trim())
                .map_err(|_| "its P-256 public key is not a PEM public key".to_string())?;
            let point = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&key, true);
            PublicKey::from_raw(Curve::P256, point.as_bytes()).map_err(|e| e.to_string())
        }
        other => Err(format!(
            "Tezos cannot use a `{other}` Transit key (ed25519 for tz1, ecdsa-p256 for tz3)"
        )),
    }
}

impl KeyLoad for TransitLoad {
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        (Some(Chain::Tezos), None)
    }

    fn load(self: Box<Self>, _context: &LoadContext<'_>) -> Result<LoadedKey, LoadError> {
        let fail = |reason: String| LoadError {
            file: self.file.clone(),
            reason,
        };
        let (client, path) = (
            self.client.clone(),
            format!("{}/keys/{}", self.mount, self.name),
        );
        let data: KeyData = remote::block_on(async move {
            client
                .data(
                    "read_key",
                    reqwest::Method::GET,
                    &path,
                    None,
                    remote::IDEMPOTENT_ATTEMPTS,
                )
                .await
        })
        .map_err(|e| fail(e.to_string()))?;
        if !data.supports_signing {
            return Err(fail(format!("Transit key `{}` cannot sign", self.name)));
        }
        let version = data.latest_version;
        let text = data
            .keys
            .get(&version.to_string())
            .map(|v| v.public_key.as_str())
            .ok_or_else(|| {
                fail(format!(
                    "Transit key `{}` has no version {version}",
                    self.name
                ))
            })?;
        let public = public_key(&data.kind, text)
            .map_err(|e| fail(format!("Transit key `{}`: {e}", self.name)))?;
        let key = TransitKey {
            client: self.client,
            mount: self.mount,
            name: self.name,
            version,
            public,
        };
        Ok(LoadedKey::Tezos(TezosKey {
            pkh: key.public.pkh_b58(),
            signer: Box::new(key),
            policy: self.policy,
            origin: self.file,
        }))
    }
}

/// A Tezos key in a Transit engine, at one key version.
pub struct TransitKey {
    client: Client,
    mount: String,
    name: String,
    version: u64,
    public: PublicKey,
}

impl std::fmt::Debug for TransitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitKey")
            .field("vault", &self.client.address())
            .field("key", &format!("{}/keys/{}", self.mount, self.name))
            .field("version", &self.version)
            .finish()
    }
}

/// Signs `digest` with Transit key `name` at `version`; returns the raw 64-byte signature.
async fn transit_sign(
    client: Client,
    path: String,
    curve: Curve,
    version: u64,
    digest: [u8; 32],
) -> Result<Vec<u8>, RemoteError> {
    let input = base64::engine::general_purpose::STANDARD.encode(digest);
    let body = match curve {
        Curve::Ed25519 => serde_json::json!({ "input": input, "key_version": version }),
        _ => serde_json::json!({
            "input": input,
            "key_version": version,
            "prehashed": true,
            "hash_algorithm": "sha2-256",
            "marshaling_algorithm": "jws",
        }),
    };
    // A signature is not retried: the request is answered 503 instead, and the baker retries.
    let data: SignData = client
        .data("sign", reqwest::Method::POST, &path, Some(&body), 1)
        .await?;
    let encoded = data
        .signature
        .rsplit(':')
        .next()
        .ok_or_else(|| RemoteError("vault sign: no signature".into()))?;
    let decoded = match curve {
        Curve::Ed25519 => base64::engine::general_purpose::STANDARD.decode(encoded),
        _ => base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')),
    };
    decoded.map_err(|_| RemoteError("vault sign: the signature is not base64".into()))
}

#[async_trait]
impl TezosSigner for TransitKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// A network call: on the runtime, under the key config's `timeoutMs` (the call itself
    /// also ends there).
    fn execution(&self) -> Execution {
        Execution::Async {
            timeout: self.client.timeout(),
        }
    }

    async fn sign(&self, data: &[u8], version: u8) -> Result<Signature, BackendError> {
        let curve = self.public.curve();
        let path = format!("{}/sign/{}", self.mount, self.name);
        let raw = remote::spawn(transit_sign(
            self.client.clone(),
            path,
            curve,
            self.version,
            blake2b_256(data),
        ))
        .await
        .map_err(|e| BackendError(e.to_string()))?;
        remote::checked_signature(&self.public, &raw, data, version, "vault")
    }

    fn backend(&self) -> String {
        format!(
            "vault-transit {} {}/keys/{} v{}",
            self.client.address(),
            self.mount,
            self.name,
            self.version
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transit_public_keys_are_read() {
        // OpenBao's answer for an ed25519 key and an ecdsa-p256 key.
        let ed = public_key("ed25519", "xPgNGgVKQSmnbfVWYzMCWlBa0/3lpzos/VXqP9D36as=").unwrap();
        assert_eq!(ed.curve(), Curve::Ed25519);
        assert!(ed.pkh_b58().starts_with("tz1"));
        let pem = "-----BEGIN PUBLIC KEY-----\n\
                   MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDMHfdYn9rObgD1OPgnv5JOgKPcc8\n\
                   9gcNUae5U1tCOvDwm6HVIK6pg+HASW1IzZ2KhdOT/5etCHplxjdkcfyikA==\n\
                   -----END PUBLIC KEY-----\n";
        let p = public_key("ecdsa-p256", pem).unwrap();
        assert!(p.pkh_b58().starts_with("tz3"));
        assert!(
            public_key("rsa-2048", "x")
                .unwrap_err()
                .contains("rsa-2048")
        );
    }
}
