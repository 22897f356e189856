//! The shared [`ProtectionStore`]: PostgreSQL through `sqlx`, for several palisade instances
//! on one database. Migrations from `migrations/postgres/` run at start-up.
//!
//! The check-and-insert for one validator is serialised across processes by a
//! transaction-scoped advisory lock on the validator's id (`pg_advisory_xact_lock`), taken at
//! READ COMMITTED before the validator's history is read. A serialisation failure or deadlock
//! report is retried; any other database error is [`ProtectionError::Unavailable`].

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::{mpsc, oneshot};

use crate::chain::tezos::payload::ConsensusKind;

use super::audit::{
    self, ActivityRow, AuditDbRow, AuditEntry, AuditRecord, KeyActivity, activity_columns,
    activity_deltas, audit_columns, db_int,
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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Retries of a transaction that failed with a serialisation failure or deadlock.
const MAX_RETRIES: usize = 5;

/// Class of the two-key advisory locks on Tezos high watermarks (`pg_advisory_xact_lock(int4,
/// int4)`; that key space does not overlap the one-key space eth2 validators are locked in).
const TEZOS_LOCK_CLASS: i32 = 0x747a;

const SELECT_MARK: &str = "SELECT level, round, payload_hash, signature FROM tezos_high_watermarks
     WHERE chain_id = $1 AND pkh = $2 AND kind = $3";

/// The advisory-lock key of one Tezos mark: the first 4 bytes of blake2b-256(chain id || kind
/// || pkh). Two marks sharing a key only serialise more, never less.
fn tezos_lock_key(request: &TezosWatermarkRequest) -> i32 {
    let mut bytes = request.chain_id.to_vec();
    bytes.extend_from_slice(request.kind.as_str().as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(request.pkh.as_bytes());
    let digest = crate::crypto::tezos::blake2b_256(&bytes);
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Inserts audit entries (one statement) and adds them to their keys' totals (one statement,
/// rows in key order), inside the caller's transaction.
async fn insert_audit(conn: &mut PgConnection, entries: &[AuditEntry]) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut time = Vec::with_capacity(entries.len());
    let (mut chain, mut key, mut kind) = (Vec::new(), Vec::new(), Vec::new());
    let (mut slot, mut epoch, mut source) = (Vec::new(), Vec::new(), Vec::new());
    let (mut level, mut round, mut root) = (Vec::new(), Vec::new(), Vec::new());
    let (mut decision, mut reason, mut caller) = (Vec::new(), Vec::new(), Vec::new());
    for e in entries {
        time.push(e.time_ms);
        chain.push(e.chain.as_str());
        key.push(e.key.as_str());
        kind.push(e.kind.as_str());
        slot.push(db_int(e.slot));
        epoch.push(db_int(e.epoch));
        source.push(db_int(e.source_epoch));
        level.push(e.level.map(i64::from));
        round.push(e.round.map(i64::from));
        root.push(e.signing_root.map(|r| r.to_vec()));
        decision.push(e.decision.as_str());
        reason.push(e.reason.as_deref());
        caller.push(e.caller.as_deref());
    }
    sqlx::query(
        "INSERT INTO audit_log (time_ms, chain, key, kind, slot, epoch, source_epoch, level, round,
                                signing_root, decision, reason, caller)
         SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                              $7::int8[], $8::int8[], $9::int8[], $10::bytea[], $11::text[],
                              $12::text[], $13::text[])",
    )
    .bind(&time)
    .bind(&chain)
    .bind(&key)
    .bind(&kind)
    .bind(&slot)
    .bind(&epoch)
    .bind(&source)
    .bind(&level)
    .bind(&round)
    .bind(&root)
    .bind(&decision)
    .bind(&reason)
    .bind(&caller)
    .execute(&mut *conn)
    .await?;

    let deltas = activity_deltas(entries);
    let mut d_chain = Vec::with_capacity(deltas.len());
    let (mut d_key, mut d_signed, mut d_refused) = (Vec::new(), Vec::new(), Vec::new());
    let (mut l_ms, mut l_kind, mut l_slot) = (Vec::new(), Vec::new(), Vec::new());
    let (mut l_epoch, mut l_level, mut l_round) = (Vec::new(), Vec::new(), Vec::new());
    for d in &deltas {
        let last = d.last_signed;
        d_chain.push(d.chain.as_str());
        d_key.push(d.key);
        d_signed.push(d.signed);
        d_refused.push(d.refused);
        l_ms.push(last.map(|e| e.time_ms));
        l_kind.push(last.map(|e| e.kind.as_str()));
        l_slot.push(last.and_then(|e| db_int(e.slot)));
        l_epoch.push(last.and_then(|e| db_int(e.epoch)));
        l_level.push(last.and_then(|e| e.level.map(i64::from)));
        l_round.push(last.and_then(|e| e.round.map(i64::from)));
    }
    sqlx::query(
        "INSERT INTO key_activity AS a (chain, key, signed_count, refused_count, last_signed_ms,
                                        last_kind, last_slot, last_epoch, last_level, last_round)
         SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[],
                              $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::int8[])
         ON CONFLICT (chain, key) DO UPDATE SET
            signed_count = a.signed_count + EXCLUDED.signed_count,
            refused_count = a.refused_count + EXCLUDED.refused_count,
            last_kind = CASE WHEN EXCLUDED.last_signed_ms IS NULL THEN a.last_kind ELSE EXCLUDED.last_kind END,
            last_slot = CASE WHEN EXCLUDED.last_signed_ms IS NULL THEN a.last_slot ELSE EXCLUDED.last_slot END,
            last_epoch = CASE WHEN EXCLUDED.last_signed_ms IS NULL THEN a.last_epoch ELSE EXCLUDED.last_epoch END,
            last_level = CASE WHEN EXCLUDED.last_signed_ms IS NULL THEN a.last_level ELSE EXCLUDED.last_level END,
            last_round = CASE WHEN EXCLUDED.last_signed_ms IS NULL THEN a.last_round ELSE EXCLUDED.last_round END,
            last_signed_ms = COALESCE(EXCLUDED.last_signed_ms, a.last_signed_ms)",
    )
    .bind(&d_chain)
    .bind(&d_key)
    .bind(&d_signed)
    .bind(&d_refused)
    .bind(&l_ms)
    .bind(&l_kind)
    .bind(&l_slot)
    .bind(&l_epoch)
    .bind(&l_level)
    .bind(&l_round)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// PostgreSQL-backed slashing protection.
pub struct PostgresStore {
    pool: PgPool,
    validator_ids: Arc<RwLock<HashMap<[u8; 48], i64>>>,
    bound_root: Arc<OnceLock<[u8; 32]>>,
    /// Check-and-record jobs for the group-commit workers.
    queue: mpsc::UnboundedSender<Job>,
}

/// Largest number of check-and-record jobs committed in one transaction.
const MAX_BATCH: usize = 512;

/// A row `(slot, signing_root)` of `signed_blocks`.
fn block_row(r: PgRow) -> SignedBlock {
    SignedBlock {
        slot: r.get::<i64, _>(0) as u64,
        signing_root: root_of(r.get(1)),
    }
}

/// The low watermarks in three columns of `r` from `first` on (see [`LowWatermarks::from_columns`]).
fn low_of(r: &PgRow, first: usize) -> LowWatermarks {
    LowWatermarks::from_columns(std::array::from_fn(|k| r.get::<Option<i64>, _>(first + k)))
}

fn attestation_row(r: PgRow) -> SignedAttestation {
    attestation_row_at(&r, 0)
}

/// `(source_epoch, target_epoch, signing_root)` from column `first` on.
fn attestation_row_at(r: &PgRow, first: usize) -> SignedAttestation {
    SignedAttestation {
        source_epoch: r.get::<i64, _>(first) as u64,
        target_epoch: r.get::<i64, _>(first + 1) as u64,
        signing_root: root_of(r.get(first + 2)),
    }
}

/// Whether a database error is worth retrying (SQLSTATE 40001 serialization_failure, 40P01 deadlock).
fn retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40001") | Some("40P01")),
        _ => false,
    }
}

impl PostgresStore {
    /// Connects to a `postgres://` URL (pool of `max_connections`) and applies migrations.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`] if the database cannot be reached or migrated. The
    /// message never contains the URL's password.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, ProtectionError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|_| ProtectionError::Unavailable("invalid PostgreSQL URL".into()))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            // No ping before every acquire (a round trip per batch): a connection broken by an
            // outage fails its statement, the batch gets 503, and sqlx drops the connection.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        // Several instances may start together: migrations take their own advisory lock.
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| ProtectionError::Unavailable(format!("migration failed: {e}")))?;
        let bound_root = Arc::new(OnceLock::new());
        let (queue, jobs) = mpsc::unbounded_channel();
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        // Several committers, so one batch's round trips overlap with the next batch filling up.
        for _ in 0..(max_connections / 4).clamp(1, 2) {
            tokio::spawn(batch::worker(
                pool.clone(),
                bound_root.clone(),
                jobs.clone(),
            ));
        }
        Ok(PostgresStore {
            pool,
            validator_ids: Arc::new(RwLock::new(HashMap::new())),
            bound_root,
            queue,
        })
    }

    /// The validator's id, registering it (in its own autocommitted statement, so that a
    /// rolled-back request can never leave a cached id without a row) if it is new.
    async fn validator_id(&self, public_key: &[u8; 48]) -> Result<i64, sqlx::Error> {
        if let Some(id) = self.validator_ids.read().get(public_key) {
            return Ok(*id);
        }
        let inserted: Option<i64> = sqlx::query_scalar(
            "WITH ins AS (INSERT INTO validators (public_key) VALUES ($1) ON CONFLICT (public_key) DO NOTHING RETURNING id)
             SELECT id FROM ins UNION ALL SELECT id FROM validators WHERE public_key = $1 LIMIT 1",
        )
        .bind(public_key.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        // When a concurrent statement inserted the row after this statement's snapshot was
        // taken, the conflict hides it from both branches: read it again in a new statement.
        let id = match inserted {
            Some(id) => id,
            None => {
                sqlx::query_scalar("SELECT id FROM validators WHERE public_key = $1")
                    .bind(public_key.as_slice())
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        self.validator_ids.write().insert(*public_key, id);
        Ok(id)
    }

    async fn watermarks(
        conn: &mut PgConnection,
        validator: i64,
    ) -> Result<LowWatermarks, sqlx::Error> {
        let row = sqlx::query(
            "SELECT slot, source_epoch, target_epoch FROM low_watermarks WHERE validator_id = $1",
        )
        .bind(validator)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(match row {
            None => LowWatermarks::default(),
            Some(r) => low_of(&r, 0),
        })
    }

    async fn high(conn: &mut PgConnection) -> Result<Option<HighWatermark>, sqlx::Error> {
        let row = sqlx::query("SELECT epoch, slot FROM high_watermark WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.map(|r| HighWatermark {
            epoch: r.get::<i64, _>(0) as u64,
            slot: r.get::<i64, _>(1) as u64,
        }))
    }

    async fn set_watermarks(
        conn: &mut PgConnection,
        validator: i64,
        w: &LowWatermarks,
    ) -> Result<(), sqlx::Error> {
        let c = w.columns();
        sqlx::query(
            "INSERT INTO low_watermarks (validator_id, slot, source_epoch, target_epoch) VALUES ($1, $2, $3, $4)
             ON CONFLICT (validator_id) DO UPDATE SET slot = $2, source_epoch = $3, target_epoch = $4",
        )
        .bind(validator)
        .bind(c[0])
        .bind(c[1])
        .bind(c[2])
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Inserts missing validators in one ordered statement (concurrent starts cannot deadlock)
    /// and returns every key's id.
    async fn upsert_validators(
        conn: &mut PgConnection,
        keys: &[Vec<u8>],
    ) -> Result<HashMap<[u8; 48], i64>, sqlx::Error> {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        sqlx::query(
            "INSERT INTO validators (public_key) SELECT k FROM unnest($1::bytea[]) AS k ORDER BY k
             ON CONFLICT (public_key) DO NOTHING",
        )
        .bind(&sorted)
        .execute(&mut *conn)
        .await?;
        let rows = sqlx::query("SELECT id, public_key FROM validators WHERE public_key = ANY($1)")
            .bind(&sorted)
            .fetch_all(&mut *conn)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let pk: Vec<u8> = r.get(1);
                <[u8; 48]>::try_from(pk)
                    .ok()
                    .map(|pk| (pk, r.get::<i64, _>(0)))
            })
            .collect())
    }

    /// One attempt at a Tezos check-and-record: lock the mark, read it, decide, upsert, commit.
    /// The outer `Err` is a database error (retried if retryable); the inner result is the answer.
    async fn tezos_attempt(
        &self,
        request: &TezosWatermarkRequest,
        audit: &AuditEntry,
    ) -> Result<Result<WatermarkDecision, ProtectionError>, sqlx::Error> {
        // Any early return drops `tx`, which rolls back: nothing is written on error.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(TEZOS_LOCK_CLASS)
            .bind(tezos_lock_key(request))
            .execute(&mut *tx)
            .await?;
        let row: Option<MarkRow> = sqlx::query_as(SELECT_MARK)
            .bind(request.chain_id.as_slice())
            .bind(&request.pkh)
            .bind(request.kind.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let mark = match row.map(mark_of).transpose() {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let decision = match watermark::check(mark.as_ref(), request) {
            Ok(d) => d,
            Err(v) => {
                // Nothing else was written in this transaction: the refusal's entry goes in it.
                let v = ProtectionError::from(v);
                insert_audit(&mut tx, &[audit.clone().refused(v.to_string())]).await?;
                tx.commit().await?;
                return Ok(Err(v));
            }
        };
        if decision == WatermarkDecision::SignAndRecord {
            sqlx::query(
                "INSERT INTO tezos_high_watermarks (chain_id, pkh, kind, level, round, payload_hash, signature)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (chain_id, pkh, kind) DO UPDATE
                 SET level = $4, round = $5, payload_hash = $6, signature = $7",
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
        insert_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await?;
        Ok(Ok(decision))
    }

    /// Takes the advisory locks of `ids` in ascending order (the order every writer uses).
    async fn lock_validators(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        sqlx::query("SELECT pg_advisory_xact_lock(id) FROM unnest($1::bigint[]) AS id ORDER BY id")
            .bind(&sorted)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn import_attempt(
        &self,
        prepared: &PreparedImport,
    ) -> Result<Result<ImportSummary, ProtectionError>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if let Err(e) = self
            .bind_genesis(&mut tx, prepared.genesis_validators_root)
            .await?
        {
            return Ok(Err(match e {
                ProtectionError::GenesisMismatch { requested, bound } => {
                    InterchangeError::GenesisMismatch {
                        file: requested,
                        database: bound,
                    }
                    .into()
                }
                other => other,
            }));
        }
        // Registered inside the transaction: a failed import leaves no validator rows.
        let keys: Vec<Vec<u8>> = prepared
            .validators
            .iter()
            .map(|v| v.pubkey.to_vec())
            .collect();
        let id_of = Self::upsert_validators(&mut tx, &keys).await?;
        let ids: Vec<i64> = prepared
            .validators
            .iter()
            .map(|v| id_of.get(&v.pubkey).copied().unwrap_or_default())
            .collect();
        Self::lock_validators(&mut tx, &ids).await?;
        let mut summary = ImportSummary::default();
        for (v, id) in prepared.validators.iter().zip(ids) {
            for b in &v.blocks {
                sqlx::query(
                    "INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES ($1, $2, $3)
                     ON CONFLICT (validator_id, slot) DO UPDATE SET signing_root =
                       CASE WHEN signed_blocks.signing_root IS NOT DISTINCT FROM excluded.signing_root
                            THEN signed_blocks.signing_root ELSE NULL END",
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
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (validator_id, target_epoch, source_epoch) DO UPDATE SET
                       signing_root = CASE WHEN signed_attestations.signing_root IS NOT DISTINCT FROM excluded.signing_root
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
        Ok(Ok(summary))
    }

    async fn prune_attempt(
        &self,
        epochs_to_keep: u64,
        slots_per_epoch: u64,
    ) -> Result<PruneSummary, sqlx::Error> {
        let keep_slots = epochs_to_keep
            .saturating_mul(slots_per_epoch)
            .min(i64::MAX as u64) as i64;
        let keep_epochs = epochs_to_keep.min(i64::MAX as u64) as i64;
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM validators ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut summary = PruneSummary::default();
        // One short transaction per validator, under its lock, so signing is never blocked for long.
        for id in ids {
            let mut tx = self.pool.begin().await?;
            Self::lock_validators(&mut tx, &[id]).await?;
            let pruned_blocks: Vec<SignedBlock> = sqlx::query(
                "SELECT slot, signing_root FROM signed_blocks WHERE validator_id = $1
                 AND slot < (SELECT MAX(slot) FROM signed_blocks WHERE validator_id = $1) - $2",
            )
            .bind(id)
            .bind(keep_slots)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(block_row)
            .collect();
            let pruned_atts: Vec<SignedAttestation> = sqlx::query(
                "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations WHERE validator_id = $1
                 AND target_epoch < (SELECT MAX(target_epoch) FROM signed_attestations WHERE validator_id = $1) - $2",
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
                    sqlx::query("DELETE FROM signed_blocks WHERE validator_id = $1 AND slot <= $2")
                        .bind(id)
                        .bind(max_slot as i64)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
            }
            if let Some(max_target) = pruned_atts.iter().map(|a| a.target_epoch).max() {
                summary.attestations +=
                    sqlx::query("DELETE FROM signed_attestations WHERE validator_id = $1 AND target_epoch <= $2")
                        .bind(id)
                        .bind(max_target as i64)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
            }
            tx.commit().await?;
        }
        Ok(summary)
    }

    /// Binds the database to `root` if unbound (first writer wins), else compares.
    async fn bind_genesis(
        &self,
        conn: &mut PgConnection,
        root: [u8; 32],
    ) -> Result<Result<(), ProtectionError>, sqlx::Error> {
        if let Some(bound) = self.bound_root.get() {
            return Ok(check_root(bound, &root));
        }
        sqlx::query("INSERT INTO metadata (id, genesis_validators_root) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(root.as_slice())
            .execute(&mut *conn)
            .await?;
        let bound: Vec<u8> =
            sqlx::query_scalar("SELECT genesis_validators_root FROM metadata WHERE id = 1")
                .fetch_one(&mut *conn)
                .await?;
        let bound: [u8; 32] = bound.try_into().unwrap_or([0; 32]);
        Ok(check_root(&bound, &root))
    }
}

#[async_trait]
impl ProtectionStore for PostgresStore {
    async fn register_validators(&self, public_keys: &[[u8; 48]]) -> Result<(), ProtectionError> {
        let keys: Vec<Vec<u8>> = public_keys.iter().map(|k| k.to_vec()).collect();
        let mut conn = self.pool.acquire().await?;
        let ids = Self::upsert_validators(&mut conn, &keys).await?;
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
        let precheck = || -> Result<(), ProtectionError> {
            if let Some(bound) = self.bound_root.get() {
                check_root(bound, &genesis_validators_root)?;
            }
            match message {
                ProtectedMessage::Block { slot } => {
                    to_db(slot, "slot")?;
                }
                ProtectedMessage::Attestation { source, target } => {
                    to_db(source, "source epoch")?;
                    to_db(target, "target epoch")?;
                }
            }
            Ok(())
        };
        if let Err(e) = precheck() {
            if let Some(reason) = audit::refusal_reason(&e)
                && let Err(a) = self.append_audit(&audit.refused(reason)).await
            {
                tracing::warn!(reason = %a, "could not record a refusal in the audit log");
            }
            return Err(e);
        }
        let validator = self.validator_id(public_key).await?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job {
                validator,
                genesis_validators_root,
                message,
                signing_root,
                audit,
                reply,
            })
            .map_err(|_| ProtectionError::Unavailable("group-commit workers stopped".into()))?;
        answer.await.unwrap_or_else(|_| {
            Err(ProtectionError::Unavailable(
                "group-commit worker stopped".into(),
            ))
        })
    }

    async fn history(&self, public_key: &[u8; 48]) -> Result<ValidatorHistory, ProtectionError> {
        let mut conn = self.pool.acquire().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM validators WHERE public_key = $1")
            .bind(public_key.as_slice())
            .fetch_optional(&mut *conn)
            .await?;
        let Some(id) = id else {
            return Ok(ValidatorHistory::default());
        };
        let blocks = sqlx::query(
            "SELECT slot, signing_root FROM signed_blocks WHERE validator_id = $1 ORDER BY slot",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(block_row)
        .collect();
        let attestations = sqlx::query(
            "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations WHERE validator_id = $1 ORDER BY target_epoch, source_epoch",
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
        // One transaction per bounded batch (each retried on serialisation failures), so the
        // validators' advisory locks are held for one batch at a time.
        let mut summary = ImportSummary::default();
        for batch in prepared.batches(IMPORT_BATCH_RECORDS) {
            let mut tries = 0;
            let s = loop {
                match self.import_attempt(&batch).await {
                    Ok(answer) => break answer?,
                    Err(e) if tries + 1 < MAX_RETRIES && retryable(&e) => tries += 1,
                    Err(e) => return Err(e.into()),
                }
            };
            summary.blocks += s.blocks;
            summary.attestations += s.attestations;
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
        Ok(Self::high(&mut conn).await?)
    }

    async fn set_high_watermark(&self, high: Option<HighWatermark>) -> Result<(), ProtectionError> {
        match high {
            None => {
                sqlx::query("DELETE FROM high_watermark")
                    .execute(&self.pool)
                    .await?
            }
            Some(h) => {
                sqlx::query(
                    "INSERT INTO high_watermark (id, epoch, slot) VALUES (1, $1, $2)
                     ON CONFLICT (id) DO UPDATE SET epoch = $1, slot = $2",
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
        Ok(self.prune_attempt(epochs_to_keep, slots_per_epoch).await?)
    }

    async fn tezos_check_record_and_audit(
        &self,
        request: &TezosWatermarkRequest,
        audit: AuditEntry,
    ) -> Result<WatermarkDecision, ProtectionError> {
        let mut tries = 0;
        loop {
            match self.tezos_attempt(request, &audit).await {
                Ok(answer) => return answer,
                Err(e) if tries + 1 < MAX_RETRIES && retryable(&e) => tries += 1,
                Err(e) => return Err(e.into()),
            }
        }
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

    async fn set_enabled(
        &self,
        public_keys: &[[u8; 48]],
        enabled: bool,
    ) -> Result<(), ProtectionError> {
        let keys: Vec<Vec<u8>> = public_keys.iter().map(|k| k.to_vec()).collect();
        let mut tries = 0;
        loop {
            let attempt = async {
                let mut tx = self.pool.begin().await?;
                let ids: Vec<i64> = Self::upsert_validators(&mut tx, &keys)
                    .await?
                    .into_values()
                    .collect();
                // The check-and-record of these validators holds the same locks, so no record
                // commits after this update does.
                Self::lock_validators(&mut tx, &ids).await?;
                sqlx::query("UPDATE validators SET enabled = $2 WHERE id = ANY($1)")
                    .bind(&ids)
                    .bind(enabled)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            };
            match attempt.await {
                Ok(()) => return Ok(()),
                Err(e) if tries + 1 < MAX_RETRIES && retryable(&e) => tries += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn disabled_validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError> {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT public_key FROM validators WHERE NOT enabled ORDER BY public_key",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(|k| k.try_into().ok()).collect())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), ProtectionError> {
        let mut tries = 0;
        loop {
            let attempt = async {
                let mut tx = self.pool.begin().await?;
                insert_audit(&mut tx, std::slice::from_ref(entry)).await?;
                tx.commit().await
            };
            match attempt.await {
                Ok(()) => return Ok(()),
                Err(e) if tries + 1 < MAX_RETRIES && retryable(&e) => tries += 1,
                Err(e) => return Err(e.into()),
            }
        }
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
            " FROM audit_log WHERE time_ms >= $1 AND time_ms < $2 AND id > $3 ORDER BY id LIMIT $4"
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
            let n = sqlx::query(
                "DELETE FROM audit_log WHERE id IN
                 (SELECT id FROM audit_log WHERE time_ms < $1 ORDER BY id LIMIT 5000)",
            )
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
            deleted += n;
            if n < 5000 {
                return Ok(deleted);
            }
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
}

/// One check-and-record request waiting for a group commit.
struct Job {
    validator: i64,
    genesis_validators_root: [u8; 32],
    message: ProtectedMessage,
    signing_root: [u8; 32],
    /// The decision's audit entry (written as `signed` or `refused` in the batch).
    audit: AuditEntry,
    reply: oneshot::Sender<Result<Decision, ProtectionError>>,
}

/// Group commit: concurrent check-and-record jobs (for any validators) are decided and
/// recorded in one transaction. The transaction first takes the advisory locks of all its
/// validators in ascending id order (so batches of different instances cannot deadlock),
/// then reads every candidate record with set-based queries, applies the pure rules in
/// arrival order (jobs for the same validator see each other's records), inserts the
/// accepted ones and commits; only then is any job answered. A database error fails the
/// whole batch (every job gets 503); serialisation failures and deadlocks are retried.
mod batch {
    use super::*;

    pub(super) async fn worker(
        pool: PgPool,
        bound_root: Arc<OnceLock<[u8; 32]>>,
        jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
    ) {
        loop {
            let mut batch = Vec::new();
            {
                let mut rx = jobs.lock().await;
                match rx.recv().await {
                    None => return,
                    Some(j) => batch.push(j),
                }
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
            }
            // While the database is unbound, only the jobs with the first job's genesis
            // validators root share a transaction: the root binds only if one of them is
            // recorded, and the others are decided after that, against what was bound.
            let rest = if bound_root.get().is_none() {
                let first = batch[0].genesis_validators_root;
                let (now, rest): (Vec<Job>, Vec<Job>) = batch
                    .into_iter()
                    .partition(|j| j.genesis_validators_root == first);
                batch = now;
                rest
            } else {
                Vec::new()
            };
            run(&pool, &bound_root, batch).await;
            if !rest.is_empty() {
                run(&pool, &bound_root, rest).await;
            }
        }
    }

    /// Decides and records one batch (retrying serialisation failures) and answers its jobs.
    async fn run(pool: &PgPool, bound_root: &OnceLock<[u8; 32]>, batch: Vec<Job>) {
        let mut tries = 0;
        let answers = loop {
            match decide_and_record(pool, bound_root, &batch).await {
                Ok(answers) => break answers,
                Err(e) if tries + 1 < MAX_RETRIES && retryable(&e) => tries += 1,
                Err(e) => {
                    let msg = e.to_string();
                    break batch
                        .iter()
                        .map(|_| Err(ProtectionError::Unavailable(msg.clone())))
                        .collect();
                }
            }
        };
        for (job, answer) in batch.into_iter().zip(answers) {
            let _ = job.reply.send(answer);
        }
    }

    /// The root the database is bound to (`None` while unbound), read in the batch's
    /// transaction unless already known.
    async fn bound_genesis(
        conn: &mut PgConnection,
        bound_root: &OnceLock<[u8; 32]>,
    ) -> Result<Option<[u8; 32]>, sqlx::Error> {
        if let Some(b) = bound_root.get() {
            return Ok(Some(*b));
        }
        let bound: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT genesis_validators_root FROM metadata WHERE id = 1")
                .fetch_optional(&mut *conn)
                .await?;
        Ok(root_of(bound))
    }

    /// Binds the unbound database to `root` in the batch's transaction, called only when a
    /// job of the batch is recorded. Returns the root bound afterwards: another instance may
    /// have bound another one first, and then the batch must not commit.
    async fn bind_genesis(
        conn: &mut PgConnection,
        root: [u8; 32],
    ) -> Result<[u8; 32], sqlx::Error> {
        sqlx::query("INSERT INTO metadata (id, genesis_validators_root) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(root.as_slice())
            .execute(&mut *conn)
            .await?;
        let bound: Vec<u8> =
            sqlx::query_scalar("SELECT genesis_validators_root FROM metadata WHERE id = 1")
                .fetch_one(&mut *conn)
                .await?;
        Ok(bound.try_into().unwrap_or([0; 32]))
    }

    async fn decide_and_record(
        pool: &PgPool,
        bound_root: &OnceLock<[u8; 32]>,
        batch: &[Job],
    ) -> Result<Vec<Result<Decision, ProtectionError>>, sqlx::Error> {
        let mut answers: Vec<Option<Result<Decision, ProtectionError>>> =
            (0..batch.len()).map(|_| None).collect();
        let mut tx = pool.begin().await?;
        let bound_before = bound_genesis(&mut tx, bound_root).await?;
        let bound = bound_before.unwrap_or(batch[0].genesis_validators_root);
        for (i, job) in batch.iter().enumerate() {
            if let Err(e) = check_root(&bound, &job.genesis_validators_root) {
                answers[i] = Some(Err(e));
            }
        }
        let live: Vec<usize> = (0..batch.len()).filter(|i| answers[*i].is_none()).collect();
        let ids: Vec<i64> = live.iter().map(|i| batch[*i].validator).collect();
        PostgresStore::lock_validators(&mut tx, &ids).await?;
        // Validators disabled (under the locks just taken) are refused.
        let disabled: std::collections::HashSet<i64> =
            sqlx::query_scalar("SELECT id FROM validators WHERE id = ANY($1) AND NOT enabled")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        for i in &live {
            if disabled.contains(&batch[*i].validator) {
                answers[*i] = Some(Err(ProtectionError::Disabled(batch[*i].audit.key.clone())));
            }
        }
        let live: Vec<usize> = live.into_iter().filter(|i| answers[*i].is_none()).collect();
        let high = PostgresStore::high(&mut tx).await?;

        let mut watermarks: HashMap<i64, LowWatermarks> = HashMap::new();
        for r in sqlx::query(
            "SELECT validator_id, slot, source_epoch, target_epoch FROM low_watermarks WHERE validator_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        {
            watermarks.insert(r.get(0), low_of(&r, 1));
        }

        // Candidate records for every job, in two set-based queries.
        let (mut bi, mut bv, mut bs) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ai, mut av, mut a_s, mut at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in &live {
            let job = &batch[*i];
            match job.message {
                ProtectedMessage::Block { slot } => {
                    bi.push(*i as i32);
                    bv.push(job.validator);
                    bs.push(slot as i64);
                }
                ProtectedMessage::Attestation { source, target } => {
                    ai.push(*i as i32);
                    av.push(job.validator);
                    a_s.push(source as i64);
                    at.push(target as i64);
                }
            }
        }
        let mut block_found: HashMap<usize, SignedBlock> = HashMap::new();
        if !bi.is_empty() {
            for r in sqlx::query(
                "SELECT q.i, b.slot, b.signing_root FROM unnest($1::int4[], $2::int8[], $3::int8[]) AS q(i, vid, slot)
                 JOIN signed_blocks b ON b.validator_id = q.vid AND b.slot = q.slot",
            )
            .bind(&bi)
            .bind(&bv)
            .bind(&bs)
            .fetch_all(&mut *tx)
            .await?
            {
                block_found.insert(
                    r.get::<i32, _>(0) as usize,
                    SignedBlock {
                        slot: r.get::<i64, _>(1) as u64,
                        signing_root: root_of(r.get(2)),
                    },
                );
            }
        }
        let mut att_found: HashMap<usize, Vec<SignedAttestation>> = HashMap::new();
        if !ai.is_empty() {
            // Same target, surrounded-by (later target, earlier source) and surrounding
            // (earlier target, later source), each an index range scan; any surround row is a
            // violation by itself, so the LIMITs cannot hide a conflict.
            for r in sqlx::query(
                "SELECT q.i, c.source_epoch, c.target_epoch, c.signing_root
                 FROM unnest($1::int4[], $2::int8[], $3::int8[], $4::int8[]) AS q(i, vid, s, t)
                 CROSS JOIN LATERAL (
                     (SELECT source_epoch, target_epoch, signing_root FROM signed_attestations
                       WHERE validator_id = q.vid AND target_epoch = q.t)
                     UNION ALL
                     (SELECT source_epoch, target_epoch, signing_root FROM signed_attestations
                       WHERE validator_id = q.vid AND target_epoch > q.t AND source_epoch < q.s LIMIT 4)
                     UNION ALL
                     (SELECT source_epoch, target_epoch, signing_root FROM signed_attestations
                       WHERE validator_id = q.vid AND source_epoch > q.s AND target_epoch < q.t LIMIT 4)
                 ) AS c",
            )
            .bind(&ai)
            .bind(&av)
            .bind(&a_s)
            .bind(&at)
            .fetch_all(&mut *tx)
            .await?
            {
                att_found
                    .entry(r.get::<i32, _>(0) as usize)
                    .or_default()
                    .push(attestation_row_at(&r, 1));
            }
        }

        // Decide in arrival order; accepted records of this batch count for later jobs.
        let mut new_blocks: HashMap<(i64, u64), SignedBlock> = HashMap::new();
        let mut new_atts: HashMap<i64, Vec<SignedAttestation>> = HashMap::new();
        let none = LowWatermarks::default();
        for i in live {
            let job = &batch[i];
            let w = watermarks.get(&job.validator).unwrap_or(&none);
            let answer = match job.message {
                ProtectedMessage::Block { slot } => {
                    rules::check_block_high_watermark(high.as_ref(), slot).and_then(|()| {
                        let existing = block_found
                            .get(&i)
                            .or_else(|| new_blocks.get(&(job.validator, slot)));
                        let d = rules::check_block(existing, w, slot, job.signing_root)?;
                        if d == Decision::SignAndRecord {
                            new_blocks.insert(
                                (job.validator, slot),
                                SignedBlock {
                                    slot,
                                    signing_root: Some(job.signing_root),
                                },
                            );
                        }
                        Ok(d)
                    })
                }
                ProtectedMessage::Attestation { source, target } => {
                    rules::check_attestation_high_watermark(high.as_ref(), source, target).and_then(
                        |()| {
                            let mut candidates = att_found.remove(&i).unwrap_or_default();
                            if let Some(mine) = new_atts.get(&job.validator) {
                                candidates.extend(mine.iter().copied());
                            }
                            let d = rules::check_attestation(
                                &candidates,
                                w,
                                source,
                                target,
                                job.signing_root,
                            )?;
                            if d == Decision::SignAndRecord {
                                new_atts.entry(job.validator).or_default().push(
                                    SignedAttestation {
                                        source_epoch: source,
                                        target_epoch: target,
                                        signing_root: Some(job.signing_root),
                                    },
                                );
                            }
                            Ok(d)
                        },
                    )
                }
            };
            answers[i] = Some(answer.map_err(ProtectionError::from));
        }

        if !new_blocks.is_empty() {
            let (v, s, r): (Vec<i64>, Vec<i64>, Vec<Vec<u8>>) = new_blocks
                .iter()
                .map(|((vid, slot), b)| {
                    (
                        *vid,
                        *slot as i64,
                        b.signing_root.unwrap_or_default().to_vec(),
                    )
                })
                .fold(
                    (Vec::new(), Vec::new(), Vec::new()),
                    |(mut a, mut b, mut c), (x, y, z)| {
                        a.push(x);
                        b.push(y);
                        c.push(z);
                        (a, b, c)
                    },
                );
            sqlx::query(
                "INSERT INTO signed_blocks (validator_id, slot, signing_root)
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[])",
            )
            .bind(&v)
            .bind(&s)
            .bind(&r)
            .execute(&mut *tx)
            .await?;
        }
        if !new_atts.is_empty() {
            let (mut v, mut s, mut t, mut r) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::<Vec<u8>>::new());
            for (vid, atts) in &new_atts {
                for a in atts {
                    v.push(*vid);
                    s.push(a.source_epoch as i64);
                    t.push(a.target_epoch as i64);
                    r.push(a.signing_root.unwrap_or_default().to_vec());
                }
            }
            sqlx::query(
                "INSERT INTO signed_attestations (validator_id, source_epoch, target_epoch, signing_root)
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::bytea[])",
            )
            .bind(&v)
            .bind(&s)
            .bind(&t)
            .bind(&r)
            .execute(&mut *tx)
            .await?;
        }
        // An unbound database binds only to the root of a recorded message (as on SQLite,
        // where a refusal rolls the binding back with everything else).
        if bound_before.is_none() && (!new_blocks.is_empty() || !new_atts.is_empty()) {
            let now_bound = bind_genesis(&mut tx, bound).await?;
            if now_bound != bound {
                // Another instance bound another root first: nothing of this batch commits,
                // and every job (all have `bound` as their root) is refused as a mismatch.
                let _ = bound_root.set(now_bound);
                return Ok(batch
                    .iter()
                    .map(|job| {
                        Err(check_root(&now_bound, &job.genesis_validators_root)
                            .err()
                            .unwrap_or_else(|| {
                                ProtectionError::Unavailable("genesis binding raced".into())
                            }))
                    })
                    .collect());
            }
        }
        // Every decision of the batch, signed or refused, is audited in its transaction.
        let entries: Vec<AuditEntry> = batch
            .iter()
            .zip(&answers)
            .filter_map(|(job, answer)| match answer {
                Some(Ok(_)) => Some(job.audit.clone()),
                Some(Err(e)) => audit::refusal_reason(e).map(|r| job.audit.clone().refused(r)),
                None => None,
            })
            .collect();
        insert_audit(&mut tx, &entries).await?;
        tx.commit().await?;
        if bound_before.is_some() || !new_blocks.is_empty() || !new_atts.is_empty() {
            let _ = bound_root.set(bound);
        }
        Ok(answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| Err(ProtectionError::Unavailable("job not decided".into())))
            })
            .collect())
    }
}
