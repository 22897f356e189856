//! Slashing protection: the pure rules ([`rules`]) and the store that persists what was
//! signed, [`ProtectionStore`], made of the role traits of [`roles`]. A store checks and
//! records a message in ONE transaction and returns only after the commit, so a signature is
//! never released before its record is durable.

pub mod audit;
pub mod interchange;
pub mod order;
pub mod outcome;
pub mod postgres;
pub mod release;
pub mod roles;
pub mod rules;
pub(crate) mod sql;
pub mod sqlite;
pub mod watermark;

pub use crate::chain::eth2::request::ProtectedMessage;
pub use roles::{AuditLog, Eth2Protection, ProtectionAdmin, ProtectionStore, TezosWatermarks};
pub use rules::{
    Decision, HighWatermark, LowWatermarks, SignedAttestation, SignedBlock, Violation,
};

use interchange::{Interchange, InterchangeError};
use watermark::WatermarkViolation;

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
    #[error("slashing protection database unavailable: {detail}")]
    Unavailable {
        /// What failed: the database error's text, or what the store found wrong (never a
        /// password or key material).
        detail: String,
        /// The error that caused it, when there is one: the `sqlx::Error` (an
        /// `Arc<sqlx::Error>` when one failure answers a whole PostgreSQL group-commit
        /// batch), the migration error or the file-system error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl ProtectionError {
    /// [`ProtectionError::Unavailable`] without an underlying error: the store itself found
    /// the database unusable (a corrupt row, a stopped worker, an unsupported URL).
    pub fn unavailable(detail: impl Into<String>) -> Self {
        ProtectionError::Unavailable {
            detail: detail.into(),
            source: None,
        }
    }

    /// [`ProtectionError::Unavailable`] caused by `source`, described by `detail`.
    pub fn unavailable_from(
        detail: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ProtectionError::Unavailable {
            detail: detail.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// A database error is [`ProtectionError::Unavailable`]: its text as today, the error kept
/// as the source.
impl From<sqlx::Error> for ProtectionError {
    fn from(e: sqlx::Error) -> Self {
        ProtectionError::unavailable_from(e.to_string(), e)
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
    store: &dyn Eth2Protection,
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
        None => Err(ProtectionError::unavailable(format!(
            "unsupported slashing protection database URL scheme in `{}` (sqlite:// or postgres:// expected)",
            url.split(':').next().unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_error_keeps_its_text_and_is_the_source() {
        let e = ProtectionError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(
            e.to_string(),
            format!(
                "slashing protection database unavailable: {}",
                sqlx::Error::PoolTimedOut
            )
        );
        let source = std::error::Error::source(&e).expect("the sqlx error is the source");
        assert!(matches!(
            source.downcast_ref::<sqlx::Error>(),
            Some(sqlx::Error::PoolTimedOut)
        ));
        assert!(std::error::Error::source(&ProtectionError::unavailable("down")).is_none());
    }
}
