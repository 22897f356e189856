//! Group commit: concurrent check-and-record jobs (for any validators) are decided and
//! recorded in one transaction. The transaction first takes the advisory locks of all its
//! validators in ascending id order (so batches of different instances cannot deadlock),
//! then reads every candidate record with set-based queries, applies the pure rules in
//! arrival order (jobs for the same validator see each other's records), inserts the
//! accepted ones and commits; only then is any job answered. A database error fails the
//! whole batch (every job gets 503); serialisation failures and deadlocks are retried.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::{mpsc, oneshot};

use super::locks::{lock_validators, retrying};
use crate::protection::audit::{self, AuditEntry};
use crate::protection::rules::{self, Decision, LowWatermarks, SignedAttestation, SignedBlock};
use crate::protection::sql::{Sql, rows};
use crate::protection::{ProtectedMessage, ProtectionError, check_root};

/// Largest number of check-and-record jobs committed in one transaction.
const MAX_BATCH: usize = 512;

/// A `low_watermarks` row with its validator: `(validator_id, slot, source_epoch,
/// target_epoch)`.
type ValidatorLowRow = (i64, Option<i64>, Option<i64>, Option<i64>);

/// One check-and-record request waiting for a group commit.
pub(super) struct Job {
    pub(super) validator: i64,
    pub(super) genesis_validators_root: [u8; 32],
    pub(super) message: ProtectedMessage,
    pub(super) signing_root: [u8; 32],
    /// The decision's audit entry (written as `signed` or `refused` in the batch).
    pub(super) audit: AuditEntry,
    pub(super) reply: oneshot::Sender<Result<Decision, ProtectionError>>,
}

/// A group-commit worker: takes the jobs waiting in `jobs` (at most [`MAX_BATCH`]), decides
/// and records them in one transaction, answers them, and again, until the queue closes.
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
    let answers = retrying(|| decide_and_record(pool, bound_root, &batch))
        .await
        .unwrap_or_else(|e| {
            // One database error answers every job of the batch: each keeps it as its source.
            let msg = e.to_string();
            let e = Arc::new(e);
            batch
                .iter()
                .map(|_| Err(ProtectionError::unavailable_from(msg.clone(), e.clone())))
                .collect()
        });
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
    Postgres::genesis_root(&mut *conn).await
}

/// Decides every job of `batch` and records the accepted ones with every decision's audit
/// entry, in one transaction. The outer `Err` is a database error (nothing committed; the
/// caller retries the retryable ones); otherwise one answer per job, in order.
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
    lock_validators(&mut tx, &ids).await?;
    // Validators disabled (under the locks just taken) are refused.
    let disabled: HashSet<i64> =
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
    let high = Postgres::high_watermark(&mut *tx).await?;

    let mut watermarks: HashMap<i64, LowWatermarks> = HashMap::new();
    let low: Vec<ValidatorLowRow> = sqlx::query_as(
        "SELECT validator_id, slot, source_epoch, target_epoch FROM low_watermarks WHERE validator_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    for (id, slot, source, target) in low {
        watermarks.insert(id, rows::low_of(Some((slot, source, target))));
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
        let found: Vec<(i32, i64, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT q.i, b.slot, b.signing_root FROM unnest($1::int4[], $2::int8[], $3::int8[]) AS q(i, vid, slot)
             JOIN signed_blocks b ON b.validator_id = q.vid AND b.slot = q.slot",
        )
        .bind(&bi)
        .bind(&bv)
        .bind(&bs)
        .fetch_all(&mut *tx)
        .await?;
        for (i, slot, root) in found {
            block_found.insert(i as usize, rows::block_of((slot, root)));
        }
    }
    let mut att_found: HashMap<usize, Vec<SignedAttestation>> = HashMap::new();
    if !ai.is_empty() {
        // Same target, surrounded-by (later target, earlier source) and surrounding
        // (earlier target, later source), each an index range scan; any surround row is a
        // violation by itself, so the LIMITs cannot hide a conflict.
        let found: Vec<(i32, i64, i64, Option<Vec<u8>>)> = sqlx::query_as(
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
        .await?;
        for (i, source, target, root) in found {
            att_found
                .entry(i as usize)
                .or_default()
                .push(rows::attestation_of((source, target, root)));
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
                            new_atts
                                .entry(job.validator)
                                .or_default()
                                .push(SignedAttestation {
                                    source_epoch: source,
                                    target_epoch: target,
                                    signing_root: Some(job.signing_root),
                                });
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
        let now_bound = Postgres::bind_genesis(&mut tx, bound).await?;
        if now_bound != bound {
            // Another instance bound another root first: nothing of this batch commits,
            // and every job (all have `bound` as their root) is refused as a mismatch.
            let _ = bound_root.set(now_bound);
            return Ok(batch
                .iter()
                .map(|job| {
                    Err(check_root(&now_bound, &job.genesis_validators_root)
                        .err()
                        .unwrap_or_else(|| ProtectionError::unavailable("genesis binding raced")))
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
    Postgres::insert_audit(&mut tx, &entries).await?;
    tx.commit().await?;
    if bound_before.is_some() || !new_blocks.is_empty() || !new_atts.is_empty() {
        let _ = bound_root.set(bound);
    }
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(ProtectionError::unavailable("job not decided"))))
        .collect())
}
