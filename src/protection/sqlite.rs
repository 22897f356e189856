//! The embedded [`ProtectionStore`]: SQLite through `sqlx`, WAL journal, `synchronous=FULL`
//! (a commit is on disk before it returns), migrations from `migrations/sqlite/`.
//!
//! Writers take the database lock at `BEGIN IMMEDIATE`, so check-and-record transactions
//! are serialised and never fail on a lock upgrade.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::chain::tezos::payload::ConsensusKind;

use super::audit::{
    self, ActivityRow, AuditDbRow, AuditEntry, AuditRecord, KeyActivity, activity_columns,
    audit_columns, db_int,
};
use super::interchange::{
    IMPORT_BATCH_RECORDS, InterchangeError, PreparedImport, merge_watermarks,
};
use super::rules::{self, Decision, HighWatermark, LowWatermarks, SignedAttestation, SignedBlock};
use super::watermark::{self, TezosMark, TezosWatermarkRequest, WatermarkDecision};
use super::{
    ImportSummary, MarkRow, ProtectedMessage, ProtectionError, ProtectionStore, PruneSummary,
    ValidatorHistory, check_root, mark_of, root_of, to_db,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite-backed slashing protection.
pub struct SqliteStore {
    pool: SqlitePool,
    validator_ids: RwLock<HashMap<[u8; 48], i64>>,
    bound_root: OnceLock<[u8; 32]>,
    /// Serialises this process's writers in FIFO order before `BEGIN IMMEDIATE`, so they queue
    /// here instead of in SQLite's busy handler (which sleeps with back-off and ruins tail latency).
    writer: tokio::sync::Mutex<()>,
}

/// A row `(slot, signing_root)` of `signed_blocks`.
fn block_row(r: SqliteRow) -> SignedBlock {
    SignedBlock {
        slot: r.get::<i64, _>(0) as u64,
        signing_root: root_of(r.get(1)),
    }
}

/// A row `(source_epoch, target_epoch, signing_root)` of `signed_attestations`.
/// The low watermarks in three columns of `r` from `first` on (see [`LowWatermarks::from_columns`]).
fn low_of(r: &SqliteRow, first: usize) -> LowWatermarks {
    LowWatermarks::from_columns(std::array::from_fn(|k| r.get::<Option<i64>, _>(first + k)))
}

fn attestation_row(r: SqliteRow) -> SignedAttestation {
    SignedAttestation {
        source_epoch: r.get::<i64, _>(0) as u64,
        target_epoch: r.get::<i64, _>(1) as u64,
        signing_root: root_of(r.get(2)),
    }
}

/// Inserts audit entries inside the caller's transaction; the `audit_log_key_activity` trigger
/// adds them to their keys' totals.
async fn insert_audit(
    conn: &mut SqliteConnection,
    entries: &[AuditEntry],
) -> Result<(), sqlx::Error> {
    for e in entries {
        sqlx::query(
            "INSERT INTO audit_log (time_ms, chain, key, kind, slot, epoch, source_epoch, level, round,
                                    signing_root, decision, reason, caller)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

const SELECT_MARK: &str = "SELECT level, round, payload_hash, signature FROM tezos_high_watermarks
     WHERE chain_id = ? AND pkh = ? AND kind = ?";

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
                ProtectionError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| ProtectionError::Unavailable(format!("migration failed: {e}")))?;
        Ok(SqliteStore {
            pool,
            validator_ids: RwLock::new(HashMap::new()),
            bound_root: OnceLock::new(),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// The protection transaction of [`ProtectionStore::check_record_and_audit`]: decides,
    /// records the message and its `signed` audit entry, commits.
    async fn record_eth2(
        &self,
        public_key: &[u8; 48],
        genesis_validators_root: [u8; 32],
        message: ProtectedMessage,
        signing_root: [u8; 32],
        audit: &AuditEntry,
    ) -> Result<Decision, ProtectionError> {
        if let Some(bound) = self.bound_root.get() {
            check_root(bound, &genesis_validators_root)?;
        }
        let cached_id = self.validator_ids.read().get(public_key).copied();
        let _writer = self.writer.lock().await;
        // Any early return drops `tx`, which rolls back: nothing is written on error.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
                let existing = sqlx::query(
                    "SELECT signing_root FROM signed_blocks WHERE validator_id = ? AND slot = ?",
                )
                .bind(validator)
                .bind(db_slot)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| SignedBlock {
                    slot,
                    signing_root: root_of(r.get(0)),
                });
                let decision =
                    rules::check_block(existing.as_ref(), &watermarks, slot, signing_root)?;
                if decision == Decision::SignAndRecord {
                    sqlx::query("INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES (?, ?, ?)")
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
                let rows = sqlx::query(
                    "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations
                     WHERE validator_id = ?1 AND (target_epoch = ?3
                        OR (source_epoch > ?2 AND target_epoch < ?3)
                        OR (source_epoch < ?2 AND target_epoch > ?3))
                     ORDER BY target_epoch = ?3 DESC LIMIT 8",
                )
                .bind(validator)
                .bind(s)
                .bind(t)
                .fetch_all(&mut *tx)
                .await?;
                let candidates: Vec<SignedAttestation> =
                    rows.into_iter().map(attestation_row).collect();
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
                         VALUES (?, ?, ?, ?)",
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
        insert_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await?;
        let _ = self.bound_root.set(genesis_validators_root);
        if cached_id.is_none() {
            self.validator_ids.write().insert(*public_key, validator);
        }
        Ok(decision)
    }

    async fn validator_id(
        conn: &mut SqliteConnection,
        public_key: &[u8; 48],
    ) -> Result<i64, ProtectionError> {
        sqlx::query(
            "INSERT INTO validators (public_key) VALUES (?) ON CONFLICT (public_key) DO NOTHING",
        )
        .bind(public_key.as_slice())
        .execute(&mut *conn)
        .await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM validators WHERE public_key = ?")
            .bind(public_key.as_slice())
            .fetch_one(&mut *conn)
            .await?;
        Ok(id)
    }

    async fn watermarks(
        conn: &mut SqliteConnection,
        validator: i64,
    ) -> Result<LowWatermarks, ProtectionError> {
        let row = sqlx::query(
            "SELECT slot, source_epoch, target_epoch FROM low_watermarks WHERE validator_id = ?",
        )
        .bind(validator)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(match row {
            None => LowWatermarks::default(),
            Some(r) => low_of(&r, 0),
        })
    }

    /// The validator's low watermarks, the global high watermark and whether the validator
    /// is enabled, in one statement (each statement of the signing transaction costs a round
    /// trip to SQLite's worker thread).
    async fn limits(
        conn: &mut SqliteConnection,
        validator: i64,
    ) -> Result<(LowWatermarks, Option<HighWatermark>, bool), ProtectionError> {
        let r = sqlx::query(
            "SELECT hw.epoch, hw.slot, v.enabled, lw.slot, lw.source_epoch, lw.target_epoch
             FROM (SELECT 1) AS one
             LEFT JOIN low_watermarks lw ON lw.validator_id = ?1
             LEFT JOIN high_watermark hw ON hw.id = 1
             LEFT JOIN validators v ON v.id = ?1",
        )
        .bind(validator)
        .fetch_one(&mut *conn)
        .await?;
        let low = low_of(&r, 3);
        let high = match (r.get::<Option<i64>, _>(0), r.get::<Option<i64>, _>(1)) {
            (Some(epoch), Some(slot)) => Some(HighWatermark {
                epoch: epoch as u64,
                slot: slot as u64,
            }),
            _ => None,
        };
        let enabled = r.get::<Option<i64>, _>(2).unwrap_or(1) != 0;
        Ok((low, high, enabled))
    }

    async fn high(conn: &mut SqliteConnection) -> Result<Option<HighWatermark>, ProtectionError> {
        let row = sqlx::query("SELECT epoch, slot FROM high_watermark WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.map(|r| HighWatermark {
            epoch: r.get::<i64, _>(0) as u64,
            slot: r.get::<i64, _>(1) as u64,
        }))
    }

    async fn set_watermarks(
        conn: &mut SqliteConnection,
        validator: i64,
        w: &LowWatermarks,
    ) -> Result<(), ProtectionError> {
        let c = w.columns();
        sqlx::query(
            "INSERT INTO low_watermarks (validator_id, slot, source_epoch, target_epoch) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (validator_id) DO UPDATE SET slot = ?2, source_epoch = ?3, target_epoch = ?4",
        )
        .bind(validator)
        .bind(c[0])
        .bind(c[1])
        .bind(c[2])
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// One import transaction: binds (or checks) the genesis validators root, then merges
    /// the batch's records and raises its validators' low watermarks.
    async fn import_batch(
        &self,
        prepared: &PreparedImport,
    ) -> Result<ImportSummary, ProtectionError> {
        let _writer = self.writer.lock().await;

        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        match self
            .bind_genesis(&mut tx, prepared.genesis_validators_root)
            .await
        {
            Ok(()) => {}
            Err(ProtectionError::GenesisMismatch { requested, bound }) => {
                return Err(InterchangeError::GenesisMismatch {
                    file: requested,
                    database: bound,
                }
                .into());
            }
            Err(e) => return Err(e),
        }
        let mut summary = ImportSummary::default();
        for v in &prepared.validators {
            let id = Self::validator_id(&mut tx, &v.pubkey).await?;
            for b in &v.blocks {
                sqlx::query(
                    "INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES (?1, ?2, ?3)
                     ON CONFLICT (validator_id, slot) DO UPDATE SET signing_root =
                       CASE WHEN signed_blocks.signing_root IS excluded.signing_root THEN signed_blocks.signing_root ELSE NULL END",
                )
                .bind(id)
                .bind(b.slot as i64)
                .bind(b.signing_root.map(|r| r.to_vec()))
                .execute(&mut *tx)
                .await?;
            }
            for a in &v.attestations {
                sqlx::query(
                    "INSERT INTO signed_attestations (validator_id, source_epoch, target_epoch, signing_root)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (validator_id, target_epoch, source_epoch) DO UPDATE SET
                       signing_root = CASE WHEN signed_attestations.signing_root IS excluded.signing_root
                                      THEN signed_attestations.signing_root ELSE NULL END",
                )
                .bind(id)
                .bind(a.source_epoch as i64)
                .bind(a.target_epoch as i64)
                .bind(a.signing_root.map(|r| r.to_vec()))
                .execute(&mut *tx)
                .await?;
            }
            let existing = Self::watermarks(&mut tx, id).await?;
            Self::set_watermarks(&mut tx, id, &merge_watermarks(&existing, &v.watermarks)).await?;
            summary.validators += 1;
            summary.blocks += v.blocks.len();
            summary.attestations += v.attestations.len();
        }
        tx.commit().await?;
        let _ = self.bound_root.set(prepared.genesis_validators_root);
        Ok(summary)
    }

    /// Binds the database to `root` if unbound; refuses another root. Runs inside the caller's transaction.
    async fn bind_genesis(
        &self,
        conn: &mut SqliteConnection,
        root: [u8; 32],
    ) -> Result<(), ProtectionError> {
        if let Some(bound) = self.bound_root.get() {
            return check_root(bound, &root);
        }
        let existing: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT genesis_validators_root FROM metadata WHERE id = 1")
                .fetch_optional(&mut *conn)
                .await?;
        match root_of(existing) {
            Some(bound) => {
                let _ = self.bound_root.set(bound);
                check_root(&bound, &root)
            }
            None => {
                sqlx::query("INSERT INTO metadata (id, genesis_validators_root) VALUES (1, ?)")
                    .bind(root.as_slice())
                    .execute(&mut *conn)
                    .await?;
                // Cached only after the commit (see check_and_record).
                Ok(())
            }
        }
    }
}

#[async_trait]
impl ProtectionStore for SqliteStore {
    async fn register_validators(&self, public_keys: &[[u8; 48]]) -> Result<(), ProtectionError> {
        let mut sorted = public_keys.to_vec();
        sorted.sort_unstable();
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut ids = Vec::with_capacity(sorted.len());
        for pk in &sorted {
            ids.push((*pk, Self::validator_id(&mut tx, pk).await?));
        }
        tx.commit().await?;
        self.validator_ids.write().extend(ids);
        Ok(())
    }

    async fn check_record_and_audit(
        &self,
        public_key: &[u8; 48],
        genesis_validators_root: [u8; 32],
        message: ProtectedMessage,
        signing_root: [u8; 32],
        audit: AuditEntry,
    ) -> Result<Decision, ProtectionError> {
        let result = self
            .record_eth2(
                public_key,
                genesis_validators_root,
                message,
                signing_root,
                &audit,
            )
            .await;
        if let Err(e) = &result
            && let Some(reason) = audit::refusal_reason(e)
            && let Err(a) = self.append_audit(&audit.refused(reason)).await
        {
            tracing::warn!(reason = %a, "could not record a refusal in the audit log");
        }
        result
    }

    async fn set_enabled(
        &self,
        public_keys: &[[u8; 48]],
        enabled: bool,
    ) -> Result<(), ProtectionError> {
        let mut keys = public_keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for k in &keys {
            Self::validator_id(&mut tx, k).await?;
            sqlx::query("UPDATE validators SET enabled = ? WHERE public_key = ?")
                .bind(i64::from(enabled))
                .bind(k.as_slice())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn disabled_validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError> {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT public_key FROM validators WHERE enabled = 0 ORDER BY public_key",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(|k| k.try_into().ok()).collect())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), ProtectionError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        insert_audit(&mut tx, std::slice::from_ref(entry)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_records(
        &self,
        since_ms: i64,
        until_ms: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ProtectionError> {
        let rows: Vec<AuditDbRow> = sqlx::query_as(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log WHERE time_ms >= ? AND time_ms < ? AND id > ? ORDER BY id LIMIT ?"
        ))
        .bind(since_ms)
        .bind(until_ms)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(audit::record_of).collect()
    }

    async fn prune_audit(&self, before_ms: i64) -> Result<u64, ProtectionError> {
        let mut deleted = 0;
        loop {
            let n = {
                let _writer = self.writer.lock().await;
                sqlx::query(
                    "DELETE FROM audit_log WHERE id IN
                     (SELECT id FROM audit_log WHERE time_ms < ? ORDER BY id LIMIT 5000)",
                )
                .bind(before_ms)
                .execute(&self.pool)
                .await?
                .rows_affected()
            };
            deleted += n;
            if n < 5000 {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }

    async fn key_activity(&self) -> Result<Vec<KeyActivity>, ProtectionError> {
        let rows: Vec<ActivityRow> = sqlx::query_as(concat!(
            "SELECT ",
            activity_columns!(),
            " FROM key_activity ORDER BY chain, key"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(audit::activity_of).collect()
    }

    async fn history(&self, public_key: &[u8; 48]) -> Result<ValidatorHistory, ProtectionError> {
        let mut conn = self.pool.acquire().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM validators WHERE public_key = ?")
            .bind(public_key.as_slice())
            .fetch_optional(&mut *conn)
            .await?;
        let Some(id) = id else {
            return Ok(ValidatorHistory::default());
        };
        let blocks = sqlx::query(
            "SELECT slot, signing_root FROM signed_blocks WHERE validator_id = ? ORDER BY slot",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(block_row)
        .collect();
        let attestations = sqlx::query(
            "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations WHERE validator_id = ? ORDER BY target_epoch, source_epoch",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(attestation_row)
        .collect();
        let watermarks = Self::watermarks(&mut conn, id).await?;
        Ok(ValidatorHistory {
            blocks,
            attestations,
            watermarks,
        })
    }

    async fn genesis_validators_root(&self) -> Result<Option<[u8; 32]>, ProtectionError> {
        let existing: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT genesis_validators_root FROM metadata WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(root_of(existing))
    }

    async fn import(&self, prepared: &PreparedImport) -> Result<ImportSummary, ProtectionError> {
        // One transaction per bounded batch, so signing interleaves with a large import.
        let mut summary = ImportSummary::default();
        let batches = prepared.batches(IMPORT_BATCH_RECORDS);
        let last = batches.len() - 1;
        for (i, batch) in batches.iter().enumerate() {
            let started = std::time::Instant::now();
            let s = self.import_batch(batch).await?;
            summary.blocks += s.blocks;
            summary.attestations += s.attestations;
            if i < last {
                // Another process (a running server, when this is the CLI) waits for SQLite's
                // lock in its busy handler, which retries after sleeps of up to 100 ms: pause
                // as long as the batch took (at most 100 ms) so that it gets its turn.
                tokio::time::sleep(started.elapsed().min(Duration::from_millis(100))).await;
            }
        }
        summary.validators = prepared.validators.len();
        Ok(summary)
    }

    async fn validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError> {
        let rows: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT public_key FROM validators ORDER BY public_key")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().filter_map(|k| k.try_into().ok()).collect())
    }

    async fn high_watermark(&self) -> Result<Option<HighWatermark>, ProtectionError> {
        let mut conn = self.pool.acquire().await?;
        Self::high(&mut conn).await
    }

    async fn set_high_watermark(&self, high: Option<HighWatermark>) -> Result<(), ProtectionError> {
        let _writer = self.writer.lock().await;
        match high {
            None => {
                sqlx::query("DELETE FROM high_watermark")
                    .execute(&self.pool)
                    .await?
            }
            Some(h) => {
                sqlx::query(
                    "INSERT INTO high_watermark (id, epoch, slot) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET epoch = ?1, slot = ?2",
                )
                .bind(to_db(h.epoch, "epoch")?)
                .bind(to_db(h.slot, "slot")?)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(())
    }

    async fn prune(
        &self,
        epochs_to_keep: u64,
        slots_per_epoch: u64,
    ) -> Result<PruneSummary, ProtectionError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM validators")
            .fetch_all(&mut *tx)
            .await?;
        let keep_slots = epochs_to_keep
            .saturating_mul(slots_per_epoch)
            .min(i64::MAX as u64) as i64;
        let keep_epochs = epochs_to_keep.min(i64::MAX as u64) as i64;
        let mut summary = PruneSummary::default();
        for id in ids {
            let pruned_blocks: Vec<SignedBlock> = sqlx::query(
                "SELECT slot, signing_root FROM signed_blocks WHERE validator_id = ?1
                 AND slot < (SELECT MAX(slot) FROM signed_blocks WHERE validator_id = ?1) - ?2",
            )
            .bind(id)
            .bind(keep_slots)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(block_row)
            .collect();
            let pruned_atts: Vec<SignedAttestation> = sqlx::query(
                "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations WHERE validator_id = ?1
                 AND target_epoch < (SELECT MAX(target_epoch) FROM signed_attestations WHERE validator_id = ?1) - ?2",
            )
            .bind(id)
            .bind(keep_epochs)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(attestation_row)
            .collect();
            if pruned_blocks.is_empty() && pruned_atts.is_empty() {
                continue;
            }
            let existing = Self::watermarks(&mut tx, id).await?;
            let raised = rules::watermarks_after_pruning(&existing, &pruned_blocks, &pruned_atts);
            Self::set_watermarks(&mut tx, id, &raised).await?;
            if let Some(max_slot) = pruned_blocks.iter().map(|b| b.slot).max() {
                summary.blocks +=
                    sqlx::query("DELETE FROM signed_blocks WHERE validator_id = ? AND slot <= ?")
                        .bind(id)
                        .bind(max_slot as i64)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
            }
            if let Some(max_target) = pruned_atts.iter().map(|a| a.target_epoch).max() {
                summary.attestations += sqlx::query(
                    "DELETE FROM signed_attestations WHERE validator_id = ? AND target_epoch <= ?",
                )
                .bind(id)
                .bind(max_target as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
        }
        tx.commit().await?;
        Ok(summary)
    }

    async fn tezos_check_record_and_audit(
        &self,
        request: &TezosWatermarkRequest,
        audit: AuditEntry,
    ) -> Result<WatermarkDecision, ProtectionError> {
        let _writer = self.writer.lock().await;
        // Any early return drops `tx`, which rolls back: nothing is written on error.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row: Option<MarkRow> = sqlx::query_as(SELECT_MARK)
            .bind(request.chain_id.as_slice())
            .bind(&request.pkh)
            .bind(request.kind.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let mark = row.map(mark_of).transpose()?;
        let decision = match watermark::check(mark.as_ref(), request) {
            Ok(d) => d,
            Err(v) => {
                // Nothing else was written in this transaction: the refusal's entry goes in it.
                let v = ProtectionError::from(v);
                insert_audit(&mut tx, &[audit.refused(v.to_string())]).await?;
                tx.commit().await?;
                return Err(v);
            }
        };
        if decision == WatermarkDecision::SignAndRecord {
            sqlx::query(
                "INSERT INTO tezos_high_watermarks (chain_id, pkh, kind, level, round, payload_hash, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (chain_id, pkh, kind) DO UPDATE
                 SET level = ?4, round = ?5, payload_hash = ?6, signature = ?7",
            )
            .bind(request.chain_id.as_slice())
            .bind(&request.pkh)
            .bind(request.kind.as_str())
            .bind(i64::from(request.level))
            .bind(i64::from(request.round))
            .bind(request.payload_hash.as_slice())
            .bind(request.signature.as_slice())
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, &[audit]).await?;
        tx.commit().await?;
        Ok(decision)
    }

    async fn tezos_mark(
        &self,
        chain_id: [u8; 4],
        pkh: &str,
        kind: ConsensusKind,
    ) -> Result<Option<TezosMark>, ProtectionError> {
        let row: Option<MarkRow> = sqlx::query_as(SELECT_MARK)
            .bind(chain_id.as_slice())
            .bind(pkh)
            .bind(kind.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(mark_of).transpose()
    }

    async fn ping(&self) -> Result<(), ProtectionError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
