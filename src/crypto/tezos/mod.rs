//! Tezos keys and signatures: tz1 (Ed25519), tz2 (secp256k1), tz3 (P-256),
//! tz4 (BLS12-381, min-pk) and tz5 (ML-DSA-44, FIPS 204).
//!
//! Signing follows octez:
//! - tz1: Ed25519 (RFC 8032) over `blake2b-256(data)`;
//! - tz2 / tz3: ECDSA over the 32-byte `blake2b-256(data)` used directly as the
//!   prehash, RFC 6979 nonces, `r || s` (64 bytes), always low-S;
//! - tz4: BLS min-pk over `data` itself (no pre-hash). Signature version 1 uses
//!   the message-augmentation ciphersuite (`pk || data`), version 2 and later
//!   the proof-of-possession ciphersuite. Version 0 cannot sign with BLS.
//! - tz5: ML-DSA-44 (FIPS 204 ML-DSA.Sign, pure, empty context) over `blake2b-256(data)`;
//!   1312-byte public keys, 2420-byte signatures, secret keys in octez's 3872-byte form
//!   (`src/lib_crypto/mldsa44.ml`).
//!
//! Secret material lives only in types that zeroize on drop; [`SecretKey`]'s
//! `Debug` shows the curve and the public key hash, never key bytes, and no
//! error carries key bytes.
//!
//! Layout: [`Curve`] and its base58 prefixes and lengths (`curve`), the errors
//! (`error`), BLAKE2b and public key hashes (`hash`), [`PublicKey`]
//! (`public_key`), [`Signature`] (`signature`), [`SecretKey`] (`secret_key`),
//! signing and verification per curve (`signing`), octez encrypted secret keys
//! (`encrypted`). Everything public is re-exported here: callers name it
//! `crypto::tezos::X`.

mod curve;
mod encrypted;
mod error;
mod hash;
mod public_key;
mod secret_key;
mod signature;
mod signing;
#[cfg(test)]
mod test_vectors;
#[cfg(test)]
mod tz5_tests;

pub use curve::Curve;
pub use encrypted::{ENCRYPTION_PBKDF2_ROUNDS, ENCRYPTION_SALT_LEN};
pub use error::{KeyError, SigningError};
pub use hash::{blake2b_160, blake2b_256, decode_pkh, decode_pkh_bytes, encode_pkh};
pub use public_key::PublicKey;
pub use secret_key::MLDSA44_EXPANDED_LEN;
pub use secret_key::SecretKey;
pub use signature::{Signature, is_low_s};
pub use signing::{BLS_DST_AUG_SIG, BLS_DST_POP_PROOF, BLS_DST_POP_SIG, MLDSA44_CONTEXT};
