//! Tezos keys and signatures: tz1 (Ed25519), tz2 (secp256k1), tz3 (P-256)
//! and tz4 (BLS12-381, min-pk).
//!
//! Signing follows octez:
//! - tz1: Ed25519 (RFC 8032) over `blake2b-256(data)`;
//! - tz2 / tz3: ECDSA over the 32-byte `blake2b-256(data)` used directly as the
//!   prehash, RFC 6979 nonces, `r || s` (64 bytes), always low-S;
//! - tz4: BLS min-pk over `data` itself (no pre-hash). Signature version 1 uses
//!   the message-augmentation ciphersuite (`pk || data`), version 2 and later
//!   the proof-of-possession ciphersuite. Version 0 cannot sign with BLS.
//!
//! Secret material lives only in types that zeroize on drop; [`SecretKey`]'s
//! `Debug` shows the curve and the public key hash, never key bytes, and no
//! error carries key bytes.

use std::fmt;

use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::{U20, U32};
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use ed25519_dalek::Signer as _;
use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::elliptic_curve::Generate;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::chain::tezos::base58::{self, Base58Error, Prefix};

/// DST of the BLS proof-of-possession ciphersuite's signatures (version ≥ 2).
pub const BLS_DST_POP_SIG: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// DST of the BLS message-augmentation ciphersuite's signatures (version 1).
pub const BLS_DST_AUG_SIG: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_AUG_";
/// DST of BLS proofs of possession.
pub const BLS_DST_POP_PROOF: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// PBKDF2-HMAC-SHA512 iterations of octez's encrypted secret keys.
pub const ENCRYPTION_PBKDF2_ROUNDS: u32 = 32768;
/// Salt length of octez's encrypted secret keys.
pub const ENCRYPTION_SALT_LEN: usize = 8;

const SECRET_LEN: usize = 32;
const SECRETBOX_TAG_LEN: usize = 16;

/// The four Tezos signature schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Curve {
    /// tz1
    Ed25519,
    /// tz2
    Secp256k1,
    /// tz3
    P256,
    /// tz4 (BLS12-381, public keys in G1)
    Bls,
}

impl Curve {
    /// All curves, in tag order.
    pub const ALL: [Curve; 4] = [Curve::Ed25519, Curve::Secp256k1, Curve::P256, Curve::Bls];

    /// Tag byte of the 21-byte binary public key hash (and public key) encoding.
    pub const fn pkh_tag(self) -> u8 {
        match self {
            Curve::Ed25519 => 0,
            Curve::Secp256k1 => 1,
            Curve::P256 => 2,
            Curve::Bls => 3,
        }
    }

    /// Inverse of [`Curve::pkh_tag`].
    pub const fn from_pkh_tag(tag: u8) -> Option<Curve> {
        match tag {
            0 => Some(Curve::Ed25519),
            1 => Some(Curve::Secp256k1),
            2 => Some(Curve::P256),
            3 => Some(Curve::Bls),
            _ => None,
        }
    }

    /// Short lower-case name: `ed25519`, `secp256k1`, `p256`, `bls`.
    pub const fn name(self) -> &'static str {
        match self {
            Curve::Ed25519 => "ed25519",
            Curve::Secp256k1 => "secp256k1",
            Curve::P256 => "p256",
            Curve::Bls => "bls",
        }
    }

    /// The curve named by [`Curve::name`] (`ed25519`, `secp256k1`, `p256`, `bls`).
    pub fn from_name(name: &str) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.name() == name)
    }

    /// `tz1` … `tz4`.
    pub const fn pkh_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Ed25519PublicKeyHash,
            Curve::Secp256k1 => Prefix::Secp256k1PublicKeyHash,
            Curve::P256 => Prefix::P256PublicKeyHash,
            Curve::Bls => Prefix::Bls12381PublicKeyHash,
        }
    }

    /// `edpk`, `sppk`, `p2pk`, `BLpk`.
    pub const fn public_key_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Ed25519PublicKey,
            Curve::Secp256k1 => Prefix::Secp256k1PublicKey,
            Curve::P256 => Prefix::P256PublicKey,
            Curve::Bls => Prefix::Bls12381PublicKey,
        }
    }

    /// `edsk` (32-byte seed form), `spsk`, `p2sk`, `BLsk`.
    pub const fn secret_key_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Ed25519Seed,
            Curve::Secp256k1 => Prefix::Secp256k1SecretKey,
            Curve::P256 => Prefix::P256SecretKey,
            Curve::Bls => Prefix::Bls12381SecretKey,
        }
    }

    /// `edesk`, `spesk`, `p2esk`, `BLesk`.
    pub const fn encrypted_secret_key_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Ed25519EncryptedSeed,
            Curve::Secp256k1 => Prefix::Secp256k1EncryptedSecretKey,
            Curve::P256 => Prefix::P256EncryptedSecretKey,
            Curve::Bls => Prefix::Bls12381EncryptedSecretKey,
        }
    }

    /// `edsig`, `spsig1`, `p2sig`, `BLsig`.
    pub const fn signature_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Ed25519Signature,
            Curve::Secp256k1 => Prefix::Secp256k1Signature,
            Curve::P256 => Prefix::P256Signature,
            Curve::Bls => Prefix::Bls12381Signature,
        }
    }

    /// Public key length: 32, 33, 33, 48.
    pub const fn public_key_len(self) -> usize {
        self.public_key_prefix().raw_len()
    }

    /// Signature length: 64, 64, 64, 96.
    pub const fn signature_len(self) -> usize {
        self.signature_prefix().raw_len()
    }

    fn from_public_key_prefix(p: Prefix) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.public_key_prefix() == p)
    }

    fn from_pkh_prefix(p: Prefix) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.pkh_prefix() == p)
    }

    fn from_signature_prefix(p: Prefix) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.signature_prefix() == p)
    }

    fn from_encrypted_prefix(p: Prefix) -> Option<Curve> {
        Curve::ALL
            .into_iter()
            .find(|c| c.encrypted_secret_key_prefix() == p)
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors reading keys and signatures. Never contains key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Base58check decoding failed.
    #[error(transparent)]
    Base58(#[from] Base58Error),
    /// A raw value has the wrong length.
    #[error("invalid {what} length: expected {expected} bytes, got {actual}")]
    InvalidLength {
        /// What was being read.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        actual: usize,
    },
    /// The bytes are not a valid secret key for the curve (e.g. zero or out of range).
    #[error("invalid {0} secret key")]
    InvalidSecretKey(Curve),
    /// The bytes are not a valid public key (point) for the curve.
    #[error("invalid {0} public key")]
    InvalidPublicKey(Curve),
    /// A 64-byte `edsk` whose public key half does not belong to its seed.
    #[error("64-byte edsk: the public key half does not match the seed")]
    PublicKeyMismatch,
    /// Wrong password, or the encrypted key is corrupted.
    #[error("cannot decrypt the secret key: wrong password or corrupted data")]
    BadPassword,
    /// A scheme-less `sig…` signature was given where the curve is unknown.
    #[error("a generic `sig…` signature needs the signer's curve")]
    GenericSignatureNeedsCurve,
    /// The value belongs to another curve than the one required.
    #[error("expected a {expected} value, got a {found} one")]
    CurveMismatch {
        /// Required curve.
        expected: Curve,
        /// Curve of the value.
        found: Curve,
    },
}

/// Errors producing a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// BLS signing needs signature version 1 or later.
    #[error("BLS signing requires signature version 1 or later, got version {0}")]
    BlsNeedsVersion(u8),
    /// Proofs of possession exist only for BLS keys.
    #[error("proof of possession needs a BLS key, this key is {0}")]
    NotBls(Curve),
    /// The override public key of a proof of possession is not a BLS key.
    #[error("proof of possession: the override public key is {0}, not bls")]
    OverrideNotBls(Curve),
    /// The signing backend failed (not expected for valid keys).
    #[error("{0} signing failed")]
    Backend(Curve),
}

/// BLAKE2b with a 32-byte output.
pub fn blake2b_256(data: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(data).into()
}

/// BLAKE2b with a 20-byte output (public key hashes).
pub fn blake2b_160(data: &[u8]) -> [u8; 20] {
    Blake2b::<U20>::digest(data).into()
}

/// Encode a public key hash as `tz1…`/`tz2…`/`tz3…`/`tz4…`.
pub fn encode_pkh(curve: Curve, hash: &[u8; 20]) -> String {
    base58::encode(curve.pkh_prefix(), hash)
}

/// Decode a `tz1…`/`tz2…`/`tz3…`/`tz4…` address.
pub fn decode_pkh(s: &str) -> Result<(Curve, [u8; 20]), KeyError> {
    let candidates = Curve::ALL.map(Curve::pkh_prefix);
    let (prefix, raw) = base58::decode_any(s, &candidates)?;
    let curve = Curve::from_pkh_prefix(prefix).expect("candidate is a pkh prefix");
    let hash: [u8; 20] = raw.try_into().expect("length checked by base58");
    Ok((curve, hash))
}

// ---------------------------------------------------------------------------
// Public keys
// ---------------------------------------------------------------------------

/// A Tezos public key: 32-byte Ed25519, 33-byte compressed secp256k1 / P-256,
/// or 48-byte compressed BLS12-381 G1 point. Always a valid point.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    curve: Curve,
    bytes: Vec<u8>,
}

impl PublicKey {
    /// Build from raw bytes, checking the length and that the point is valid
    /// (on the curve; for BLS also in the subgroup and not the identity).
    pub fn from_raw(curve: Curve, bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != curve.public_key_len() {
            return Err(KeyError::InvalidLength {
                what: "public key",
                expected: curve.public_key_len(),
                actual: bytes.len(),
            });
        }
        let ok = match curve {
            Curve::Ed25519 => {
                let arr: &[u8; 32] = bytes.try_into().expect("length checked");
                ed25519_dalek::VerifyingKey::from_bytes(arr).is_ok()
            }
            // Only the compressed SEC1 form (tag 0x02 / 0x03) is a Tezos key.
            Curve::Secp256k1 => {
                matches!(bytes[0], 0x02 | 0x03)
                    && k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).is_ok()
            }
            Curve::P256 => {
                matches!(bytes[0], 0x02 | 0x03)
                    && p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).is_ok()
            }
            Curve::Bls => blst::min_pk::PublicKey::key_validate(bytes).is_ok(),
        };
        if !ok {
            return Err(KeyError::InvalidPublicKey(curve));
        }
        Ok(PublicKey {
            curve,
            bytes: bytes.to_vec(),
        })
    }

    /// Build from an HSM's public point: 32 raw bytes for Ed25519; for secp256k1 and
    /// P-256 a SEC1 point, uncompressed (65 bytes, `04‖x‖y`) or compressed (33 bytes),
    /// stored compressed as Tezos does. BLS is refused (no HSM holds BLS keys).
    ///
    /// # Errors
    /// [`KeyError::InvalidPublicKey`] for a point not on the curve, or a BLS curve.
    pub fn from_sec1_point(curve: Curve, point: &[u8]) -> Result<Self, KeyError> {
        let compressed: Vec<u8> = match curve {
            Curve::Ed25519 => point.to_vec(),
            Curve::Secp256k1 => k256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| KeyError::InvalidPublicKey(curve))?
                .to_sec1_point(true)
                .as_bytes()
                .to_vec(),
            Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| KeyError::InvalidPublicKey(curve))?
                .to_sec1_point(true)
                .as_bytes()
                .to_vec(),
            Curve::Bls => return Err(KeyError::InvalidPublicKey(curve)),
        };
        Self::from_raw(curve, &compressed)
    }

    /// The point as PKCS#11 stores it in `CKA_EC_POINT` (before DER wrapping): 32 bytes for
    /// Ed25519, the 65-byte uncompressed SEC1 form (`04‖x‖y`) for secp256k1 and P-256, the
    /// 48-byte compressed form for BLS.
    pub fn to_sec1_uncompressed(&self) -> Vec<u8> {
        match self.curve {
            Curve::Secp256k1 => k256::ecdsa::VerifyingKey::from_sec1_bytes(&self.bytes)
                .map(|vk| vk.to_sec1_point(false).as_bytes().to_vec())
                .unwrap_or_else(|_| self.bytes.clone()),
            Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.bytes)
                .map(|vk| vk.to_sec1_point(false).as_bytes().to_vec())
                .unwrap_or_else(|_| self.bytes.clone()),
            Curve::Ed25519 | Curve::Bls => self.bytes.clone(),
        }
    }

    /// Parse `edpk…`, `sppk…`, `p2pk…` or `BLpk…`.
    pub fn from_b58(s: &str) -> Result<Self, KeyError> {
        let candidates = Curve::ALL.map(Curve::public_key_prefix);
        let (prefix, raw) = base58::decode_any(s, &candidates)?;
        let curve = Curve::from_public_key_prefix(prefix).expect("candidate is a pk prefix");
        Self::from_raw(curve, &raw)
    }

    /// `edpk…`, `sppk…`, `p2pk…` or `BLpk…`.
    pub fn to_b58(&self) -> String {
        base58::encode(self.curve.public_key_prefix(), &self.bytes)
    }

    /// The key's curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// Raw key bytes (32, 33, 33 or 48 bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// BLAKE2b-160 of the key bytes.
    pub fn hash(&self) -> [u8; 20] {
        blake2b_160(&self.bytes)
    }

    /// The public key hash as `tz1…` … `tz4…`.
    pub fn pkh_b58(&self) -> String {
        encode_pkh(self.curve, &self.hash())
    }

    /// Binary public key hash: curve tag byte followed by the 20-byte hash.
    pub fn pkh_bytes(&self) -> [u8; 21] {
        let mut out = [0u8; 21];
        out[0] = self.curve.pkh_tag();
        out[1..].copy_from_slice(&self.hash());
        out
    }

    /// Verify `sig` over `data` with the rules of signature `version` (see the
    /// module docs). Returns `false` for a signature of another curve, for BLS
    /// with version 0, and for anything malformed. ECDSA signatures are
    /// accepted whether their `s` is low or high.
    pub fn verify(&self, data: &[u8], sig: &Signature, version: u8) -> bool {
        if sig.curve != self.curve {
            return false;
        }
        match self.curve {
            Curve::Ed25519 => {
                let Ok(vk) = ed25519_dalek::VerifyingKey::try_from(self.bytes.as_slice()) else {
                    return false;
                };
                let Ok(s) = ed25519_dalek::Signature::from_slice(&sig.bytes) else {
                    return false;
                };
                vk.verify_strict(&blake2b_256(data), &s).is_ok()
            }
            Curve::Secp256k1 => {
                let Ok(vk) = k256::ecdsa::VerifyingKey::from_sec1_bytes(&self.bytes) else {
                    return false;
                };
                let Ok(s) = k256::ecdsa::Signature::from_slice(&sig.bytes) else {
                    return false;
                };
                // k256 refuses high-S outright; normalize so any valid signature verifies.
                vk.verify_prehash(&blake2b_256(data), &s.normalize_s())
                    .is_ok()
            }
            Curve::P256 => {
                let Ok(vk) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.bytes) else {
                    return false;
                };
                let Ok(s) = p256::ecdsa::Signature::from_slice(&sig.bytes) else {
                    return false;
                };
                vk.verify_prehash(&blake2b_256(data), &s).is_ok()
            }
            Curve::Bls => {
                let (dst, aug): (&[u8], &[u8]) = match version {
                    0 => return false,
                    1 => (BLS_DST_AUG_SIG, &self.bytes),
                    _ => (BLS_DST_POP_SIG, &[]),
                };
                bls_verify(&self.bytes, &sig.bytes, data, dst, aug)
            }
        }
    }

    /// Verify a BLS proof of possession of this key (over its 48 compressed
    /// bytes). `false` for non-BLS keys.
    pub fn verify_proof_of_possession(&self, proof: &Signature) -> bool {
        self.curve == Curve::Bls
            && proof.curve == Curve::Bls
            && bls_verify(
                &self.bytes,
                &proof.bytes,
                &self.bytes,
                BLS_DST_POP_PROOF,
                &[],
            )
    }
}

fn bls_verify(pk: &[u8], sig: &[u8], msg: &[u8], dst: &[u8], aug: &[u8]) -> bool {
    let Ok(pk) = blst::min_pk::PublicKey::from_bytes(pk) else {
        return false;
    };
    let Ok(sig) = blst::min_pk::Signature::from_bytes(sig) else {
        return false;
    };
    sig.verify(true, msg, dst, aug, &pk, true) == blst::BLST_ERROR::BLST_SUCCESS
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_b58())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58())
    }
}

// ---------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------

/// A signature: 64 bytes (Ed25519, ECDSA `r || s`) or 96 bytes (BLS, compressed G2).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    curve: Curve,
    bytes: Vec<u8>,
}

impl Signature {
    /// Build from raw bytes (length checked only).
    pub fn from_raw(curve: Curve, bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != curve.signature_len() {
            return Err(KeyError::InvalidLength {
                what: "signature",
                expected: curve.signature_len(),
                actual: bytes.len(),
            });
        }
        Ok(Signature {
            curve,
            bytes: bytes.to_vec(),
        })
    }

    /// Build an ECDSA signature from the 64-byte `r‖s` an HSM returns (`CKM_ECDSA`),
    /// normalised to low-S (`s ≤ n/2`) as Tezos nodes require; other curves are taken as
    /// they are (length checked).
    ///
    /// # Errors
    /// [`KeyError::InvalidLength`] for a wrong length; [`KeyError::InvalidPublicKey`] is
    /// never returned; an out-of-range `r` or `s` gives [`KeyError::InvalidLength`] too.
    pub fn from_raw_low_s(curve: Curve, bytes: &[u8]) -> Result<Self, KeyError> {
        let bad = || KeyError::InvalidLength {
            what: "ECDSA signature (r‖s in range)",
            expected: curve.signature_len(),
            actual: bytes.len(),
        };
        let normalised: Vec<u8> = match curve {
            Curve::Secp256k1 => {
                let s = k256::ecdsa::Signature::from_slice(bytes).map_err(|_| bad())?;
                s.normalize_s().to_bytes().to_vec()
            }
            Curve::P256 => {
                let s = p256::ecdsa::Signature::from_slice(bytes).map_err(|_| bad())?;
                s.normalize_s().to_bytes().to_vec()
            }
            Curve::Ed25519 | Curve::Bls => bytes.to_vec(),
        };
        Self::from_raw(curve, &normalised)
    }

    /// Parse `edsig…`, `spsig1…`, `p2sig…` or `BLsig…`. A generic `sig…` is
    /// refused with [`KeyError::GenericSignatureNeedsCurve`]: use
    /// [`Signature::from_b58_for`].
    pub fn from_b58(s: &str) -> Result<Self, KeyError> {
        let mut candidates = Curve::ALL.map(Curve::signature_prefix).to_vec();
        candidates.push(Prefix::GenericSignature);
        let (prefix, raw) = base58::decode_any(s, &candidates)?;
        match Curve::from_signature_prefix(prefix) {
            Some(curve) => Self::from_raw(curve, &raw),
            None => Err(KeyError::GenericSignatureNeedsCurve),
        }
    }

    /// Parse a signature made with a `curve` key: its scheme prefix, or the
    /// generic `sig…` form (64 bytes, so not for BLS).
    pub fn from_b58_for(curve: Curve, s: &str) -> Result<Self, KeyError> {
        let candidates = [curve.signature_prefix(), Prefix::GenericSignature];
        match base58::decode_any(s, &candidates) {
            Ok((_, raw)) => Self::from_raw(curve, &raw),
            Err(Base58Error::WrongPrefix { .. }) => {
                // Say which curve it is, if it is a signature at all.
                let sig = Self::from_b58(s)?;
                Err(KeyError::CurveMismatch {
                    expected: curve,
                    found: sig.curve,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `edsig…`, `spsig1…`, `p2sig…` or `BLsig…`.
    pub fn to_b58(&self) -> String {
        base58::encode(self.curve.signature_prefix(), &self.bytes)
    }

    /// The scheme-less `sig…` form; `None` for BLS (96 bytes do not fit).
    pub fn to_generic_b58(&self) -> Option<String> {
        (self.bytes.len() == Prefix::GenericSignature.raw_len())
            .then(|| base58::encode(Prefix::GenericSignature, &self.bytes))
    }

    /// The signing key's curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// Raw signature bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_b58())
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58())
    }
}

/// Whether `sig` is an ECDSA (secp256k1 or P-256) signature with a valid
/// `r, s` and `s ≤ n/2`. `false` for Ed25519 and BLS signatures.
pub fn is_low_s(sig: &Signature) -> bool {
    match sig.curve {
        Curve::Secp256k1 => {
            k256::ecdsa::Signature::from_slice(&sig.bytes).is_ok_and(|s| s.normalize_s() == s)
        }
        Curve::P256 => {
            p256::ecdsa::Signature::from_slice(&sig.bytes).is_ok_and(|s| s.normalize_s() == s)
        }
        Curve::Ed25519 | Curve::Bls => false,
    }
}

// ---------------------------------------------------------------------------
// Secret keys
// ---------------------------------------------------------------------------

/// The secret itself; every variant zeroizes its memory on drop.
enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    Secp256k1(k256::ecdsa::SigningKey),
    P256(p256::ecdsa::SigningKey),
    Bls(blst::min_pk::SecretKey),
}

/// A Tezos secret key. `Debug` is redacted; the key material is zeroized on drop.
pub struct SecretKey {
    secret: Secret,
    public: PublicKey,
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
    /// secp256k1 / P-256 scalar; a 32-byte little-endian BLS scalar. Zero and
    /// out-of-range scalars are refused.
    pub fn from_raw(curve: Curve, bytes: &[u8]) -> Result<Self, KeyError> {
        let len_err = |expected| KeyError::InvalidLength {
            what: "secret key",
            expected,
            actual: bytes.len(),
        };
        let secret = match curve {
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
        };
        SecretKey {
            secret,
            public: PublicKey { curve, bytes },
        }
    }

    /// Parse `edsk…` (32-byte seed or 64-byte seed || public key), `spsk…`,
    /// `p2sk…` or `BLsk…`.
    pub fn from_b58(s: &str) -> Result<Self, KeyError> {
        let candidates = [
            Prefix::Ed25519Seed,
            Prefix::Ed25519SecretKey,
            Prefix::Secp256k1SecretKey,
            Prefix::P256SecretKey,
            Prefix::Bls12381SecretKey,
        ];
        let (prefix, raw) = base58::decode_any(s, &candidates)?;
        let raw = Zeroizing::new(raw);
        let curve = match prefix {
            Prefix::Ed25519Seed | Prefix::Ed25519SecretKey => Curve::Ed25519,
            Prefix::Secp256k1SecretKey => Curve::Secp256k1,
            Prefix::P256SecretKey => Curve::P256,
            _ => Curve::Bls,
        };
        Self::from_raw(curve, &raw)
    }

    /// Decrypt an octez encrypted key (`edesk…`, `spesk…`, `p2esk…`, `BLesk…`).
    ///
    /// Layout: `salt (8) || secretbox (48)`; the key is
    /// PBKDF2-HMAC-SHA512(password, salt, 32768 rounds, 32 bytes); XSalsa20-Poly1305
    /// with an all-zero nonce; the plaintext is the 32 raw secret bytes.
    pub fn from_encrypted_b58(s: &str, password: &[u8]) -> Result<Self, KeyError> {
        let candidates = Curve::ALL.map(Curve::encrypted_secret_key_prefix);
        let (prefix, raw) = base58::decode_any(s, &candidates)?;
        let curve = Curve::from_encrypted_prefix(prefix).expect("candidate is an esk prefix");
        let (salt, boxed) = raw.split_at(ENCRYPTION_SALT_LEN);
        // NaCl secretbox layout: tag (16) || ciphertext (32). Decrypt in place in a
        // buffer that is wiped on drop.
        let (tag, ciphertext) = boxed.split_at(SECRETBOX_TAG_LEN);
        let mut plain = Zeroizing::new([0u8; SECRET_LEN]);
        plain.copy_from_slice(ciphertext);
        secretbox(password, salt)
            .decrypt_in_place_detached(&Default::default(), &[], plain.as_mut_slice(), tag.into())
            .map_err(|_| KeyError::BadPassword)?;
        Self::from_raw(curve, plain.as_slice())
    }

    /// Encrypt in octez's format (inverse of [`SecretKey::from_encrypted_b58`]).
    /// `salt` must be fresh random bytes for real keys.
    pub fn to_encrypted_b58(&self, password: &[u8], salt: [u8; 8]) -> String {
        let mut buf = self.raw_secret();
        let tag = secretbox(password, &salt)
            .encrypt_in_place_detached(&Default::default(), &[], buf.as_mut_slice())
            .expect("secretbox encryption without associated data cannot fail");
        let mut payload = Vec::with_capacity(Prefix::Ed25519EncryptedSeed.raw_len());
        payload.extend_from_slice(&salt);
        payload.extend_from_slice(&tag);
        payload.extend_from_slice(buf.as_slice());
        base58::encode(self.curve().encrypted_secret_key_prefix(), &payload)
    }

    /// `edsk…` (32-byte seed form), `spsk…`, `p2sk…` or `BLsk…`.
    pub fn to_b58(&self) -> Zeroizing<String> {
        let raw = self.raw_secret();
        Zeroizing::new(base58::encode(
            self.curve().secret_key_prefix(),
            raw.as_slice(),
        ))
    }

    /// The raw secret in Tezos form (BLS little-endian): the Ed25519 seed, the big-endian
    /// ECDSA scalar, as PKCS#11 wants them in `CKA_VALUE`.
    pub(crate) fn raw_secret(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        match &self.secret {
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

    /// A fresh key from the operating system's CSPRNG.
    ///
    /// # Panics
    /// If the operating system's random number generator fails.
    pub fn generate(curve: Curve) -> Self {
        loop {
            let ikm = Zeroizing::new(<[u8; 32] as Generate>::generate());
            let secret = match curve {
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

    /// Sign `data` (see the module docs). `version` only matters for BLS:
    /// 0 is refused, 1 is the augmented scheme, 2+ the proof-of-possession scheme.
    pub fn sign(&self, data: &[u8], version: u8) -> Result<Signature, SigningError> {
        let bytes = match &self.secret {
            Secret::Ed25519(sk) => sk.sign(&blake2b_256(data)).to_bytes().to_vec(),
            Secret::Secp256k1(sk) => {
                let sig: k256::ecdsa::Signature = sk
                    .sign_prehash(&blake2b_256(data))
                    .map_err(|_| SigningError::Backend(Curve::Secp256k1))?;
                sig.normalize_s().to_bytes().to_vec()
            }
            Secret::P256(sk) => {
                let sig: p256::ecdsa::Signature = sk
                    .sign_prehash(&blake2b_256(data))
                    .map_err(|_| SigningError::Backend(Curve::P256))?;
                sig.normalize_s().to_bytes().to_vec()
            }
            Secret::Bls(sk) => match version {
                0 => return Err(SigningError::BlsNeedsVersion(version)),
                1 => sk
                    .sign(data, BLS_DST_AUG_SIG, &self.public.bytes)
                    .compress()
                    .to_vec(),
                _ => sk.sign(data, BLS_DST_POP_SIG, &[]).compress().to_vec(),
            },
        };
        Ok(Signature {
            curve: self.curve(),
            bytes,
        })
    }

    /// BLS proof of possession: a signature with the PoP DST over the 48-byte
    /// compressed public key (this key's, or `override_pk`'s when given).
    pub fn prove_possession(
        &self,
        override_pk: Option<&PublicKey>,
    ) -> Result<Signature, SigningError> {
        let Secret::Bls(sk) = &self.secret else {
            return Err(SigningError::NotBls(self.curve()));
        };
        let pk = match override_pk {
            Some(pk) if pk.curve != Curve::Bls => {
                return Err(SigningError::OverrideNotBls(pk.curve));
            }
            Some(pk) => pk,
            None => &self.public,
        };
        Ok(Signature {
            curve: Curve::Bls,
            bytes: sk
                .sign(&pk.bytes, BLS_DST_POP_PROOF, &[])
                .compress()
                .to_vec(),
        })
    }
}

fn secretbox(password: &[u8], salt: &[u8]) -> XSalsa20Poly1305 {
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(
        password,
        salt,
        ENCRYPTION_PBKDF2_ROUNDS,
        key.as_mut_slice(),
    );
    XSalsa20Poly1305::new(key.as_slice().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/tezos/vectors.json"
    );
    const PAYLOADS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/tezos/tenderbake_payloads.json"
    );

    fn load(path: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn vectors() -> Vec<serde_json::Value> {
        load(VECTORS)["vectors"].as_array().unwrap().clone()
    }

    fn s<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("vector field {key} missing"))
    }

    #[test]
    fn vectors_keys_and_hashes() {
        let vs = vectors();
        assert!(vs.len() >= 6);
        for v in &vs {
            let name = s(v, "name");
            let sk = SecretKey::from_b58(s(v, "secret_key")).unwrap();
            let pk = sk.public_key();
            assert_eq!(pk.to_b58(), s(v, "public_key"), "{name}");
            assert_eq!(pk.pkh_b58(), s(v, "public_key_hash"), "{name}");
            let parsed = PublicKey::from_b58(s(v, "public_key")).unwrap();
            assert_eq!(parsed, pk, "{name}");
            assert_eq!(
                decode_pkh(s(v, "public_key_hash")).unwrap(),
                (pk.curve(), pk.hash())
            );
            assert_eq!(pk.pkh_bytes()[0], pk.curve().pkh_tag());
            assert_eq!(&pk.pkh_bytes()[1..], &pk.hash());
            // Re-encoding: edsk comes back in 32-byte seed form, others unchanged.
            let again = SecretKey::from_b58(&sk.to_b58()).unwrap();
            assert_eq!(again.public_key(), pk, "{name}");
            if pk.curve() != Curve::Ed25519 {
                assert_eq!(sk.to_b58().as_str(), s(v, "secret_key"), "{name}");
            }
        }
    }

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
    fn vectors_signatures() {
        let mut by_curve = std::collections::HashMap::new();
        for v in vectors() {
            let name = s(&v, "name");
            let sk = SecretKey::from_b58(s(&v, "secret_key")).unwrap();
            let pk = sk.public_key();
            let data = hex::decode(s(&v, "signed_bytes_hex")).unwrap();
            *by_curve.entry(sk.curve()).or_insert(0) += 1;
            match sk.curve() {
                Curve::Ed25519 => {
                    let sig = sk.sign(&data, 2).unwrap();
                    assert_eq!(sig.to_b58(), s(&v, "expected_prefixed_signature"), "{name}");
                    assert_eq!(hex::encode(sig.as_bytes()), s(&v, "raw_signature_hex"));
                    assert_eq!(
                        sig.to_generic_b58().unwrap(),
                        s(&v, "expected_generic_signature")
                    );
                    // version does not change non-BLS signatures
                    assert_eq!(sk.sign(&data, 0).unwrap(), sig);
                    assert!(pk.verify(&data, &sig, 0));
                }
                Curve::Secp256k1 | Curve::P256 => {
                    let sig = sk.sign(&data, 2).unwrap();
                    assert!(pk.verify(&data, &sig, 2), "{name}");
                    assert!(is_low_s(&sig), "{name}");
                    assert_eq!(sk.sign(&data, 0).unwrap(), sig, "deterministic");
                    let theirs = Signature::from_b58(s(&v, "expected_prefixed_signature")).unwrap();
                    // RFC 6979 + low-S reproduces Taquito's signatures exactly.
                    assert_eq!(sig, theirs, "{name}: byte-exact");
                    assert_eq!(theirs.curve(), sk.curve());
                    assert!(pk.verify(&data, &theirs, 2), "{name}: file signature");
                    assert!(is_low_s(&theirs));
                    assert_eq!(hex::encode(theirs.as_bytes()), s(&v, "raw_signature_hex"));
                    assert!(!pk.verify(b"other data", &theirs, 2));
                }
                Curve::Bls => {
                    let pop = sk.sign(&data, 2).unwrap();
                    assert_eq!(
                        pop.to_b58(),
                        s(&v, "derived_signature_pop_scheme"),
                        "{name}"
                    );
                    assert_eq!(
                        hex::encode(pop.as_bytes()),
                        s(&v, "derived_signature_pop_scheme_hex")
                    );
                    assert_eq!(sk.sign(&data, 7).unwrap(), pop, "version > 2 behaves as 2");
                    let aug = sk.sign(&data, 1).unwrap();
                    assert_eq!(
                        aug.to_b58(),
                        s(&v, "derived_signature_aug_scheme"),
                        "{name}"
                    );
                    assert_eq!(
                        hex::encode(aug.as_bytes()),
                        s(&v, "derived_signature_aug_scheme_hex")
                    );
                    assert_eq!(sk.sign(&data, 0), Err(SigningError::BlsNeedsVersion(0)));
                    assert!(pk.verify(&data, &pop, 2));
                    assert!(pk.verify(&data, &aug, 1));
                    assert!(!pk.verify(&data, &pop, 1));
                    assert!(!pk.verify(&data, &aug, 2));
                    assert!(!pk.verify(&data, &pop, 0));
                    assert!(pop.to_generic_b58().is_none());

                    let proof = sk.prove_possession(None).unwrap();
                    assert_eq!(proof.to_b58(), s(&v, "expected_proof_of_possession"));
                    assert!(pk.verify_proof_of_possession(&proof));
                    assert!(!pk.verify_proof_of_possession(&pop));
                    let proof2 = sk.prove_possession(Some(&pk)).unwrap();
                    assert_eq!(proof2, proof);
                }
            }
            // The generic form of the file's signature decodes to the same raw bytes.
            if let (Some(generic), Some(raw_hex)) = (
                v["expected_generic_signature"].as_str(),
                v["raw_signature_hex"].as_str(),
            ) {
                let g = Signature::from_b58_for(sk.curve(), generic).unwrap();
                assert_eq!(hex::encode(g.as_bytes()), raw_hex, "{name}");
                assert!(
                    pk.verify(&data, &g, 2),
                    "{name}: generic signature verifies"
                );
                assert_eq!(
                    Signature::from_b58(generic),
                    Err(KeyError::GenericSignatureNeedsCurve)
                );
            }
        }
        for c in Curve::ALL {
            assert!(
                by_curve.get(&c).copied().unwrap_or(0) >= 1,
                "no vector for {c}"
            );
        }
    }

    #[test]
    fn real_mainnet_ed25519_signatures_verify() {
        let mut n = 0;
        for case in load(PAYLOADS)["cases"].as_array().unwrap() {
            let Some(ed) = case.get("ed25519") else {
                continue;
            };
            let pk = PublicKey::from_b58(s(ed, "public_key")).unwrap();
            let sig = Signature::from_b58(s(ed, "signature")).unwrap();
            let data = hex::decode(s(case, "payload_hex")).unwrap();
            assert!(pk.verify(&data, &sig, 0));
            let mut tampered = data.clone();
            *tampered.last_mut().unwrap() ^= 1;
            assert!(!pk.verify(&tampered, &sig, 0));
            n += 1;
        }
        assert!(n >= 3);
    }

    /// Deterministic "random-ish" messages without an RNG dependency.
    fn messages(count: usize) -> impl Iterator<Item = Vec<u8>> {
        (0..count).map(|i| {
            let seed = blake2b_256(&(i as u64).to_le_bytes());
            let len = 1 + (seed[0] as usize % 200);
            let mut out = Vec::with_capacity(len);
            let mut block = seed;
            while out.len() < len {
                out.extend_from_slice(&block);
                block = blake2b_256(&block);
            }
            out.truncate(len);
            out
        })
    }

    #[test]
    fn ecdsa_signatures_are_always_low_s() {
        for curve in [Curve::Secp256k1, Curve::P256] {
            let sk = SecretKey::generate(curve);
            let pk = sk.public_key();
            let mut low = 0;
            for msg in messages(500) {
                let sig = sk.sign(&msg, 2).unwrap();
                if is_low_s(&sig) {
                    low += 1;
                }
                assert!(pk.verify(&msg, &sig, 2));
            }
            assert_eq!(low, 500, "{curve}");
        }
    }

    /// Flip `s` to `n - s` through the library (the high-S twin of a low-S signature).
    fn high_s_twin(sig: &Signature) -> Signature {
        let bytes = match sig.curve() {
            Curve::Secp256k1 => {
                let low = k256::ecdsa::Signature::from_slice(sig.as_bytes()).unwrap();
                let (r, s) = low.split_scalars();
                k256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes())
                    .unwrap()
                    .to_vec()
            }
            Curve::P256 => {
                let low = p256::ecdsa::Signature::from_slice(sig.as_bytes()).unwrap();
                let (r, s) = low.split_scalars();
                p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes())
                    .unwrap()
                    .to_vec()
            }
            _ => unreachable!(),
        };
        Signature::from_raw(sig.curve(), &bytes).unwrap()
    }

    #[test]
    fn verify_accepts_high_s_and_is_low_s_tells() {
        for curve in [Curve::Secp256k1, Curve::P256] {
            let sk = SecretKey::generate(curve);
            let sig = sk.sign(b"payload", 2).unwrap();
            let high = high_s_twin(&sig);
            assert_ne!(high, sig);
            assert!(!is_low_s(&high));
            assert!(sk.public_key().verify(b"payload", &high, 2), "{curve}");
        }
    }

    #[test]
    fn generated_keys_round_trip_and_sign() {
        for curve in Curve::ALL {
            let sk = SecretKey::generate(curve);
            assert_eq!(sk.curve(), curve);
            let back = SecretKey::from_b58(&sk.to_b58()).unwrap();
            assert_eq!(back.public_key(), sk.public_key());
            let sig = sk.sign(b"hello", 2).unwrap();
            assert_eq!(sig.as_bytes().len(), curve.signature_len());
            assert!(sk.public_key().verify(b"hello", &sig, 2));
            assert!(!sk.public_key().verify(b"hellp", &sig, 2));
            let parsed = Signature::from_b58(&sig.to_b58()).unwrap();
            assert_eq!(parsed, sig);
            assert!(
                sk.public_key()
                    .pkh_b58()
                    .starts_with(curve.pkh_prefix().text())
            );
            let other = SecretKey::generate(curve);
            assert!(!other.public_key().verify(b"hello", &sig, 2));
        }
    }

    #[test]
    fn encrypted_round_trip_all_curves() {
        for (i, v) in vectors().iter().enumerate() {
            let sk = SecretKey::from_b58(s(v, "secret_key")).unwrap();
            let salt = [i as u8, 1, 2, 3, 4, 5, 6, 7];
            let enc = sk.to_encrypted_b58(b"correct horse", salt);
            assert!(enc.starts_with(sk.curve().encrypted_secret_key_prefix().text()));
            let dec = SecretKey::from_encrypted_b58(&enc, b"correct horse").unwrap();
            assert_eq!(dec.public_key(), sk.public_key());
            assert_eq!(dec.to_b58(), sk.to_b58());
            // Wrong password is refused without leaking anything.
            let err = SecretKey::from_encrypted_b58(&enc, b"correct horsf").unwrap_err();
            assert_eq!(err, KeyError::BadPassword);
            let msg = format!("{err} {err:?}");
            assert!(!msg.contains(&sk.to_b58()[4..12]));
            // A plain key is not an encrypted one.
            assert!(SecretKey::from_encrypted_b58(s(v, "secret_key"), b"x").is_err());
        }
    }

    #[test]
    fn encrypted_known_answer_from_taquito() {
        // Published by Taquito's signer tests (taquito-signer.spec.ts, "Tz3 Encrypted"):
        // a p2esk encrypted with password "test1234".
        let sk = SecretKey::from_encrypted_b58(
            "p2esk2TFqgNcoT4u99ut5doGTUFNwo9x4nNvkpM6YMLqXrt4SbFdQnqLM3hoAXLMB2uZYazj6LZGvcoYzk16H6Et",
            b"test1234",
        )
        .unwrap();
        assert_eq!(
            sk.to_b58().as_str(),
            "p2sk2mJNRYqs3UXJzzF44Ym6jk38RVDPVSuLCfNd5ShE5zyVdu8Au9"
        );
        assert_eq!(
            sk.public_key().to_b58(),
            "p2pk65zwHGP9MdvANKkp267F4VzoKqL8DMNpPfTHUNKbm8S9DUqqdpw"
        );
        assert_eq!(
            sk.public_key().pkh_b58(),
            "tz3hFR7NZtjT2QtzgMQnWb4xMuD6yt2YzXUt"
        );
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
        assert_eq!(*sk.raw_secret(), le);
    }

    #[test]
    fn public_key_validation() {
        // Not a point / wrong lengths.
        let mut not_x = [0xffu8; 33];
        not_x[0] = 0x02;
        assert_eq!(
            PublicKey::from_raw(Curve::Secp256k1, &not_x),
            Err(KeyError::InvalidPublicKey(Curve::Secp256k1))
        );
        assert_eq!(
            PublicKey::from_raw(Curve::P256, &[0x05; 33]),
            Err(KeyError::InvalidPublicKey(Curve::P256))
        );
        assert_eq!(
            PublicKey::from_raw(Curve::Bls, &[0u8; 48]),
            Err(KeyError::InvalidPublicKey(Curve::Bls))
        );
        assert!(matches!(
            PublicKey::from_raw(Curve::Ed25519, &[0u8; 31]),
            Err(KeyError::InvalidLength { .. })
        ));
        // BLS identity (compressed infinity) is refused.
        let mut inf = [0u8; 48];
        inf[0] = 0xc0;
        assert_eq!(
            PublicKey::from_raw(Curve::Bls, &inf),
            Err(KeyError::InvalidPublicKey(Curve::Bls))
        );
    }

    #[test]
    fn signature_parsing() {
        let sk = SecretKey::generate(Curve::Ed25519);
        let sig = sk.sign(b"x", 0).unwrap();
        // A tz1 signature asked for as tz2.
        assert_eq!(
            Signature::from_b58_for(Curve::Secp256k1, &sig.to_b58()),
            Err(KeyError::CurveMismatch {
                expected: Curve::Secp256k1,
                found: Curve::Ed25519
            })
        );
        // The generic form cannot be BLS.
        assert!(Signature::from_b58_for(Curve::Bls, &sig.to_generic_b58().unwrap()).is_err());
        // Curve mismatch between key and signature never verifies.
        let other = SecretKey::generate(Curve::P256);
        let as_p256 = Signature::from_raw(Curve::P256, sig.as_bytes()).unwrap();
        assert!(!other.public_key().verify(b"x", &sig, 0));
        assert!(!sk.public_key().verify(b"x", &as_p256, 0));
        assert!(matches!(
            Signature::from_raw(Curve::Bls, &[0u8; 64]),
            Err(KeyError::InvalidLength { expected: 96, .. })
        ));
    }

    #[test]
    fn proof_of_possession_rules() {
        let ed = SecretKey::generate(Curve::Ed25519);
        assert_eq!(
            ed.prove_possession(None),
            Err(SigningError::NotBls(Curve::Ed25519))
        );
        let bls = SecretKey::generate(Curve::Bls);
        assert_eq!(
            bls.prove_possession(Some(&ed.public_key())),
            Err(SigningError::OverrideNotBls(Curve::Ed25519))
        );
        let other = SecretKey::generate(Curve::Bls).public_key();
        let proof = bls.prove_possession(Some(&other)).unwrap();
        // Signed by `bls` over `other`'s bytes: not a valid PoP of either key.
        assert!(!other.verify_proof_of_possession(&proof));
        assert!(!bls.public_key().verify_proof_of_possession(&proof));
        assert!(
            bls.public_key()
                .verify_proof_of_possession(&bls.prove_possession(None).unwrap())
        );
    }

    #[test]
    fn blake2b_lengths_and_known_digest_from_file() {
        for v in vectors() {
            if let Some(d) = v["blake2b_256_digest_hex"].as_str() {
                let data = hex::decode(s(&v, "signed_bytes_hex")).unwrap();
                assert_eq!(hex::encode(blake2b_256(&data)), d);
            }
        }
        assert_eq!(blake2b_160(b"").len(), 20);
    }
}
