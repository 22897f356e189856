//! Tezos keys that sign inside Azure Key Vault: tz2 (EC `P-256K`, `ES256K`) and tz3 (EC
//! `P-256`, `ES256`) keys, software or HSM-backed (`EC-HSM`). The key never leaves Key
//! Vault; its public key and pkh are read at load (`GET /keys/{name}`).
//!
//! ```yaml
//! type: azure-key
//! vaultName: my-vault
//! keyName: baker
//! keyVersion: 3f…          # optional: default the latest version at load, then fixed
//! tenantId: …
//! clientId: …
//! clientSecretFile: /run/secrets/azure-client-secret
//! timeoutMs: 2000          # a slower answer is a 503 (default 5000)
//! policy: { allow: [block, preattestation, attestation] }
//! ```
//!
//! Signing sends the blake2b-256 digest of the request bytes (Key Vault signs a digest as
//! given), normalises Key Vault's `r‖s` answer to low-S (it answers high-S about half the
//! time; Tezos refuses those) and verifies it against the loaded public key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::RequestContent;
use azure_security_keyvault_keys::models::{
    CurveName, KeyClientGetKeyOptions, KeyClientSignOptions, SignParameters, SignatureAlgorithm,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use serde::Deserialize;

use super::{AzureConfig, Connection, concise};
use crate::chain::tezos::policy::{Policy, PolicyConfig};
use crate::crypto::tezos::{Curve, PublicKey, Signature, blake2b_256};
use crate::keys::LoadError;
use crate::keys::backend::tezos_secret::policy;
use crate::keys::backend::{Backend, KeyLoad, LoadContext, LoadedKey, base_dir, parse};
use crate::keys::remote::{self, RemoteError};
use crate::keys::signer::{BackendError, Execution, TezosSigner};
use crate::keys::tezos::TezosKey;
use crate::protection::audit::Chain;

/// The metrics label of Key Vault key calls.
const BACKEND: &str = "azure-key-vault";

/// The API version palisade asks for (Key Vault 7.5, generally available).
pub(crate) const API_VERSION: &str = "7.5";

/// The `azure-key` backend.
pub struct AzureKey;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(flatten)]
    azure: AzureConfig,
    key_name: String,
    #[serde(default)]
    key_version: Option<String>,
    #[serde(default)]
    policy: Option<PolicyConfig>,
}

impl Backend for AzureKey {
    fn kind(&self) -> &'static str {
        "azure-key"
    }
    fn fields_hint(&self) -> &'static str {
        "vaultName|vaultUrl, keyName, keyVersion, tenantId, clientId, clientSecret|\
         clientSecretFile|clientSecretEnv, authenticationMode, policy, timeoutMs"
    }
    fn remote(&self) -> bool {
        true
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        let mut fields = vec!["type", "keyName", "keyVersion", "policy"];
        fields.extend(super::AZURE_FIELDS);
        Some(fields)
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let c: Config = parse(text, self)?;
        let name = c.key_name.trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        {
            return Err("keyName must be a Key Vault key name".into());
        }
        Ok(Box::new(AzureKeyLoad {
            file: file.to_path_buf(),
            connection: c.azure.connection(base_dir(file))?,
            name,
            version: c.key_version.filter(|v| !v.is_empty()),
            policy: policy(c.policy)?,
        }))
    }
}

struct AzureKeyLoad {
    file: PathBuf,
    connection: Connection,
    name: String,
    version: Option<String>,
    policy: Policy,
}

/// A Key Vault client for `connection` with `attempts` attempts per call, over the config's
/// HTTP client and credential.
fn client(
    connection: &Connection,
    http: &reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    attempts: u32,
) -> Result<KeyClient, RemoteError> {
    let options = KeyClientOptions {
        api_version: API_VERSION.into(),
        client_options: connection.client_options(http, BACKEND, attempts),
        verify_challenge_resource: Some(connection.verify_challenge()),
    };
    KeyClient::new(connection.vault_url(), credential, Some(options))
        .map_err(|e| concise(BACKEND, "client", &e))
}

impl KeyLoad for AzureKeyLoad {
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        (Some(Chain::Tezos), None)
    }

    fn load(self: Box<Self>, _context: &LoadContext<'_>) -> Result<LoadedKey, LoadError> {
        let fail = |reason: String| LoadError {
            file: self.file.clone(),
            reason,
        };
        let (connection, name, version) = (
            self.connection.clone(),
            self.name.clone(),
            self.version.clone(),
        );
        let (signs, curve, x, y, kid) = remote::block_on(async move {
            let http = connection.http()?;
            let credential = connection.credential(&http, BACKEND)?;
            let reads = client(&connection, &http, credential.clone(), 3)?;
            let key = reads
                .get_key(
                    &name,
                    Some(KeyClientGetKeyOptions {
                        key_version: version,
                        ..Default::default()
                    }),
                )
                .await
                .map_err(|e| concise(BACKEND, "read_key", &e))?
                .into_model()
                .map_err(|e| concise(BACKEND, "read_key", &e))?;
            let jwk = key
                .key
                .ok_or_else(|| RemoteError(format!("Key Vault key `{name}` has no public key")))?;
            let curve = match jwk.crv {
                Some(CurveName::P256K) => Curve::Secp256k1,
                Some(CurveName::P256) => Curve::P256,
                other => {
                    return Err(RemoteError(format!(
                        "Tezos cannot use Key Vault key `{name}` ({}): P-256K for tz2, P-256 \
                         for tz3",
                        other.map_or("not an EC key".to_string(), |c| format!("curve {c}"))
                    )));
                }
            };
            if let Some(ops) = &jwk.key_ops
                && !ops.iter().any(|o| o == "sign")
            {
                return Err(RemoteError(format!("Key Vault key `{name}` may not sign")));
            }
            let (Some(x), Some(y)) = (jwk.x, jwk.y) else {
                return Err(RemoteError(format!(
                    "Key Vault key `{name}` has no EC point"
                )));
            };
            Ok((
                client(&connection, &http, credential, 1)?,
                curve,
                x,
                y,
                jwk.kid.unwrap_or_default(),
            ))
        })
        .map_err(|e| fail(e.to_string()))?;
        if x.len() != 32 || y.len() != 32 {
            return Err(fail(format!(
                "Key Vault key `{}`: EC point of the wrong size",
                self.name
            )));
        }
        let mut point = vec![0x04];
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        let public = PublicKey::from_sec1_point(curve, &point)
            .map_err(|e| fail(format!("Key Vault key `{}`: {e}", self.name)))?;
        // The version signing uses: the one asked for, else the one the vault answered.
        let version = self
            .version
            .clone()
            .or_else(|| kid.rsplit('/').next().map(str::to_string))
            .filter(|v| !v.is_empty() && *v != self.name)
            .ok_or_else(|| {
                fail(format!(
                    "Key Vault key `{}`: no version in its id",
                    self.name
                ))
            })?;
        let key = AzureKeyVaultKey {
            client: Arc::new(signs),
            vault: self.connection.vault_url().to_string(),
            name: self.name,
            version,
            timeout: self.connection.timeout(),
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

/// A Tezos key in Azure Key Vault, at one key version.
pub struct AzureKeyVaultKey {
    client: Arc<KeyClient>,
    vault: String,
    name: String,
    version: String,
    timeout: std::time::Duration,
    public: PublicKey,
}

impl std::fmt::Debug for AzureKeyVaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureKeyVaultKey")
            .field("vault", &self.vault)
            .field("key", &self.name)
            .field("version", &self.version)
            .finish()
    }
}

#[async_trait]
impl TezosSigner for AzureKeyVaultKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// A network call: on the runtime, under the key config's `timeoutMs`.
    fn execution(&self) -> Execution {
        Execution::Async {
            timeout: self.timeout,
        }
    }

    async fn sign(&self, data: &[u8], version: u8) -> Result<Signature, BackendError> {
        let curve = self.public.curve();
        let algorithm = match curve {
            Curve::Secp256k1 => SignatureAlgorithm::Es256K,
            _ => SignatureAlgorithm::Es256,
        };
        let digest = blake2b_256(data).to_vec();
        let (client, name, key_version) =
            (self.client.clone(), self.name.clone(), self.version.clone());
        let raw = remote::spawn(async move {
            let parameters = SignParameters {
                algorithm: Some(algorithm),
                value: Some(digest),
            };
            let body: RequestContent<SignParameters> = parameters
                .try_into()
                .map_err(|e: azure_core::Error| concise(BACKEND, "sign", &e))?;
            let answer = client
                .sign(
                    &name,
                    body,
                    Some(KeyClientSignOptions {
                        key_version: Some(key_version),
                        ..Default::default()
                    }),
                )
                .await
                .map_err(|e| concise(BACKEND, "sign", &e))?
                .into_model()
                .map_err(|e| concise(BACKEND, "sign", &e))?;
            answer
                .result
                .ok_or_else(|| RemoteError("azure-key-vault sign: no signature".into()))
        })
        .await
        .map_err(|e| BackendError(e.to_string()))?;
        remote::checked_signature(&self.public, &raw, data, version, "Key Vault")
    }

    fn backend(&self) -> String {
        format!(
            "azure-key {} keys/{}/{}",
            self.vault, self.name, self.version
        )
    }
}
