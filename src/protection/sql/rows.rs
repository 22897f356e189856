//! Rows as both stores select them (typed tuples, decoded by `sqlx` on either backend) and
//! the pure functions that turn them into the protection types. Column order is the order of
//! the `SELECT` lists in [`super::queries`].

use crate::protection::ProtectionError;
use crate::protection::rules::{HighWatermark, LowWatermarks, SignedAttestation, SignedBlock};
use crate::protection::watermark::TezosMark;

/// A `signed_blocks` row: `(slot, signing_root)`; the root is NULL for an imported record
/// without one (or one merged from two different roots).
pub(crate) type BlockRow = (i64, Option<Vec<u8>>);

/// A `signed_attestations` row: `(source_epoch, target_epoch, signing_root)`.
pub(crate) type AttestationRow = (i64, i64, Option<Vec<u8>>);

/// A `low_watermarks` row: `(slot, source_epoch, target_epoch)`, each NULL when unset.
pub(crate) type LowRow = (Option<i64>, Option<i64>, Option<i64>);

/// The `high_watermark` row: `(epoch, slot)`.
pub(crate) type HighRow = (i64, i64);

/// A `tezos_high_watermarks` row: `(level, round, payload_hash, signature)`.
pub(crate) type MarkRow = (i64, i64, Vec<u8>, Vec<u8>);

/// A 32-byte root from a nullable BLOB/BYTEA column (`None` for NULL or a wrong length).
pub(crate) fn root_of(v: Option<Vec<u8>>) -> Option<[u8; 32]> {
    v.and_then(|b| b.try_into().ok())
}

/// The record in a [`BlockRow`] (slots are never negative: they are written from `u64`s
/// checked by [`crate::protection::to_db`]).
pub(crate) fn block_of((slot, root): BlockRow) -> SignedBlock {
    SignedBlock {
        slot: slot as u64,
        signing_root: root_of(root),
    }
}

/// The record in an [`AttestationRow`].
pub(crate) fn attestation_of((source, target, root): AttestationRow) -> SignedAttestation {
    SignedAttestation {
        source_epoch: source as u64,
        target_epoch: target as u64,
        signing_root: root_of(root),
    }
}

/// The watermarks in a [`LowRow`] (see [`LowWatermarks::from_columns`]); no row means none.
pub(crate) fn low_of(row: Option<LowRow>) -> LowWatermarks {
    match row {
        None => LowWatermarks::default(),
        Some((slot, source, target)) => LowWatermarks::from_columns([slot, source, target]),
    }
}

/// The high watermark in a [`HighRow`].
pub(crate) fn high_of((epoch, slot): HighRow) -> HighWatermark {
    HighWatermark {
        epoch: epoch as u64,
        slot: slot as u64,
    }
}

/// The mark in a [`MarkRow`].
///
/// # Errors
/// [`ProtectionError::Unavailable`] for a row the schema's checks should have prevented.
pub(crate) fn mark_of(row: MarkRow) -> Result<TezosMark, ProtectionError> {
    let (level, round, hash, signature) = row;
    let corrupt = || ProtectionError::unavailable("corrupt tezos_high_watermarks row");
    Ok(TezosMark {
        level: u32::try_from(level).map_err(|_| corrupt())?,
        round: u32::try_from(round).map_err(|_| corrupt())?,
        payload_hash: hash.try_into().map_err(|_| corrupt())?,
        signature,
    })
}

/// 48-byte public keys from `public_key` column values (a value of another length is skipped).
pub(crate) fn public_keys_of(rows: Vec<Vec<u8>>) -> Vec<[u8; 48]> {
    rows.into_iter().filter_map(|k| k.try_into().ok()).collect()
}
