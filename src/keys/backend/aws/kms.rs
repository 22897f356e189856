//! Tezos keys that sign inside AWS KMS: tz2 (`ECC_SECG_P256K1`) and tz3 (`ECC_NIST_P256`)
//! asymmetric keys with key usage `SIGN_VERIFY`. The key never leaves KMS; its public key
//! and pkh are read from KMS at load (`GetPublicKey`).
//!
//! ```yaml
//! type: aws-kms
//! region: eu-west-1
//! kmsKeyId: arn:aws:kms:eu-west-1:123456789012:key/…   # key id, ARN or alias/…
//! timeoutMs: 2000           # a slower answer is a 503 (default 5000)
//! policy: { allow: [block, preattestation, attestation] }
//! # credentials: see the module above (the standard chain by default)
//! ```
//!
//! Signing sends the blake2b-256 digest of the request bytes as `MessageType=DIGEST` with
//! `ECDSA_SHA_256` (KMS signs the 32 bytes as given, as octez signs the digest), turns KMS's
//! DER answer into `r‖s` normalised to low-S (KMS answers high-S about half the time; Tezos
//! refuses those) and verifies it against the loaded public key before returning it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use serde::Deserialize;

use super::{AwsConfig, Connection, observe};
use crate::chain::tezos::policy::{Policy, PolicyConfig};
use crate::crypto::tezos::{Curve, PublicKey, Signature, blake2b_256};
use crate::keys::LoadError;
use crate::keys::backend::tezos_secret::policy;
use crate::keys::backend::{Backend, KeyLoad, LoadContext, LoadedKey, base_dir, parse};
use crate::keys::remote::{self, RemoteError};
use crate::keys::signer::{BackendError, Execution, TezosSigner};
use crate::keys::tezos::TezosKey;
use crate::protection::audit::Chain;

/// The metrics label of KMS calls.
const BACKEND: &str = "aws-kms";

/// The `aws-kms` backend.
pub struct AwsKms;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(flatten)]
    aws: AwsConfig,
    kms_key_id: String,
    #[serde(default)]
    policy: Option<PolicyConfig>,
}

impl Backend for AwsKms {
    fn kind(&self) -> &'static str {
        "aws-kms"
    }
    fn fields_hint(&self) -> &'static str {
        "region, kmsKeyId, policy, authenticationMode, endpointOverride, timeoutMs"
    }
    fn remote(&self) -> bool {
        true
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        let mut fields = vec!["type", "kmsKeyId", "policy"];
        fields.extend(super::AWS_FIELDS);
        Some(fields)
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let c: Config = parse(text, self)?;
        let key_id = c.kms_key_id.trim().to_string();
        if key_id.is_empty() {
            return Err("kmsKeyId must name a KMS key (id, ARN or alias/…)".into());
        }
        Ok(Box::new(KmsLoad {
            file: file.to_path_buf(),
            connection: c.aws.connection(base_dir(file))?,
            key_id,
            policy: policy(c.policy)?,
        }))
    }
}

/// A KMS key to open.
struct KmsLoad {
    file: PathBuf,
    connection: Connection,
    key_id: String,
    policy: Policy,
}

/// The curve of a KMS key spec, if Tezos uses it.
fn curve_of(spec: &KeySpec) -> Result<Curve, String> {
    match spec {
        KeySpec::EccSecgP256K1 => Ok(Curve::Secp256k1),
        KeySpec::EccNistP256 => Ok(Curve::P256),
        other => Err(format!(
            "Tezos cannot use a `{}` KMS key (ECC_SECG_P256K1 for tz2, ECC_NIST_P256 for tz3)",
            other.as_str()
        )),
    }
}

/// The Tezos public key of a DER SubjectPublicKeyInfo on `curve`.
fn public_key_from_der(curve: Curve, der: &[u8]) -> Result<PublicKey, String> {
    let point = match curve {
        Curve::Secp256k1 => {
            use k256::pkcs8::DecodePublicKey;
            let key = k256::PublicKey::from_public_key_der(der)
                .map_err(|_| "its public key is not a secp256k1 SubjectPublicKeyInfo")?;
            k256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&key, true)
                .as_bytes()
                .to_vec()
        }
        Curve::P256 => {
            use p256::pkcs8::DecodePublicKey;
            let key = p256::PublicKey::from_public_key_der(der)
                .map_err(|_| "its public key is not a P-256 SubjectPublicKeyInfo")?;
            p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&key, true)
                .as_bytes()
                .to_vec()
        }
        _ => return Err("not an ECDSA curve".into()),
    };
    PublicKey::from_raw(curve, &point).map_err(|e| e.to_string())
}

/// `r‖s` (64 bytes) of a DER ECDSA signature on `curve`.
fn raw_from_der(curve: Curve, der: &[u8]) -> Result<Vec<u8>, String> {
    let bad = |_| "KMS returned a signature that is not DER ECDSA".to_string();
    Ok(match curve {
        Curve::Secp256k1 => k256::ecdsa::Signature::from_der(der)
            .map_err(bad)?
            .to_bytes()
            .to_vec(),
        _ => p256::ecdsa::Signature::from_der(der)
            .map_err(bad)?
            .to_bytes()
            .to_vec(),
    })
}

impl KeyLoad for KmsLoad {
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        (Some(Chain::Tezos), None)
    }

    fn load(self: Box<Self>, _context: &LoadContext<'_>) -> Result<LoadedKey, LoadError> {
        let fail = |reason: String| LoadError {
            file: self.file.clone(),
            reason,
        };
        let (connection, key_id) = (self.connection.clone(), self.key_id.clone());
        let (reads, signs, answer) = remote::block_on(async move {
            // One configuration (one credential chain, one HTTP client): reads retry twice,
            // signatures are not retried (a repeated Sign may be answered twice).
            let config = connection.sdk_config(3).await?;
            let reads = aws_sdk_kms::Client::new(&config);
            let signs = aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(&config)
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .build(),
            );
            let answer = observe(
                BACKEND,
                "get_public_key",
                reads.get_public_key().key_id(&key_id).send(),
            )
            .await?;
            Ok((reads, signs, answer))
        })
        .map_err(|e| fail(e.to_string()))?;
        drop(reads);
        let spec = answer
            .key_spec()
            .cloned()
            .ok_or_else(|| fail(format!("KMS key {} has no key spec", self.key_id)))?;
        let curve = curve_of(&spec).map_err(|e| fail(format!("KMS key {}: {e}", self.key_id)))?;
        if answer.key_usage() != Some(&KeyUsageType::SignVerify) {
            return Err(fail(format!(
                "KMS key {} cannot sign (key usage)",
                self.key_id
            )));
        }
        if !answer
            .signing_algorithms()
            .contains(&SigningAlgorithmSpec::EcdsaSha256)
        {
            return Err(fail(format!(
                "KMS key {} does not sign ECDSA_SHA_256",
                self.key_id
            )));
        }
        let der = answer
            .public_key()
            .ok_or_else(|| fail(format!("KMS key {} returned no public key", self.key_id)))?;
        let public = public_key_from_der(curve, der.as_ref())
            .map_err(|e| fail(format!("KMS key {}: {e}", self.key_id)))?;
        // The key's ARN, when KMS gave it, names it in the inventory whatever alias was used.
        let name = answer.key_id().unwrap_or(&self.key_id).to_string();
        let key = KmsKey {
            client: signs,
            key_id: self.key_id,
            name,
            where_: self.connection.describe(),
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

/// A Tezos key in AWS KMS.
pub struct KmsKey {
    client: aws_sdk_kms::Client,
    key_id: String,
    name: String,
    where_: String,
    timeout: std::time::Duration,
    public: PublicKey,
}

impl std::fmt::Debug for KmsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsKey")
            .field("key", &self.name)
            .field("region", &self.where_)
            .finish()
    }
}

#[async_trait]
impl TezosSigner for KmsKey {
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
        let digest = blake2b_256(data);
        let (client, key_id) = (self.client.clone(), self.key_id.clone());
        let der = remote::spawn(async move {
            let answer = observe(
                BACKEND,
                "sign",
                client
                    .sign()
                    .key_id(key_id)
                    .message(Blob::new(digest.to_vec()))
                    .message_type(MessageType::Digest)
                    .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                    .send(),
            )
            .await?;
            answer
                .signature()
                .map(|b| b.as_ref().to_vec())
                .ok_or_else(|| RemoteError("aws-kms sign: no signature in the answer".into()))
        })
        .await
        .map_err(|e| BackendError(e.to_string()))?;
        let raw = raw_from_der(curve, &der).map_err(BackendError)?;
        remote::checked_signature(&self.public, &raw, data, version, "KMS")
    }

    fn backend(&self) -> String {
        format!("aws-kms {} {}", self.where_, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tezos_curves_are_taken() {
        assert_eq!(curve_of(&KeySpec::EccSecgP256K1).unwrap(), Curve::Secp256k1);
        assert_eq!(curve_of(&KeySpec::EccNistP256).unwrap(), Curve::P256);
        assert!(
            curve_of(&KeySpec::Rsa2048)
                .unwrap_err()
                .contains("RSA_2048")
        );
        assert!(raw_from_der(Curve::P256, b"\x30\x00").is_err());
    }
}
