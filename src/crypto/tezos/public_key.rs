//! [`PublicKey`]: validated Tezos public keys (32-byte Ed25519, 33-byte compressed
//! secp256k1 / P-256, 48-byte compressed BLS12-381 G1, 1312-byte ML-DSA-44), their base58 and
//! SEC1 forms
//! and their hashes. Verification is in `signing`.

use std::fmt;

use crate::chain::tezos::base58;

use super::{Curve, KeyError, blake2b_160, encode_pkh};

/// A Tezos public key: 32-byte Ed25519, 33-byte compressed secp256k1 / P-256,
/// 48-byte compressed BLS12-381 G1 point (always a valid point), or a 1312-byte ML-DSA-44
/// key (FIPS 204 `pkEncode`, ρ ‖ t1: every byte string of that length is one).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    pub(super) curve: Curve,
    pub(super) bytes: Vec<u8>,
}

impl PublicKey {
    /// Build from raw bytes, checking the length and that the point is valid
    /// (on the curve; for BLS also in the subgroup and not the identity). An ML-DSA-44 key is
    /// checked for its length only, as octez does (`Mldsa44.Public_key.of_bytes_opt`).
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
            Curve::Mldsa44 => true,
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
    /// stored compressed as Tezos does. BLS and ML-DSA-44 are refused (no HSM backend of
    /// palisade holds them).
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
            Curve::Bls | Curve::Mldsa44 => return Err(KeyError::InvalidPublicKey(curve)),
        };
        Self::from_raw(curve, &compressed)
    }

    /// The point as PKCS#11 stores it in `CKA_EC_POINT` (before DER wrapping): 32 bytes for
    /// Ed25519, the 65-byte uncompressed SEC1 form (`04‖x‖y`) for secp256k1 and P-256, the
    /// 48-byte compressed form for BLS, the raw 1312 bytes for ML-DSA-44.
    pub fn to_sec1_uncompressed(&self) -> Vec<u8> {
        match self.curve {
            Curve::Secp256k1 => k256::ecdsa::VerifyingKey::from_sec1_bytes(&self.bytes)
                .map(|vk| vk.to_sec1_point(false).as_bytes().to_vec())
                .unwrap_or_else(|_| self.bytes.clone()),
            Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.bytes)
                .map(|vk| vk.to_sec1_point(false).as_bytes().to_vec())
                .unwrap_or_else(|_| self.bytes.clone()),
            Curve::Ed25519 | Curve::Bls | Curve::Mldsa44 => self.bytes.clone(),
        }
    }

    /// Parse `edpk…`, `sppk…`, `p2pk…`, `BLpk…` or `mdpk…`.
    pub fn from_b58(s: &str) -> Result<Self, KeyError> {
        let candidates = Curve::ALL.map(Curve::public_key_prefix);
        let (prefix, raw) = base58::decode_any(s, &candidates)?;
        let curve = Curve::from_public_key_prefix(prefix).expect("candidate is a pk prefix");
        Self::from_raw(curve, &raw)
    }

    /// `edpk…`, `sppk…`, `p2pk…`, `BLpk…` or `mdpk…`.
    pub fn to_b58(&self) -> String {
        base58::encode(self.curve.public_key_prefix(), &self.bytes)
    }

    /// The key's curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// Raw key bytes (32, 33, 33, 48 or 1312 bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// BLAKE2b-160 of the key bytes.
    pub fn hash(&self) -> [u8; 20] {
        blake2b_160(&self.bytes)
    }

    /// The public key hash as `tz1…` … `tz5…`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tezos::test_vectors::{s, vectors};
    use crate::crypto::tezos::{SecretKey, decode_pkh};

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
}
