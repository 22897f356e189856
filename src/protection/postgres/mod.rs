//! The shared [`ProtectionStore`](super::ProtectionStore): PostgreSQL through `sqlx`, for
//! several palisade instances on one database. Migrations from `migrations/postgres/` run at
//! start-up.
//!
//! The check-and-insert for one validator is serialised across processes by a
//! transaction-scoped advisory lock on the validator's id (`pg_advisory_xact_lock`), taken at
//! READ COMMITTED before the validator's history is read. A serialisation failure or deadlock
//! report is retried; any other database error is [`ProtectionError::Unavailable`].
//!
//! The statements and flows it shares with SQLite are in [`super::sql`]; what is here is the
//! opening, the validator cache, and the transactions around the shared flows. The advisory
//! locks and retries are in [`locks`], eth2 check-and-record (group commit) in
//! [`group_commit`], the bulk audit insert in [`audit`].

mod audit;
mod group_commit;
mod locks;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Row};
use tokio::sync::{mpsc, oneshot};

use crate::chain::tezos::payload::ConsensusKind;

use super::audit::{AuditEntry, AuditRecord, KeyActivity};
use super::interchange::PreparedImport;
use super::roles::{AuditLog, Eth2Protection, ProtectionAdmin, TezosWatermarks};
use super::rules::{Decision, HighWatermark};
use super::sql::{self, Keep, Sql};
use super::watermark::{TezosMark, TezosWatermarkRequest, WatermarkDecision};
use super::{
    ImportSummary, ProtectedMessage, ProtectionError, PruneSummary, ValidatorHistory, check_root,
    to_db,
};
use group_commit::Job;
use locks::{lock_tezos_mark, lock_validators, retrying};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL-backed slashing protection.
pub struct PostgresStore {
    pool: PgPool,
    validator_ids: Arc<RwLock<HashMap<[u8; 48], i64>>>,
    bound_root: Arc<OnceLock<[u8; 32]>>,
    /// Check-and-record jobs for the group-commit workers.
    queue: mpsc::UnboundedSender<Job>,
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
            .map_err(|_| ProtectionError::unavailable("invalid PostgreSQL URL"))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            // No ping before every acquire (a round trip per batch): a connection broken by an
            // outage fails its statement, the batch gets 503, and sqlx drops the connection.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        // Several instances may start together: migrations take their own advisory lock.
        Postgres::migrate(&MIGRATOR, &pool).await?;
        let bound_root = Arc::new(OnceLock::new());
        let (queue, jobs) = mpsc::unbounded_channel();
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        // Several committers, so one batch's round trips overlap with the next batch filling up.
        for _ in 0..(max_connections / 4).clamp(1, 2) {
            tokio::spawn(group_commit::worker(
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
                sqlx::query_scalar(sql::queries::VALIDATOR_ID)
                    .bind(public_key.as_slice())
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        self.validator_ids.write().insert(*public_key, id);
        Ok(id)
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

    /// One import transaction: binds (or checks) the genesis validators root, registers the
    /// batch's validators, takes their locks, merges their records and raises their low
    /// watermarks. The outer `Err` is a database error (retried if retryable); the inner
    /// result is the answer.
    async fn import_attempt(
        &self,
        prepared: &PreparedImport,
    ) -> Result<Result<ImportSummary, ProtectionError>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if let Err(e) = self
            .bind_genesis(&mut tx, prepared.genesis_validators_root)
            .await?
        {
            return Ok(Err(sql::import_error(e)));
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
        lock_validators(&mut tx, &ids).await?;
        for (v, id) in prepared.validators.iter().zip(ids) {
            Postgres::import_validator(&mut tx, id, v).await?;
        }
        tx.commit().await?;
        let _ = self.bound_root.set(prepared.genesis_validators_root);
        Ok(Ok(sql::import_summary(prepared)))
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
        let bound = Postgres::bind_genesis(conn, root).await?;
        Ok(check_root(&bound, &root))
    }
}

#[async_trait]
impl Eth2Protection for PostgresStore {
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
            sql::audit_refusal(self, &audit, &e).await;
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
            .map_err(|_| ProtectionError::unavailable("group-commit workers stopped"))?;
        answer
            .await
            .unwrap_or_else(|_| Err(ProtectionError::unavailable("group-commit worker stopped")))
    }

    async fn history(&self, public_key: &[u8; 48]) -> Result<ValidatorHistory, ProtectionError> {
        let mut conn = self.pool.acquire().await?;
        Ok(Postgres::history(&mut conn, public_key).await?)
    }

    async fn genesis_validators_root(&self) -> Result<Option<[u8; 32]>, ProtectionError> {
        Ok(Postgres::genesis_root(&self.pool).await?)
    }

    async fn validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError> {
        Ok(Postgres::validators(&self.pool).await?)
    }
}

#[async_trait]
impl TezosWatermarks for PostgresStore {
    async fn tezos_check_record_and_audit(
        &self,
        request: &TezosWatermarkRequest,
        audit: AuditEntry,
    ) -> Result<WatermarkDecision, ProtectionError> {
        retrying(|| async {
            // Any early return drops `tx`, which rolls back: nothing is written on error.
            let mut tx = self.pool.begin().await?;
            lock_tezos_mark(&mut tx, request).await?;
            Postgres::tezos_record(tx, request, &audit).await
        })
        .await?
    }

    async fn tezos_mark(
        &self,
        chain_id: [u8; 4],
        pkh: &str,
        kind: ConsensusKind,
    ) -> Result<Option<TezosMark>, ProtectionError> {
        Postgres::tezos_mark(&self.pool, chain_id, pkh, kind).await
    }
}

#[async_trait]
impl AuditLog for PostgresStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), ProtectionError> {
        Ok(
            retrying(|| async { Postgres::append_audit_in(self.pool.begin().await?, entry).await })
                .await?,
        )
    }

    async fn audit_records(
        &self,
        since_ms: i64,
        until_ms: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ProtectionError> {
        Postgres::audit_records(&self.pool, since_ms, until_ms, after_id, limit).await
    }

    async fn prune_audit(&self, before_ms: i64) -> Result<u64, ProtectionError> {
        sql::prune_audit(|| Postgres::prune_audit_chunk(&self.pool, before_ms)).await
    }

    async fn key_activity(&self) -> Result<Vec<KeyActivity>, ProtectionError> {
        Postgres::key_activity(&self.pool).await
    }
}

#[async_trait]
impl ProtectionAdmin for PostgresStore {
    async fn import(&self, prepared: &PreparedImport) -> Result<ImportSummary, ProtectionError> {
        // One transaction per bounded batch (each retried on serialisation failures), so the
        // validators' advisory locks are held for one batch at a time.
        sql::import_in_batches(prepared, move |batch, _last| async move {
            retrying(|| self.import_attempt(&batch)).await?
        })
        .await
    }

    async fn prune(
        &self,
        epochs_to_keep: u64,
        slots_per_epoch: u64,
    ) -> Result<PruneSummary, ProtectionError> {
        let keep = Keep::new(epochs_to_keep, slots_per_epoch);
        let mut summary = PruneSummary::default();
        // One short transaction per validator, under its lock, so signing is never blocked for long.
        for id in Postgres::validator_ids(&self.pool).await? {
            let mut tx = self.pool.begin().await?;
            lock_validators(&mut tx, &[id]).await?;
            let s = Postgres::prune_validator(&mut tx, id, keep).await?;
            tx.commit().await?;
            summary.blocks += s.blocks;
            summary.attestations += s.attestations;
        }
        Ok(summary)
    }

    async fn set_enabled(
        &self,
        public_keys: &[[u8; 48]],
        enabled: bool,
    ) -> Result<(), ProtectionError> {
        let keys: Vec<Vec<u8>> = public_keys.iter().map(|k| k.to_vec()).collect();
        Ok(retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let ids: Vec<i64> = Self::upsert_validators(&mut tx, &keys)
                .await?
                .into_values()
                .collect();
            // The check-and-record of these validators holds the same locks, so no record
            // commits after this update does.
            lock_validators(&mut tx, &ids).await?;
            sqlx::query("UPDATE validators SET enabled = $2 WHERE id = ANY($1)")
                .bind(&ids)
                .bind(enabled)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .await?)
    }

    async fn disabled_validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError> {
        Ok(Postgres::disabled_validators(&self.pool).await?)
    }

    async fn high_watermark(&self) -> Result<Option<HighWatermark>, ProtectionError> {
        Ok(Postgres::high_watermark(&self.pool).await?)
    }

    async fn set_high_watermark(&self, high: Option<HighWatermark>) -> Result<(), ProtectionError> {
        Postgres::set_high_watermark(&self.pool, high).await
    }

    async fn ping(&self) -> Result<(), ProtectionError> {
        Ok(Postgres::ping(&self.pool).await?)
    }
}
