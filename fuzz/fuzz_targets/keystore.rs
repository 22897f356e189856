//! Fuzz target: the EIP-2335 keystore reader (`keys::eip2335::decrypt`).
//!
//! `decrypt` is the only public entry point: it parses, validates and derives in one call.
//! So that no run ever derives with large parameters, every raw input's KDF parameters are
//! read here first, and `decrypt` is called only with tiny ones (see [`cheap`]); structured
//! inputs are built with tiny parameters.
//!
//! The input's first byte picks the mode.
//!
//! - Raw (`mode` even): the rest is a keystore JSON, decrypted with a fixed password.
//!   Invariants: no panic; deterministic; an accepted keystore's secret is as long as its
//!   `cipher.message`; errors never quote the password.
//! - Structured (`mode` odd): a keystore is written with `keystore_writer::encrypt_with`
//!   from a fuzzed secret, password, tiny scrypt or PBKDF2 parameters, salt and IV.
//!   Invariants: it decrypts to the secret with the password (and with the password plus
//!   control characters, which EIP-2335 strips), its public key is the declared one, another
//!   password or a changed ciphertext is a checksum mismatch, and a declared `pubkey` of
//!   another key is refused by `decrypt_bls`; the same keystore with scrypt or PBKDF2
//!   parameters over the crate's KDF ceilings is refused (`KdfCeiling`) in under 200 ms.
//! - Raw inputs over the ceilings (as `check_scrypt_params` / `check_pbkdf2_params` judge
//!   them) are decrypted too, and must be refused in under 200 ms.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use palisade::keys::eip2335::{self, KeystoreError};
use palisade::keys::keystore_writer::{KdfParams, encrypt_with};
use serde_json::Value;

const PASSWORD: &str = "fuzz-password\u{1F511}";

/// Largest scrypt `n * r * p` and PBKDF2 `c` a raw input may ask for.
const MAX_SCRYPT_COST: u64 = 1 << 12;
const MAX_PBKDF2_C: u64 = 1 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        raw(rest);
    } else if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(rest)) {
        structured(&input);
    }
});

/// Whether `decrypt` may run on this document without deriving with large parameters: the
/// KDF is absent, unknown, or scrypt / PBKDF2 with small numbers (anything that is not an
/// unsigned integer is refused by `decrypt` before any derivation).
fn cheap(doc: &Value) -> bool {
    let kdf = &doc["crypto"]["kdf"];
    let params = &kdf["params"];
    let num = |name: &str| params[name].as_u64();
    match kdf["function"].as_str() {
        Some("scrypt") => match (num("n"), num("r"), num("p")) {
            (Some(n), Some(r), Some(p)) => n
                .checked_mul(r)
                .and_then(|x| x.checked_mul(p))
                .is_some_and(|cost| cost <= MAX_SCRYPT_COST),
            _ => true,
        },
        Some("pbkdf2") => num("c").is_none_or(|c| c <= MAX_PBKDF2_C),
        _ => true,
    }
}

/// Whether the KDF parameters are over the ceilings `decrypt` enforces (so that it must
/// refuse them without deriving).
fn over_ceiling(doc: &Value) -> bool {
    let kdf = &doc["crypto"]["kdf"];
    let params = &kdf["params"];
    let num = |name: &str| params[name].as_u64();
    match kdf["function"].as_str() {
        Some("scrypt") => match (num("n"), num("r"), num("p")) {
            (Some(n), Some(r), Some(p)) => {
                matches!(
                    eip2335::check_scrypt_params(n, r, p),
                    Err(KeystoreError::KdfCeiling(_))
                )
            }
            _ => false,
        },
        Some("pbkdf2") => num("c").is_some_and(|c| {
            matches!(
                eip2335::check_pbkdf2_params(c),
                Err(KeystoreError::KdfCeiling(_))
            )
        }),
        _ => false,
    }
}

fn raw(rest: &[u8]) {
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let doc: Value = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(_) => {
            // Not a JSON value as `serde_json::Value` reads it; `decrypt` reads into a struct
            // and skips unknown fields unchecked (a lone surrogate there is accepted), so it
            // may still get further. Without a KDF named it cannot derive: try those only.
            if !text.contains('\\') && !text.contains("scrypt") && !text.contains("pbkdf2") {
                assert!(eip2335::decrypt(text, PASSWORD).is_err());
            }
            return;
        }
    };
    if !cheap(&doc) {
        // Parameters over the ceilings must be refused before any derivation: quickly.
        if over_ceiling(&doc) {
            let start = std::time::Instant::now();
            let result = eip2335::decrypt(text, PASSWORD);
            assert!(
                result.is_err(),
                "a keystore over the KDF ceilings decrypted"
            );
            assert!(
                start.elapsed() < std::time::Duration::from_millis(200),
                "refusing a keystore over the KDF ceilings took {:?}",
                start.elapsed()
            );
        }
        return;
    }
    let result = eip2335::decrypt(text, PASSWORD);
    let again = eip2335::decrypt(text, PASSWORD);
    match (&result, &again) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.secret, b.secret, "not deterministic");
            let message = doc["crypto"]["cipher"]["message"].as_str().unwrap_or("");
            assert_eq!(a.secret.len() * 2, message.len());
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "not deterministic");
            assert!(
                !a.to_string().contains(PASSWORD),
                "error quotes the password"
            );
        }
        _ => panic!("not deterministic"),
    }
}

#[derive(Debug, Arbitrary)]
enum Kdf {
    Scrypt {
        log_n: u8,
        r: u8,
        p: u8,
    },
    Pbkdf2 {
        c: u8,
    },
    /// Parameters over the ceilings, written into a keystore made with tiny ones.
    HostileScrypt {
        log_n: u8,
        r: u32,
        p: u32,
    },
    HostilePbkdf2 {
        c: u64,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    secret: [u8; 32],
    password: String,
    kdf: Kdf,
    salt: [u8; 32],
    iv: [u8; 16],
    flip: u8,
}

fn structured(input: &Input) {
    if input.password.len() > 64 {
        return;
    }
    let params = match input.kdf {
        Kdf::Scrypt { log_n, r, p } => KdfParams::Scrypt {
            n: 1 << (1 + log_n % 4),
            r: u32::from(1 + r % 4),
            p: u32::from(1 + p % 2),
            salt: input.salt,
        },
        Kdf::Pbkdf2 { c } => KdfParams::Pbkdf2 {
            c: u32::from(1 + c % 32),
            salt: input.salt,
        },
        Kdf::HostileScrypt { .. } | Kdf::HostilePbkdf2 { .. } => KdfParams::Pbkdf2 {
            c: 1,
            salt: input.salt,
        },
    };
    let uuid = palisade_uuid(&input.iv);
    let Ok(ks) = encrypt_with(
        &input.secret,
        &input.password,
        &params,
        &input.iv,
        "",
        "fuzz",
        uuid,
    ) else {
        // Only a secret outside the BLS scalar range is refused.
        return;
    };
    let text = ks.to_string();
    if let Some(hostile) = hostile(&input.kdf, &ks) {
        let start = std::time::Instant::now();
        let result = eip2335::decrypt(&hostile.to_string(), &input.password);
        assert!(
            matches!(
                result,
                Err(KeystoreError::KdfCeiling(_) | KeystoreError::InvalidKdfParams(_))
            ),
            "hostile KDF parameters {:?}: {:?}",
            input.kdf,
            result.err()
        );
        assert!(
            start.elapsed() < std::time::Duration::from_millis(200),
            "refusing {:?} took {:?}",
            input.kdf,
            start.elapsed()
        );
        return;
    }
    let d = eip2335::decrypt(&text, &input.password).expect("decrypts with its password");
    assert_eq!(&d.secret[..], &input.secret[..]);
    let sk = eip2335::decrypt_bls(&text, &input.password).expect("a valid BLS keystore");
    let declared = hex::decode(ks["pubkey"].as_str().expect("pubkey")).expect("hex pubkey");
    assert_eq!(&sk.public_key()[..], &declared[..]);

    // EIP-2335 strips C0, C1 and DEL control codes from the password.
    let with_controls = format!("\u{7f}{}\u{1}\u{85}", input.password);
    let d2 = eip2335::decrypt(&text, &with_controls).expect("control codes are stripped");
    assert_eq!(&d2.secret[..], &input.secret[..]);

    let wrong = format!("{}x", input.password);
    assert_eq!(
        eip2335::decrypt(&text, &wrong).err(),
        Some(KeystoreError::ChecksumMismatch)
    );

    // Change one hex digit of the ciphertext: the checksum no longer matches.
    let mut changed = ks.clone();
    let message = changed["crypto"]["cipher"]["message"]
        .as_str()
        .expect("message")
        .to_string();
    let i = usize::from(input.flip) % message.len();
    let mut digits: Vec<char> = message.chars().collect();
    digits[i] = if digits[i] == '0' { '1' } else { '0' };
    changed["crypto"]["cipher"]["message"] = Value::String(digits.into_iter().collect());
    assert_eq!(
        eip2335::decrypt(&changed.to_string(), &input.password).err(),
        Some(KeystoreError::ChecksumMismatch)
    );

    // A declared pubkey of another key is refused.
    let mut other = ks;
    let mut pk = declared;
    pk[47] ^= 1;
    other["pubkey"] = Value::String(hex::encode(&pk));
    assert!(matches!(
        eip2335::decrypt_bls(&other.to_string(), &input.password),
        Err(KeystoreError::PubkeyMismatch)
    ));
}

/// The keystore with the hostile parameters of `kdf` written in (each over the ceilings:
/// scrypt with `128·n·r·p` over 512 MiB, PBKDF2 with `c` over 2^20), or `None` for tiny ones.
fn hostile(kdf: &Kdf, ks: &Value) -> Option<Value> {
    let mut ks = ks.clone();
    let module = &mut ks["crypto"]["kdf"];
    match *kdf {
        Kdf::HostileScrypt { log_n, r, p } => {
            let n = 1u64 << (1 + log_n % 63);
            let (r, p) = (u64::from(r.max(1)), u64::from(p.max(1)));
            let bytes = 128u128
                .checked_mul(u128::from(n))
                .and_then(|b| b.checked_mul(u128::from(r)))
                .and_then(|b| b.checked_mul(u128::from(p)));
            if bytes.is_some_and(|b| b <= eip2335::SCRYPT_MAX_BYTES) {
                return None;
            }
            module["function"] = "scrypt".into();
            module["params"] = serde_json::json!({
                "dklen": 32, "n": n, "r": r, "p": p, "salt": "00".repeat(32)
            });
        }
        Kdf::HostilePbkdf2 { c } => {
            if c <= eip2335::PBKDF2_MAX_C {
                return None;
            }
            module["params"]["c"] = c.into();
        }
        _ => return None,
    }
    Some(ks)
}

/// A v4-shaped UUID from fuzz bytes (the keystore's `uuid` is not checked on read).
fn palisade_uuid(b: &[u8; 16]) -> uuid::Uuid {
    uuid::Builder::from_random_bytes(*b).into_uuid()
}
