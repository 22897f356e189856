//! The SQL layer both stores share: the statements ([`queries`]), the rows and their mappers
//! ([`rows`]), and the flows that are the same on SQLite and PostgreSQL, written once as the
//! default methods of [`Sql`], which both `sqlx::Sqlite` and `sqlx::Postgres` implement.
//!
//! What stays in a store is what differs: how it opens, how it serialises writers (SQLite:
//! one writer lock and `BEGIN IMMEDIATE`; PostgreSQL: advisory locks, retries of
//! serialisation failures, group commit), and the statements only it runs (PostgreSQL's
//! set-based batch queries and bulk audit insert). A store takes its lock and opens the
//! transaction, then calls these flows on it; every flow runs inside the caller's transaction
//! (or on the caller's pool) and never commits unless its name says so.
//!
//! The flows are default methods of one trait rather than free generic functions because
//! their `sqlx` bounds (which types each backend encodes and decodes) are stated once, on
//! the trait, and hold inside every default method; a free function would have to repeat
//! them.

pub(crate) mod queries;
pub(crate) mod rows;
pub(crate) mod store;
pub(crate) mod tezos_commit;

use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Transaction, Type};

use super::audit::{self, ActivityRow, AuditDbRow, AuditEntry, AuditRecord, KeyActivity};
use super::interchange::{InterchangeError, PreparedImport, ValidatorImport, merge_watermarks};
use super::roles::AuditLog;
use super::rules::{self, HighWatermark, LowWatermarks, SignedAttestation, SignedBlock};
use super::watermark::{self, TezosMark, TezosWatermarkRequest, WatermarkDecision};
use super::{ImportSummary, ProtectionError, PruneSummary, ValidatorHistory, to_db};
use crate::chain::tezos::payload::ConsensusKind;
use rows::{AttestationRow, BlockRow, HighRow, LowRow, MarkRow};

/// Audit rows deleted per statement by [`prune_audit`].
pub(crate) const AUDIT_PRUNE_CHUNK: u64 = 5000;

/// A database backend the shared flows run on. The `where` clauses are what the flows need of
/// `sqlx`: an executor on a connection, the column types they bind (64-bit integers, bytes,
/// text) and the rows of [`rows`] they decode.
///
/// Implementing it for a new `sqlx` backend is `rows_affected` and `insert_audit`; everything
/// else is inherited.
pub(crate) trait Sql: Database
where
    Self::Connection: sqlx::migrate::Migrate,
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'t> i64: Encode<'t, Self> + Type<Self>,
    for<'t> Option<i64>: Encode<'t, Self> + Type<Self>,
    for<'t> Option<Vec<u8>>: Encode<'t, Self> + Type<Self>,
    for<'t> &'t [u8]: Encode<'t, Self> + Type<Self>,
    for<'t> &'t str: Encode<'t, Self> + Type<Self>,
    for<'r> (i64,): FromRow<'r, Self::Row>,
    for<'r> (Vec<u8>,): FromRow<'r, Self::Row>,
    for<'r> BlockRow: FromRow<'r, Self::Row>,
    for<'r> AttestationRow: FromRow<'r, Self::Row>,
    for<'r> LowRow: FromRow<'r, Self::Row>,
    for<'r> HighRow: FromRow<'r, Self::Row>,
    for<'r> MarkRow: FromRow<'r, Self::Row>,
    for<'r> AuditDbRow: FromRow<'r, Self::Row>,
    for<'r> ActivityRow: FromRow<'r, Self::Row>,
{
    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Appends audit entries and adds them to their keys' totals, inside the caller's
    /// transaction (SQLite: one insert per entry and a trigger; PostgreSQL: two bulk
    /// statements).
    ///
    /// # Errors
    /// The database error; the caller's transaction must then roll back.
    async fn insert_audit(
        conn: &mut Self::Connection,
        entries: &[AuditEntry],
    ) -> Result<(), sqlx::Error>;

    /// Applies the store's migrations (`migrations/<store>/`) that `pool`'s database lacks.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`] (`migration failed: …`).
    async fn migrate(
        migrator: &sqlx::migrate::Migrator,
        pool: &sqlx::Pool<Self>,
    ) -> Result<(), ProtectionError> {
        migrator
            .run(pool)
            .await
            .map_err(|e| ProtectionError::unavailable_from(format!("migration failed: {e}"), e))
    }

    /// [`Sql::insert_audit`] of one entry in `tx`, then commits.
    ///
    /// # Errors
    /// The database error (nothing written).
    async fn append_audit_in(
        mut tx: Transaction<'_, Self>,
        entry: &AuditEntry,
    ) -> Result<(), sqlx::Error> {
        Self::insert_audit(&mut tx, std::slice::from_ref(entry)).await?;
        tx.commit().await
    }

    /// The id of the validator with `public_key`, `None` if it has no row.
    ///
    /// # Errors
    /// The database error.
    async fn validator_id_of(
        conn: &mut Self::Connection,
        public_key: &[u8; 48],
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(queries::VALIDATOR_ID)
            .bind(public_key.as_slice())
            .fetch_optional(&mut *conn)
            .await
    }

    /// Everything recorded for one validator (empty if it has no row), read on one connection.
    ///
    /// # Errors
    /// The database error.
    async fn history(
        conn: &mut Self::Connection,
        public_key: &[u8; 48],
    ) -> Result<ValidatorHistory, sqlx::Error> {
        let Some(id) = Self::validator_id_of(conn, public_key).await? else {
            return Ok(ValidatorHistory::default());
        };
        let blocks: Vec<BlockRow> = sqlx::query_as(queries::BLOCKS_OF)
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
        let attestations: Vec<AttestationRow> = sqlx::query_as(queries::ATTESTATIONS_OF)
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
        Ok(ValidatorHistory {
            blocks: blocks.into_iter().map(rows::block_of).collect(),
            attestations: attestations.into_iter().map(rows::attestation_of).collect(),
            watermarks: Self::low_watermarks(conn, id).await?,
        })
    }

    /// Validator `id`'s low watermarks (none set if it has no row).
    ///
    /// # Errors
    /// The database error.
    async fn low_watermarks(
        conn: &mut Self::Connection,
        id: i64,
    ) -> Result<LowWatermarks, sqlx::Error> {
        let row: Option<LowRow> = sqlx::query_as(queries::LOW_WATERMARKS)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(rows::low_of(row))
    }

    /// Replaces validator `id`'s low watermarks with `w`.
    ///
    /// # Errors
    /// The database error.
    async fn set_low_watermarks(
        conn: &mut Self::Connection,
        id: i64,
        w: &LowWatermarks,
    ) -> Result<(), sqlx::Error> {
        let [slot, source, target] = w.columns();
        sqlx::query(queries::SET_LOW_WATERMARKS)
            .bind(id)
            .bind(slot)
            .bind(source)
            .bind(target)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The global high watermark, if set.
    ///
    /// # Errors
    /// The database error.
    async fn high_watermark<'e>(
        exec: impl Executor<'e, Database = Self>,
    ) -> Result<Option<HighWatermark>, sqlx::Error> {
        let row: Option<HighRow> = sqlx::query_as(queries::HIGH_WATERMARK)
            .fetch_optional(exec)
            .await?;
        Ok(row.map(rows::high_of))
    }

    /// Sets (`Some`) or removes (`None`) the global high watermark.
    ///
    /// # Errors
    /// [`ProtectionError::OutOfRange`] (nothing written), [`ProtectionError::Unavailable`].
    async fn set_high_watermark<'e>(
        exec: impl Executor<'e, Database = Self>,
        high: Option<HighWatermark>,
    ) -> Result<(), ProtectionError> {
        match high {
            None => {
                sqlx::query(queries::DELETE_HIGH_WATERMARK)
                    .execute(exec)
                    .await?
            }
            Some(h) => {
                sqlx::query(queries::SET_HIGH_WATERMARK)
                    .bind(to_db(h.epoch, "epoch")?)
                    .bind(to_db(h.slot, "slot")?)
                    .execute(exec)
                    .await?
            }
        };
        Ok(())
    }

    /// The genesis validators root the database is bound to, `None` while unbound.
    ///
    /// # Errors
    /// The database error.
    async fn genesis_root<'e>(
        exec: impl Executor<'e, Database = Self>,
    ) -> Result<Option<[u8; 32]>, sqlx::Error> {
        let bound: Option<Vec<u8>> = sqlx::query_scalar(queries::GENESIS_ROOT)
            .fetch_optional(exec)
            .await?;
        Ok(rows::root_of(bound))
    }

    /// Binds the database to `root` unless it is bound already (first writer wins), inside
    /// the caller's transaction, and returns the root it is bound to afterwards: `root`, or
    /// the one bound before (which the caller compares with `root`).
    ///
    /// # Errors
    /// The database error.
    async fn bind_genesis(
        conn: &mut Self::Connection,
        root: [u8; 32],
    ) -> Result<[u8; 32], sqlx::Error> {
        sqlx::query(queries::BIND_GENESIS)
            .bind(root.as_slice())
            .execute(&mut *conn)
            .await?;
        let bound: Vec<u8> = sqlx::query_scalar(queries::GENESIS_ROOT)
            .fetch_one(&mut *conn)
            .await?;
        Ok(bound.try_into().unwrap_or([0; 32]))
    }

    /// Every validator's 48-byte public key, sorted.
    ///
    /// # Errors
    /// The database error.
    async fn validators<'e>(
        exec: impl Executor<'e, Database = Self>,
    ) -> Result<Vec<[u8; 48]>, sqlx::Error> {
        let keys: Vec<Vec<u8>> = sqlx::query_scalar(queries::VALIDATORS)
            .fetch_all(exec)
            .await?;
        Ok(rows::public_keys_of(keys))
    }

    /// The disabled validators' 48-byte public keys, sorted.
    ///
    /// # Errors
    /// The database error.
    async fn disabled_validators<'e>(
        exec: impl Executor<'e, Database = Self>,
    ) -> Result<Vec<[u8; 48]>, sqlx::Error> {
        let keys: Vec<Vec<u8>> = sqlx::query_scalar(queries::DISABLED_VALIDATORS)
            .fetch_all(exec)
            .await?;
        Ok(rows::public_keys_of(keys))
    }

    /// Every validator id, ascending.
    ///
    /// # Errors
    /// The database error.
    async fn validator_ids<'e>(
        exec: impl Executor<'e, Database = Self>,
    ) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query_scalar(queries::VALIDATOR_IDS)
            .fetch_all(exec)
            .await
    }

    /// Merges one validator's imported records into validator `id`'s (every row kept, see
    /// [`queries::IMPORT_BLOCK`] and [`queries::IMPORT_ATTESTATION`]) and raises its low
    /// watermarks to the imported ones, inside the caller's transaction, which holds the
    /// store's writer lock or the validator's advisory lock.
    ///
    /// # Errors
    /// The database error.
    async fn import_validator(
        conn: &mut Self::Connection,
        id: i64,
        v: &ValidatorImport,
    ) -> Result<(), sqlx::Error> {
        for b in &v.blocks {
            sqlx::query(queries::IMPORT_BLOCK)
                .bind(id)
                .bind(b.slot as i64)
                .bind(b.signing_root.map(|r| r.to_vec()))
                .execute(&mut *conn)
                .await?;
        }
        for a in &v.attestations {
            sqlx::query(queries::IMPORT_ATTESTATION)
                .bind(id)
                .bind(a.source_epoch as i64)
                .bind(a.target_epoch as i64)
                .bind(a.signing_root.map(|r| r.to_vec()))
                .execute(&mut *conn)
                .await?;
        }
        let existing = Self::low_watermarks(conn, id).await?;
        Self::set_low_watermarks(conn, id, &merge_watermarks(&existing, &v.watermarks)).await
    }

    /// Prunes validator `id` inside the caller's transaction (which holds the store's writer
    /// lock or the validator's advisory lock): raises its low watermarks over the records
    /// more than `keep` below its newest ones, then deletes those records.
    ///
    /// # Errors
    /// The database error; the caller's transaction must then roll back.
    async fn prune_validator(
        conn: &mut Self::Connection,
        id: i64,
        keep: Keep,
    ) -> Result<PruneSummary, sqlx::Error> {
        let blocks: Vec<BlockRow> = sqlx::query_as(queries::PRUNABLE_BLOCKS)
            .bind(id)
            .bind(keep.slots)
            .fetch_all(&mut *conn)
            .await?;
        let attestations: Vec<AttestationRow> = sqlx::query_as(queries::PRUNABLE_ATTESTATIONS)
            .bind(id)
            .bind(keep.epochs)
            .fetch_all(&mut *conn)
            .await?;
        let pruned_blocks: Vec<SignedBlock> = blocks.into_iter().map(rows::block_of).collect();
        let pruned_atts: Vec<SignedAttestation> =
            attestations.into_iter().map(rows::attestation_of).collect();
        let mut summary = PruneSummary::default();
        if pruned_blocks.is_empty() && pruned_atts.is_empty() {
            return Ok(summary);
        }
        let existing = Self::low_watermarks(conn, id).await?;
        let raised = rules::watermarks_after_pruning(&existing, &pruned_blocks, &pruned_atts);
        Self::set_low_watermarks(conn, id, &raised).await?;
        if let Some(max_slot) = pruned_blocks.iter().map(|b| b.slot).max() {
            let done = sqlx::query(queries::DELETE_BLOCKS_UP_TO)
                .bind(id)
                .bind(max_slot as i64)
                .execute(&mut *conn)
                .await?;
            summary.blocks = Self::rows_affected(&done);
        }
        if let Some(max_target) = pruned_atts.iter().map(|a| a.target_epoch).max() {
            let done = sqlx::query(queries::DELETE_ATTESTATIONS_UP_TO)
                .bind(id)
                .bind(max_target as i64)
                .execute(&mut *conn)
                .await?;
            summary.attestations = Self::rows_affected(&done);
        }
        Ok(summary)
    }

    /// The high watermark of (chain id, pkh, kind), if anything was signed.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`] (also for a corrupt row).
    async fn tezos_mark<'e>(
        exec: impl Executor<'e, Database = Self>,
        chain_id: [u8; 4],
        pkh: &str,
        kind: ConsensusKind,
    ) -> Result<Option<TezosMark>, ProtectionError> {
        let row: Option<MarkRow> = sqlx::query_as(queries::TEZOS_MARK)
            .bind(chain_id.as_slice())
            .bind(pkh)
            .bind(kind.as_str())
            .fetch_optional(exec)
            .await?;
        row.map(rows::mark_of).transpose()
    }

    /// One request's Tezos check-and-record inside `tx`, without committing: reads the mark
    /// (so it sees what earlier requests of the same transaction wrote), decides, records a
    /// new mark when the request is strictly above it, and writes `audit` (`signed`, or
    /// `refused` with the violation). A corrupt mark writes nothing. The caller holds the
    /// lock of the request's mark (SQLite's writer lock, PostgreSQL's advisory lock);
    /// several requests share one transaction (the Tezos group commit, [`tezos_commit`]),
    /// and their answers hold only once the caller committed it.
    ///
    /// # Errors
    /// The outer `Err` is a database error: the caller must roll back and answer every
    /// request of the transaction as unavailable. The inner result is the request's answer:
    /// the decision, or [`ProtectionError::Watermark`] (refusal audited in `tx`) or
    /// [`ProtectionError::Unavailable`] for a corrupt mark.
    async fn tezos_record_in(
        tx: &mut Transaction<'_, Self>,
        request: &TezosWatermarkRequest,
        audit: &AuditEntry,
    ) -> Result<Result<WatermarkDecision, ProtectionError>, sqlx::Error> {
        let row: Option<MarkRow> = sqlx::query_as(queries::TEZOS_MARK)
            .bind(request.chain_id.as_slice())
            .bind(request.pkh.as_str())
            .bind(request.kind.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        let mark = match row.map(rows::mark_of).transpose() {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let decision = match watermark::check(mark.as_ref(), request) {
            Ok(d) => d,
            Err(v) => {
                let v = ProtectionError::from(v);
                Self::insert_audit(tx, &[audit.clone().refused(v.to_string())]).await?;
                return Ok(Err(v));
            }
        };
        if decision == WatermarkDecision::SignAndRecord {
            sqlx::query(queries::SET_TEZOS_MARK)
                .bind(request.chain_id.as_slice())
                .bind(request.pkh.as_str())
                .bind(request.kind.as_str())
                .bind(i64::from(request.level))
                .bind(i64::from(request.round))
                .bind(request.payload_hash.as_slice())
                .bind(request.signature.as_slice())
                .execute(&mut **tx)
                .await?;
        }
        Self::insert_audit(tx, std::slice::from_ref(audit)).await?;
        Ok(Ok(decision))
    }

    /// Up to `limit` audit records with `since_ms <= time_ms < until_ms` (Unix milliseconds)
    /// and `id > after_id`, by ascending id.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`] (also for a corrupt row).
    async fn audit_records<'e>(
        exec: impl Executor<'e, Database = Self>,
        since_ms: i64,
        until_ms: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ProtectionError> {
        let rows: Vec<AuditDbRow> = sqlx::query_as(queries::AUDIT_RECORDS)
            .bind(since_ms)
            .bind(until_ms)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(exec)
            .await?;
        rows.into_iter().map(audit::record_of).collect()
    }

    /// Deletes up to [`AUDIT_PRUNE_CHUNK`] of the oldest audit records older than `before_ms`
    /// (Unix milliseconds); returns how many.
    ///
    /// # Errors
    /// The database error.
    async fn prune_audit_chunk<'e>(
        exec: impl Executor<'e, Database = Self>,
        before_ms: i64,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(queries::PRUNE_AUDIT_CHUNK)
            .bind(before_ms)
            .bind(AUDIT_PRUNE_CHUNK as i64)
            .execute(exec)
            .await?;
        Ok(Self::rows_affected(&done))
    }

    /// Every key's lifetime totals, by chain then key.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`] (also for a corrupt row).
    async fn key_activity<'e>(
        exec: impl Executor<'e, Database = Self>,
    ) -> Result<Vec<KeyActivity>, ProtectionError> {
        let rows: Vec<ActivityRow> = sqlx::query_as(queries::KEY_ACTIVITY)
            .fetch_all(exec)
            .await?;
        rows.into_iter().map(audit::activity_of).collect()
    }

    /// A round trip to the database.
    ///
    /// # Errors
    /// The database error.
    async fn ping<'e>(exec: impl Executor<'e, Database = Self>) -> Result<(), sqlx::Error> {
        sqlx::query(queries::PING).execute(exec).await?;
        Ok(())
    }
}

/// How much history pruning keeps, in the database's integers: `slots` below a validator's
/// newest block and `epochs` below its newest attestation target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keep {
    pub(crate) slots: i64,
    pub(crate) epochs: i64,
}

impl Keep {
    /// `epochs_to_keep` epochs of `slots_per_epoch` slots, saturating at 2^63 − 1.
    pub(crate) fn new(epochs_to_keep: u64, slots_per_epoch: u64) -> Self {
        Keep {
            slots: epochs_to_keep
                .saturating_mul(slots_per_epoch)
                .min(i64::MAX as u64) as i64,
            epochs: epochs_to_keep.min(i64::MAX as u64) as i64,
        }
    }
}

/// Records a refused eth2 decision (one [`audit::refusal_reason`] gives a reason for) as a
/// `refused` audit entry in its own transaction, after the protection transaction rolled back.
/// A failure to write it is logged, not returned: the caller answers with the refusal either way.
pub(crate) async fn audit_refusal<S: AuditLog + ?Sized>(
    store: &S,
    audit: &AuditEntry,
    refusal: &ProtectionError,
) {
    if let Some(reason) = audit::refusal_reason(refusal)
        && let Err(e) = store.append_audit(&audit.clone().refused(reason)).await
    {
        tracing::warn!(reason = %e, "could not record a refusal in the audit log");
    }
}

/// Deletes audit records in chunks of [`AUDIT_PRUNE_CHUNK`] with `chunk` (one statement, in
/// its own transaction) until a chunk comes back short, yielding between chunks so that
/// signing is not held up; returns how many were deleted.
///
/// # Errors
/// [`ProtectionError::Unavailable`] (chunks deleted before the error stay deleted).
pub(crate) async fn prune_audit<F, Fut>(mut chunk: F) -> Result<u64, ProtectionError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, sqlx::Error>>,
{
    let mut deleted = 0;
    loop {
        let n = chunk().await?;
        deleted += n;
        if n < AUDIT_PRUNE_CHUNK {
            return Ok(deleted);
        }
        tokio::task::yield_now().await;
    }
}

/// Imports `prepared` in transactions of at most [`super::interchange::IMPORT_BATCH_RECORDS`]
/// records with `batch` (given each batch and whether it is the last), adding up what they
/// wrote.
///
/// # Errors
/// The first batch's error (the batches committed before it stay).
pub(crate) async fn import_in_batches<F, Fut>(
    prepared: &PreparedImport,
    mut batch: F,
) -> Result<ImportSummary, ProtectionError>
where
    F: FnMut(PreparedImport, bool) -> Fut,
    Fut: Future<Output = Result<ImportSummary, ProtectionError>>,
{
    let mut summary = ImportSummary::default();
    let batches = prepared.batches(super::interchange::IMPORT_BATCH_RECORDS);
    let last = batches.len() - 1;
    for (i, b) in batches.into_iter().enumerate() {
        let s = batch(b, i == last).await?;
        summary.blocks += s.blocks;
        summary.attestations += s.attestations;
    }
    summary.validators = prepared.validators.len();
    Ok(summary)
}

/// What importing `prepared` (one batch or a whole file) writes: its validators, blocks and
/// attestations.
pub(crate) fn import_summary(prepared: &PreparedImport) -> ImportSummary {
    ImportSummary {
        validators: prepared.validators.len(),
        blocks: prepared.validators.iter().map(|v| v.blocks.len()).sum(),
        attestations: prepared
            .validators
            .iter()
            .map(|v| v.attestations.len())
            .sum(),
    }
}

/// The error an import reports when the database is bound to another genesis validators
/// root: [`InterchangeError::GenesisMismatch`] (the file's root against the database's)
/// instead of the signing path's [`ProtectionError::GenesisMismatch`]; other errors unchanged.
pub(crate) fn import_error(e: ProtectionError) -> ProtectionError {
    match e {
        ProtectionError::GenesisMismatch { requested, bound } => {
            InterchangeError::GenesisMismatch {
                file: requested,
                database: bound,
            }
            .into()
        }
        other => other,
    }
}
