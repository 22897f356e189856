//! EIP-2335 BLS keystores (version 4): scrypt or PBKDF2-HMAC-SHA256 key derivation,
//! SHA-256 checksum, AES-128-CTR cipher. Passwords are normalised per the EIP: NFKD,
//! then the C0 (U+0000–U+001F), C1 (U+0080–U+009F) and DEL (U+007F) control codes removed.
//!
//! # KDF ceilings
//!
//! A keystore chooses its own KDF cost, so a hostile one could ask for a petabyte of memory
//! (scrypt `n` = 2^40) or hours of CPU (huge scrypt `p`, huge PBKDF2 `c`). Before any
//! derivation, [`decrypt`] refuses parameters above these ceilings with
//! [`KeystoreError::KdfCeiling`], a load error like a wrong password:
//!
//! - scrypt: `128 · n · r · p` ≤ [`SCRYPT_MAX_BYTES`] (512 MiB). This bounds the memory
//!   (`128 · r · (n + p)` bytes) and the work (`2 · n · r · p` salsa20/8 block mixes) at
//!   twice EIP-2335's and ethstaker-deposit's standard `n` = 2^18, `r` = 8, `p` = 1
//!   (256 MiB). `n` must be a power of two above 1, `r` and `p` at least 1.
//! - PBKDF2-HMAC-SHA256: 1 ≤ `c` ≤ [`PBKDF2_MAX_C`] (2^20, four times the standard 2^18).
//! - The keystore JSON itself: at most [`MAX_KEYSTORE_BYTES`] (1 MiB; real ones are ~1 KiB).

use aes::cipher::{KeyIvInit, StreamCipher};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Ceiling of scrypt's `128 · n · r · p` (bytes): 512 MiB, twice the standard parameters'
/// 256 MiB (`n` = 2^18, `r` = 8, `p` = 1).
pub const SCRYPT_MAX_BYTES: u128 = 512 << 20;

/// Ceiling of PBKDF2's iteration count `c`: 2^20, four times the standard 2^18.
pub const PBKDF2_MAX_C: u64 = 1 << 20;

/// Largest keystore JSON accepted: 1 MiB.
pub const MAX_KEYSTORE_BYTES: usize = 1 << 20;

/// Checks scrypt parameters against [`SCRYPT_MAX_BYTES`] without deriving anything.
///
/// # Errors
/// [`KeystoreError::InvalidKdfParams`] for `n` not a power of two above 1 or `r`/`p` of 0;
/// [`KeystoreError::KdfCeiling`] when `128 · n · r · p` is over the ceiling.
pub fn check_scrypt_params(n: u64, r: u64, p: u64) -> Result<(), KeystoreError> {
    if n < 2 || !n.is_power_of_two() {
        return Err(KeystoreError::InvalidKdfParams(
            "scrypt `n` must be a power of two above 1".into(),
        ));
    }
    if r == 0 || p == 0 {
        return Err(KeystoreError::InvalidKdfParams(
            "scrypt `r` and `p` must be at least 1".into(),
        ));
    }
    let bytes = 128u128
        .checked_mul(u128::from(n))
        .and_then(|b| b.checked_mul(u128::from(r)))
        .and_then(|b| b.checked_mul(u128::from(p)));
    if bytes.is_none_or(|b| b > SCRYPT_MAX_BYTES) {
        let needs = bytes.map_or_else(
            || "more than 2^128 bytes".into(),
            |b| format!("{} MiB", b >> 20),
        );
        return Err(KeystoreError::KdfCeiling(format!(
            "scrypt n=2^{}, r={r}, p={p} needs 128·n·r·p = {needs}, over the ceiling of {} MiB",
            n.trailing_zeros(),
            SCRYPT_MAX_BYTES >> 20
        )));
    }
    Ok(())
}

/// Checks a PBKDF2 iteration count against [`PBKDF2_MAX_C`] without deriving anything.
///
/// # Errors
/// [`KeystoreError::InvalidKdfParams`] for `c` = 0; [`KeystoreError::KdfCeiling`] above the
/// ceiling.
pub fn check_pbkdf2_params(c: u64) -> Result<(), KeystoreError> {
    if c == 0 {
        return Err(KeystoreError::InvalidKdfParams(
            "pbkdf2 `c` must be at least 1".into(),
        ));
    }
    if c > PBKDF2_MAX_C {
        return Err(KeystoreError::KdfCeiling(format!(
            "pbkdf2 c={c} is over the ceiling of {PBKDF2_MAX_C} iterations"
        )));
    }
    Ok(())
}

/// Why a keystore cannot be decrypted. Messages name the problem, never the secret or password.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeystoreError {
    /// Not EIP-2335 JSON: invalid JSON, a missing `crypto`, `crypto.kdf`, `crypto.checksum`,
    /// `crypto.cipher` or `crypto.kdf.params` section, or over [`MAX_KEYSTORE_BYTES`].
    #[error("not a keystore: {0}")]
    Malformed(String),
    /// `version` is not 4 (the version found).
    #[error("unsupported keystore version {0} (EIP-2335 version 4 expected)")]
    UnsupportedVersion(u64),
    /// The keystore has no `version`.
    #[error("missing `version` (EIP-2335 version 4 expected)")]
    MissingVersion,
    /// `crypto.kdf.function` is neither `scrypt` nor `pbkdf2` (the function found).
    #[error("unsupported KDF function `{0}` (scrypt or pbkdf2 expected)")]
    UnsupportedKdf(String),
    /// The PBKDF2 `prf` is not `hmac-sha256` (the PRF found, empty when missing).
    #[error("unsupported PBKDF2 PRF `{0}` (hmac-sha256 expected)")]
    UnsupportedPrf(String),
    /// The KDF `dklen` is not 32 bytes (the length found).
    #[error("unsupported KDF dklen {0} (32 expected)")]
    UnsupportedDkLen(u64),
    /// A KDF parameter is missing or invalid: scrypt `n` not a power of two above 1, `r` or
    /// `p` of 0, PBKDF2 `c` of 0, or a value scrypt rejects.
    #[error("invalid KDF parameters: {0}")]
    InvalidKdfParams(String),
    /// The KDF parameters are over palisade's ceilings (see the module documentation); the
    /// keystore is refused before any derivation.
    #[error("KDF parameters over palisade's ceiling: {0}")]
    KdfCeiling(String),
    /// `crypto.checksum.function` is not `sha256` (the function found).
    #[error("unsupported checksum function `{0}` (sha256 expected)")]
    UnsupportedChecksum(String),
    /// `crypto.cipher.function` is not `aes-128-ctr` (the function found).
    #[error("unsupported cipher function `{0}` (aes-128-ctr expected)")]
    UnsupportedCipher(String),
    /// A hex field (the KDF `salt`, the cipher or checksum `message`, a 16-byte cipher `iv`)
    /// is missing or not hex; names the field.
    #[error("invalid hex in `{0}`")]
    InvalidHex(&'static str),
    /// SHA-256 of the derived key's bytes 16..32 and the ciphertext differs from
    /// `crypto.checksum.message`: a wrong password or a corrupted keystore.
    #[error("checksum mismatch: wrong password or corrupted keystore")]
    ChecksumMismatch,
    /// The decrypted secret is not 32 bytes, or is zero or not below the BLS12-381 group order.
    #[error("decrypted secret is not a valid BLS secret key")]
    InvalidSecret,
    /// The decrypted key's 48-byte public key differs from the keystore's `pubkey`.
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
/// checksum mismatch (wrong password), or a secret that is not a valid BLS key;
/// [`KeystoreError::KdfCeiling`] for KDF parameters over the ceilings (checked before any
/// derivation) and [`KeystoreError::Malformed`] for JSON over [`MAX_KEYSTORE_BYTES`].
pub fn decrypt(json: &str, password: &str) -> Result<Decrypted, KeystoreError> {
    if json.len() > MAX_KEYSTORE_BYTES {
        return Err(KeystoreError::Malformed(format!(
            "keystore of {} bytes, over the limit of {MAX_KEYSTORE_BYTES}",
            json.len()
        )));
    }
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
    // Ceilings are checked below before each KDF runs.
    let mut dk = Zeroizing::new([0u8; 32]);
    match kdf.function.as_str() {
        "scrypt" => {
            let n = param_u64(kdf_params, "n")?;
            let r = param_u64(kdf_params, "r")?;
            let p = param_u64(kdf_params, "p")?;
            check_scrypt_params(n, r, p)?;
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
            check_pbkdf2_params(c)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(name: &str) -> serde_json::Value {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/eip2335")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    const VECTOR_PASSWORD: &str = "\u{1d531}\u{1d522}\u{1d530}\u{1d531}\u{1d52d}\u{1d51e}\u{1d530}\u{1d530}\u{1d534}\u{1d52c}\u{1d52f}\u{1d521}\u{1f511}";

    #[test]
    fn standard_parameters_are_within_the_ceilings() {
        // EIP-2335 and ethstaker-deposit: scrypt n=2^18, r=8, p=1; pbkdf2 c=2^18.
        check_scrypt_params(1 << 18, 8, 1).unwrap();
        check_pbkdf2_params(1 << 18).unwrap();
        // Room above: twice the scrypt memory, four times the PBKDF2 work.
        check_scrypt_params(1 << 19, 8, 1).unwrap();
        check_scrypt_params(1 << 18, 8, 2).unwrap();
        check_scrypt_params(1 << 18, 16, 1).unwrap();
        check_pbkdf2_params(PBKDF2_MAX_C).unwrap();
        // Lighter parameters some tools use.
        check_scrypt_params(1 << 12, 8, 1).unwrap();
        check_scrypt_params(2, 1, 1).unwrap();
    }

    #[test]
    fn hostile_parameters_are_refused_before_derivation() {
        for (n, r, p) in [
            (1u64 << 40, 8, 1),
            (1 << 18, 8, 1 << 20),
            (1 << 18, 8, 3),
            (1 << 20, 8, 1),
            (1 << 18, 1 << 24, 1),
            (1 << 63, u64::MAX, u64::MAX),
        ] {
            let e = check_scrypt_params(n, r, p).unwrap_err();
            assert!(
                matches!(e, KeystoreError::KdfCeiling(_)),
                "{n} {r} {p}: {e}"
            );
            assert!(e.to_string().contains("ceiling"), "{e}");
        }
        for c in [PBKDF2_MAX_C + 1, 1 << 31, u64::MAX] {
            let e = check_pbkdf2_params(c).unwrap_err();
            assert!(matches!(e, KeystoreError::KdfCeiling(_)), "{c}: {e}");
        }
        assert!(matches!(
            check_scrypt_params(3, 8, 1),
            Err(KeystoreError::InvalidKdfParams(_))
        ));
        assert!(matches!(
            check_scrypt_params(1 << 10, 0, 1),
            Err(KeystoreError::InvalidKdfParams(_))
        ));
        assert!(matches!(
            check_pbkdf2_params(0),
            Err(KeystoreError::InvalidKdfParams(_))
        ));
    }

    #[test]
    fn decrypt_refuses_hostile_keystores_fast() {
        let mut scrypt = vector("scrypt.json");
        scrypt["crypto"]["kdf"]["params"]["n"] = serde_json::json!(1u64 << 40);
        let mut wide = vector("scrypt.json");
        wide["crypto"]["kdf"]["params"]["p"] = serde_json::json!(1u64 << 20);
        let mut pbkdf2 = vector("pbkdf2.json");
        pbkdf2["crypto"]["kdf"]["params"]["c"] = serde_json::json!(1u64 << 31);
        for ks in [scrypt, wide, pbkdf2] {
            let started = std::time::Instant::now();
            let e = decrypt(&ks.to_string(), VECTOR_PASSWORD).err().unwrap();
            assert!(matches!(e, KeystoreError::KdfCeiling(_)), "{e}");
            assert!(started.elapsed() < std::time::Duration::from_millis(100));
        }
        let huge = " ".repeat(MAX_KEYSTORE_BYTES + 1);
        assert!(matches!(
            decrypt(&huge, "x").err().unwrap(),
            KeystoreError::Malformed(_)
        ));
    }

    #[test]
    fn eip2335_vectors_still_decrypt() {
        for name in ["scrypt.json", "pbkdf2.json"] {
            let ks = vector(name);
            let d = decrypt(&ks.to_string(), VECTOR_PASSWORD).unwrap();
            assert_eq!(
                hex::encode(&*d.secret),
                "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
                "{name}"
            );
        }
    }
}
