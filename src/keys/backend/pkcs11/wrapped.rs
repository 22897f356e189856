//! HSM-wrapped BLS keystores: an Ethereum validator secret encrypted at rest under an AES-256
//! key that was created in the HSM and never leaves it.
//!
//! HSMs do not compute BLS12-381 signatures, so the secret must be in memory to sign; what the
//! HSM adds is that the file on disk is useless without it. `palisade hsm wrap-keystore`
//! decrypts an EIP-2335 keystore with its password and asks the HSM to encrypt the 32-byte
//! secret with `CKM_AES_GCM` (96-bit IV from the HSM's RNG, 128-bit tag, the public key bound
//! as additional authenticated data). At start-up a `type: pkcs11-wrapped-bls` key config makes
//! the HSM decrypt it again; the tag check fails for any other AES key or an altered file.
//!
//! The file (JSON, mode 0600):
//! ```json
//! { "version": 1, "kind": "palisade-pkcs11-wrapped-bls",
//!   "pubkey": "<48-byte hex>", "path": "m/12381/3600/0/0/0", "uuid": "…",
//!   "mechanism": "CKM_AES_GCM", "aesKeyLabel": "palisade-bls-wrap",
//!   "iv": "<12-byte hex>", "ciphertext": "<48-byte hex: 32 secret + 16 tag>" }
//! ```
//! and its key config:
//! ```yaml
//! type: pkcs11-wrapped-bls
//! module: /opt/cloudhsm/lib/libcloudhsm_pkcs11.so
//! tokenLabel: hsm1              # check with `palisade hsm list`; or slotId
//! pinFile: /etc/palisade/hsm.pin # or pinEnv
//! wrappedKeystoreFile: validator-0.wrapped.json
//! aesKeyLabel: palisade-bls-wrap # optional: defaults to the file's
//! ```

use std::path::Path;

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::ObjectClass;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{HsmError, KeySelector, Token, find_one};
use crate::crypto::bls::SecretKey;

/// `kind` of a wrapped keystore file.
pub const KIND: &str = "palisade-pkcs11-wrapped-bls";
/// `mechanism` of a wrapped keystore file.
pub const MECHANISM: &str = "CKM_AES_GCM";
const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;
const AAD_PREFIX: &[u8] = b"palisade-pkcs11-wrapped-bls-v1:";

/// A wrapped keystore as stored on disk (public data and ciphertext only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WrappedKeystore {
    /// Format version: 1.
    pub version: u32,
    /// Always [`KIND`].
    pub kind: String,
    /// The 48-byte BLS public key, hex without `0x` (as EIP-2335 writes it).
    pub pubkey: String,
    /// EIP-2334 derivation path of the original keystore (may be empty).
    #[serde(default)]
    pub path: String,
    /// UUID of the original keystore (may be empty).
    #[serde(default)]
    pub uuid: String,
    /// Always [`MECHANISM`].
    pub mechanism: String,
    /// `CKA_LABEL` of the AES key it was wrapped under.
    pub aes_key_label: String,
    /// 12-byte GCM IV, hex.
    pub iv: String,
    /// 32-byte secret then 16-byte tag, hex.
    pub ciphertext: String,
}

impl WrappedKeystore {
    /// The declared 48-byte public key.
    ///
    /// # Errors
    /// A message for a malformed file.
    pub fn pubkey_bytes(&self) -> Result<[u8; 48], String> {
        let bytes = hex::decode(self.pubkey.trim_start_matches("0x"))
            .map_err(|_| "pubkey is not hex".to_string())?;
        bytes
            .try_into()
            .map_err(|_| "pubkey is not 48 bytes".to_string())
    }

    /// Parses and checks the header fields.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(json: &str) -> Result<Self, String> {
        let w: WrappedKeystore = serde_json::from_str(json)
            .map_err(|e| format!("not a palisade wrapped keystore: {e}"))?;
        if w.kind != KIND || w.version != 1 {
            return Err(format!(
                "not a palisade wrapped keystore (kind `{}`, version {}; expected `{KIND}`, 1)",
                w.kind, w.version
            ));
        }
        if w.mechanism != MECHANISM {
            return Err(format!("unsupported mechanism `{}`", w.mechanism));
        }
        w.pubkey_bytes()?;
        Ok(w)
    }
}

fn aad(pubkey: &[u8; 48]) -> Vec<u8> {
    let mut aad = AAD_PREFIX.to_vec();
    aad.extend_from_slice(pubkey);
    aad
}

/// Encrypts `secret` under the token's AES key `aes_key_label` (`CKM_AES_GCM`).
///
/// # Errors
/// [`HsmError::Key`] when the AES key is missing or not usable for encryption.
pub fn wrap(
    token: &Token,
    aes_key_label: &str,
    secret: &SecretKey,
    secret_bytes: &[u8],
    path: &str,
    uuid: &str,
) -> Result<WrappedKeystore, HsmError> {
    let pubkey = secret.public_key();
    let selector = KeySelector {
        label: Some(aes_key_label.to_string()),
        id: None,
    };
    let aad = aad(&pubkey);
    let (iv, ciphertext) = token.with_session(|s, _| {
        let key = find_one(token, s, ObjectClass::SECRET_KEY, &selector)?;
        let mut iv = [0u8; IV_LEN];
        s.generate_random_slice(&mut iv)
            .map_err(|e| HsmError::call(token.label(), &e))?;
        let mut iv_param = iv;
        let params = GcmParams::new(&mut iv_param, &aad, TAG_BITS.into())
            .map_err(|e| HsmError::Key(format!("GCM parameters: {e}")))?;
        let ct = s
            .encrypt(&Mechanism::AesGcm(params), key, secret_bytes)
            .map_err(|e| HsmError::call(token.label(), &e))?;
        Ok((iv, ct))
    })?;
    Ok(WrappedKeystore {
        version: 1,
        kind: KIND.into(),
        pubkey: hex::encode(pubkey),
        path: path.into(),
        uuid: uuid.into(),
        mechanism: MECHANISM.into(),
        aes_key_label: aes_key_label.into(),
        iv: hex::encode(iv),
        ciphertext: hex::encode(&ciphertext),
    })
}

/// Asks the HSM to decrypt a wrapped keystore with the AES key `aes_key_label` (the file's
/// own label when `None`) and checks the secret against the declared public key.
///
/// # Errors
/// A message for operators: no such AES key on the token, the key does not open this file
/// (another key, or the file was altered), or a PKCS#11 failure.
pub fn unwrap(
    token: &Token,
    wrapped: &WrappedKeystore,
    aes_key_label: Option<&str>,
) -> Result<SecretKey, String> {
    let label = aes_key_label.unwrap_or(&wrapped.aes_key_label);
    let pubkey = wrapped.pubkey_bytes()?;
    let iv: [u8; IV_LEN] = hex::decode(&wrapped.iv)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or("iv is not 12 bytes of hex")?;
    let ciphertext = hex::decode(&wrapped.ciphertext).map_err(|_| "ciphertext is not hex")?;
    let aad = aad(&pubkey);
    let selector = KeySelector {
        label: Some(label.to_string()),
        id: None,
    };
    let secret = token
        .with_session(|s, _| {
            let key = find_one(token, s, ObjectClass::SECRET_KEY, &selector)?;
            let mut iv_param = iv;
            let params = GcmParams::new(&mut iv_param, &aad, TAG_BITS.into())
                .map_err(|e| HsmError::Key(format!("GCM parameters: {e}")))?;
            s.decrypt(&Mechanism::AesGcm(params), key, &ciphertext)
                .map(Zeroizing::new)
                .map_err(|e| HsmError::call(token.label(), &e))
        })
        .map_err(|e| match e {
            // What tokens answer for a failed GCM tag check (SoftHSM: CKR_GENERAL_ERROR).
            HsmError::Call {
                ref function,
                ref rv,
                ..
            } if function.contains("Decrypt")
                && matches!(
                    rv.as_str(),
                    "CKR_GENERAL_ERROR"
                        | "CKR_ENCRYPTED_DATA_INVALID"
                        | "CKR_ENCRYPTED_DATA_LEN_RANGE"
                        | "CKR_FUNCTION_FAILED"
                        | "CKR_AEAD_DECRYPT_FAILED"
                ) =>
            {
                format!(
                    "AES key `{label}` on token `{}` does not open this wrapped keystore \
                 (wrapped under another key, or the file was altered): {e}",
                    token.label()
                )
            }
            other => other.to_string(),
        })?;
    let sk = SecretKey::from_bytes(&secret)
        .map_err(|_| "the unwrapped secret is not a valid BLS key".to_string())?;
    if sk.public_key() != pubkey {
        return Err("the unwrapped secret does not match the file's pubkey".into());
    }
    Ok(sk)
}

/// Reads and unwraps a wrapped keystore file.
///
/// # Errors
/// As [`unwrap`], plus unreadable or malformed files.
pub fn load_file(
    token: &Token,
    file: &Path,
    aes_key_label: Option<&str>,
) -> Result<SecretKey, String> {
    let json = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read wrapped keystore {}: {e}", file.display()))?;
    let wrapped = WrappedKeystore::parse(&json)?;
    unwrap(token, &wrapped, aes_key_label)
}
