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

use async_trait::async_trait;
use parking_lot::RwLock;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};

use super::interchange::{InterchangeError, PreparedImport, merge_watermarks};
use super::rules::{self, Decision, HighWatermark, LowWatermarks, SignedAttestation, SignedBlock};
use super::{
    ImportSummary, ProtectedMessage, ProtectionError, ProtectionStore, PruneSummary,
    ValidatorHistory, to_db,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Retries of a transaction that failed with a serialisation failure or deadlock.
const MAX_RETRIES: usize = 5;

/// PostgreSQL-backed slashing protection.
pub struct PostgresStore {
    pool: PgPool,
    validator_ids: RwLock<HashMap<[u8; 48], i64>>,
    bound_root: OnceLock<[u8; 32]>,
}

fn root_of(v: Option<Vec<u8>>) -> Option<[u8; 32]> {
    v.and_then(|b| b.try_into().ok())
}

fn attestation_row(r: PgRow) -> SignedAttestation {
    SignedAttestation {
        source_epoch: r.get::<i64, _>(0) as u64,
        target_epoch: r.get::<i64, _>(1) as u64,
        signing_root: root_of(r.get(2)),
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
            .connect_with(options)
            .await?;
        // Several instances may start together: migrations take their own advisory lock.
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| ProtectionError::Unavailable(format!("migration failed: {e}")))?;
        Ok(PostgresStore {
            pool,
            validator_ids: RwLock::new(HashMap::new()),
            bound_root: OnceLock::new(),
        })
    }

    /// The validator's id, registering it (in its own autocommitted statement, so that a
    /// rolled-back request can never leave a cached id without a row) if it is new.
    async fn validator_id(&self, public_key: &[u8; 48]) -> Result<i64, sqlx::Error> {
        if let Some(id) = self.validator_ids.read().get(public_key) {
            return Ok(*id);
        }
        let id: i64 = sqlx::query_scalar(
            "WITH ins AS (INSERT INTO validators (public_key) VALUES ($1) ON CONFLICT (public_key) DO NOTHING RETURNING id)
             SELECT id FROM ins UNION ALL SELECT id FROM validators WHERE public_key = $1 LIMIT 1",
        )
        .bind(public_key.as_slice())
        .fetch_one(&self.pool)
        .await?;
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
            Some(r) => LowWatermarks {
                slot: r.get::<Option<i64>, _>(0).map(|v| v as u64),
                source_epoch: r.get::<Option<i64>, _>(1).map(|v| v as u64),
                target_epoch: r.get::<Option<i64>, _>(2).map(|v| v as u64),
            },
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
        let db = |v: Option<u64>| v.map(|x| x as i64);
        sqlx::query(
            "INSERT INTO low_watermarks (validator_id, slot, source_epoch, target_epoch) VALUES ($1, $2, $3, $4)
             ON CONFLICT (validator_id) DO UPDATE SET slot = $2, source_epoch = $3, target_epoch = $4",
        )
        .bind(validator)
        .bind(db(w.slot))
        .bind(db(w.source_epoch))
        .bind(db(w.target_epoch))
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
                     ON CONFLICT (validator_id, target_epoch) DO UPDATE SET
                       signing_root = CASE WHEN signed_attestations.signing_root IS NOT DISTINCT FROM excluded.signing_root
                                            AND signed_attestations.source_epoch = excluded.source_epoch
                                      THEN signed_attestations.signing_root ELSE NULL END,
                       source_epoch = LEAST(signed_attestations.source_epoch, excluded.source_epoch)",
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
            .map(|r| SignedBlock {
                slot: r.get::<i64, _>(0) as u64,
                signing_root: root_of(r.get(1)),
            })
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

    /// One attempt of check-and-record. The outer `Result` is a database error (rolled back),
    /// the inner one the rules' answer.
    async fn attempt(
        &self,
        public_key: &[u8; 48],
        genesis_validators_root: [u8; 32],
        message: ProtectedMessage,
        signing_root: [u8; 32],
    ) -> Result<Result<Decision, ProtectionError>, sqlx::Error> {
        let validator = self.validator_id(public_key).await?;
        let mut tx = self.pool.begin().await?;
        if let Err(e) = self.bind_genesis(&mut tx, genesis_validators_root).await? {
            return Ok(Err(e));
        }
        Self::lock_validators(&mut tx, &[validator]).await?;
        let watermarks = Self::watermarks(&mut tx, validator).await?;
        let high = Self::high(&mut tx).await?;
        let decision = match message {
            ProtectedMessage::Block { slot } => {
                let db_slot = match to_db(slot, "slot") {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(e)),
                };
                if let Err(v) = rules::check_block_high_watermark(high.as_ref(), slot) {
                    return Ok(Err(v.into()));
                }
                let existing = sqlx::query(
                    "SELECT signing_root FROM signed_blocks WHERE validator_id = $1 AND slot = $2",
                )
                .bind(validator)
                .bind(db_slot)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| SignedBlock {
                    slot,
                    signing_root: root_of(r.get(0)),
                });
                match rules::check_block(existing.as_ref(), &watermarks, slot, signing_root) {
                    Err(v) => return Ok(Err(v.into())),
                    Ok(Decision::SignAndRecord) => {
                        sqlx::query("INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES ($1, $2, $3)")
                            .bind(validator)
                            .bind(db_slot)
                            .bind(signing_root.as_slice())
                            .execute(&mut *tx)
                            .await?;
                        Decision::SignAndRecord
                    }
                    Ok(d) => d,
                }
            }
            ProtectedMessage::Attestation { source, target } => {
                let (s, t) = match (to_db(source, "source epoch"), to_db(target, "target epoch")) {
                    (Ok(s), Ok(t)) => (s, t),
                    (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
                };
                if let Err(v) =
                    rules::check_attestation_high_watermark(high.as_ref(), source, target)
                {
                    return Ok(Err(v.into()));
                }
                let candidates: Vec<SignedAttestation> = sqlx::query(
                    "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations
                     WHERE validator_id = $1 AND (target_epoch = $3
                        OR (source_epoch > $2 AND target_epoch < $3)
                        OR (source_epoch < $2 AND target_epoch > $3))
                     ORDER BY (target_epoch = $3) DESC LIMIT 8",
                )
                .bind(validator)
                .bind(s)
                .bind(t)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(attestation_row)
                .collect();
                match rules::check_attestation(
                    &candidates,
                    &watermarks,
                    source,
                    target,
                    signing_root,
                ) {
                    Err(v) => return Ok(Err(v.into())),
                    Ok(Decision::SignAndRecord) => {
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
                        Decision::SignAndRecord
                    }
                    Ok(d) => d,
                }
            }
        };
        tx.commit().await?;
        let _ = self.bound_root.set(genesis_validators_root);
        Ok(Ok(decision))
    }
}

fn check_root(bound: &[u8; 32], requested: &[u8; 32]) -> Result<(), ProtectionError> {
    if bound == requested {
        Ok(())
    } else {
        Err(ProtectionError::GenesisMismatch {
            requested: format!("0x{}", hex::encode(requested)),
            bound: format!("0x{}", hex::encode(bound)),
        })
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

    async fn check_and_record(
        &self,
        public_key: &[u8; 48],
        genesis_validators_root: [u8; 32],
        message: ProtectedMessage,
        signing_root: [u8; 32],
    ) -> Result<Decision, ProtectionError> {
        if let Some(bound) = self.bound_root.get() {
            check_root(bound, &genesis_validators_root)?;
        }
        let mut tries = 0;
        loop {
            match self
                .attempt(public_key, genesis_validators_root, message, signing_root)
                .await
            {
                Ok(answer) => return answer,
                Err(e) => {
                    tries += 1;
                    if tries < MAX_RETRIES && retryable(&e) {
                        continue;
                    }
                    return Err(e.into());
                }
            }
        }
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
        .map(|r| SignedBlock {
            slot: r.get::<i64, _>(0) as u64,
            signing_root: root_of(r.get(1)),
        })
        .collect();
        let attestations = sqlx::query(
            "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations WHERE validator_id = $1 ORDER BY target_epoch",
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
        let mut tries = 0;
        loop {
            match self.import_attempt(prepared).await {
                Ok(answer) => return answer,
                Err(e) if tries + 1 < MAX_RETRIES && retryable(&e) => tries += 1,
                Err(e) => return Err(e.into()),
            }
        }
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

    async fn ping(&self) -> Result<(), ProtectionError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
