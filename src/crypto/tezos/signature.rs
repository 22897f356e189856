//! [`Signature`]: 64-byte Ed25519 / ECDSA `r || s`, 96-byte BLS or 2420-byte ML-DSA-44
//! signatures, their base58 forms (`edsig…`, `spsig1…`, `p2sig…`, `BLsig…`, `mdsig…`, generic
//! `sig…`) and the low-S check. Signing and verification are in `signing`.

use std::fmt;

use crate::chain::tezos::base58::{self, Base58Error, Prefix};

use super::{Curve, KeyError};

/// A signature: 64 bytes (Ed25519, ECDSA `r || s`), 96 bytes (BLS, compressed G2) or 2420
/// bytes (ML-DSA-44, FIPS 204 `sigEncode`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    pub(super) curve: Curve,
    pub(super) bytes: Vec<u8>,
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
            Curve::Ed25519 | Curve::Bls | Curve::Mldsa44 => bytes.to_vec(),
        };
        Self::from_raw(curve, &normalised)
    }

    /// Parse `edsig…`, `spsig1…`, `p2sig…`, `BLsig…` or `mdsig…`. A generic `sig…` is
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
    /// generic `sig…` form (64 bytes, so not for BLS or ML-DSA-44).
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

    /// `edsig…`, `spsig1…`, `p2sig…`, `BLsig…` or `mdsig…`.
    pub fn to_b58(&self) -> String {
        base58::encode(self.curve.signature_prefix(), &self.bytes)
    }

    /// The scheme-less `sig…` form; `None` for BLS and ML-DSA-44 (their lengths do not fit).
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
/// `r, s` and `s ≤ n/2`. `false` for Ed25519, BLS and ML-DSA-44 signatures.
pub fn is_low_s(sig: &Signature) -> bool {
    match sig.curve {
        Curve::Secp256k1 => {
            k256::ecdsa::Signature::from_slice(&sig.bytes).is_ok_and(|s| s.normalize_s() == s)
        }
        Curve::P256 => {
            p256::ecdsa::Signature::from_slice(&sig.bytes).is_ok_and(|s| s.normalize_s() == s)
        }
        Curve::Ed25519 | Curve::Bls | Curve::Mldsa44 => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tezos::SecretKey;

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
}
