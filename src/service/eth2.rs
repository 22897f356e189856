//! The eth2 signing service: one Web3Signer sign request, from its decoded JSON body to the
//! released 96-byte BLS signature, with no HTTP types.
//!
//! The flow ([`Eth2Service::sign`]): find the key; plan the request (`chain::eth2::request`:
//! the signing root recomputed from the typed body, never trusted from the caller); sign on
//! the CPU pool while slashing protection checks and records blocks and attestations with
//! their audit entry in one transaction (other types: the audit entry alone); release the
//! signature only with the store's proof of commit ([`crate::protection::release`]).

use std::sync::Arc;
use std::time::Instant;

use crate::chain::eth2::network::NetworkConfig;
use crate::chain::eth2::request::{self, ProtectedMessage, RequestError};
use crate::keys::dispatch::{self, DispatchError};
use crate::keys::{BackendError, Keys, Signer};
use crate::metrics::METRICS;
use crate::protection::audit::AuditEntry;
use crate::protection::release::{self, Pending, ReleaseError};
use crate::protection::{ProtectionError, ProtectionStore};

/// Why a request got no signature. A transport maps each to its own answer (HTTP: 404, 400,
/// 412/503 by [`ProtectionError`], 500).
#[derive(Debug, thiserror::Error)]
pub enum Eth2SignError {
    /// No loaded key has this 48-byte public key (hex in the message).
    #[error("no key for identifier {0}")]
    UnknownKey(String),
    /// The body is not a signable request of a known type.
    #[error(transparent)]
    BadRequest(#[from] RequestError),
    /// Slashing protection refused the message, or its database is unavailable; nothing
    /// was released.
    #[error(transparent)]
    Protection(#[from] ProtectionError),
    /// The key's backend failed to sign.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The key's backend did not answer within its timeout (milliseconds); nothing was
    /// released.
    #[error("signing backend did not answer within {0} ms")]
    BackendTimeout(u128),
    /// A proof of commit did not match the signature (an internal fault).
    #[error(transparent)]
    Release(#[from] ReleaseError),
}

/// One sign request as a transport decoded it.
pub struct Eth2SignRequest<'a> {
    /// The validator's 48-byte compressed BLS public key.
    pub public_key: [u8; 48],
    /// The Web3Signer JSON body (`type`, `fork_info`, the typed message, optional
    /// `signingRoot`).
    pub body: &'a serde_json::Value,
    /// The caller (an IP address), for the audit trail.
    pub caller: Option<String>,
}

/// The eth2 signing service over the keys, the protection store and the network's fork
/// schedule and preset. Cheap to make (three references): a transport makes one per request.
pub struct Eth2Service<'a> {
    /// The keys being served.
    pub keys: &'a Keys,
    /// The slashing-protection record and audit trail.
    pub store: &'a dyn ProtectionStore,
    /// Fork schedule and preset.
    pub network: &'a NetworkConfig,
}

impl Eth2Service<'_> {
    /// The signer of `public_key`, if loaded.
    pub fn signer(&self, public_key: &[u8; 48]) -> Option<Arc<dyn Signer>> {
        self.keys.current().get(public_key)
    }

    /// Signs one request. Returns the request's `type` (`"unknown"` until it is known, for
    /// the transport's metrics) and the 96-byte signature or why there is none.
    ///
    /// A signature leaves only after the decision's record committed: for BLOCK, BLOCK_V2
    /// and ATTESTATION the protection record and audit entry in one transaction, for the
    /// other types the audit entry.
    pub async fn sign(
        &self,
        request: Eth2SignRequest<'_>,
    ) -> (&'static str, Result<[u8; 96], Eth2SignError>) {
        let kind = request::signing_type(request.body).unwrap_or("unknown");
        (kind, self.sign_known(request).await)
    }

    async fn sign_known(&self, request: Eth2SignRequest<'_>) -> Result<[u8; 96], Eth2SignError> {
        let started = Instant::now();
        let public_key = request.public_key;
        let signer = self
            .signer(&public_key)
            .ok_or_else(|| Eth2SignError::UnknownKey(format!("0x{}", hex::encode(public_key))))?;
        let plan = request::plan(request.body, self.network)?;
        let root: [u8; 32] = plan.signing_root.0;
        let audit = AuditEntry::eth2(&public_key, plan.kind, root)
            .with_slot_epoch(plan.slot, plan.epoch)
            .with_caller(request.caller);
        // Sign on the CPU pool while the protection transaction runs.
        let signing = sign_with_backend(signer, root);
        let (pending, proof) = match plan.protected {
            Some((message, genesis_validators_root)) => {
                let audit = match message {
                    ProtectedMessage::Attestation { source, .. } => audit.with_source_epoch(source),
                    ProtectedMessage::Block { .. } => audit,
                };
                let check = async {
                    let t = Instant::now();
                    let d = release::eth2_check_and_record(
                        self.store,
                        &public_key,
                        genesis_validators_root.0,
                        message,
                        root,
                        audit,
                    )
                    .await;
                    let unavailable = d.as_ref().is_err_and(ProtectionError::is_unavailable);
                    METRICS.db_call("eth2_check_and_record", t.elapsed(), unavailable);
                    d
                };
                let (pending, decision) = tokio::join!(signing, check);
                match decision {
                    Ok((d, proof)) => {
                        METRICS.eth2_permitted.with_label_values(&[plan.kind]).inc();
                        tracing::debug!(kind = plan.kind, decision = ?d, "slashing protection passed");
                        (pending, proof)
                    }
                    Err(e) => {
                        if let Some(label) = e.outcome().metric_label {
                            METRICS
                                .eth2_prevented
                                .with_label_values(&[plan.kind, label])
                                .inc();
                        }
                        tracing::warn!(kind = plan.kind, pubkey = %format!("0x{}", hex::encode(public_key)), reason = %e, "signing refused");
                        return Err(e.into());
                    }
                }
            }
            None => {
                // No protection record: the audit entry alone is committed before release.
                let pending = signing.await?;
                let t = Instant::now();
                let appended = release::audit_only(self.store, &audit, root).await;
                METRICS.db_call("audit_append", t.elapsed(), appended.is_err());
                (Ok(pending), appended?)
            }
        };
        let signature = pending?.release(proof)?;
        tracing::debug!(
            kind = plan.kind,
            elapsed_us = started.elapsed().as_micros() as u64,
            "signed"
        );
        Ok(signature)
    }
}

/// Signs `signing_root` with the key's backend, where its execution hint says (in-memory
/// keys: the CPU signing pool, one thread per core, so that a burst of requests does not
/// start one OS thread per request); the signature comes back pending release.
///
/// # Errors
/// [`Eth2SignError::Backend`] for the backend's failure or a dropped job,
/// [`Eth2SignError::BackendTimeout`] when it did not answer within its timeout.
async fn sign_with_backend(
    signer: Arc<dyn Signer>,
    signing_root: [u8; 32],
) -> Result<Pending<[u8; 96]>, Eth2SignError> {
    let execution = signer.execution();
    dispatch::run(execution, "sign", move || async move {
        signer.sign(&signing_root).await
    })
    .await
    .map(|signature| Pending::new(signing_root, signature))
    .map_err(|e| match e {
        DispatchError::Backend(e) => Eth2SignError::Backend(e),
        DispatchError::Timeout(ms) => Eth2SignError::BackendTimeout(ms),
        DispatchError::Dropped => Eth2SignError::Backend(BackendError(e.to_string())),
    })
}
