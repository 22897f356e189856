//! The shared [`ProtectionStore`](super::ProtectionStore): PostgreSQL through `sqlx`, for
//! several palisade instances on one database. Migrations from `migrations/postgres/` run at
//! start-up.
//!
//! The check-and-insert for one validator is serialised across processes by a
//! transaction-scoped advisory lock on the validator's id (`pg_advisory_xact_lock`), taken at
//! READ COMMITTED before the validator's history is read. A serialisation failure or deadlock
//! report is retried; any other database error is [`ProtectionError::Unavailable`].
//!
//! The statements and flows it shares with SQLite are in [`super::sql`], and so are the role
//! traits' implementations (`sql::store`); what is here is the opening, the validator cache,
//! and the transactions around the shared flows. The advisory locks and retries are in
//! [`locks`], eth2 check-and-record (group commit) in [`group_commit`], the bulk audit insert
//! in [`audit`].

mod audit;
mod group_commit;
mod locks;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::RwLock;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Row};
use tokio::sync::{mpsc, oneshot};

use super::audit::AuditEntry;
use super::interchange::PreparedImport;
use super::rules::{Decision, HighWatermark};
use super::sql::store::{Eth2Record, SqlStore};
use super::sql::tezos_commit::{TezosAnswer, TezosBatchFn, TezosGroupCommit, TezosRecord};
use super::sql::{self, Keep, Sql};
use super::watermark::{TezosWatermarkRequest, WatermarkDecision};
use super::{ImportSummary, ProtectedMessage, ProtectionError, PruneSummary, check_root, to_db};
use group_commit::Job;
use locks::{lock_tezos_marks, lock_validators, retrying};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL-backed slashing protection.
pub struct PostgresStore {
    pool: PgPool,
    validator_ids: Arc<RwLock<HashMap<[u8; 48], i64>>>,
    bound_root: Arc<OnceLock<[u8; 32]>>,
    /// Check-and-record jobs for the group-commit workers.
    queue: mpsc::UnboundedSender<Job>,
    /// Tezos check-and-record requests share transactions ([`tezos_batch`]).
    tezos_commit: TezosGroupCommit,
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
        let batch_pool = pool.clone();
        let batch: TezosBatchFn =
            Arc::new(move |records| Box::pin(tezos_batch(batch_pool.clone(), records)));
        Ok(PostgresStore {
            pool,
            validator_ids: Arc::new(RwLock::new(HashMap::new())),
            bound_root,
            queue,
            // Up to a quarter of the pool in flight (1 to 4 transactions).
            tezos_commit: TezosGroupCommit::new(
                batch,
                None,
                "postgres_group_commit",
                (max_connections / 4).clamp(1, 4) as usize,
            ),
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

impl SqlStore for PostgresStore {
    type Db = Postgres;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn register(&self, public_keys: &[[u8; 48]]) -> Result<(), ProtectionError> {
        let keys: Vec<Vec<u8>> = public_keys.iter().map(|k| k.to_vec()).collect();
        let mut conn = self.pool.acquire().await?;
        let ids = Self::upsert_validators(&mut conn, &keys).await?;
        self.validator_ids.write().extend(ids);
        Ok(())
    }

    /// Refuses (and audits) what can be refused without the database, then queues the job
    /// for the group-commit workers and waits for its answer.
    async fn record_eth2(&self, record: Eth2Record<'_>) -> Result<Decision, ProtectionError> {
        let precheck = || -> Result<(), ProtectionError> {
            if let Some(bound) = self.bound_root.get() {
                check_root(bound, &record.genesis_validators_root)?;
            }
            match record.message {
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
            sql::audit_refusal(self, &record.audit, &e).await;
            return Err(e);
        }
        let validator = self.validator_id(record.public_key).await?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job {
                validator,
                genesis_validators_root: record.genesis_validators_root,
                message: record.message,
                signing_root: record.signing_root,
                audit: record.audit,
                reply,
            })
            .map_err(|_| ProtectionError::unavailable("group-commit workers stopped"))?;
        answer
            .await
            .unwrap_or_else(|_| Err(ProtectionError::unavailable("group-commit worker stopped")))
    }

    async fn record_tezos(
        &self,
        request: &TezosWatermarkRequest,
        audit: &AuditEntry,
    ) -> Result<WatermarkDecision, ProtectionError> {
        self.tezos_commit.record(request, audit).await
    }

    async fn append_entry(&self, entry: &AuditEntry) -> Result<(), ProtectionError> {
        Ok(
            retrying(|| async { Postgres::append_audit_in(self.pool.begin().await?, entry).await })
                .await?,
        )
    }

    async fn prune_audit_step(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        Postgres::prune_audit_chunk(&self.pool, before_ms).await
    }

    /// [`PostgresStore::import_attempt`], retried on serialisation failures; the validators'
    /// advisory locks are held for one batch at a time.
    async fn import_batch(&self, batch: &PreparedImport) -> Result<ImportSummary, ProtectionError> {
        retrying(|| self.import_attempt(batch)).await?
    }

    /// One short transaction per validator, under its lock, so signing is never blocked for
    /// long.
    async fn prune_records(&self, keep: Keep) -> Result<PruneSummary, ProtectionError> {
        let mut summary = PruneSummary::default();
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

    async fn enable(&self, public_keys: &[[u8; 48]], enabled: bool) -> Result<(), ProtectionError> {
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

    async fn write_high_watermark(
        &self,
        high: Option<HighWatermark>,
    ) -> Result<(), ProtectionError> {
        Postgres::set_high_watermark(&self.pool, high).await
    }
}

/// The PostgreSQL Tezos group commit's transaction: the advisory locks of every mark of the
/// batch (ascending), each record's check-and-record ([`Sql::tezos_record_in`]) in order,
/// one commit; retried whole on a serialisation failure or deadlock. Any other database
/// error, a lock wait over 2 s (`lock_timeout`, SQLSTATE 55P03) among them, rolls the whole
/// transaction back (the `Transaction` drops uncommitted): the batch is answered 503.
async fn tezos_batch(
    pool: PgPool,
    records: Arc<[TezosRecord]>,
) -> Result<Vec<TezosAnswer>, sqlx::Error> {
    retrying(|| async {
        let mut tx = pool.begin().await?;
        // A batch holds many marks: one locked by a stalled transaction elsewhere (another
        // instance whose host froze) must not hold up the others for longer than this.
        sqlx::query("SET LOCAL lock_timeout = '2s'")
            .execute(&mut *tx)
            .await?;
        lock_tezos_marks(&mut tx, records.iter().map(|(request, _)| request)).await?;
        let mut answers = Vec::with_capacity(records.len());
        for (request, audit) in records.iter() {
            answers.push(Postgres::tezos_record_in(&mut tx, request, audit).await?);
        }
        tx.commit().await?;
        Ok(answers)
    })
    .await
}
