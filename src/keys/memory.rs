//! Keys held in process memory, for the backends that decrypt or read a secret at load time
//! (`keystore`, `file-raw`, `pkcs11-wrapped-bls`, `tezos-secret`): zeroized on drop, their
//! pages locked in RAM where the platform and `RLIMIT_MEMLOCK` allow ([`super::locked`]),
//! never printed. They sign on the CPU pool (`Execution::CpuPool`, the default).

use async_trait::async_trait;

use super::locked::Locked;
use zeroize::Zeroizing;

use super::signer::{BackendError, DeterministicNonces, ProvePossession, Signer, TezosSigner};
use crate::crypto::bls;
use crate::crypto::tezos::{self, Curve, PublicKey, Signature};

/// A BLS key held in process memory. `Debug` prints the public key only.
pub struct MemoryKey {
    secret: Locked<bls::SecretKey>,
    public: [u8; 48],
}

impl MemoryKey {
    /// Wraps a secret key, computing its 48-byte public key once.
    pub fn new(secret: bls::SecretKey) -> Self {
        let public = secret.public_key();
        MemoryKey {
            secret: Locked::new(secret),
            public,
        }
    }
}

impl std::fmt::Debug for MemoryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MemoryKey(0x{}, <secret redacted>)",
            hex::encode(self.public)
        )
    }
}

#[async_trait]
impl Signer for MemoryKey {
    fn public_key(&self) -> [u8; 48] {
        self.public
    }
    async fn sign(&self, signing_root: &[u8; 32]) -> Result<[u8; 96], BackendError> {
        Ok(self.secret.sign(signing_root))
    }
}

/// A Tezos secret key held in process memory. `Debug` prints the public key hash only.
pub struct MemoryTezosKey {
    secret: Locked<tezos::SecretKey>,
    public: PublicKey,
}

impl MemoryTezosKey {
    /// Wraps a secret key, computing its public key once.
    pub fn new(secret: tezos::SecretKey) -> Self {
        let public = secret.public_key();
        MemoryTezosKey {
            secret: Locked::new(secret),
            public,
        }
    }
}

impl std::fmt::Debug for MemoryTezosKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MemoryTezosKey({}, <secret redacted>)",
            self.public.pkh_b58()
        )
    }
}

#[async_trait]
impl TezosSigner for MemoryTezosKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    async fn sign(&self, data: &[u8], version: u8) -> Result<Signature, BackendError> {
        self.secret
            .sign(data, version)
            .map_err(|e| BackendError(e.to_string()))
    }
    fn possession(&self) -> Option<&dyn ProvePossession> {
        (self.public.curve() == Curve::Bls).then_some(self as &dyn ProvePossession)
    }
    fn deterministic_nonces(&self) -> Option<&dyn DeterministicNonces> {
        Some(self)
    }
}

#[async_trait]
impl DeterministicNonces for MemoryTezosKey {
    async fn deterministic_nonce(&self, data: &[u8]) -> Result<Zeroizing<[u8; 32]>, BackendError> {
        Ok(self.secret.deterministic_nonce(data))
    }
    async fn deterministic_nonce_hash(&self, data: &[u8]) -> Result<[u8; 32], BackendError> {
        Ok(self.secret.deterministic_nonce_hash(data))
    }
}

#[async_trait]
impl ProvePossession for MemoryTezosKey {
    async fn prove_possession(
        &self,
        override_pk: Option<&PublicKey>,
    ) -> Result<Signature, BackendError> {
        self.secret
            .prove_possession(override_pk)
            .map_err(|e| BackendError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_key_debug_is_redacted() {
        let sk =
            tezos::SecretKey::from_b58("edsk4TjJWEszkHKono7XMnepVqwi37FrpbVt1KCsifJeAGimxheShG")
                .unwrap();
        let key = MemoryTezosKey::new(sk);
        let shown = format!("{key:?}");
        assert!(shown.starts_with("MemoryTezosKey(tz1"), "{shown}");
        assert!(!shown.contains("edsk"), "{shown}");
        assert!(futures_executor::block_on(key.sign(&[3, 1, 2, 3], 0)).is_ok());
        assert!(
            key.possession().is_none(),
            "an Ed25519 key has no proof of possession"
        );
    }
}
