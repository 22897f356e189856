//! The embedded [`ProtectionStore`](super::ProtectionStore): SQLite through `sqlx`, WAL
//! journal, `synchronous=FULL` (a commit is on disk before it returns), migrations from
//! `migrations/sqlite/`.
//!
//! Writers take the database lock at `BEGIN IMMEDIATE`, so check-and-record transactions
//! are serialised and never fail on a lock upgrade. The statements and flows it shares with
//! PostgreSQL are in [`super::sql`], and so are the role traits' implementations
//! (`sql::store`); what is here is the opening, the writer lock, the one-message
//! check-and-record and the transactions of the store's other writes.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::RwLock;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};

use super::audit::{AuditEntry, db_int};
use super::interchange::PreparedImport;
use super::rules::{self, Decision, HighWatermark, LowWatermarks, SignedAttestation, SignedBlock};
use super::sql::store::{Eth2Record, SqlStore};
use super::sql::tezos_commit::{TezosAnswer, TezosBatchFn, TezosGroupCommit, TezosRecord};
use super::sql::{self, Keep, Sql, rows};
use super::watermark::{TezosWatermarkRequest, WatermarkDecision};
use super::{ImportSummary, ProtectedMessage, ProtectionError, PruneSummary, check_root, to_db};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl Sql for Sqlite {
    /// One insert per entry; the `audit_log_key_activity` trigger adds each to its key's
    /// totals.
    async fn insert_audit(
        conn: &mut SqliteConnection,
        entries: &[AuditEntry],
    ) -> Result<(), sqlx::Error> {
        for e in entries {
            sqlx::query(
                "INSERT INTO audit_log (time_ms, chain, key, kind, slot, epoch, source_epoch, level, round,
                                        signing_root, decision, reason, caller)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(e.time_ms)
            .bind(e.chain.as_str())
            .bind(&e.key)
            .bind(&e.kind)
            .bind(db_int(e.slot))
            .bind(db_int(e.epoch))
            .bind(db_int(e.source_epoch))
            .bind(e.level.map(i64::from))
            .bind(e.round.map(i64::from))
            .bind(e.signing_root.map(|r| r.to_vec()))
            .bind(e.decision.as_str())
            .bind(e.reason.as_deref())
            .bind(e.caller.as_deref())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// SQLite-backed slashing protection.
pub struct SqliteStore {
    pool: SqlitePool,
    validator_ids: RwLock<HashMap<[u8; 48], i64>>,
    bound_root: OnceLock<[u8; 32]>,
    /// Serialises this process's writers in FIFO order before `BEGIN IMMEDIATE`, so they queue
    /// here instead of in SQLite's busy handler (which sleeps with back-off and ruins tail latency).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Tezos check-and-record requests share `BEGIN IMMEDIATE` transactions, under `writer`.
    tezos_commit: TezosGroupCommit,
}

/// The writer lock of a [`SqliteStore`], held while its transaction is open.
type WriterGuard<'a> = tokio::sync::MutexGuard<'a, ()>;

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://PATH` URL and applies migrations.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`] if the file cannot be opened or migrated.
    pub async fn open(url: &str) -> Result<Self, ProtectionError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                ProtectionError::unavailable_from(
                    format!("cannot create {}: {e}", parent.display()),
                    e,
                )
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Sqlite::migrate(&MIGRATOR, &pool).await?;
        let writer = Arc::new(tokio::sync::Mutex::new(()));
        let batch_pool = pool.clone();
        let batch: TezosBatchFn =
            Arc::new(move |records| Box::pin(tezos_batch(batch_pool.clone(), records)));
        Ok(SqliteStore {
            pool,
            validator_ids: RwLock::new(HashMap::new()),
            bound_root: OnceLock::new(),
            tezos_commit: TezosGroupCommit::new(
                batch,
                Some(writer.clone()),
                "sqlite_group_commit",
                1,
            ),
            writer,
        })
    }

    /// Takes the writer lock, then the database's (`BEGIN IMMEDIATE`). Dropping the
    /// transaction rolls it back; drop it before the guard.
    async fn write(&self) -> Result<(WriterGuard<'_>, Transaction<'static, Sqlite>), sqlx::Error> {
        let writer = self.writer.lock().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok((writer, tx))
    }

    /// The protection transaction of [`super::Eth2Protection::check_record_and_audit`]: decides,
    /// records the message and its `signed` audit entry, commits.
    async fn check_and_record_in(
        &self,
        record: &Eth2Record<'_>,
    ) -> Result<Decision, ProtectionError> {
        let &Eth2Record {
            public_key,
            genesis_validators_root,
            message,
            signing_root,
            ref audit,
        } = record;
        if let Some(bound) = self.bound_root.get() {
            check_root(bound, &genesis_validators_root)?;
        }
        let cached_id = self.validator_ids.read().get(public_key).copied();
        // Any early return drops `tx`, which rolls back: nothing is written on error.
        let (_writer, mut tx) = self.write().await?;
        self.bind_genesis(&mut tx, genesis_validators_root).await?;
        let validator = match cached_id {
            Some(id) => id,
            None => Self::validator_id(&mut tx, public_key).await?,
        };
        let (watermarks, high, enabled) = Self::limits(&mut tx, validator).await?;
        if !enabled {
            return Err(ProtectionError::Disabled(format!(
                "0x{}",
                hex::encode(public_key)
            )));
        }
        let decision = match message {
            ProtectedMessage::Block { slot } => {
                let db_slot = to_db(slot, "slot")?;
                rules::check_block_high_watermark(high.as_ref(), slot)?;
                let existing: Option<Option<Vec<u8>>> = sqlx::query_scalar(
                    "SELECT signing_root FROM signed_blocks WHERE validator_id = $1 AND slot = $2",
                )
                .bind(validator)
                .bind(db_slot)
                .fetch_optional(&mut *tx)
                .await?;
                let existing = existing.map(|root| SignedBlock {
                    slot,
                    signing_root: rows::root_of(root),
                });
                let decision =
                    rules::check_block(existing.as_ref(), &watermarks, slot, signing_root)?;
                if decision == Decision::SignAndRecord {
                    sqlx::query("INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES ($1, $2, $3)")
                        .bind(validator)
                        .bind(db_slot)
                        .bind(signing_root.as_slice())
                        .execute(&mut *tx)
                        .await?;
                }
                decision
            }
            ProtectedMessage::Attestation { source, target } => {
                let s = to_db(source, "source epoch")?;
                let t = to_db(target, "target epoch")?;
                rules::check_attestation_high_watermark(high.as_ref(), source, target)?;
                // Same target, or in a surround relation either way. Any surround row is a
                // violation on its own, so a small LIMIT cannot hide a conflict.
                let rows: Vec<rows::AttestationRow> = sqlx::query_as(
                    "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations
                     WHERE validator_id = $1 AND (target_epoch = $3
                        OR (source_epoch > $2 AND target_epoch < $3)
                        OR (source_epoch < $2 AND target_epoch > $3))
                     ORDER BY target_epoch = $3 DESC LIMIT 8",
                )
                .bind(validator)
                .bind(s)
                .bind(t)
                .fetch_all(&mut *tx)
                .await?;
                let candidates: Vec<SignedAttestation> =
                    rows.into_iter().map(rows::attestation_of).collect();
                let decision = rules::check_attestation(
                    &candidates,
                    &watermarks,
                    source,
                    target,
                    signing_root,
                )?;
                if decision == Decision::SignAndRecord {
                    sqlx::query(
                        "INSERT INTO signed_attestations (validator_id, source_epoch, target_epoch, signing_root)
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(validator)
                    .bind(s)
                    .bind(t)
                    .bind(signing_root.as_slice())
                    .execute(&mut *tx)
                    .await?;
                }
                decision
            }
        };
        Sqlite::insert_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await?;
        let _ = self.bound_root.set(genesis_validators_root);
        if cached_id.is_none() {
            self.validator_ids.write().insert(*public_key, validator);
        }
        Ok(decision)
    }

    /// The validator's id, inserting its row first if it is new (inside the caller's
    /// transaction, which holds the writer lock).
    async fn validator_id(
        conn: &mut SqliteConnection,
        public_key: &[u8; 48],
    ) -> Result<i64, ProtectionError> {
        sqlx::query(
            "INSERT INTO validators (public_key) VALUES ($1) ON CONFLICT (public_key) DO NOTHING",
        )
        .bind(public_key.as_slice())
        .execute(&mut *conn)
        .await?;
        let id = Sqlite::validator_id_of(conn, public_key).await?;
        Ok(id.ok_or(sqlx::Error::RowNotFound)?)
    }

    /// The validator's low watermarks, the global high watermark and whether the validator
    /// is enabled, in one statement (each statement of the signing transaction costs a round
    /// trip to SQLite's worker thread).
    async fn limits(
        conn: &mut SqliteConnection,
        validator: i64,
    ) -> Result<(LowWatermarks, Option<HighWatermark>, bool), ProtectionError> {
        let r: SqliteRow = sqlx::query(
            "SELECT hw.epoch, hw.slot, v.enabled, lw.slot, lw.source_epoch, lw.target_epoch
             FROM (SELECT 1) AS one
             LEFT JOIN low_watermarks lw ON lw.validator_id = $1
             LEFT JOIN high_watermark hw ON hw.id = 1
             LEFT JOIN validators v ON v.id = $1",
        )
        .bind(validator)
        .fetch_one(&mut *conn)
        .await?;
        let low = LowWatermarks::from_columns(std::array::from_fn(|k| r.get(3 + k)));
        let high = match (r.get::<Option<i64>, _>(0), r.get::<Option<i64>, _>(1)) {
            (Some(epoch), Some(slot)) => Some(rows::high_of((epoch, slot))),
            _ => None,
        };
        let enabled = r.get::<Option<i64>, _>(2).unwrap_or(1) != 0;
        Ok((low, high, enabled))
    }

    /// Binds the database to `root` if unbound; refuses another root. Runs inside the
    /// caller's transaction; the root is cached only after the commit.
    async fn bind_genesis(
        &self,
        conn: &mut SqliteConnection,
        root: [u8; 32],
    ) -> Result<(), ProtectionError> {
        if let Some(bound) = self.bound_root.get() {
            return check_root(bound, &root);
        }
        match Sqlite::genesis_root(&mut *conn).await? {
            Some(bound) => {
                let _ = self.bound_root.set(bound);
                check_root(&bound, &root)
            }
            None => {
                // Under the writer lock nobody binds in between. Cached only after the
                // commit (see record_eth2).
                Sqlite::bind_genesis(conn, root).await?;
                Ok(())
            }
        }
    }
}

impl SqlStore for SqliteStore {
    type Db = Sqlite;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn register(&self, public_keys: &[[u8; 48]]) -> Result<(), ProtectionError> {
        let mut sorted = public_keys.to_vec();
        sorted.sort_unstable();
        let (_writer, mut tx) = self.write().await?;
        let mut ids = Vec::with_capacity(sorted.len());
        for pk in &sorted {
            ids.push((*pk, Self::validator_id(&mut tx, pk).await?));
        }
        tx.commit().await?;
        self.validator_ids.write().extend(ids);
        Ok(())
    }

    /// The protection transaction, then a refusal's audit entry.
    async fn record_eth2(&self, record: Eth2Record<'_>) -> Result<Decision, ProtectionError> {
        let result = self.check_and_record_in(&record).await;
        if let Err(e) = &result {
            sql::audit_refusal(self, &record.audit, e).await;
        }
        result
    }

    /// Group commit ([`TezosGroupCommit`]): concurrent Tezos requests share one `BEGIN
    /// IMMEDIATE` transaction and one WAL fsync, decided in the order they joined.
    async fn record_tezos(
        &self,
        request: &TezosWatermarkRequest,
        audit: &AuditEntry,
    ) -> Result<WatermarkDecision, ProtectionError> {
        self.tezos_commit.record(request, audit).await
    }

    async fn append_entry(&self, entry: &AuditEntry) -> Result<(), ProtectionError> {
        let (_writer, tx) = self.write().await?;
        Ok(Sqlite::append_audit_in(tx, entry).await?)
    }

    async fn prune_audit_step(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        let _writer = self.writer.lock().await;
        Sqlite::prune_audit_chunk(&self.pool, before_ms).await
    }

    /// Binds (or checks) the genesis validators root, then merges the batch's records and
    /// raises its validators' low watermarks, in one transaction under the writer lock.
    async fn import_batch(&self, batch: &PreparedImport) -> Result<ImportSummary, ProtectionError> {
        let (_writer, mut tx) = self.write().await?;
        self.bind_genesis(&mut tx, batch.genesis_validators_root)
            .await
            .map_err(sql::import_error)?;
        for v in &batch.validators {
            let id = Self::validator_id(&mut tx, &v.pubkey).await?;
            Sqlite::import_validator(&mut tx, id, v).await?;
        }
        tx.commit().await?;
        let _ = self.bound_root.set(batch.genesis_validators_root);
        Ok(sql::import_summary(batch))
    }

    async fn pause_after_batch(&self, took: Duration) {
        // Another process (a running server, when this is the CLI) waits for SQLite's lock in
        // its busy handler, which retries after sleeps of up to 100 ms: pause as long as the
        // batch took (at most 100 ms) so that it gets its turn.
        tokio::time::sleep(took.min(Duration::from_millis(100))).await;
    }

    /// Prunes every validator in one transaction: on error nothing is deleted.
    async fn prune_records(&self, keep: Keep) -> Result<PruneSummary, ProtectionError> {
        let (_writer, mut tx) = self.write().await?;
        let mut summary = PruneSummary::default();
        for id in Sqlite::validator_ids(&mut *tx).await? {
            let s = Sqlite::prune_validator(&mut tx, id, keep).await?;
            summary.blocks += s.blocks;
            summary.attestations += s.attestations;
        }
        tx.commit().await?;
        Ok(summary)
    }

    async fn enable(&self, public_keys: &[[u8; 48]], enabled: bool) -> Result<(), ProtectionError> {
        let mut keys = public_keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        let (_writer, mut tx) = self.write().await?;
        for k in &keys {
            let id = Self::validator_id(&mut tx, k).await?;
            sqlx::query("UPDATE validators SET enabled = $1 WHERE id = $2")
                .bind(i64::from(enabled))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn write_high_watermark(
        &self,
        high: Option<HighWatermark>,
    ) -> Result<(), ProtectionError> {
        let _writer = self.writer.lock().await;
        Sqlite::set_high_watermark(&self.pool, high).await
    }
}

/// The SQLite Tezos group commit's transaction (run under the writer lock): `BEGIN
/// IMMEDIATE`, each record's check-and-record ([`Sql::tezos_record_in`]) in order, one
/// commit. Any database error rolls the whole transaction back (the `Transaction` drops
/// uncommitted).
async fn tezos_batch(
    pool: SqlitePool,
    records: Arc<[TezosRecord]>,
) -> Result<Vec<TezosAnswer>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut answers = Vec::with_capacity(records.len());
    for (request, audit) in records.iter() {
        answers.push(Sqlite::tezos_record_in(&mut tx, request, audit).await?);
    }
    tx.commit().await?;
    Ok(answers)
}
