//! Errors reading keys and signatures ([`KeyError`]) and producing signatures
//! ([`SigningError`]). Neither ever carries key bytes.

use crate::chain::tezos::base58::Base58Error;

use super::Curve;

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
    /// A 64-byte `edsk`, or a tz5 `mdsk`, whose public key half does not belong to its secret.
    #[error("the secret key's public key half does not match its secret half")]
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
    /// ML-DSA-44 (tz5) signing needs signature version 3 or later (octez's `Signature.V3`).
    #[error("ML-DSA-44 (tz5) signing requires signature version 3 or later, got version {0}")]
    Mldsa44NeedsVersion(u8),
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
