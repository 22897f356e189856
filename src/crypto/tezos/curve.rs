//! [`Curve`]: the five Tezos signature schemes, their binary tags, names, base58
//! prefixes and raw lengths.

use std::fmt;

use crate::chain::tezos::base58::Prefix;

/// The five Tezos signature schemes (octez `Signature.V3`, `src/lib_crypto/signature_v3.ml`).
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
    /// tz5 (ML-DSA-44, FIPS 204; `src/lib_crypto/mldsa44.ml`)
    Mldsa44,
}

impl Curve {
    /// All curves, in tag order.
    pub const ALL: [Curve; 5] = [
        Curve::Ed25519,
        Curve::Secp256k1,
        Curve::P256,
        Curve::Bls,
        Curve::Mldsa44,
    ];

    /// Tag byte of the 21-byte binary public key hash (and public key) encoding.
    pub const fn pkh_tag(self) -> u8 {
        match self {
            Curve::Ed25519 => 0,
            Curve::Secp256k1 => 1,
            Curve::P256 => 2,
            Curve::Bls => 3,
            Curve::Mldsa44 => 4,
        }
    }

    /// Inverse of [`Curve::pkh_tag`].
    pub const fn from_pkh_tag(tag: u8) -> Option<Curve> {
        match tag {
            0 => Some(Curve::Ed25519),
            1 => Some(Curve::Secp256k1),
            2 => Some(Curve::P256),
            3 => Some(Curve::Bls),
            4 => Some(Curve::Mldsa44),
            _ => None,
        }
    }

    /// Short lower-case name: `ed25519`, `secp256k1`, `p256`, `bls`, `mldsa44` (octez-client's
    /// `--sig` names).
    pub const fn name(self) -> &'static str {
        match self {
            Curve::Ed25519 => "ed25519",
            Curve::Secp256k1 => "secp256k1",
            Curve::P256 => "p256",
            Curve::Bls => "bls",
            Curve::Mldsa44 => "mldsa44",
        }
    }

    /// The curve named by [`Curve::name`] (`ed25519`, `secp256k1`, `p256`, `bls`, `mldsa44`).
    pub fn from_name(name: &str) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.name() == name)
    }

    /// `tz1` … `tz5`.
    pub const fn pkh_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Ed25519PublicKeyHash,
            Curve::Secp256k1 => Prefix::Secp256k1PublicKeyHash,
            Curve::P256 => Prefix::P256PublicKeyHash,
            Curve::Bls => Prefix::Bls12381PublicKeyHash,
            Curve::Mldsa44 => Prefix::Mldsa44PublicKeyHash,
        }
    }

    /// `edpk`, `sppk`, `p2pk`, `BLpk`, `mdpk`.
    pub const fn public_key_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Ed25519PublicKey,
            Curve::Secp256k1 => Prefix::Secp256k1PublicKey,
            Curve::P256 => Prefix::P256PublicKey,
            Curve::Bls => Prefix::Bls12381PublicKey,
            Curve::Mldsa44 => Prefix::Mldsa44PublicKey,
        }
    }

    /// `edsk` (32-byte seed form), `spsk`, `p2sk`, `BLsk`, `mdsk`.
    pub const fn secret_key_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Ed25519Seed,
            Curve::Secp256k1 => Prefix::Secp256k1SecretKey,
            Curve::P256 => Prefix::P256SecretKey,
            Curve::Bls => Prefix::Bls12381SecretKey,
            Curve::Mldsa44 => Prefix::Mldsa44SecretKey,
        }
    }

    /// `edesk`, `spesk`, `p2esk`, `BLesk`, `mdesk`.
    pub const fn encrypted_secret_key_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Ed25519EncryptedSeed,
            Curve::Secp256k1 => Prefix::Secp256k1EncryptedSecretKey,
            Curve::P256 => Prefix::P256EncryptedSecretKey,
            Curve::Bls => Prefix::Bls12381EncryptedSecretKey,
            Curve::Mldsa44 => Prefix::Mldsa44EncryptedSecretKey,
        }
    }

    /// `edsig`, `spsig1`, `p2sig`, `BLsig`, `mdsig`.
    pub const fn signature_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Ed25519Signature,
            Curve::Secp256k1 => Prefix::Secp256k1Signature,
            Curve::P256 => Prefix::P256Signature,
            Curve::Bls => Prefix::Bls12381Signature,
            Curve::Mldsa44 => Prefix::Mldsa44Signature,
        }
    }

    /// Public key length: 32, 33, 33, 48, 1312.
    pub const fn public_key_len(self) -> usize {
        self.public_key_prefix().raw_len()
    }

    /// Signature length: 64, 64, 64, 96, 2420.
    pub const fn signature_len(self) -> usize {
        self.signature_prefix().raw_len()
    }

    pub(super) fn from_public_key_prefix(p: Prefix) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.public_key_prefix() == p)
    }

    pub(super) fn from_pkh_prefix(p: Prefix) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.pkh_prefix() == p)
    }

    pub(super) fn from_signature_prefix(p: Prefix) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.signature_prefix() == p)
    }

    pub(super) fn from_encrypted_prefix(p: Prefix) -> Option<Curve> {
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
