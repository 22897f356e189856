//! EIP-2335 BLS keystores (version 4): scrypt or PBKDF2-HMAC-SHA256 key derivation,
//! SHA-256 checksum, AES-128-CTR cipher. Passwords are normalised per the EIP: NFKD,
//! then the C0 (U+0000–U+001F), C1 (U+0080–U+009F) and DEL (U+007F) control codes removed.

use aes::cipher::{KeyIvInit, StreamCipher};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Why a keystore cannot be decrypted. Messages name the problem, never the secret or password.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeystoreError {
    #[error("not a keystore: {0}")]
    Malformed(String),
    #[error("unsupported keystore version {0} (EIP-2335 version 4 expected)")]
    UnsupportedVersion(u64),
    #[error("missing `version` (EIP-2335 version 4 expected)")]
    MissingVersion,
    #[error("unsupported KDF function `{0}` (scrypt or pbkdf2 expected)")]
    UnsupportedKdf(String),
    #[error("unsupported PBKDF2 PRF `{0}` (hmac-sha256 expected)")]
    UnsupportedPrf(String),
    #[error("unsupported KDF dklen {0} (32 expected)")]
    UnsupportedDkLen(u64),
    #[error("invalid KDF parameters: {0}")]
    InvalidKdfParams(String),
    #[error("unsupported checksum function `{0}` (sha256 expected)")]
    UnsupportedChecksum(String),
    #[error("unsupported cipher function `{0}` (aes-128-ctr expected)")]
    UnsupportedCipher(String),
    #[error("invalid hex in `{0}`")]
    InvalidHex(&'static str),
    #[error("checksum mismatch: wrong password or corrupted keystore")]
    ChecksumMismatch,
    #[error("decrypted secret is not a valid BLS secret key")]
    InvalidSecret,
    #[error("decrypted key's public key does not match the keystore's `pubkey`")]
    PubkeyMismatch,
}

#[derive(Deserialize)]
struct Keystore {
    crypto: Option<Crypto>,
    pubkey: Option<String>,
    version: Option<u64>,
}

#[derive(Deserialize)]
struct Crypto {
    kdf: Option<Module>,
    checksum: Option<Module>,
    cipher: Option<Module>,
}

#[derive(Deserialize)]
struct Module {
    function: String,
    params: Option<serde_json::Map<String, serde_json::Value>>,
    message: String,
}

/// A decrypted keystore: the 32-byte secret (zeroized on drop) and the keystore's
/// declared 48-byte public key, when it has one.
pub struct Decrypted {
    /// The BLS secret key bytes (32, big-endian).
    pub secret: Zeroizing<Vec<u8>>,
    /// `pubkey` from the keystore file, if present and well-formed.
    pub declared_pubkey: Option<Vec<u8>>,
}

/// Normalises a password per EIP-2335: NFKD, strip C0, C1 and DEL; returns UTF-8 bytes.
pub fn normalize_password(password: &str) -> Zeroizing<Vec<u8>> {
    let s: Zeroizing<String> = Zeroizing::new(
        password
            .nfkd()
            .filter(|c| {
                let cp = *c as u32;
                !(cp <= 0x1f || (0x7f..=0x9f).contains(&cp))
            })
            .collect(),
    );
    Zeroizing::new(s.as_bytes().to_vec())
}

fn param_u64(
    params: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<u64, KeystoreError> {
    params.get(name).and_then(|v| v.as_u64()).ok_or_else(|| {
        KeystoreError::InvalidKdfParams(format!("`{name}` missing or not an unsigned integer"))
    })
}

fn param_hex(
    params: &serde_json::Map<String, serde_json::Value>,
    name: &'static str,
) -> Result<Vec<u8>, KeystoreError> {
    let s = params
        .get(name)
        .and_then(|v| v.as_str())
        .ok_or_else(|| KeystoreError::InvalidKdfParams(format!("`{name}` missing")))?;
    hex::decode(s).map_err(|_| KeystoreError::InvalidHex(name))
}

/// Decrypts an EIP-2335 keystore given as JSON text.
///
/// # Errors
/// [`KeystoreError`] naming the first problem: malformed JSON or missing sections, version
/// other than 4, unsupported KDF/PRF/checksum/cipher or dklen other than 32, bad hex,
/// checksum mismatch (wrong password), or a secret that is not a valid BLS key.
pub fn decrypt(json: &str, password: &str) -> Result<Decrypted, KeystoreError> {
    let ks: Keystore =
        serde_json::from_str(json).map_err(|e| KeystoreError::Malformed(e.to_string()))?;
    match ks.version {
        None => return Err(KeystoreError::MissingVersion),
        Some(4) => {}
        Some(v) => return Err(KeystoreError::UnsupportedVersion(v)),
    }
    let crypto = ks
        .crypto
        .ok_or_else(|| KeystoreError::Malformed("missing `crypto` section".into()))?;
    let kdf = crypto
        .kdf
        .ok_or_else(|| KeystoreError::Malformed("missing `crypto.kdf` section".into()))?;
    let checksum = crypto
        .checksum
        .ok_or_else(|| KeystoreError::Malformed("missing `crypto.checksum` section".into()))?;
    let cipher = crypto
        .cipher
        .ok_or_else(|| KeystoreError::Malformed("missing `crypto.cipher` section".into()))?;

    let kdf_params = kdf
        .params
        .as_ref()
        .ok_or_else(|| KeystoreError::Malformed("missing `crypto.kdf.params` section".into()))?;
    let cipher_params = cipher.params.clone().unwrap_or_default();
    if checksum.function != "sha256" {
        return Err(KeystoreError::UnsupportedChecksum(checksum.function));
    }
    if cipher.function != "aes-128-ctr" {
        return Err(KeystoreError::UnsupportedCipher(cipher.function));
    }
    let dklen = param_u64(kdf_params, "dklen")?;
    if dklen != 32 {
        return Err(KeystoreError::UnsupportedDkLen(dklen));
    }
    let salt = param_hex(kdf_params, "salt")?;
    let password = normalize_password(password);
    let mut dk = Zeroizing::new([0u8; 32]);
    match kdf.function.as_str() {
        "scrypt" => {
            let n = param_u64(kdf_params, "n")?;
            let r = param_u64(kdf_params, "r")?;
            let p = param_u64(kdf_params, "p")?;
            if n < 2 || !n.is_power_of_two() {
                return Err(KeystoreError::InvalidKdfParams(
                    "scrypt `n` must be a power of two above 1".into(),
                ));
            }
            let log_n = n.trailing_zeros() as u8;
            let r = u32::try_from(r)
                .map_err(|_| KeystoreError::InvalidKdfParams("scrypt `r` too large".into()))?;
            let p = u32::try_from(p)
                .map_err(|_| KeystoreError::InvalidKdfParams("scrypt `p` too large".into()))?;
            let params = scrypt::Params::new(log_n, r, p)
                .map_err(|e| KeystoreError::InvalidKdfParams(format!("scrypt: {e}")))?;
            scrypt::scrypt(&password, &salt, &params, dk.as_mut_slice())
                .map_err(|e| KeystoreError::InvalidKdfParams(format!("scrypt: {e}")))?;
        }
        "pbkdf2" => {
            let prf = kdf_params
                .get("prf")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            if prf != "hmac-sha256" {
                return Err(KeystoreError::UnsupportedPrf(prf.to_string()));
            }
            let c = param_u64(kdf_params, "c")?;
            let c = u32::try_from(c)
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| KeystoreError::InvalidKdfParams("pbkdf2 `c` out of range".into()))?;
            pbkdf2::pbkdf2_hmac::<Sha256>(&password, &salt, c, dk.as_mut_slice());
        }
        other => return Err(KeystoreError::UnsupportedKdf(other.to_string())),
    }

    let cipher_message = hex::decode(&cipher.message)
        .map_err(|_| KeystoreError::InvalidHex("crypto.cipher.message"))?;
    let expected = hex::decode(&checksum.message)
        .map_err(|_| KeystoreError::InvalidHex("crypto.checksum.message"))?;
    let mut hasher = Sha256::new();
    hasher.update(&dk[16..32]);
    hasher.update(&cipher_message);
    if hasher.finalize().as_slice() != expected.as_slice() {
        return Err(KeystoreError::ChecksumMismatch);
    }
    let iv_hex = cipher_params
        .get("iv")
        .and_then(|v| v.as_str())
        .ok_or(KeystoreError::InvalidHex("crypto.cipher.params.iv"))?;
    let iv: [u8; 16] = hex::decode(iv_hex)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(KeystoreError::InvalidHex("crypto.cipher.params.iv"))?;
    let key: [u8; 16] = dk[..16].try_into().expect("16 bytes");
    let mut secret = Zeroizing::new(cipher_message);
    Aes128Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut secret);
    let declared_pubkey = ks
        .pubkey
        .and_then(|p| hex::decode(p.trim_start_matches("0x")).ok());
    Ok(Decrypted {
        secret,
        declared_pubkey,
    })
}

/// Decrypts a keystore into a BLS secret key and checks it against the declared `pubkey`.
///
/// # Errors
/// As [`decrypt`], plus [`KeystoreError::InvalidSecret`] and [`KeystoreError::PubkeyMismatch`].
pub fn decrypt_bls(
    json: &str,
    password: &str,
) -> Result<crate::crypto::bls::SecretKey, KeystoreError> {
    let d = decrypt(json, password)?;
    let sk = crate::crypto::bls::SecretKey::from_bytes(&d.secret)
        .map_err(|_| KeystoreError::InvalidSecret)?;
    if let Some(declared) = d.declared_pubkey
        && declared.as_slice() != sk.public_key().as_slice()
    {
        return Err(KeystoreError::PubkeyMismatch);
    }
    Ok(sk)
}
