//! Slashing protection: the pure rules ([`rules`]) and the [`ProtectionStore`] trait that
//! persists what was signed. A store checks and records a message in ONE transaction and
//! returns only after the commit, so a signature is never released before its record is
//! durable.

pub mod audit;
pub mod interchange;
pub mod outcome;
pub mod postgres;
pub mod release;
pub mod rules;
pub(crate) mod sql;
pub mod sqlite;
pub mod watermark;

use async_trait::async_trait;

pub use crate::chain::eth2::request::ProtectedMessage;
pub use rules::{
    Decision, HighWatermark, LowWatermarks, SignedAttestation, SignedBlock, Violation,
};

use audit::{AuditEntry, AuditRecord, KeyActivity};
use interchange::{Interchange, InterchangeError, PreparedImport};
use watermark::{TezosMark, TezosWatermarkRequest, WatermarkDecision, WatermarkViolation};

use crate::chain::tezos::payload::ConsensusKind;

/// Why a store refused or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProtectionError {
    /// The message is slashable or below a low watermark (HTTP 412).
    #[error("slashing protection refused: {0}")]
    Slashable(#[from] Violation),
    /// A Tezos consensus request at or below its high watermark with other bytes (HTTP 409).
    #[error("high watermark refused: {0}")]
    Watermark(#[from] WatermarkViolation),
    /// The request's genesis validators root is not the one the database is bound to (HTTP 412).
    #[error("genesis validators root {requested} does not match the database's {bound}")]
    GenesisMismatch {
        /// The request's genesis validators root, `0x`-hex (32 bytes).
        requested: String,
        /// The root the database is bound to (by its first import or recorded message),
        /// `0x`-hex (32 bytes).
        bound: String,
    },
    /// The validator is disabled in the database (its key was deleted through the Keymanager
    /// API here or on another instance sharing the database) (HTTP 412).
    #[error("validator {0} is disabled in the slashing protection database")]
    Disabled(String),
    /// A slot or epoch beyond what the database can order (2^63 − 1) (HTTP 400).
    #[error("{0} is too large to record (at most 2^63 - 1)")]
    OutOfRange(&'static str),
    /// An interchange file that cannot be imported; nothing was written.
    #[error(transparent)]
    Import(#[from] InterchangeError),
    /// The database cannot be reached or the transaction failed (HTTP 503). Nothing was signed.
    #[error("slashing protection database unavailable: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for ProtectionError {
    fn from(e: sqlx::Error) -> Self {
        ProtectionError::Unavailable(e.to_string())
    }
}

/// Everything recorded for one validator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidatorHistory {
    /// Signed blocks by slot, ascending.
    pub blocks: Vec<SignedBlock>,
    /// Signed attestations by target epoch, ascending.
    pub attestations: Vec<SignedAttestation>,
    /// Low watermarks from imports and pruning.
    pub watermarks: LowWatermarks,
}

/// The slashing-protection record. Implementations: [`sqlite::SqliteStore`],
/// [`postgres::PostgresStore`]; [`open`] picks one by URL scheme.
#[async_trait]
pub trait ProtectionStore: Send + Sync {
    /// Makes sure every 48-byte public key has a validator row (idempotent, one statement per key,
    /// in key order so concurrent starts cannot deadlock).
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn register_validators(&self, public_keys: &[[u8; 48]]) -> Result<(), ProtectionError>;

    /// Checks `message` for the validator against its full history and low watermarks and,
    /// if it is new and safe, records it together with `audit` (as `signed`) in one
    /// transaction; commits before returning. Binds the database to `genesis_validators_root`
    /// the first time. A refusal is recorded as a `refused` audit entry with its reason, in
    /// its own transaction after the protection transaction rolled back.
    ///
    /// # Errors
    /// [`ProtectionError::Slashable`], [`ProtectionError::GenesisMismatch`],
    /// [`ProtectionError::OutOfRange`], [`ProtectionError::Unavailable`]; on any error the
    /// protection record is unchanged.
    async fn check_record_and_audit(
        &self,
        public_key: &[u8; 48],
        genesis_validators_root: [u8; 32],
        message: ProtectedMessage,
        signing_root: [u8; 32],
        audit: AuditEntry,
    ) -> Result<Decision, ProtectionError>;

    /// [`ProtectionStore::check_record_and_audit`] with an audit entry of kind `BLOCK` or
    /// `ATTESTATION` and no caller.
    ///
    /// # Errors
    /// As [`ProtectionStore::check_record_and_audit`].
    async fn check_and_record(
        &self,
        public_key: &[u8; 48],
        genesis_validators_root: [u8; 32],
        message: ProtectedMessage,
        signing_root: [u8; 32],
    ) -> Result<Decision, ProtectionError> {
        let kind = match message {
            ProtectedMessage::Block { .. } => "BLOCK",
            ProtectedMessage::Attestation { .. } => "ATTESTATION",
        };
        let audit = audit::for_protected(public_key, kind, &message, signing_root);
        self.check_record_and_audit(
            public_key,
            genesis_validators_root,
            message,
            signing_root,
            audit,
        )
        .await
    }

    /// The full record of one validator (empty if unknown).
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn history(&self, public_key: &[u8; 48]) -> Result<ValidatorHistory, ProtectionError>;

    /// The genesis validators root the database is bound to, if any.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn genesis_validators_root(&self) -> Result<Option<[u8; 32]>, ProtectionError>;

    /// Imports an EIP-3076 interchange: merges the records (every row kept, see
    /// `docs/design.md`), raises each validator's import watermarks to the file's minima, binds
    /// the database to the file's genesis validators root if unbound. Written in transactions
    /// of at most [`interchange::IMPORT_BATCH_RECORDS`] records
    /// ([`PreparedImport::batches`]), so signing waits for one batch at most.
    ///
    /// # Errors
    /// [`ProtectionError::Import`] (genesis mismatch: nothing is written),
    /// [`ProtectionError::Unavailable`] (the batches committed before the error stay: each
    /// only makes the record stricter; importing the file again completes it).
    async fn import(&self, prepared: &PreparedImport) -> Result<ImportSummary, ProtectionError>;

    /// Every validator public key in the database, sorted.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError>;

    /// The global high watermark, if set.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn high_watermark(&self) -> Result<Option<HighWatermark>, ProtectionError>;

    /// Sets (`Some`) or removes (`None`) the global high watermark.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn set_high_watermark(&self, high: Option<HighWatermark>) -> Result<(), ProtectionError>;

    /// Deletes, per validator, blocks more than `epochs_to_keep` epochs (of `slots_per_epoch`
    /// slots) below its newest block and attestations more than `epochs_to_keep` epochs below
    /// its newest target, after raising its low watermarks so that no rule becomes weaker.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`]; on error nothing is deleted.
    async fn prune(
        &self,
        epochs_to_keep: u64,
        slots_per_epoch: u64,
    ) -> Result<PruneSummary, ProtectionError>;

    /// Checks a Tezos consensus request against the high watermark of its (chain id, pkh,
    /// kind) and, when it is strictly above, records the new mark with the request's payload
    /// hash and signature; the decision is recorded as `audit` (`signed`, or `refused` with
    /// the violation) in the same transaction, committed before returning. Serialised per
    /// mark across processes.
    ///
    /// # Errors
    /// [`ProtectionError::Watermark`] (the mark is unchanged), [`ProtectionError::Unavailable`]
    /// (nothing written).
    async fn tezos_check_record_and_audit(
        &self,
        request: &TezosWatermarkRequest,
        audit: AuditEntry,
    ) -> Result<WatermarkDecision, ProtectionError>;

    /// [`ProtectionStore::tezos_check_record_and_audit`] with an audit entry built from the
    /// request and no caller.
    ///
    /// # Errors
    /// As [`ProtectionStore::tezos_check_record_and_audit`].
    async fn tezos_check_and_record(
        &self,
        request: &TezosWatermarkRequest,
    ) -> Result<WatermarkDecision, ProtectionError> {
        let audit = AuditEntry::tezos(
            &request.pkh,
            request.kind.as_str(),
            Some(request.payload_hash),
        )
        .with_level_round(request.level, request.round);
        self.tezos_check_record_and_audit(request, audit).await
    }

    /// Appends one audit entry (and updates its key's totals) in its own transaction;
    /// commits before returning. For decisions without a protection record: eth2 messages
    /// other than blocks and attestations, Tezos non-consensus operations, policy refusals.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), ProtectionError>;

    /// Up to `limit` audit records with `since_ms <= time_ms < until_ms` (Unix milliseconds)
    /// and `id > after_id`, by ascending id (page with the last id returned).
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn audit_records(
        &self,
        since_ms: i64,
        until_ms: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ProtectionError>;

    /// Deletes audit records older than `before_ms` (Unix milliseconds), in chunks so that
    /// signing is not held up; returns how many were deleted. Per-key totals are kept.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`] (chunks deleted before the error stay deleted).
    async fn prune_audit(&self, before_ms: i64) -> Result<u64, ProtectionError>;

    /// Lifetime totals of every key that has an audit entry, by chain then key.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn key_activity(&self) -> Result<Vec<KeyActivity>, ProtectionError>;

    /// The high watermark of one (chain id, pkh, kind), if anything was signed.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn tezos_mark(
        &self,
        chain_id: [u8; 4],
        pkh: &str,
        kind: ConsensusKind,
    ) -> Result<Option<TezosMark>, ProtectionError>;

    /// Enables or disables validators (registering unknown ones). A disabled validator's
    /// blocks and attestations are refused with [`ProtectionError::Disabled`] by every instance
    /// sharing the database; its records stay and still protect it. Serialised with
    /// check-and-record per validator, so no record commits after a disable returns.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn set_enabled(
        &self,
        public_keys: &[[u8; 48]],
        enabled: bool,
    ) -> Result<(), ProtectionError>;

    /// The 48-byte public keys of the validators that are disabled, sorted.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn disabled_validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError>;

    /// A cheap round trip to the database, for health checks.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn ping(&self) -> Result<(), ProtectionError>;
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Distinct validators (48-byte BLS public keys) in the interchange, duplicates merged.
    pub validators: usize,
    /// Block records applied after merging duplicates, one per (validator, slot); records
    /// the store already had are counted too.
    pub blocks: usize,
    /// Attestation records applied after merging duplicates, one per (validator, target
    /// epoch, source epoch); records the store already had are counted too.
    pub attestations: usize,
}

/// What a pruning run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneSummary {
    /// Block records deleted, all validators together (their slots now lie at or below the
    /// low slot watermarks).
    pub blocks: u64,
    /// Attestation records deleted, all validators together (now covered by the low source
    /// and target watermarks).
    pub attestations: u64,
}

/// Exports the records of `pubkeys` (all validators when `None`) as an EIP-3076 interchange.
///
/// # Errors
/// [`ProtectionError::Unavailable`], or [`ProtectionError::Import`] when the database has no
/// genesis validators root yet (nothing was ever signed or imported).
pub async fn export(
    store: &dyn ProtectionStore,
    pubkeys: Option<&[[u8; 48]]>,
) -> Result<Interchange, ProtectionError> {
    let root = store.genesis_validators_root().await?.ok_or_else(|| {
        ProtectionError::Import(InterchangeError::Malformed(
            "the database has no genesis validators root yet: nothing to export".into(),
        ))
    })?;
    let keys = match pubkeys {
        Some(k) => k.to_vec(),
        None => store.validators().await?,
    };
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        out.push((k, store.history(&k).await?));
    }
    Ok(interchange::build(root, out))
}

/// Refuses a genesis validators root other than the one the database is bound to.
pub(crate) fn check_root(bound: &[u8; 32], requested: &[u8; 32]) -> Result<(), ProtectionError> {
    if bound == requested {
        Ok(())
    } else {
        Err(ProtectionError::GenesisMismatch {
            requested: format!("0x{}", hex::encode(requested)),
            bound: format!("0x{}", hex::encode(bound)),
        })
    }
}

/// Converts a slot or epoch to the database's signed 64-bit integer.
///
/// # Errors
/// [`ProtectionError::OutOfRange`] above 2^63 − 1.
pub fn to_db(value: u64, what: &'static str) -> Result<i64, ProtectionError> {
    i64::try_from(value).map_err(|_| ProtectionError::OutOfRange(what))
}

/// What a registered store's opener returns: the store, shared, once it is open.
pub type OpenedStore<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<std::sync::Arc<dyn ProtectionStore>, ProtectionError>,
            > + Send
            + 'a,
    >,
>;

/// Opens a store from its full database URL and a connection pool size (a store that has no
/// pool of that kind ignores the size).
pub type Opener = for<'a> fn(&'a str, u32) -> OpenedStore<'a>;

/// The stores [`open`] can open, by URL scheme (the URL's text before its first `:`). A new
/// store is one module and one line here.
const STORES: &[(&str, Opener)] = &[
    ("sqlite", open_sqlite),
    ("postgres", open_postgres),
    ("postgresql", open_postgres),
];

fn open_sqlite(url: &str, _pool_size: u32) -> OpenedStore<'_> {
    Box::pin(async move {
        let store: std::sync::Arc<dyn ProtectionStore> =
            std::sync::Arc::new(sqlite::SqliteStore::open(url).await?);
        Ok(store)
    })
}

fn open_postgres(url: &str, pool_size: u32) -> OpenedStore<'_> {
    Box::pin(async move {
        let store: std::sync::Arc<dyn ProtectionStore> =
            std::sync::Arc::new(postgres::PostgresStore::open(url, pool_size).await?);
        Ok(store)
    })
}

/// The URL schemes of the registered stores (`sqlite`, `postgres`, `postgresql`), in
/// registry order; tests use it to check that every store runs the protection suite.
pub fn store_schemes() -> impl Iterator<Item = &'static str> {
    STORES.iter().map(|(scheme, _)| *scheme)
}

/// Opens the store named by a database URL, picked by its scheme from the registered stores:
/// `sqlite://PATH` (created if missing) or `postgres://…` / `postgresql://…` (pool of
/// `pool_size` connections).
///
/// # Errors
/// [`ProtectionError::Unavailable`] if the database cannot be opened or migrated, or the URL
/// scheme is not supported.
pub async fn open(
    url: &str,
    pool_size: u32,
) -> Result<std::sync::Arc<dyn ProtectionStore>, ProtectionError> {
    let opener = url.split_once(':').and_then(|(scheme, _)| {
        STORES
            .iter()
            .find(|(registered, _)| *registered == scheme)
            .map(|(_, opener)| opener)
    });
    match opener {
        Some(opener) => opener(url, pool_size).await,
        None => Err(ProtectionError::Unavailable(format!(
            "unsupported slashing protection database URL scheme in `{}` (sqlite:// or postgres:// expected)",
            url.split(':').next().unwrap_or_default()
        ))),
    }
}
