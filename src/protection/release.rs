//! Release after commit, by construction.
//!
//! A signature computed for a caller is a [`Pending`] value, and the only way to take its
//! bytes out is [`Pending::release`], which consumes the [`Committed`] proof that the
//! decision's record (slashing-protection record, high watermark and audit entry) committed.
//! Proofs are made only in this module, by the functions below, and only after the store
//! answered that its transaction committed; on any protection error there is no proof, so the
//! pending signature can only be dropped.
//!
//! A proof names its subject (the 32-byte signing root of an eth2 message, the blake2b-256
//! digest of the Tezos bytes) and releases only a signature computed for that subject.
//!
//! Outside the crate, neither half can be forged:
//!
//! ```compile_fail
//! // A proof cannot be made outside the protection module…
//! let proof = palisade::protection::release::Committed { subject: [0; 32] };
//! ```
//!
//! ```compile_fail
//! // …and a pending signature's bytes cannot be read without one.
//! fn leak(p: palisade::protection::release::Pending<[u8; 96]>) -> [u8; 96] {
//!     p.signature
//! }
//! ```
//!
//! ```compile_fail
//! // A proof is used once: it is neither `Clone` nor `Copy`.
//! use palisade::protection::release::{Committed, Pending};
//! fn twice(a: Pending<[u8; 96]>, b: Pending<[u8; 96]>, proof: Committed) {
//!     let _ = a.release(proof);
//!     let _ = b.release(proof);
//! }
//! ```
//!
//! The legitimate path compiles:
//!
//! ```
//! use palisade::protection::release::{Committed, Pending, ReleaseError};
//! fn answer(p: Pending<[u8; 96]>, proof: Committed) -> Result<[u8; 96], ReleaseError> {
//!     p.release(proof)
//! }
//! ```

use super::audit::AuditEntry;
use super::roles::{AuditLog, Eth2Protection, TezosWatermarks};
use super::watermark::{TezosWatermarkRequest, WatermarkDecision};
use super::{Decision, ProtectedMessage, ProtectionError};

/// Proof that the record of one signing decision committed durably. Made only by this
/// module's functions after the store's transaction committed; consumed by
/// [`Pending::release`]. Not `Clone`: one proof releases one signature.
#[derive(Debug)]
#[must_use = "a proof of commit exists to release the signature it covers"]
pub struct Committed {
    subject: [u8; 32],
}

/// A signature computed for `subject` and not yet released to the caller.
#[must_use = "a pending signature is released with a proof of commit, or dropped"]
pub struct Pending<S> {
    subject: [u8; 32],
    signature: S,
}

impl<S> std::fmt::Debug for Pending<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("subject", &hex::encode(self.subject))
            .finish_non_exhaustive()
    }
}

/// [`Pending::release`] was given the proof of another subject (an internal fault: nothing
/// is released).
#[derive(Debug, thiserror::Error)]
#[error(
    "internal error: the proof of commit covers {proof}, not the signature's subject {signature}"
)]
pub struct ReleaseError {
    proof: String,
    signature: String,
}

impl<S> Pending<S> {
    /// Wraps a signature computed over `subject` (a signing root or payload digest, 32
    /// bytes). Only the signing dispatch makes these.
    pub(crate) fn new(subject: [u8; 32], signature: S) -> Self {
        Pending { subject, signature }
    }

    /// The signature, in exchange for the proof that its record committed.
    ///
    /// # Errors
    /// [`ReleaseError`] when the proof covers another subject.
    pub fn release(self, proof: Committed) -> Result<S, ReleaseError> {
        if proof.subject == self.subject {
            Ok(self.signature)
        } else {
            Err(ReleaseError {
                proof: hex::encode(proof.subject),
                signature: hex::encode(self.subject),
            })
        }
    }
}

/// Runs [`Eth2Protection::check_record_and_audit`] (the eth2 check, record and audit entry
/// in one transaction) and, when it committed, returns its decision with the proof for
/// `signing_root`.
///
/// # Errors
/// The store's [`ProtectionError`]: a refusal or an unavailable database; no proof.
pub async fn eth2_check_and_record(
    store: &dyn Eth2Protection,
    public_key: &[u8; 48],
    genesis_validators_root: [u8; 32],
    message: ProtectedMessage,
    signing_root: [u8; 32],
    audit: AuditEntry,
) -> Result<(Decision, Committed), ProtectionError> {
    let decision = store
        .check_record_and_audit(
            public_key,
            genesis_validators_root,
            message,
            signing_root,
            audit,
        )
        .await?;
    Ok((
        decision,
        Committed {
            subject: signing_root,
        },
    ))
}

/// Appends `audit` (a signed decision of a message without a protection record) and, when
/// it committed, returns the proof for `subject`.
///
/// # Errors
/// The store's [`ProtectionError`] (database unavailable); no proof.
pub async fn audit_only(
    store: &dyn AuditLog,
    audit: &AuditEntry,
    subject: [u8; 32],
) -> Result<Committed, ProtectionError> {
    store.append_audit(audit).await?;
    Ok(Committed { subject })
}

/// Runs [`TezosWatermarks::tezos_check_record_and_audit`] (high watermark and audit entry
/// in one transaction) and, when it committed, returns its decision with the proof for
/// `subject` (the blake2b-256 digest of the signed bytes).
///
/// # Errors
/// The store's [`ProtectionError`]: refused by the high watermark, or database unavailable;
/// no proof.
pub async fn tezos_check_and_record(
    store: &dyn TezosWatermarks,
    request: &TezosWatermarkRequest,
    audit: AuditEntry,
    subject: [u8; 32],
) -> Result<(WatermarkDecision, Committed), ProtectionError> {
    let decision = store.tezos_check_record_and_audit(request, audit).await?;
    Ok((decision, Committed { subject }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_releases_only_its_own_subject() {
        let pending = Pending::new([1; 32], [7u8; 96]);
        assert!(pending.release(Committed { subject: [2; 32] }).is_err());
        let pending = Pending::new([1; 32], [7u8; 96]);
        assert_eq!(
            pending.release(Committed { subject: [1; 32] }).unwrap(),
            [7u8; 96]
        );
    }
}
