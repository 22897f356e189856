//! Writing EIP-2335 BLS keystores (version 4), the counterpart of [`super::eip2335`]'s reader.
//!
//! The defaults are those of `ethstaker-deposit` (the deposit CLI stakers use), so keystores
//! written here look like theirs: scrypt with `n` = 262144, `r` = 8, `p` = 1, or PBKDF2 with
//! HMAC-SHA256 and `c` = 262144; `dklen` 32 and a random 32-byte salt; a SHA-256 checksum;
//! AES-128-CTR with a random 16-byte IV; a random v4 UUID. The password is normalised with
//! [`super::eip2335::normalize_password`] (NFKD, C0/C1/DEL removed), as EIP-2335 requires.

use aes::cipher::{KeyIvInit, StreamCipher};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// ethstaker-deposit's scrypt cost `n` (2^18).
pub const SCRYPT_N: u64 = 1 << 18;
/// ethstaker-deposit's scrypt block size `r`.
pub const SCRYPT_R: u32 = 8;
/// ethstaker-deposit's scrypt parallelism `p`.
pub const SCRYPT_P: u32 = 1;
/// ethstaker-deposit's PBKDF2-HMAC-SHA256 iteration count `c` (2^18).
pub const PBKDF2_C: u32 = 1 << 18;

/// Why a keystore could not be written. Never contains the secret or the password.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeystoreWriteError {
    /// The secret is zero or not below the BLS12-381 group order.
    #[error("secret is not a valid BLS secret key (zero or not below the group order)")]
    InvalidSecret,
    /// `path` is neither empty nor an EIP-2334 path such as `m/12381/3600/0/0/0`.
    #[error("invalid keystore path: {0}")]
    InvalidPath(crate::crypto::eip2333::Eip2333Error),
    /// The KDF refused its parameters (which one and why).
    #[error("invalid KDF parameters: {0}")]
    InvalidKdfParams(String),
    /// The OS random number generator failed (no salt, IV or UUID could be drawn).
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// The key derivation function protecting a keystore, with ethstaker-deposit's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// scrypt, `n` = 262144, `r` = 8, `p` = 1, `dklen` = 32 (about 256 MiB of memory).
    Scrypt,
    /// PBKDF2-HMAC-SHA256, `c` = 262144, `dklen` = 32.
    Pbkdf2,
}

impl Kdf {
    /// This KDF's default parameters with the given 32-byte salt.
    pub fn params(self, salt: [u8; 32]) -> KdfParams {
        match self {
            Kdf::Scrypt => KdfParams::Scrypt {
                n: SCRYPT_N,
                r: SCRYPT_R,
                p: SCRYPT_P,
                salt,
            },
            Kdf::Pbkdf2 => KdfParams::Pbkdf2 { c: PBKDF2_C, salt },
        }
    }
}

/// Fully specified KDF parameters (`dklen` is always 32). Salts are written as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KdfParams {
    /// scrypt with cost `n` (a power of two above 1), block size `r` and parallelism `p`.
    Scrypt {
        /// CPU/memory cost, a power of two above 1 (written as `n`).
        n: u64,
        /// Block size (written as `r`).
        r: u32,
        /// Parallelism (written as `p`).
        p: u32,
        /// 32-byte salt (written as 64 lowercase hex digits).
        salt: [u8; 32],
    },
    /// PBKDF2-HMAC-SHA256 with `c` (≥ 1) iterations.
    Pbkdf2 {
        /// Iteration count, at least 1 (written as `c`).
        c: u32,
        /// 32-byte salt (written as 64 lowercase hex digits).
        salt: [u8; 32],
    },
}

impl KdfParams {
    /// Runs the KDF on the normalised password: the 32-byte decryption key.
    fn derive(&self, password: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeystoreWriteError> {
        let mut dk = Zeroizing::new([0u8; 32]);
        match self {
            KdfParams::Scrypt { n, r, p, salt } => {
                if *n < 2 || !n.is_power_of_two() {
                    return Err(KeystoreWriteError::InvalidKdfParams(
                        "scrypt `n` must be a power of two above 1".into(),
                    ));
                }
                let log_n = n.trailing_zeros() as u8;
                let params = scrypt::Params::new(log_n, *r, *p)
                    .map_err(|e| KeystoreWriteError::InvalidKdfParams(format!("scrypt: {e}")))?;
                scrypt::scrypt(password, salt, &params, dk.as_mut_slice())
                    .map_err(|e| KeystoreWriteError::InvalidKdfParams(format!("scrypt: {e}")))?;
            }
            KdfParams::Pbkdf2 { c, salt } => {
                if *c == 0 {
                    return Err(KeystoreWriteError::InvalidKdfParams(
                        "pbkdf2 `c` must be at least 1".into(),
                    ));
                }
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, *c, dk.as_mut_slice());
            }
        }
        Ok(dk)
    }

    /// The `crypto.kdf` module: function, params (with `dklen` 32 and hex salt), empty message.
    fn module(&self) -> Value {
        match self {
            KdfParams::Scrypt { n, r, p, salt } => json!({
                "function": "scrypt",
                "params": { "dklen": 32, "n": n, "r": r, "p": p, "salt": hex::encode(salt) },
                "message": "",
            }),
            KdfParams::Pbkdf2 { c, salt } => json!({
                "function": "pbkdf2",
                "params": { "dklen": 32, "c": c, "prf": "hmac-sha256", "salt": hex::encode(salt) },
                "message": "",
            }),
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], KeystoreWriteError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KeystoreWriteError::Random(e.to_string()))?;
    Ok(b)
}

/// Encrypts a 32-byte big-endian BLS secret key into an EIP-2335 version 4 keystore with
/// `kdf`'s default parameters (see [`Kdf`]), a random 32-byte salt, a random 16-byte IV and a
/// random v4 UUID.
///
/// The result is the keystore JSON object: `crypto` (`kdf`, `checksum` = `sha256`, `cipher` =
/// `aes-128-ctr`), `description`, `pubkey` (48-byte compressed BLS public key, lowercase hex
/// without `0x`), `path` (an EIP-2334 path such as `m/12381/3600/0/0/0`, or empty),
/// `uuid` and `version` = 4. Serialise it with `serde_json::to_string` to save it.
///
/// # Errors
/// [`KeystoreWriteError::InvalidSecret`] if `secret` is zero or not below the group order,
/// [`KeystoreWriteError::InvalidPath`] for a malformed non-empty `path`, or
/// [`KeystoreWriteError::Random`] if the OS random number generator fails.
pub fn encrypt_keystore(
    secret: &[u8; 32],
    password: &str,
    kdf: Kdf,
    path: &str,
    description: &str,
) -> Result<Value, KeystoreWriteError> {
    let params = kdf.params(random::<32>()?);
    let iv = random::<16>()?;
    let uuid = uuid::Builder::from_random_bytes(random::<16>()?).into_uuid();
    encrypt_with(secret, password, &params, &iv, path, description, uuid)
}

/// [`encrypt_keystore`] with every random input given: KDF parameters (and salt), the
/// 16-byte AES-128-CTR IV and the UUID. Reproduces the EIP-2335 test vectors byte for byte;
/// do not reuse a salt or IV for real keys.
///
/// The decryption key is `KDF(normalize_password(password))` (32 bytes); `cipher.message` is
/// the secret encrypted with AES-128-CTR under its first 16 bytes and `iv`; `checksum.message`
/// is `SHA-256(decryption_key[16..32] ‖ cipher.message)`.
///
/// # Errors
/// As [`encrypt_keystore`], plus [`KeystoreWriteError::InvalidKdfParams`] for parameters the
/// KDF refuses.
pub fn encrypt_with(
    secret: &[u8; 32],
    password: &str,
    params: &KdfParams,
    iv: &[u8; 16],
    path: &str,
    description: &str,
    uuid: uuid::Uuid,
) -> Result<Value, KeystoreWriteError> {
    let pubkey = crate::crypto::bls::SecretKey::from_bytes(secret)
        .map_err(|_| KeystoreWriteError::InvalidSecret)?
        .public_key();
    if !path.is_empty() {
        crate::crypto::eip2333::parse_path(path).map_err(KeystoreWriteError::InvalidPath)?;
    }
    let password = super::eip2335::normalize_password(password);
    let dk = params.derive(&password)?;

    let key = Zeroizing::new(<[u8; 16]>::try_from(&dk[..16]).expect("16 bytes"));
    let mut message = Zeroizing::new(*secret);
    Aes128Ctr::new(&(*key).into(), &(*iv).into()).apply_keystream(message.as_mut_slice());
    let mut hasher = Sha256::new();
    hasher.update(&dk[16..32]);
    hasher.update(message.as_slice());
    let checksum = hasher.finalize();

    Ok(json!({
        "crypto": {
            "kdf": params.module(),
            "checksum": { "function": "sha256", "params": {}, "message": hex::encode(checksum) },
            "cipher": {
                "function": "aes-128-ctr",
                "params": { "iv": hex::encode(iv) },
                "message": hex::encode(message.as_slice()),
            },
        },
        "description": description,
        "pubkey": hex::encode(pubkey),
        "path": path,
        "uuid": uuid.hyphenated().to_string(),
        "version": 4,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/eip2335")
    }

    fn read_json(name: &str) -> Value {
        let path = vectors_dir().join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    fn hex_array<const N: usize>(v: &Value) -> [u8; N] {
        hex::decode(v.as_str().expect("hex string"))
            .unwrap()
            .try_into()
            .unwrap()
    }

    /// Rebuilds the vector's KDF parameters from its own `crypto.kdf.params`.
    fn params_of(vector: &Value) -> KdfParams {
        let kdf = &vector["crypto"]["kdf"];
        let p = &kdf["params"];
        let salt = hex_array::<32>(&p["salt"]);
        match kdf["function"].as_str().unwrap() {
            "scrypt" => KdfParams::Scrypt {
                n: p["n"].as_u64().unwrap(),
                r: p["r"].as_u64().unwrap().try_into().unwrap(),
                p: p["p"].as_u64().unwrap().try_into().unwrap(),
                salt,
            },
            "pbkdf2" => KdfParams::Pbkdf2 {
                c: p["c"].as_u64().unwrap().try_into().unwrap(),
                salt,
            },
            other => panic!("unexpected KDF {other}"),
        }
    }

    fn reproduce(file: &str, kdf: Kdf) {
        let expected = read_json("expected.json");
        let vector = read_json(file);
        let secret = hex_array::<32>(&expected["secret_hex"]);
        let password = expected["password"].as_str().unwrap();
        let params = params_of(&vector);
        // The vectors use ethstaker-deposit's (and our) default parameters.
        let salt = hex_array::<32>(&vector["crypto"]["kdf"]["params"]["salt"]);
        assert_eq!(params, kdf.params(salt), "{file}");
        let ours = encrypt_with(
            &secret,
            password,
            &params,
            &hex_array::<16>(&vector["crypto"]["cipher"]["params"]["iv"]),
            vector["path"].as_str().unwrap(),
            vector["description"].as_str().unwrap(),
            vector["uuid"].as_str().unwrap().parse().unwrap(),
        )
        .unwrap();
        for field in ["checksum", "cipher"] {
            assert_eq!(
                ours["crypto"][field]["message"], vector["crypto"][field]["message"],
                "{file}: crypto.{field}.message"
            );
        }
        // The whole document matches, field for field.
        assert_eq!(ours, vector, "{file}");
        let d = super::super::eip2335::decrypt(&ours.to_string(), password).unwrap();
        assert_eq!(d.secret.as_slice(), secret);
    }

    #[test]
    fn reproduces_eip2335_scrypt_vector() {
        reproduce("scrypt.json", Kdf::Scrypt);
    }

    #[test]
    fn reproduces_eip2335_pbkdf2_vector() {
        reproduce("pbkdf2.json", Kdf::Pbkdf2);
    }

    fn test_secret(seed: u8) -> [u8; 32] {
        let mut s: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(29) ^ seed);
        s[0] = 0x1f; // below the group order
        s
    }

    #[test]
    fn random_keystores_round_trip() {
        let password = "pass\u{7f}word \u{1d531}\u{0301}";
        for (kdf, name) in [(Kdf::Pbkdf2, "pbkdf2"), (Kdf::Scrypt, "scrypt")] {
            let secret = test_secret(kdf as u8);
            let path = crate::crypto::eip2333::validator_signing_path(3);
            let ks = encrypt_keystore(&secret, password, kdf, &path, "test key").unwrap();
            let text = serde_json::to_string(&ks).unwrap();
            let d = super::super::eip2335::decrypt(&text, password).unwrap();
            assert_eq!(d.secret.as_slice(), secret);
            let sk = super::super::eip2335::decrypt_bls(&text, password).unwrap();
            assert_eq!(hex::encode(sk.public_key()), ks["pubkey"].as_str().unwrap());
            assert_eq!(
                super::super::eip2335::decrypt(&text, "password").err(),
                Some(super::super::eip2335::KeystoreError::ChecksumMismatch)
            );

            assert_eq!(ks["version"], 4);
            assert_eq!(ks["path"], path.as_str());
            assert_eq!(ks["description"], "test key");
            assert_eq!(ks["crypto"]["kdf"]["function"], name);
            assert_eq!(ks["crypto"]["kdf"]["params"]["dklen"], 32);
            assert_eq!(ks["crypto"]["kdf"]["message"], "");
            assert_eq!(ks["crypto"]["checksum"]["function"], "sha256");
            assert_eq!(ks["crypto"]["cipher"]["function"], "aes-128-ctr");
            assert_eq!(ks["pubkey"].as_str().unwrap().len(), 96);
            let uuid: uuid::Uuid = ks["uuid"].as_str().unwrap().parse().unwrap();
            assert_eq!(uuid.get_version_num(), 4);
            let salt = ks["crypto"]["kdf"]["params"]["salt"].as_str().unwrap();
            assert_eq!(salt.len(), 64);
            let iv = ks["crypto"]["cipher"]["params"]["iv"].as_str().unwrap();
            assert_eq!(iv.len(), 32);

            // Fresh salt, IV and UUID every time.
            let again = encrypt_keystore(&secret, password, kdf, "", "").unwrap();
            assert_ne!(
                again["crypto"]["kdf"]["params"]["salt"].as_str(),
                Some(salt)
            );
            assert_ne!(again["crypto"]["cipher"]["params"]["iv"].as_str(), Some(iv));
            assert_ne!(again["uuid"], ks["uuid"]);
            assert_eq!(again["path"], "");
        }
    }

    #[test]
    fn bad_inputs_are_refused() {
        let secret = test_secret(1);
        let cheap = KdfParams::Pbkdf2 {
            c: 1,
            salt: [0; 32],
        };
        let go = |secret: &[u8; 32], params: &KdfParams, path: &str| {
            encrypt_with(secret, "pw", params, &[0; 16], path, "", uuid::Uuid::nil())
        };
        assert_eq!(
            go(&[0; 32], &cheap, "").unwrap_err(),
            KeystoreWriteError::InvalidSecret
        );
        assert_eq!(
            go(&[0xff; 32], &cheap, "").unwrap_err(),
            KeystoreWriteError::InvalidSecret
        );
        assert!(matches!(
            go(&secret, &cheap, "m/1'/2").unwrap_err(),
            KeystoreWriteError::InvalidPath(_)
        ));
        assert!(matches!(
            go(&secret, &cheap, "12381/3600").unwrap_err(),
            KeystoreWriteError::InvalidPath(_)
        ));
        for bad in [
            KdfParams::Pbkdf2 {
                c: 0,
                salt: [0; 32],
            },
            KdfParams::Scrypt {
                n: 1000,
                r: 8,
                p: 1,
                salt: [0; 32],
            },
            KdfParams::Scrypt {
                n: 1,
                r: 8,
                p: 1,
                salt: [0; 32],
            },
            KdfParams::Scrypt {
                n: 16,
                r: 0,
                p: 1,
                salt: [0; 32],
            },
        ] {
            assert!(
                matches!(
                    go(&secret, &bad, "").unwrap_err(),
                    KeystoreWriteError::InvalidKdfParams(_)
                ),
                "{bad:?}"
            );
        }
        // Errors never carry the secret.
        let msg = go(&[0xff; 32], &cheap, "").unwrap_err().to_string();
        assert!(!msg.contains("ff"), "{msg}");
    }

    use crate::test_support::python;

    /// ethstaker-deposit's `Keystore.from_json` (which validates its strict keystore JSON
    /// schema) and `decrypt` open keystores we write, with both KDFs and a password that
    /// needs normalising.
    #[test]
    fn ethstaker_deposit_decrypts_our_keystores() {
        let password = "t\u{e9}st\u{7f} \u{1d531}\u{1f511}";
        let script = "import sys, json\n\
            from ethstaker_deposit.key_handling.keystore import Keystore\n\
            ks = Keystore.from_json(json.loads(sys.stdin.read()))\n\
            print(ks.decrypt(sys.argv[1]).hex())\n";
        for kdf in [Kdf::Scrypt, Kdf::Pbkdf2] {
            let secret = test_secret(0x40 | kdf as u8);
            let ks = encrypt_keystore(
                &secret,
                password,
                kdf,
                &crate::crypto::eip2333::validator_signing_path(0),
                "",
            )
            .unwrap();
            let mut child = std::process::Command::new(python())
                .arg("-c")
                .arg(script)
                .arg(password)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run python");
            {
                use std::io::Write;
                let mut stdin = child.stdin.take().unwrap();
                stdin.write_all(ks.to_string().as_bytes()).unwrap();
            }
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{kdf:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8(out.stdout).unwrap().trim(),
                hex::encode(secret),
                "{kdf:?}"
            );
        }
    }
}
