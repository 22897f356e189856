//! The statements both stores run, written once with `$N` placeholders (sqlx-sqlite binds
//! `$N` by number, as PostgreSQL does) in the SQL both dialects share: `ON CONFLICT … DO
//! UPDATE`, `excluded`, `IS NOT DISTINCT FROM` (SQLite 3.39+; the bundled library is newer),
//! `NOT enabled` (SQLite stores the flag as 0/1). Statements only one store runs stay in
//! that store.
//!
//! Every slot, epoch, level and round is bound as a signed 64-bit integer; every root, key,
//! hash and signature as bytes.

use crate::protection::audit::{activity_columns, audit_columns};

/// `$1` public key → `id` of the validator (no row if unknown).
pub(crate) const VALIDATOR_ID: &str = "SELECT id FROM validators WHERE public_key = $1";

/// Every validator `id`, ascending.
pub(crate) const VALIDATOR_IDS: &str = "SELECT id FROM validators ORDER BY id";

/// Every validator `public_key`, ascending.
pub(crate) const VALIDATORS: &str = "SELECT public_key FROM validators ORDER BY public_key";

/// Every disabled validator's `public_key`, ascending.
pub(crate) const DISABLED_VALIDATORS: &str =
    "SELECT public_key FROM validators WHERE NOT enabled ORDER BY public_key";

/// `$1` validator id → its [`super::rows::BlockRow`]s by slot.
pub(crate) const BLOCKS_OF: &str =
    "SELECT slot, signing_root FROM signed_blocks WHERE validator_id = $1 ORDER BY slot";

/// `$1` validator id → its [`super::rows::AttestationRow`]s by target, then source.
pub(crate) const ATTESTATIONS_OF: &str = "SELECT source_epoch, target_epoch, signing_root
     FROM signed_attestations WHERE validator_id = $1 ORDER BY target_epoch, source_epoch";

/// `$1` validator id → its [`super::rows::LowRow`] (no row: no watermarks).
pub(crate) const LOW_WATERMARKS: &str =
    "SELECT slot, source_epoch, target_epoch FROM low_watermarks WHERE validator_id = $1";

/// Sets the low watermarks of validator `$1` to `($2 slot, $3 source, $4 target)`.
pub(crate) const SET_LOW_WATERMARKS: &str = "INSERT INTO low_watermarks (validator_id, slot, source_epoch, target_epoch) VALUES ($1, $2, $3, $4)
     ON CONFLICT (validator_id) DO UPDATE SET slot = $2, source_epoch = $3, target_epoch = $4";

/// The [`super::rows::HighRow`], if set.
pub(crate) const HIGH_WATERMARK: &str = "SELECT epoch, slot FROM high_watermark WHERE id = 1";

/// Sets the high watermark to (`$1` epoch, `$2` slot).
pub(crate) const SET_HIGH_WATERMARK: &str =
    "INSERT INTO high_watermark (id, epoch, slot) VALUES (1, $1, $2)
     ON CONFLICT (id) DO UPDATE SET epoch = $1, slot = $2";

/// Removes the high watermark.
pub(crate) const DELETE_HIGH_WATERMARK: &str = "DELETE FROM high_watermark";

/// The genesis validators root the database is bound to (no row: unbound).
pub(crate) const GENESIS_ROOT: &str = "SELECT genesis_validators_root FROM metadata WHERE id = 1";

/// Binds an unbound database to `$1` (first writer wins; a bound one is left alone).
pub(crate) const BIND_GENESIS: &str =
    "INSERT INTO metadata (id, genesis_validators_root) VALUES (1, $1) ON CONFLICT (id) DO NOTHING";

/// Merges an imported block `($1 validator, $2 slot, $3 root)`: a record at the same slot with
/// another (or no) root keeps no root, which conflicts with every block there.
pub(crate) const IMPORT_BLOCK: &str =
    "INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES ($1, $2, $3)
     ON CONFLICT (validator_id, slot) DO UPDATE SET signing_root =
       CASE WHEN signed_blocks.signing_root IS NOT DISTINCT FROM excluded.signing_root
            THEN signed_blocks.signing_root ELSE NULL END";

/// Merges an imported attestation `($1 validator, $2 source, $3 target, $4 root)`: every
/// (target, source) is its own row; at the same pair another (or no) root keeps no root.
pub(crate) const IMPORT_ATTESTATION: &str = "INSERT INTO signed_attestations (validator_id, source_epoch, target_epoch, signing_root)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (validator_id, target_epoch, source_epoch) DO UPDATE SET
       signing_root = CASE WHEN signed_attestations.signing_root IS NOT DISTINCT FROM excluded.signing_root
                      THEN signed_attestations.signing_root ELSE NULL END";

/// Validator `$1`'s [`super::rows::BlockRow`]s more than `$2` slots below its newest block.
pub(crate) const PRUNABLE_BLOCKS: &str =
    "SELECT slot, signing_root FROM signed_blocks WHERE validator_id = $1
     AND slot < (SELECT MAX(slot) FROM signed_blocks WHERE validator_id = $1) - $2";

/// Validator `$1`'s [`super::rows::AttestationRow`]s more than `$2` epochs below its newest
/// target.
pub(crate) const PRUNABLE_ATTESTATIONS: &str = "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations WHERE validator_id = $1
     AND target_epoch < (SELECT MAX(target_epoch) FROM signed_attestations WHERE validator_id = $1) - $2";

/// Deletes validator `$1`'s blocks at or below slot `$2`.
pub(crate) const DELETE_BLOCKS_UP_TO: &str =
    "DELETE FROM signed_blocks WHERE validator_id = $1 AND slot <= $2";

/// Deletes validator `$1`'s attestations at or below target `$2`.
pub(crate) const DELETE_ATTESTATIONS_UP_TO: &str =
    "DELETE FROM signed_attestations WHERE validator_id = $1 AND target_epoch <= $2";

/// (`$1` chain id, `$2` pkh, `$3` kind) → its [`super::rows::MarkRow`], if anything was signed.
pub(crate) const TEZOS_MARK: &str =
    "SELECT level, round, payload_hash, signature FROM tezos_high_watermarks
     WHERE chain_id = $1 AND pkh = $2 AND kind = $3";

/// Sets the mark of (`$1` chain id, `$2` pkh, `$3` kind) to (`$4` level, `$5` round, `$6`
/// payload hash, `$7` signature).
pub(crate) const SET_TEZOS_MARK: &str =
    "INSERT INTO tezos_high_watermarks (chain_id, pkh, kind, level, round, payload_hash, signature)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (chain_id, pkh, kind) DO UPDATE
     SET level = $4, round = $5, payload_hash = $6, signature = $7";

/// Up to `$4` audit rows ([`crate::protection::audit::AuditDbRow`]) with `$1 <= time_ms < $2`
/// and `id > $3`, by id.
pub(crate) const AUDIT_RECORDS: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit_log WHERE time_ms >= $1 AND time_ms < $2 AND id > $3 ORDER BY id LIMIT $4"
);

/// Deletes up to `$2` of the oldest audit rows with `time_ms < $1`.
pub(crate) const PRUNE_AUDIT_CHUNK: &str = "DELETE FROM audit_log WHERE id IN
     (SELECT id FROM audit_log WHERE time_ms < $1 ORDER BY id LIMIT $2)";

/// Every key's totals ([`crate::protection::audit::ActivityRow`]), by chain then key.
pub(crate) const KEY_ACTIVITY: &str = concat!(
    "SELECT ",
    activity_columns!(),
    " FROM key_activity ORDER BY chain, key"
);

/// A round trip that touches no table.
pub(crate) const PING: &str = "SELECT 1";
