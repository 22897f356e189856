//! Slashing protection: the pure rules ([`rules`]) and the [`ProtectionStore`] trait that
//! persists what was signed. A store checks and records a message in ONE transaction and
//! returns only after the commit, so a signature is never released before its record is
//! durable.

pub mod rules;
pub mod sqlite;

use async_trait::async_trait;

pub use crate::chain::eth2::request::ProtectedMessage;
pub use rules::{Decision, LowWatermarks, SignedAttestation, SignedBlock, Violation};

/// Why a store refused or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProtectionError {
    /// The message is slashable or below a low watermark (HTTP 412).
    #[error("slashing protection refused: {0}")]
    Slashable(#[from] Violation),
    /// The request's genesis validators root is not the one the database is bound to (HTTP 412).
    #[error("genesis validators root {requested} does not match the database's {bound}")]
    GenesisMismatch { requested: String, bound: String },
    /// A slot or epoch beyond what the database can order (2^63 − 1) (HTTP 400).
    #[error("{0} is too large to record (at most 2^63 - 1)")]
    OutOfRange(&'static str),
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

/// The slashing-protection record. Implementations: [`sqlite::SqliteStore`].
#[async_trait]
pub trait ProtectionStore: Send + Sync {
    /// Makes sure every 48-byte public key has a validator row (idempotent, one statement per key,
    /// in key order so concurrent starts cannot deadlock).
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn register_validators(&self, public_keys: &[[u8; 48]]) -> Result<(), ProtectionError>;

    /// Checks `message` for the validator against its full history and low watermarks and,
    /// if it is new and safe, records it; commits before returning. Binds the database to
    /// `genesis_validators_root` the first time.
    ///
    /// # Errors
    /// [`ProtectionError::Slashable`], [`ProtectionError::GenesisMismatch`],
    /// [`ProtectionError::OutOfRange`], [`ProtectionError::Unavailable`]; on any error nothing
    /// is written.
    async fn check_and_record(
        &self,
        public_key: &[u8; 48],
        genesis_validators_root: [u8; 32],
        message: ProtectedMessage,
        signing_root: [u8; 32],
    ) -> Result<Decision, ProtectionError>;

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

    /// A cheap round trip to the database, for health checks.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`].
    async fn ping(&self) -> Result<(), ProtectionError>;
}

/// Converts a slot or epoch to the database's signed 64-bit integer.
///
/// # Errors
/// [`ProtectionError::OutOfRange`] above 2^63 − 1.
pub fn to_db(value: u64, what: &'static str) -> Result<i64, ProtectionError> {
    i64::try_from(value).map_err(|_| ProtectionError::OutOfRange(what))
}

/// Opens the store named by a database URL: `sqlite://PATH` (created if missing).
///
/// # Errors
/// [`ProtectionError::Unavailable`] if the database cannot be opened or migrated, or the URL
/// scheme is not supported.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn ProtectionStore>, ProtectionError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(sqlite::SqliteStore::open(url).await?))
    } else {
        Err(ProtectionError::Unavailable(format!(
            "unsupported slashing protection database URL scheme in `{}` (sqlite:// expected)",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
