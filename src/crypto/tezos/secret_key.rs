//! [`SecretKey`]: Tezos secret keys (32-byte Ed25519 seed, 32-byte big-endian
//! secp256k1 / P-256 scalar, 32-byte little-endian BLS scalar, 3872-byte ML-DSA-44 expanded
//! key and public key), their base58 forms (`edsk…`, `spsk…`, `p2sk…`, `BLsk…`, `mdsk…`) and
//! generation. Zeroized on drop, `Debug` redacted. Signing is in `signing`, octez encryption
//! in `encrypted`.

use std::fmt;

use k256::elliptic_curve::Generate;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::chain::tezos::base58::{self, Prefix};

use super::{Curve, KeyError, PublicKey};

pub(super) const SECRET_LEN: usize = 32;

/// The secret itself; every variant zeroizes its memory on drop.
pub(super) enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    Secp256k1(k256::ecdsa::SigningKey),
    P256(p256::ecdsa::SigningKey),
    Bls(blst::min_pk::SecretKey),
    Mldsa44(Box<Mldsa44Secret>),
}

/// A tz5 secret: the decoded FIPS 204 signing key and its 2560-byte `skEncode` form (octez
/// keeps only that form, never the 32-byte seed, so palisade keeps it to write `mdsk…` back).
/// Both zeroize on drop (ml-dsa's `zeroize` feature, [`Zeroizing`]). The key (about 40 KiB
/// with its NTT forms) is built by value and then boxed; the moved-from copy is not wiped
/// (Rust gives no hook for that), as for the other curves' keys.
pub(super) struct Mldsa44Secret {
    pub(super) key: ml_dsa::ExpandedSigningKey<ml_dsa::MlDsa44>,
    encoded: Zeroizing<Vec<u8>>,
}

/// Length of the FIPS 204 `skEncode` form of an ML-DSA-44 key: ρ 32 ‖ K 32 ‖ tr 64 ‖ s1 384 ‖
/// s2 384 ‖ t0 1664.
pub const MLDSA44_EXPANDED_LEN: usize = 2560;

/// Whether every 3-bit coefficient of the encoded s1 and s2 of an ML-DSA-44 `skEncode` (bytes
/// 128..896, FIPS 204 Algorithm 24, `BitPack(s, η, η)` with η = 2) is at most 2η = 4, i.e. the
/// coefficient η − v lies in [−η, η]. A key that fails this is malformed: ml-dsa's decoder
/// does not check it (and may panic on it).
fn mldsa44_small_coefficients_in_range(expanded: &[u8]) -> bool {
    // Eight 3-bit values per 3 bytes, little-endian bit order.
    expanded[128..896].chunks_exact(3).all(|c| {
        let word = u32::from(c[0]) | u32::from(c[1]) << 8 | u32::from(c[2]) << 16;
        (0..8).all(|i| (word >> (3 * i)) & 7 <= 4)
    })
}

/// A Tezos secret key. `Debug` is redacted; the key material is zeroized on drop.
pub struct SecretKey {
    pub(super) secret: Secret,
    pub(super) public: PublicKey,
}

// Every `Secret` variant wipes itself on drop (ed25519-dalek with its `zeroize`
// feature, the RustCrypto ECDSA signing keys, and blst's `#[zeroize(drop)]`).
impl ZeroizeOnDrop for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("curve", &self.public.curve)
            .field("public_key_hash", &self.public.pkh_b58())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SecretKey {
    /// Build from the raw bytes found inside the base58 form: an Ed25519 32-byte
    /// seed (or 64-byte seed || public key, checked); a 32-byte big-endian
    /// secp256k1 / P-256 scalar; a 32-byte little-endian BLS scalar; for ML-DSA-44 octez's
    /// 3872 bytes, the 2560-byte FIPS 204 expanded key then the 1312-byte public key. Zero and
    /// out-of-range scalars are refused.
    ///
    /// # Errors
    /// [`KeyError::InvalidLength`]; [`KeyError::InvalidSecretKey`] for a zero or out-of-range
    /// scalar, or a tz5 key that fails its checks (see `mldsa44_from_raw`);
    /// [`KeyError::PublicKeyMismatch`] for a public key half that is not the secret's.
    pub fn from_raw(curve: Curve, bytes: &[u8]) -> Result<Self, KeyError> {
        let len_err = |expected| KeyError::InvalidLength {
            what: "secret key",
            expected,
            actual: bytes.len(),
        };
        let secret = match curve {
            Curve::Mldsa44 => return Self::mldsa44_from_raw(bytes),
            Curve::Ed25519 => {
                let (seed, pk_half) = match bytes.len() {
                    32 => (bytes, None),
                    64 => (&bytes[..32], Some(&bytes[32..])),
                    _ => return Err(len_err(SECRET_LEN)),
                };
                let mut seed_arr = Zeroizing::new([0u8; 32]);
                seed_arr.copy_from_slice(seed);
                let sk = ed25519_dalek::SigningKey::from_bytes(&seed_arr);
                if let Some(pk_half) = pk_half
                    && sk.verifying_key().as_bytes().as_slice() != pk_half
                {
                    return Err(KeyError::PublicKeyMismatch);
                }
                Secret::Ed25519(sk)
            }
            Curve::Secp256k1 => {
                if bytes.len() != SECRET_LEN {
                    return Err(len_err(SECRET_LEN));
                }
                Secret::Secp256k1(
                    k256::ecdsa::SigningKey::from_slice(bytes)
                        .map_err(|_| KeyError::InvalidSecretKey(curve))?,
                )
            }
            Curve::P256 => {
                if bytes.len() != SECRET_LEN {
                    return Err(len_err(SECRET_LEN));
                }
                Secret::P256(
                    p256::ecdsa::SigningKey::from_slice(bytes)
                        .map_err(|_| KeyError::InvalidSecretKey(curve))?,
                )
            }
            Curve::Bls => {
                if bytes.len() != SECRET_LEN {
                    return Err(len_err(SECRET_LEN));
                }
                // Tezos stores the scalar little-endian; blst reads big-endian.
                let mut be = Zeroizing::new([0u8; 32]);
                be.copy_from_slice(bytes);
                be.reverse();
                // blst refuses zero and scalars ≥ r.
                Secret::Bls(
                    blst::min_pk::SecretKey::from_bytes(be.as_slice())
                        .map_err(|_| KeyError::InvalidSecretKey(curve))?,
                )
            }
        };
        Ok(Self::from_secret(secret))
    }

    /// A tz5 key from octez's 3872-byte form: the 2560-byte FIPS 204 `skEncode` key then the
    /// 1312-byte public key (`src/lib_crypto/mldsa44.ml`, `Secret_key`). octez checks only the
    /// length; palisade also checks that s1 and s2 are in range, that the public key is the one
    /// the secret key derives, and that a signature made with it verifies under that public
    /// key (which checks tr, the public key's hash inside the secret key). t0 cannot be checked
    /// without the seed; a key whose t0 is corrupted makes some signatures that do not verify,
    /// and [`SecretKey::sign`] refuses those.
    fn mldsa44_from_raw(bytes: &[u8]) -> Result<Self, KeyError> {
        let expected = Curve::Mldsa44.secret_key_prefix().raw_len();
        if bytes.len() != expected {
            return Err(KeyError::InvalidLength {
                what: "secret key",
                expected,
                actual: bytes.len(),
            });
        }
        let (expanded, pk) = bytes.split_at(MLDSA44_EXPANDED_LEN);
        if !mldsa44_small_coefficients_in_range(expanded) {
            return Err(KeyError::InvalidSecretKey(Curve::Mldsa44));
        }
        let encoded: &ml_dsa::ExpandedSigningKeyBytes<ml_dsa::MlDsa44> = expanded
            .try_into()
            .map_err(|_| KeyError::InvalidSecretKey(Curve::Mldsa44))?;
        // The only decoder of the 2560-byte form ml-dsa has; its panics come from the
        // out-of-range coefficients refused above.
        #[allow(deprecated)]
        let key = ml_dsa::ExpandedSigningKey::<ml_dsa::MlDsa44>::from_expanded(encoded);
        let sk = Self::from_secret(Secret::Mldsa44(Box::new(Mldsa44Secret {
            key,
            encoded: Zeroizing::new(expanded.to_vec()),
        })));
        if sk.public.bytes != pk {
            return Err(KeyError::PublicKeyMismatch);
        }
        // `sign` verifies its tz5 signature under the public key before returning it.
        sk.sign(b"palisade: tz5 secret key check", 3)
            .map_err(|_| KeyError::InvalidSecretKey(Curve::Mldsa44))?;
        Ok(sk)
    }

    fn from_secret(secret: Secret) -> Self {
        let (curve, bytes): (Curve, Vec<u8>) = match &secret {
            Secret::Ed25519(sk) => (Curve::Ed25519, sk.verifying_key().as_bytes().to_vec()),
            Secret::Secp256k1(sk) => (
                Curve::Secp256k1,
                sk.verifying_key().to_sec1_point(true).as_bytes().to_vec(),
            ),
            Secret::P256(sk) => (
                Curve::P256,
                sk.verifying_key().to_sec1_point(true).as_bytes().to_vec(),
            ),
            Secret::Bls(sk) => (Curve::Bls, sk.sk_to_pk().compress().to_vec()),
            Secret::Mldsa44(sk) => (Curve::Mldsa44, sk.key.verifying_key().encode().to_vec()),
        };
        SecretKey {
            secret,
            public: PublicKey { curve, bytes },
        }
    }

    /// Parse `edsk…` (32-byte seed or 64-byte seed || public key), `spsk…`,
    /// `p2sk…`, `BLsk…` or `mdsk…` (3872 bytes, see [`SecretKey::from_raw`]).
    ///
    /// # Errors
    /// [`KeyError`]: bad base58, an unknown prefix, a wrong length, an invalid key, or (`edsk`
    /// with its public key, `mdsk`) a public key half that is not the secret's.
    pub fn from_b58(s: &str) -> Result<Self, KeyError> {
        let candidates = [
            Prefix::Ed25519Seed,
            Prefix::Ed25519SecretKey,
            Prefix::Secp256k1SecretKey,
            Prefix::P256SecretKey,
            Prefix::Bls12381SecretKey,
            Prefix::Mldsa44SecretKey,
        ];
        let (prefix, raw) = base58::decode_any(s, &candidates)?;
        let raw = Zeroizing::new(raw);
        let curve = match prefix {
            Prefix::Ed25519Seed | Prefix::Ed25519SecretKey => Curve::Ed25519,
            Prefix::Secp256k1SecretKey => Curve::Secp256k1,
            Prefix::P256SecretKey => Curve::P256,
            Prefix::Mldsa44SecretKey => Curve::Mldsa44,
            _ => Curve::Bls,
        };
        Self::from_raw(curve, &raw)
    }

    /// `edsk…` (32-byte seed form), `spsk…`, `p2sk…`, `BLsk…` or `mdsk…`.
    pub fn to_b58(&self) -> Zeroizing<String> {
        let raw = self.raw_secret();
        Zeroizing::new(base58::encode(
            self.curve().secret_key_prefix(),
            raw.as_slice(),
        ))
    }

    /// The raw secret in octez's `Secret_key.to_bytes` form: the 32-byte Ed25519 seed, the
    /// 32-byte big-endian ECDSA scalar (as PKCS#11 wants them in `CKA_VALUE`), the 32-byte
    /// little-endian BLS scalar, or for tz5 the 2560-byte expanded key followed by the
    /// 1312-byte public key (3872 bytes).
    pub(crate) fn raw_secret(&self) -> Zeroizing<Vec<u8>> {
        if let Secret::Mldsa44(sk) = &self.secret {
            let mut out = Zeroizing::new(Vec::with_capacity(
                MLDSA44_EXPANDED_LEN + self.public.bytes.len(),
            ));
            out.extend_from_slice(&sk.encoded);
            out.extend_from_slice(&self.public.bytes);
            return out;
        }
        let mut out = Zeroizing::new(vec![0u8; 32]);
        match &self.secret {
            Secret::Mldsa44(_) => unreachable!("handled above"),
            Secret::Ed25519(sk) => out.copy_from_slice(sk.as_bytes()),
            Secret::Secp256k1(sk) => {
                let mut b = sk.to_bytes();
                out.copy_from_slice(&b);
                b.zeroize();
            }
            Secret::P256(sk) => {
                let mut b = sk.to_bytes();
                out.copy_from_slice(&b);
                b.zeroize();
            }
            Secret::Bls(sk) => {
                let mut b = sk.to_bytes();
                out.copy_from_slice(&b);
                b.zeroize();
                out.reverse();
            }
        }
        out
    }

    /// octez's deterministic nonce of `data` for this key (`src/lib_crypto/{ed25519,secp256k1,
    /// p256,bls,mldsa44}.ml`, `deterministic_nonce`): HMAC-SHA256 keyed with the raw secret key
    /// in octez's `Secret_key.to_bytes` form (the 32-byte Ed25519 seed, the big-endian ECDSA
    /// scalar, the little-endian BLS scalar, tz5's 3872 bytes), over `data`. 32 bytes. Bakers use it as the seed
    /// nonce of a block (`data` is then the 4-byte big-endian level).
    pub fn deterministic_nonce(&self, data: &[u8]) -> Zeroizing<[u8; 32]> {
        use hmac::{KeyInit, Mac};
        let key = self.raw_secret();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(data);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// blake2b-256 of [`SecretKey::deterministic_nonce`] (octez `deterministic_nonce_hash`):
    /// the nonce hash a baker commits to in its block, 32 bytes.
    pub fn deterministic_nonce_hash(&self, data: &[u8]) -> [u8; 32] {
        super::blake2b_256(self.deterministic_nonce(data).as_slice())
    }

    /// A fresh key from the operating system's CSPRNG.
    ///
    /// # Panics
    /// If the operating system's random number generator fails.
    pub fn generate(curve: Curve) -> Self {
        loop {
            let ikm = Zeroizing::new(<[u8; 32] as Generate>::generate());
            let secret = match curve {
                Curve::Mldsa44 => {
                    let key =
                        ml_dsa::ExpandedSigningKey::<ml_dsa::MlDsa44>::from_seed((&*ikm).into());
                    #[allow(deprecated)]
                    let mut expanded = key.to_expanded();
                    let encoded = Zeroizing::new(expanded.to_vec());
                    expanded.zeroize();
                    Some(Secret::Mldsa44(Box::new(Mldsa44Secret { key, encoded })))
                }
                Curve::Bls => blst::min_pk::SecretKey::key_gen(ikm.as_slice(), &[])
                    .map(Secret::Bls)
                    .ok(),
                // Ed25519 seeds are any 32 bytes; ECDSA retries on the (negligible)
                // chance of an out-of-range scalar.
                _ => match Self::from_raw(curve, ikm.as_slice()) {
                    Ok(sk) => return sk,
                    Err(_) => None,
                },
            };
            if let Some(secret) = secret {
                return Self::from_secret(secret);
            }
        }
    }

    /// The key's curve.
    pub fn curve(&self) -> Curve {
        self.public.curve
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tezos::base58::Base58Error;
    use crate::crypto::tezos::Signature;
    use crate::crypto::tezos::test_vectors::{s, vectors};

    #[test]
    fn vectors_taquito_reports_64_byte_form_of_seed_key() {
        // The note on the 32-byte vector gives the 64-byte form of the same key.
        for v in vectors() {
            let Some(note) = v["note"].as_str() else {
                continue;
            };
            let Some(long) = note.split_whitespace().find(|w| w.starts_with("edsk")) else {
                continue;
            };
            let a = SecretKey::from_b58(s(&v, "secret_key")).unwrap();
            let b = SecretKey::from_b58(long).unwrap();
            assert_eq!(a.public_key(), b.public_key());
            assert_eq!(a.to_b58(), b.to_b58());
        }
    }

    #[test]
    fn generated_keys_round_trip_and_sign() {
        for curve in Curve::ALL {
            let sk = SecretKey::generate(curve);
            assert_eq!(sk.curve(), curve);
            let back = SecretKey::from_b58(&sk.to_b58()).unwrap();
            assert_eq!(back.public_key(), sk.public_key());
            let version = if curve == Curve::Mldsa44 { 3 } else { 2 };
            let sig = sk.sign(b"hello", version).unwrap();
            assert_eq!(sig.as_bytes().len(), curve.signature_len());
            assert!(sk.public_key().verify(b"hello", &sig, version));
            assert!(!sk.public_key().verify(b"hellp", &sig, version));
            let parsed = Signature::from_b58(&sig.to_b58()).unwrap();
            assert_eq!(parsed, sig);
            assert!(
                sk.public_key()
                    .pkh_b58()
                    .starts_with(curve.pkh_prefix().text())
            );
            let other = SecretKey::generate(curve);
            assert!(!other.public_key().verify(b"hello", &sig, version));
        }
    }

    #[test]
    fn debug_and_errors_hold_no_key_material() {
        for v in vectors() {
            let sk = SecretKey::from_b58(s(&v, "secret_key")).unwrap();
            let dbg = format!("{sk:?} {sk:#?}");
            let raw = sk.raw_secret();
            let b58 = sk.to_b58();
            assert!(dbg.contains("redacted"));
            assert!(!dbg.contains(&b58[4..14]), "{dbg}");
            assert!(!dbg.contains(&hex::encode(&raw[..])[..16]));
            assert!(!dbg.contains(&hex::encode_upper(&raw[..])[..16]));
            // Decimal byte lists, as a derived Debug of an array would print.
            assert!(!dbg.contains(&format!("{:?}", &raw[..4])[1..]));
            assert!(!dbg.contains(&s(&v, "secret_key")[4..14]));
        }
        // Errors about malformed secret keys carry no part of the input.
        let good = SecretKey::generate(Curve::Secp256k1).to_b58();
        let mut chars: Vec<char> = good.chars().collect();
        chars[30] = if chars[30] == 'z' { 'y' } else { 'z' };
        let bad: String = chars.into_iter().collect();
        let err = SecretKey::from_b58(&bad).unwrap_err();
        let msg = format!("{err} {err:?}");
        assert!(
            !msg.contains(&good[4..12]) && !msg.contains(&bad[4..12]),
            "{msg}"
        );
    }

    #[test]
    fn secret_key_validation() {
        for curve in [Curve::Secp256k1, Curve::P256, Curve::Bls] {
            assert_eq!(
                SecretKey::from_raw(curve, &[0u8; 32]).unwrap_err(),
                KeyError::InvalidSecretKey(curve),
                "zero {curve}"
            );
            assert_eq!(
                SecretKey::from_raw(curve, &[0xffu8; 32]).unwrap_err(),
                KeyError::InvalidSecretKey(curve),
                "out of range {curve}"
            );
            assert!(matches!(
                SecretKey::from_raw(curve, &[1u8; 31]),
                Err(KeyError::InvalidLength { .. })
            ));
        }
        // A 64-byte edsk whose public half belongs to another seed.
        let a = SecretKey::from_raw(Curve::Ed25519, &[1u8; 32]).unwrap();
        let b = SecretKey::from_raw(Curve::Ed25519, &[2u8; 32]).unwrap();
        let mut mixed = Zeroizing::new(vec![1u8; 32]);
        mixed.extend_from_slice(b.public_key().as_bytes());
        assert_eq!(
            SecretKey::from_raw(Curve::Ed25519, &mixed).unwrap_err(),
            KeyError::PublicKeyMismatch
        );
        let mut good = Zeroizing::new(vec![1u8; 32]);
        good.extend_from_slice(a.public_key().as_bytes());
        let full = base58::encode(Prefix::Ed25519SecretKey, &good);
        assert_eq!(
            SecretKey::from_b58(&full).unwrap().public_key(),
            a.public_key()
        );
        let mixed_b58 = base58::encode(Prefix::Ed25519SecretKey, &mixed);
        assert_eq!(
            SecretKey::from_b58(&mixed_b58).unwrap_err(),
            KeyError::PublicKeyMismatch
        );
        // A public key is not a secret key.
        assert!(matches!(
            SecretKey::from_b58(&a.public_key().to_b58()),
            Err(KeyError::Base58(Base58Error::WrongPrefix { .. }))
        ));
    }

    #[test]
    fn bls_secret_key_is_little_endian() {
        // Scalar 1, little-endian, gives the G1 generator.
        let mut le = [0u8; 32];
        le[0] = 1;
        let sk = SecretKey::from_raw(Curve::Bls, &le).unwrap();
        let g1 = blst::min_pk::SecretKey::from_bytes(&{
            let mut be = [0u8; 32];
            be[31] = 1;
            be
        })
        .unwrap()
        .sk_to_pk()
        .compress();
        assert_eq!(sk.public_key().as_bytes(), g1.as_slice());
        assert_eq!(sk.raw_secret().as_slice(), le.as_slice());
    }
}
