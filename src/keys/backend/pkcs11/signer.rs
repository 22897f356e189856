//! Tezos key pairs held in a token ([`Pkcs11TezosKey`]): signing inside the HSM.

use std::sync::Arc;

use async_trait::async_trait;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{ObjectClass, ObjectHandle};
use parking_lot::Mutex;

use super::error::HsmError;
use super::objects::{KeySelector, find_one, read_public_key};
use super::token::Token;
use crate::crypto::tezos::{Curve, PublicKey, Signature, blake2b_256};
use crate::keys::signer::{BackendError, Execution, TezosSigner};

/// A Tezos key pair in an HSM: signs with `CKM_EDDSA`/`CKM_ECDSA` over blake2b-256.
pub struct Pkcs11TezosKey {
    token: Arc<Token>,
    selector: KeySelector,
    public: PublicKey,
    handle: Mutex<Option<ObjectHandle>>,
}

impl std::fmt::Debug for Pkcs11TezosKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11TezosKey")
            .field("token", &self.token.label())
            .field("key", &self.selector.to_string())
            .field("public", &self.public)
            .finish()
    }
}

impl Pkcs11TezosKey {
    /// Finds the key pair on `token` and reads its public key; checks the private key can
    /// sign (`CKA_SIGN`).
    ///
    /// # Errors
    /// [`HsmError`] for a missing/ambiguous key, a curve Tezos does not use, a failed call.
    pub fn open(token: Arc<Token>, selector: KeySelector) -> Result<Self, HsmError> {
        if selector.label.is_none() && selector.id.is_none() {
            return Err(HsmError::Config("keyLabel or keyId is required".into()));
        }
        let (public, handle) = token.with_session(|s, _| {
            let private = find_one(&token, s, ObjectClass::PRIVATE_KEY, &selector)?;
            let public = find_one(&token, s, ObjectClass::PUBLIC_KEY, &selector)?;
            Ok((read_public_key(&token, s, public)?, private))
        })?;
        Ok(Pkcs11TezosKey {
            token,
            selector,
            public,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// The token the key lives on.
    pub fn token(&self) -> &Arc<Token> {
        &self.token
    }

    /// Signs the 32-byte digest in the HSM; low-S for ECDSA.
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Signature, HsmError> {
        let curve = self.public.curve();
        let mechanism = match curve {
            Curve::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            _ => Mechanism::Ecdsa,
        };
        let raw = self.token.with_session(|s, retry| {
            let cached = *self.handle.lock();
            let handle = match cached {
                Some(h) if !retry => h,
                _ => {
                    let h = find_one(&self.token, s, ObjectClass::PRIVATE_KEY, &self.selector)?;
                    *self.handle.lock() = Some(h);
                    h
                }
            };
            s.sign(&mechanism, handle, digest)
                .map_err(|e| HsmError::call(self.token.label(), &e))
        })?;
        Signature::from_raw_low_s(curve, &raw)
            .map_err(|e| HsmError::Key(format!("the HSM returned an unusable signature: {e}")))
    }
}

#[async_trait]
impl TezosSigner for Pkcs11TezosKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// PKCS#11 calls block their thread: on the blocking pool, under the token's
    /// `timeoutMs`.
    fn execution(&self) -> Execution {
        Execution::Blocking {
            timeout: self.token.timeout(),
        }
    }

    async fn sign(&self, data: &[u8], _version: u8) -> Result<Signature, BackendError> {
        self.sign_digest(&blake2b_256(data))
            .map_err(|e| BackendError(e.to_string()))
    }

    fn backend(&self) -> String {
        format!("pkcs11 token `{}` {}", self.token.label(), self.selector)
    }
}
