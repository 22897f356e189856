//! The signing traits every key backend implements, one per chain, and the optional
//! capabilities some backends add.
//!
//! A backend's `sign` is `async`; where it runs is the backend's [`Execution`] hint, which
//! the one dispatcher ([`super::dispatch::run`]) executes for both chains: in-memory keys on
//! the CPU signing pool, HSM calls on the blocking pool with the token's timeout, network
//! vaults on the async runtime with their timeout.

use std::time::Duration;

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::crypto::tezos::{PublicKey, Signature};

/// How the dispatcher runs a backend's signing calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    /// CPU-bound, in process memory (BLS, Ed25519, ECDSA): on the signing pool (one thread
    /// per core), no timeout. The backend's future must not wait on I/O.
    CpuPool,
    /// Blocks its thread on I/O (a PKCS#11 call): on the runtime's blocking pool; answered
    /// as a timeout (503) when it has not finished within `timeout`.
    Blocking {
        /// Longest wait for the backend.
        timeout: Duration,
    },
    /// Awaits network I/O (a cloud KMS or vault API): polled on the async runtime; answered
    /// as a timeout (503) when it has not finished within `timeout`.
    Async {
        /// Longest wait for the backend.
        timeout: Duration,
    },
}

/// A backend failure while signing. Carries no key material.
#[derive(Debug, thiserror::Error)]
#[error("signing backend failed: {0}")]
pub struct BackendError(pub String);

/// An eth2 key: signs 32-byte signing roots with BLS12-381 (the consensus specs'
/// `compute_signing_root` output; `G2` proof-of-possession ciphersuite).
#[async_trait]
pub trait Signer: Send + Sync {
    /// The 48-byte compressed BLS public key.
    fn public_key(&self) -> [u8; 48];
    /// Where the dispatcher runs [`Signer::sign`]; in-memory keys keep the default,
    /// [`Execution::CpuPool`].
    fn execution(&self) -> Execution {
        Execution::CpuPool
    }
    /// Signs a 32-byte signing root; returns the 96-byte compressed signature.
    ///
    /// # Errors
    /// [`BackendError`] when the backend cannot sign (never for in-memory keys).
    async fn sign(&self, signing_root: &[u8; 32]) -> Result<[u8; 96], BackendError>;
}

/// A Tezos key: signs request bytes (magic byte first) as octez does for the key's curve.
#[async_trait]
pub trait TezosSigner: Send + Sync {
    /// The public key (`edpk…`/`sppk…`/`p2pk…`/`BLpk…`).
    fn public_key(&self) -> &PublicKey;
    /// Where the dispatcher runs [`TezosSigner::sign`]; in-memory keys keep the default,
    /// [`Execution::CpuPool`].
    fn execution(&self) -> Execution {
        Execution::CpuPool
    }
    /// Signs the request bytes: Ed25519/ECDSA over their blake2b-256 digest, BLS directly
    /// (`version` 1 = AUG, ≥ 2 = POP ciphersuite), as octez's `Signature` modules do.
    ///
    /// # Errors
    /// [`BackendError`] when the backend fails or the version is not valid for the curve.
    async fn sign(&self, data: &[u8], version: u8) -> Result<Signature, BackendError>;
    /// The proof-of-possession capability: `Some` for a backend holding a BLS (tz4) key that
    /// can prove possession of it, `None` otherwise.
    fn possession(&self) -> Option<&dyn ProvePossession> {
        None
    }
    /// Where the key lives, for operators: `memory`, `pkcs11 token `T` label `L``.
    fn backend(&self) -> String {
        "memory".into()
    }
    /// The deterministic-nonce capability: `Some` for a backend that holds the secret key
    /// bytes octez derives nonces from (in-memory keys), `None` for keys in an HSM or a vault
    /// (they cannot compute octez's HMAC over the raw key).
    fn deterministic_nonces(&self) -> Option<&dyn DeterministicNonces> {
        None
    }
}

/// The optional deterministic-nonce capability of a Tezos backend (octez
/// `deterministic_nonce` / `deterministic_nonce_hash`, `src/lib_crypto/*.ml`), run by the
/// dispatcher with the key's [`TezosSigner::execution`].
#[async_trait]
pub trait DeterministicNonces: Send + Sync {
    /// HMAC-SHA256 of `data` keyed with the raw secret key: 32 bytes.
    ///
    /// # Errors
    /// [`BackendError`] for a backend failure.
    async fn deterministic_nonce(&self, data: &[u8]) -> Result<Zeroizing<[u8; 32]>, BackendError>;
    /// blake2b-256 of [`DeterministicNonces::deterministic_nonce`]: 32 bytes.
    ///
    /// # Errors
    /// [`BackendError`] for a backend failure.
    async fn deterministic_nonce_hash(&self, data: &[u8]) -> Result<[u8; 32], BackendError>;
}

/// The optional BLS proof-of-possession capability of a Tezos backend (tz4 keys; octez
/// `Bls.pop_prove`), run by the dispatcher with the key's [`TezosSigner::execution`].
#[async_trait]
pub trait ProvePossession: Send + Sync {
    /// A 96-byte BLS proof of possession of the key, or of `override_pk` (a `BLpk…` key)
    /// signed by this key.
    ///
    /// # Errors
    /// [`BackendError`] for a backend failure.
    async fn prove_possession(
        &self,
        override_pk: Option<&PublicKey>,
    ) -> Result<Signature, BackendError>;
}
