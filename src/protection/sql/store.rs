//! One implementation of the role traits ([`Eth2Protection`](crate::protection::Eth2Protection),
//! [`TezosWatermarks`](crate::protection::TezosWatermarks),
//! [`AuditLog`](crate::protection::AuditLog),
//! [`ProtectionAdmin`](crate::protection::ProtectionAdmin)) for both SQL stores.
//!
//! A store implements [`SqlStore`]: its pool, and the operations whose transactions differ
//! (SQLite: the writer lock and `BEGIN IMMEDIATE`; PostgreSQL: advisory locks, retries,
//! group commit). `sql_store_roles!`, invoked here for both stores, implements the four roles
//! for it: the reads run the shared [`Sql`](super::Sql) flows on the pool, the shared loops
//! (audit pruning in chunks, import in batches) call the store's step, and the rest is the
//! store's operation.
//!
//! The roles are implemented by a macro, once per store, rather than by blanket impls over
//! `S: SqlStore`: generic code over the backend would have to restate every `sqlx` bound of
//! [`Sql`](super::Sql) (its `where` clauses are not implied), and the store's operations'
//! futures would have to be declared `Send`. Expanded for a concrete store, the bodies need
//! neither.

use crate::protection::audit::AuditEntry;
use crate::protection::interchange::PreparedImport;
use crate::protection::rules::{Decision, HighWatermark};
use crate::protection::watermark::{TezosWatermarkRequest, WatermarkDecision};
use crate::protection::{ImportSummary, ProtectedMessage, ProtectionError, PruneSummary};

use super::Keep;

/// One eth2 message to check and record with its audit entry, as
/// [`Eth2Protection::check_record_and_audit`](crate::protection::Eth2Protection::check_record_and_audit)
/// takes them.
#[derive(Debug, Clone)]
pub(crate) struct Eth2Record<'a> {
    /// The validator's 48-byte public key.
    pub(crate) public_key: &'a [u8; 48],
    /// The request's genesis validators root.
    pub(crate) genesis_validators_root: [u8; 32],
    /// The block or attestation.
    pub(crate) message: ProtectedMessage,
    /// The root that would be signed.
    pub(crate) signing_root: [u8; 32],
    /// The decision's audit entry (`signed`; `refused` with the reason on a refusal).
    pub(crate) audit: AuditEntry,
}

/// What a SQL store does its own way; everything else of the role traits is
/// [`sql_store_roles!`]. The methods are named apart from the roles' so that both traits can be
/// in scope.
pub(crate) trait SqlStore: Send + Sync {
    /// The `sqlx` backend ([`Sql`](super::Sql) is implemented for it).
    type Db: sqlx::Database;

    /// The pool the reads run on.
    fn pool(&self) -> &sqlx::Pool<Self::Db>;

    /// [`Eth2Protection::register_validators`](crate::protection::Eth2Protection::register_validators).
    async fn register(&self, public_keys: &[[u8; 48]]) -> Result<(), ProtectionError>;

    /// [`Eth2Protection::check_record_and_audit`](crate::protection::Eth2Protection::check_record_and_audit),
    /// refusals audited.
    async fn record_eth2(&self, record: Eth2Record<'_>) -> Result<Decision, ProtectionError>;

    /// [`TezosWatermarks::tezos_check_record_and_audit`](crate::protection::TezosWatermarks::tezos_check_record_and_audit).
    async fn record_tezos(
        &self,
        request: &TezosWatermarkRequest,
        audit: &AuditEntry,
    ) -> Result<WatermarkDecision, ProtectionError>;

    /// [`AuditLog::append_audit`](crate::protection::AuditLog::append_audit).
    async fn append_entry(&self, entry: &AuditEntry) -> Result<(), ProtectionError>;

    /// One chunk of [`AuditLog::prune_audit`](crate::protection::AuditLog::prune_audit):
    /// deletes up to [`super::AUDIT_PRUNE_CHUNK`] records older than `before_ms`.
    async fn prune_audit_step(&self, before_ms: i64) -> Result<u64, sqlx::Error>;

    /// One batch of [`ProtectionAdmin::import`](crate::protection::ProtectionAdmin::import),
    /// in its own transaction.
    async fn import_batch(&self, batch: &PreparedImport) -> Result<ImportSummary, ProtectionError>;

    /// Called between two import batches with how long the first took (not after the last):
    /// a pause that lets other writers in. None by default.
    async fn pause_after_batch(&self, took: std::time::Duration) {
        let _ = took;
    }

    /// [`ProtectionAdmin::prune`](crate::protection::ProtectionAdmin::prune), keeping `keep`.
    async fn prune_records(&self, keep: Keep) -> Result<PruneSummary, ProtectionError>;

    /// [`ProtectionAdmin::set_enabled`](crate::protection::ProtectionAdmin::set_enabled).
    async fn enable(&self, public_keys: &[[u8; 48]], enabled: bool) -> Result<(), ProtectionError>;

    /// [`ProtectionAdmin::set_high_watermark`](crate::protection::ProtectionAdmin::set_high_watermark).
    async fn write_high_watermark(
        &self,
        high: Option<HighWatermark>,
    ) -> Result<(), ProtectionError>;
}

/// Implements the four role traits for a [`SqlStore`]: the reads on its pool with the shared
/// [`Sql`](super::Sql) flows, the rest through its [`SqlStore`] operations. Invoked below, once
/// per store.
macro_rules! sql_store_roles {
    ($store:ty) => {
        // A block of its own, so that its imports stay out of the store's module.
        const _: () = {
            use $crate::chain::tezos::payload::ConsensusKind;
            use $crate::protection::audit::{AuditEntry, AuditRecord, KeyActivity};
            use $crate::protection::interchange::PreparedImport;
            use $crate::protection::roles::{
                AuditLog, Eth2Protection, ProtectionAdmin, TezosWatermarks,
            };
            use $crate::protection::sql::store::{Eth2Record, SqlStore};
            use $crate::protection::sql::{self, Keep, Sql};
            use $crate::protection::watermark::{
                TezosMark, TezosWatermarkRequest, WatermarkDecision,
            };
            use $crate::protection::{
                Decision, HighWatermark, ImportSummary, ProtectedMessage, ProtectionError,
                PruneSummary, ValidatorHistory,
            };

            /// The store's backend.
            type Db = <$store as SqlStore>::Db;

            #[::async_trait::async_trait]
            impl Eth2Protection for $store {
                async fn register_validators(
                    &self,
                    public_keys: &[[u8; 48]],
                ) -> Result<(), ProtectionError> {
                    self.register(public_keys).await
                }

                async fn check_record_and_audit(
                    &self,
                    public_key: &[u8; 48],
                    genesis_validators_root: [u8; 32],
                    message: ProtectedMessage,
                    signing_root: [u8; 32],
                    audit: AuditEntry,
                ) -> Result<Decision, ProtectionError> {
                    let record = Eth2Record {
                        public_key,
                        genesis_validators_root,
                        message,
                        signing_root,
                        audit,
                    };
                    self.record_eth2(record).await
                }

                async fn history(
                    &self,
                    public_key: &[u8; 48],
                ) -> Result<ValidatorHistory, ProtectionError> {
                    let mut conn = self.pool().acquire().await?;
                    Ok(Db::history(&mut conn, public_key).await?)
                }

                async fn genesis_validators_root(
                    &self,
                ) -> Result<Option<[u8; 32]>, ProtectionError> {
                    Ok(Db::genesis_root(self.pool()).await?)
                }

                async fn validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError> {
                    Ok(Db::validators(self.pool()).await?)
                }
            }

            #[::async_trait::async_trait]
            impl TezosWatermarks for $store {
                async fn tezos_check_record_and_audit(
                    &self,
                    request: &TezosWatermarkRequest,
                    audit: AuditEntry,
                ) -> Result<WatermarkDecision, ProtectionError> {
                    self.record_tezos(request, &audit).await
                }

                async fn tezos_mark(
                    &self,
                    chain_id: [u8; 4],
                    pkh: &str,
                    kind: ConsensusKind,
                ) -> Result<Option<TezosMark>, ProtectionError> {
                    Db::tezos_mark(self.pool(), chain_id, pkh, kind).await
                }
            }

            #[::async_trait::async_trait]
            impl AuditLog for $store {
                async fn append_audit(&self, entry: &AuditEntry) -> Result<(), ProtectionError> {
                    self.append_entry(entry).await
                }

                async fn audit_records(
                    &self,
                    since_ms: i64,
                    until_ms: i64,
                    after_id: i64,
                    limit: u32,
                ) -> Result<Vec<AuditRecord>, ProtectionError> {
                    Db::audit_records(self.pool(), since_ms, until_ms, after_id, limit).await
                }

                async fn prune_audit(&self, before_ms: i64) -> Result<u64, ProtectionError> {
                    sql::prune_audit(|| self.prune_audit_step(before_ms)).await
                }

                async fn key_activity(&self) -> Result<Vec<KeyActivity>, ProtectionError> {
                    Db::key_activity(self.pool()).await
                }
            }

            #[::async_trait::async_trait]
            impl ProtectionAdmin for $store {
                async fn import(
                    &self,
                    prepared: &PreparedImport,
                ) -> Result<ImportSummary, ProtectionError> {
                    // One transaction per bounded batch, so signing waits for one batch at most.
                    sql::import_in_batches(prepared, move |batch, last| async move {
                        let started = std::time::Instant::now();
                        let summary = self.import_batch(&batch).await?;
                        if !last {
                            self.pause_after_batch(started.elapsed()).await;
                        }
                        Ok(summary)
                    })
                    .await
                }

                async fn prune(
                    &self,
                    epochs_to_keep: u64,
                    slots_per_epoch: u64,
                ) -> Result<PruneSummary, ProtectionError> {
                    self.prune_records(Keep::new(epochs_to_keep, slots_per_epoch))
                        .await
                }

                async fn set_enabled(
                    &self,
                    public_keys: &[[u8; 48]],
                    enabled: bool,
                ) -> Result<(), ProtectionError> {
                    self.enable(public_keys, enabled).await
                }

                async fn disabled_validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError> {
                    Ok(Db::disabled_validators(self.pool()).await?)
                }

                async fn high_watermark(&self) -> Result<Option<HighWatermark>, ProtectionError> {
                    Ok(Db::high_watermark(self.pool()).await?)
                }

                async fn set_high_watermark(
                    &self,
                    high: Option<HighWatermark>,
                ) -> Result<(), ProtectionError> {
                    self.write_high_watermark(high).await
                }

                async fn ping(&self) -> Result<(), ProtectionError> {
                    Ok(Db::ping(self.pool()).await?)
                }
            }
        };
    };
}

sql_store_roles!(crate::protection::sqlite::SqliteStore);
sql_store_roles!(crate::protection::postgres::PostgresStore);
