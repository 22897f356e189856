//! BLS12-381 with public keys in G1 and signatures in G2 (`min_pk`), the Ethereum
//! consensus ciphersuite `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`, on `blst`.

use std::fmt;

use blst::min_pk;

/// Domain separation tag of the Ethereum consensus (proof-of-possession) ciphersuite.
pub const ETH2_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// Errors of the BLS layer. They never contain key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlsError {
    /// A secret key that is not 32 bytes (the length given).
    #[error("secret key must be 32 bytes, got {0}")]
    SecretKeyLength(usize),
    /// A 32-byte secret key that is zero or not below the BLS12-381 group order.
    #[error("secret key is zero or not below the group order")]
    InvalidSecretKey,
    /// A public key that is not a 48-byte compressed G1 point (wrong length, not on the curve,
    /// not in the subgroup, or the point at infinity).
    #[error("public key is not a valid compressed G1 point")]
    InvalidPublicKey,
    /// A signature that is not a 96-byte compressed G2 point (wrong length, not on the curve,
    /// not in the subgroup, or the point at infinity).
    #[error("signature is not a valid compressed G2 point")]
    InvalidSignature,
}

/// A BLS secret key (32-byte big-endian scalar, non-zero, below the group order).
/// Zeroized on drop by `blst`; its `Debug` prints nothing secret.
pub struct SecretKey(min_pk::SecretKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// Parses a 32-byte big-endian scalar.
    ///
    /// # Errors
    /// [`BlsError::SecretKeyLength`] for another length, [`BlsError::InvalidSecretKey`] for zero
    /// or a value not below the group order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        if bytes.len() != 32 {
            return Err(BlsError::SecretKeyLength(bytes.len()));
        }
        if bytes.iter().all(|b| *b == 0) {
            return Err(BlsError::InvalidSecretKey);
        }
        min_pk::SecretKey::from_bytes(bytes)
            .map(SecretKey)
            .map_err(|_| BlsError::InvalidSecretKey)
    }

    /// The 48-byte compressed public key.
    pub fn public_key(&self) -> [u8; 48] {
        self.0.sk_to_pk().compress()
    }

    /// Signs `message` (for Ethereum: a 32-byte signing root); returns the 96-byte compressed signature.
    pub fn sign(&self, message: &[u8]) -> [u8; 96] {
        self.0.sign(message, ETH2_DST, &[]).compress()
    }
}

/// Verifies a 96-byte signature over `message` by a 48-byte public key (both groups checked).
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<bool, BlsError> {
    let pk = min_pk::PublicKey::key_validate(public_key).map_err(|_| BlsError::InvalidPublicKey)?;
    let sig =
        min_pk::Signature::sig_validate(signature, true).map_err(|_| BlsError::InvalidSignature)?;
    Ok(sig.verify(true, message, ETH2_DST, &[], &pk, true) == blst::BLST_ERROR::BLST_SUCCESS)
}

/// Checks that 48 bytes are a valid compressed G1 public key (in the subgroup, not infinity).
pub fn validate_public_key(public_key: &[u8]) -> Result<(), BlsError> {
    min_pk::PublicKey::key_validate(public_key)
        .map(|_| ())
        .map_err(|_| BlsError::InvalidPublicKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_short_keys_are_refused() {
        assert_eq!(
            SecretKey::from_bytes(&[0u8; 32]).unwrap_err(),
            BlsError::InvalidSecretKey
        );
        assert_eq!(
            SecretKey::from_bytes(&[1u8; 31]).unwrap_err(),
            BlsError::SecretKeyLength(31)
        );
        assert_eq!(
            SecretKey::from_bytes(&[0xffu8; 32]).unwrap_err(),
            BlsError::InvalidSecretKey
        );
    }

    #[test]
    fn sign_verifies_and_debug_is_redacted() {
        let mut b = [0u8; 32];
        b[31] = 7;
        let sk = SecretKey::from_bytes(&b).unwrap();
        let sig = sk.sign(&[9u8; 32]);
        assert!(verify(&sk.public_key(), &[9u8; 32], &sig).unwrap());
        assert!(!verify(&sk.public_key(), &[8u8; 32], &sig).unwrap());
        assert_eq!(format!("{sk:?}"), "SecretKey(<redacted>)");
    }
}
