//! How PostgreSQL writers are serialised across instances: transaction-scoped advisory locks
//! (`pg_advisory_xact_lock`, released at commit or rollback) on validator ids and on Tezos
//! marks, and the retry of transactions that failed with a serialisation failure or deadlock.

use sqlx::PgConnection;

use crate::protection::watermark::TezosWatermarkRequest;

/// Retries of a transaction that failed with a serialisation failure or deadlock.
pub(super) const MAX_RETRIES: usize = 5;

/// Class of the two-key advisory locks on Tezos high watermarks (`pg_advisory_xact_lock(int4,
/// int4)`; that key space does not overlap the one-key space eth2 validators are locked in).
const TEZOS_LOCK_CLASS: i32 = 0x747a;

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

/// Takes the advisory locks of the marks of `requests` in ascending key order (the order
/// every batch uses, so that batches of different instances cannot deadlock) until the
/// transaction ends. A mark that appears twice is locked once.
pub(super) async fn lock_tezos_marks<'a>(
    conn: &mut PgConnection,
    requests: impl Iterator<Item = &'a TezosWatermarkRequest>,
) -> Result<(), sqlx::Error> {
    let mut keys: Vec<i32> = requests.map(tezos_lock_key).collect();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k ORDER BY k")
        .bind(TEZOS_LOCK_CLASS)
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Takes the advisory locks of `ids` in ascending order (the order every writer uses, so
/// that writers of different instances cannot deadlock) until the transaction ends.
pub(super) async fn lock_validators(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock(id) FROM unnest($1::bigint[]) AS id ORDER BY id")
        .bind(&sorted)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether a database error is worth retrying (SQLSTATE 40001 serialization_failure, 40P01 deadlock).
pub(super) fn retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40001") | Some("40P01")),
        _ => false,
    }
}

/// Runs `attempt` (one whole transaction) until it succeeds, fails with an error that is not
/// [`retryable`], or has failed [`MAX_RETRIES`] times; returns its last result.
///
/// # Errors
/// The last attempt's database error.
pub(super) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if tries + 1 < MAX_RETRIES && retryable(&e) => tries += 1,
            other => return other,
        }
    }
}
