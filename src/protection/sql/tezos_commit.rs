//! Tezos group commit, the same on both stores: concurrent check-and-record requests wait in
//! one queue, and a drain task commits everything queued (up to [`MAX_TEZOS_BATCH`]
//! requests) in one transaction, so they share one WAL flush. SQLite has one drain at a time;
//! PostgreSQL up to [`TezosGroupCommit::new`]'s `max_drains`, on their own connections, so
//! one batch's round trips overlap the next. Two batches in flight rarely hold requests of
//! the same mark from this process (the service hands a mark's next request over only after
//! the previous one's record returned, `protection::order`; only a caller that went away
//! while its request was queued leaves one behind); when they do, the mark's advisory lock
//! serialises them, so the later is decided against what the earlier committed. A batch
//! waits at most `lock_timeout` (2 s) for a mark locked elsewhere, then answers 503. The store
//! gives the transaction ([`TezosBatchFn`]): SQLite runs it under its writer lock with
//! `BEGIN IMMEDIATE`; PostgreSQL takes the advisory locks of every mark of the batch in
//! ascending key order and retries serialisation failures. Inside, requests are decided in
//! the order they joined the queue ([`Sql::tezos_record_in`](super::Sql::tezos_record_in)),
//! so a request sees what the earlier ones of its batch recorded.
//!
//! No request is answered before its transaction committed; a database error answers every
//! request of the transaction as unavailable and writes nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::oneshot;

use crate::protection::ProtectionError;
use crate::protection::audit::AuditEntry;
use crate::protection::watermark::{TezosWatermarkRequest, WatermarkDecision};

/// Most Tezos requests one shared transaction holds.
pub const MAX_TEZOS_BATCH: usize = 256;

/// One request's answer: the decision, or the refusal ([`ProtectionError::Violation`]) or a
/// corrupt mark.
pub(crate) type TezosAnswer = Result<WatermarkDecision, ProtectionError>;

/// One request of a batch: what is checked and recorded, and its audit entry.
pub(crate) type TezosRecord = (TezosWatermarkRequest, AuditEntry);

/// A store's shared transaction over a batch: decides and records every request in order
/// and commits, returning one answer per request; `Err` is a database error after which
/// nothing of the batch is written.
pub(crate) type TezosBatchFn = Arc<
    dyn Fn(
            Arc<[TezosRecord]>,
        ) -> Pin<Box<dyn Future<Output = Result<Vec<TezosAnswer>, sqlx::Error>> + Send>>
        + Send
        + Sync,
>;

/// The queue and drain of one store's Tezos group commit.
pub(crate) struct TezosGroupCommit {
    queue: Arc<Mutex<Queue>>,
    batch: TezosBatchFn,
    /// Held while a batch is taken and committed (SQLite's writer lock), so requests that
    /// come while another writer holds it join the next batch.
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// The `stage` label of the commit's duration in `palisade_request_stage_duration_seconds`.
    stage: &'static str,
    /// Most drain tasks (transactions) in flight at once.
    max_drains: usize,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<(TezosRecord, oneshot::Sender<TezosAnswer>)>,
    /// Drain tasks running; a request that finds fewer than `max_drains` starts one.
    draining: usize,
}

impl TezosGroupCommit {
    /// A group commit whose transactions are `batch`, run under `gate` when given, at most
    /// `max_drains` (at least 1) at once.
    pub(crate) fn new(
        batch: TezosBatchFn,
        gate: Option<Arc<tokio::sync::Mutex<()>>>,
        stage: &'static str,
        max_drains: usize,
    ) -> Self {
        Self {
            queue: Arc::default(),
            batch,
            gate,
            stage,
            max_drains: max_drains.max(1),
        }
    }

    /// Queues one request and waits for the answer of the transaction it joined.
    ///
    /// The transaction runs in its own task, not in this future: a caller that goes away
    /// does not roll back the other requests of its batch.
    ///
    /// # Errors
    /// [`ProtectionError::Unavailable`] when the transaction failed (nothing of it was
    /// written); otherwise the request's answer.
    pub(crate) async fn record(
        &self,
        request: &TezosWatermarkRequest,
        audit: &AuditEntry,
    ) -> TezosAnswer {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.jobs.push(((request.clone(), audit.clone()), reply));
            let start = queue.draining < self.max_drains;
            if start {
                queue.draining += 1;
            }
            start
        };
        if start {
            // The guard is made here and moved into the task, so the count goes down even if
            // the task is dropped before its first poll (a runtime shutting down).
            let guard = DrainGuard {
                queue: self.queue.clone(),
                armed: true,
            };
            tokio::spawn(drain(
                guard,
                self.batch.clone(),
                self.gate.clone(),
                self.stage,
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(ProtectionError::unavailable(
                "the Tezos group commit stopped before answering",
            ))
        })
    }
}

/// Counts a drain task out if it ends abnormally (it unwound, or its runtime shut down); when
/// it was the last, the requests still queued are answered unavailable (their reply senders
/// drop). The next request starts a new task.
struct DrainGuard {
    queue: Arc<Mutex<Queue>>,
    armed: bool,
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        if self.armed {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.draining = queue.draining.saturating_sub(1);
            if queue.draining == 0 {
                queue.jobs.clear();
            }
        }
    }
}

/// The drain task: while requests are queued, takes the gate, takes up to
/// [`MAX_TEZOS_BATCH`] of them, runs the store's transaction, then answers each. Ends when
/// the queue is empty.
async fn drain(
    mut guard: DrainGuard,
    batch: TezosBatchFn,
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
    stage: &'static str,
) {
    let queue = guard.queue.clone();
    loop {
        let _gate = match &gate {
            Some(g) => Some(g.lock().await),
            None => None,
        };
        let (records, replies): (Vec<TezosRecord>, Vec<oneshot::Sender<TezosAnswer>>) = {
            let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
            if q.jobs.is_empty() {
                // Under the queue's lock: a request that comes after this sees one drain
                // fewer and starts the next task if none is left.
                q.draining -= 1;
                guard.armed = false;
                return;
            }
            let n = q.jobs.len().min(MAX_TEZOS_BATCH);
            q.jobs.drain(..n).unzip()
        };
        let started = Instant::now();
        match batch(records.into()).await {
            Ok(answers) if answers.len() == replies.len() => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Ok(_) => {
                for reply in replies {
                    let _ = reply.send(Err(ProtectionError::unavailable(
                        "the Tezos group commit answered a different number of requests",
                    )));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(ProtectionError::unavailable_from(
                        e.to_string(),
                        e.clone(),
                    )));
                }
            }
        }
        crate::metrics::METRICS.stage("tezos", stage, started.elapsed());
    }
}
