//! The roles of a slashing-protection store, one trait each: [`Eth2Protection`] (the eth2
//! record), [`TezosWatermarks`] (the Tezos high watermarks), [`AuditLog`] (the audit trail)
//! and [`ProtectionAdmin`] (import, pruning, disabling, the global high watermark, health).
//! [`ProtectionStore`] is all four together: what a registered store implements and what
//! callers hold (`Arc<dyn ProtectionStore>`). A caller that needs one role may take
//! `&dyn` that role; `&dyn ProtectionStore` coerces to it.
//!
//! `use palisade::protection::roles::*` brings every role into scope, so that their methods
//! can be called on a concrete store.

use async_trait::async_trait;

use super::audit::{self, AuditEntry, AuditRecord, KeyActivity};
use super::interchange::PreparedImport;
use super::watermark::{TezosMark, TezosWatermarkRequest, WatermarkDecision};
use super::{
    Decision, HighWatermark, ImportSummary, ProtectedMessage, ProtectionError, PruneSummary,
    ValidatorHistory,
};
use crate::chain::tezos::payload::ConsensusKind;

/// Guards eth2 signing: checks every block and attestation of a validator against its
/// recorded history, its low watermarks, the global high watermark and the database's
/// genesis validators root, and records it before a signature may be released; reads the
/// record back (history, validators, bound root) for exports.
///
/// Errors: a refusal is [`ProtectionError::Slashable`], [`ProtectionError::GenesisMismatch`],
/// [`ProtectionError::Disabled`] or [`ProtectionError::OutOfRange`] (the record is
/// unchanged); a fault is [`ProtectionError::Unavailable`] (nothing was recorded, nothing
/// may be signed).
#[async_trait]
pub trait Eth2Protection: Send + Sync {
    /// Makes sure every 48-byte public key has a validator row (idempotent, one statement per key,
    /// in key order so concurrent starts cannot deadlock).
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn register_validators(&self, public_keys: &[[u8; 48]]) -> Result<(), ProtectionError>;

    /// Checks `message` for the validator against its full history and low watermarks and,
    /// if it is new and safe, records it together with `audit` (as `signed`) in one
    /// transaction; commits before returning. Binds the database to `genesis_validators_root`
    /// the first time. A refusal is recorded as a `refused` audit entry with its reason, in
    /// its own transaction after the protection transaction rolled back.
    ///
    /// # Errors
    /// [`ProtectionError::Slashable`], [`ProtectionError::GenesisMismatch`],
    /// [`ProtectionError::Disabled`], [`ProtectionError::OutOfRange`],
    /// [`ProtectionError::Unavailable`]; on any error the protection record is unchanged.
    async fn check_record_and_audit(
        &self,
        public_key: &[u8; 48],
        genesis_validators_root: [u8; 32],
        message: ProtectedMessage,
        signing_root: [u8; 32],
        audit: AuditEntry,
    ) -> Result<Decision, ProtectionError>;

    /// [`Eth2Protection::check_record_and_audit`] with an audit entry of kind `BLOCK` or
    /// `ATTESTATION` and no caller.
    ///
    /// # Errors
    /// As [`Eth2Protection::check_record_and_audit`].
    async fn check_and_record(
        &self,
        public_key: &[u8; 48],
        genesis_validators_root: [u8; 32],
        message: ProtectedMessage,
        signing_root: [u8; 32],
    ) -> Result<Decision, ProtectionError> {
        let kind = match message {
            ProtectedMessage::Block { .. } => "BLOCK",
            ProtectedMessage::Attestation { .. } => "ATTESTATION",
        };
        let audit = audit::for_protected(public_key, kind, &message, signing_root);
        self.check_record_and_audit(
            public_key,
            genesis_validators_root,
            message,
            signing_root,
            audit,
        )
        .await
    }

    /// The full record of one validator (empty if unknown).
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn history(&self, public_key: &[u8; 48]) -> Result<ValidatorHistory, ProtectionError>;

    /// The genesis validators root the database is bound to, if any.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn genesis_validators_root(&self) -> Result<Option<[u8; 32]>, ProtectionError>;

    /// Every validator public key in the database, sorted.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError>;
}

/// Guards Tezos consensus signing: one high watermark per (chain id, pkh, kind). A request
/// strictly above its mark moves the mark, recorded before the signature may be released;
/// identical bytes at the mark get the stored signature again.
///
/// Errors: a refusal is [`ProtectionError::Watermark`] (the mark is unchanged); a fault is
/// [`ProtectionError::Unavailable`] (nothing was written, nothing may be signed).
#[async_trait]
pub trait TezosWatermarks: Send + Sync {
    /// Checks a Tezos consensus request against the high watermark of its (chain id, pkh,
    /// kind) and, when it is strictly above, records the new mark with the request's payload
    /// hash and signature; the decision is recorded as `audit` (`signed`, or `refused` with
    /// the violation) in the same transaction, committed before returning. Serialised per
    /// mark across processes.
    ///
    /// # Errors
    /// [`ProtectionError::Watermark`] (the mark is unchanged), [`ProtectionError::Unavailable`]
    /// (nothing written).
    async fn tezos_check_record_and_audit(
        &self,
        request: &TezosWatermarkRequest,
        audit: AuditEntry,
    ) -> Result<WatermarkDecision, ProtectionError>;

    /// [`TezosWatermarks::tezos_check_record_and_audit`] with an audit entry built from the
    /// request and no caller.
    ///
    /// # Errors
    /// As [`TezosWatermarks::tezos_check_record_and_audit`].
    async fn tezos_check_and_record(
        &self,
        request: &TezosWatermarkRequest,
    ) -> Result<WatermarkDecision, ProtectionError> {
        let audit = AuditEntry::tezos(
            &request.pkh,
            request.kind.as_str(),
            Some(request.payload_hash),
        )
        .with_level_round(request.level, request.round);
        self.tezos_check_record_and_audit(request, audit).await
    }

    /// The high watermark of one (chain id, pkh, kind), if anything was signed.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn tezos_mark(
        &self,
        chain_id: [u8; 4],
        pkh: &str,
        kind: ConsensusKind,
    ) -> Result<Option<TezosMark>, ProtectionError>;
}

/// Keeps the audit trail: one entry per signing decision (signed or refused), per-key
/// lifetime totals, paged reads for export and chunked pruning. The entries of protected
/// messages are written by [`Eth2Protection`] and [`TezosWatermarks`] in their own
/// transactions; this role appends the others and reads them all.
///
/// Errors: only faults, [`ProtectionError::Unavailable`]; an audit call never refuses.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one audit entry (and updates its key's totals) in its own transaction;
    /// commits before returning. For decisions without a protection record: eth2 messages
    /// other than blocks and attestations, Tezos non-consensus operations, policy refusals.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), ProtectionError>;

    /// Up to `limit` audit records with `since_ms <= time_ms < until_ms` (Unix milliseconds)
    /// and `id > after_id`, by ascending id (page with the last id returned).
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn audit_records(
        &self,
        since_ms: i64,
        until_ms: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ProtectionError>;

    /// Deletes audit records older than `before_ms` (Unix milliseconds), in chunks so that
    /// signing is not held up; returns how many were deleted. Per-key totals are kept.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`] (chunks deleted before the error stay deleted).
    async fn prune_audit(&self, before_ms: i64) -> Result<u64, ProtectionError>;

    /// Lifetime totals of every key that has an audit entry, by chain then key.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn key_activity(&self) -> Result<Vec<KeyActivity>, ProtectionError>;
}

/// Administers the eth2 record: EIP-3076 import (export is [`super::export`], over
/// [`Eth2Protection`]), pruning under raised low watermarks, disabling validators, the
/// global high watermark, and the health check. Every change only makes the record
/// stricter, or (enabling a validator, lowering the high watermark) is an explicit operator
/// decision.
///
/// Errors: [`ProtectionError::Import`] for an interchange that cannot be imported (nothing
/// written); otherwise only faults, [`ProtectionError::Unavailable`].
#[async_trait]
pub trait ProtectionAdmin: Send + Sync {
    /// Imports an EIP-3076 interchange: merges the records (every row kept, see
    /// `docs/design.md`), raises each validator's import watermarks to the file's minima, binds
    /// the database to the file's genesis validators root if unbound. Written in transactions
    /// of at most [`super::interchange::IMPORT_BATCH_RECORDS`] records
    /// ([`PreparedImport::batches`]), so signing waits for one batch at most.
    ///
    /// # Errors
    /// [`ProtectionError::Import`] (genesis mismatch: nothing is written),
    /// [`ProtectionError::Unavailable`] (the batches committed before the error stay: each
    /// only makes the record stricter; importing the file again completes it).
    async fn import(&self, prepared: &PreparedImport) -> Result<ImportSummary, ProtectionError>;

    /// Deletes, per validator, blocks more than `epochs_to_keep` epochs (of `slots_per_epoch`
    /// slots) below its newest block and attestations more than `epochs_to_keep` epochs below
    /// its newest target, after raising its low watermarks so that no rule becomes weaker.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`]; on error nothing is deleted.
    async fn prune(
        &self,
        epochs_to_keep: u64,
        slots_per_epoch: u64,
    ) -> Result<PruneSummary, ProtectionError>;

    /// Enables or disables validators (registering unknown ones). A disabled validator's
    /// blocks and attestations are refused with [`ProtectionError::Disabled`] by every instance
    /// sharing the database; its records stay and still protect it. Serialised with
    /// check-and-record per validator, so no record commits after a disable returns.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn set_enabled(
        &self,
        public_keys: &[[u8; 48]],
        enabled: bool,
    ) -> Result<(), ProtectionError>;

    /// The 48-byte public keys of the validators that are disabled, sorted.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn disabled_validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError>;

    /// The global high watermark, if set.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn high_watermark(&self) -> Result<Option<HighWatermark>, ProtectionError>;

    /// Sets (`Some`) or removes (`None`) the global high watermark.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn set_high_watermark(&self, high: Option<HighWatermark>) -> Result<(), ProtectionError>;

    /// A cheap round trip to the database, for health checks.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn ping(&self) -> Result<(), ProtectionError>;
}

/// The slashing-protection record: every role together. Implementations:
/// [`super::sqlite::SqliteStore`], [`super::postgres::PostgresStore`]; [`super::open`]
/// picks one by URL scheme. Implemented for every type that implements the four roles.
pub trait ProtectionStore: Eth2Protection + TezosWatermarks + AuditLog + ProtectionAdmin {}

impl<T> ProtectionStore for T where
    T: Eth2Protection + TezosWatermarks + AuditLog + ProtectionAdmin + ?Sized
{
}
