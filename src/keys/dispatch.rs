//! The one dispatcher that runs key backends' calls for both chains, by their
//! [`Execution`] hint, and the two thread pools it and the key loaders use.
//!
//! - The signing pool (rayon's global pool, one thread per core) runs in-memory signatures,
//!   so a burst of requests does not start one OS thread per request.
//! - The key-decryption pool ([`kdf_pool`], half the cores) runs key loads and EIP-2335
//!   KDFs, never the signing pool: a reload decrypting many scrypt keystores does not make
//!   signatures queue behind it.
//! - Blocking backends (PKCS#11) run on the runtime's blocking pool, network backends on the
//!   runtime itself; both under the backend's timeout, with the `palisade_hsm_*` metrics.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Instant;

use super::signer::{BackendError, Execution};
use crate::metrics::METRICS;

/// Why a dispatched backend call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The backend answered with a failure.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The backend did not answer within its timeout (milliseconds).
    #[error("signing backend did not answer within {0} ms")]
    Timeout(u128),
    /// The pool dropped the job (a panic in the backend, or a pool shutting down).
    #[error("signing pool dropped the job")]
    Dropped,
}

/// Runs one backend call where its [`Execution`] says: `call` builds the backend's future
/// (owning what it needs), which is driven on the signing pool ([`Execution::CpuPool`]), on a
/// blocking thread ([`Execution::Blocking`]) or on the runtime ([`Execution::Async`]), the last
/// two under their timeout. `operation` labels the `palisade_hsm_*` metrics of the last two
/// (`sign`; a timeout counts as `<operation>_timeout`).
///
/// # Errors
/// [`DispatchError`]: the backend's error, a timeout, a dropped job.
pub async fn run<T, F, Fut>(
    execution: Execution,
    operation: &'static str,
    call: F,
) -> Result<T, DispatchError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, BackendError>> + Send + 'static,
{
    let limit = match execution {
        Execution::CpuPool => {
            return on_pool(move || futures_executor::block_on(call()))
                .await
                .ok_or(DispatchError::Dropped)?
                .map_err(DispatchError::Backend);
        }
        Execution::Blocking { timeout } | Execution::Async { timeout } => timeout,
    };
    let started = Instant::now();
    let outcome = match execution {
        Execution::Async { .. } => tokio::time::timeout(limit, call()).await.map(Some),
        _ => tokio::time::timeout(
            limit,
            tokio::task::spawn_blocking(move || futures_executor::block_on(call())),
        )
        .await
        .map(Result::ok),
    };
    let Ok(outcome) = outcome else {
        METRICS
            .hsm_errors
            .with_label_values(&[&format!("{operation}_timeout")])
            .inc();
        return Err(DispatchError::Timeout(limit.as_millis()));
    };
    METRICS
        .hsm_duration
        .with_label_values(&[operation])
        .observe(started.elapsed().as_secs_f64());
    if !matches!(outcome, Some(Ok(_))) {
        METRICS.hsm_errors.with_label_values(&[operation]).inc();
    }
    outcome
        .ok_or(DispatchError::Dropped)?
        .map_err(DispatchError::Backend)
}

/// The key-decryption pool: `max(1, cores / 2)` threads named `palisade-kdf-N`, separate from
/// the signing pool (rayon's global pool), so that key derivation never delays a signature in
/// the signing pool's queue. `None` when its threads could not be started (decryption then
/// runs on the calling thread).
pub fn kdf_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: LazyLock<Option<rayon::ThreadPool>> = LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match rayon::ThreadPoolBuilder::new()
            .num_threads((cores / 2).max(1))
            .thread_name(|i| format!("palisade-kdf-{i}"))
            .build()
        {
            Ok(pool) => Some(pool),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the key-decryption pool; keys are decrypted on the calling thread");
                None
            }
        }
    });
    POOL.as_ref()
}

/// Runs a blocking closure on the key-decryption pool ([`kdf_pool`]) and waits for it: rayon
/// parallel iterators inside `f` use that pool too. Call it from a blocking thread, not an
/// async worker.
pub fn in_kdf_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match kdf_pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Runs a CPU-bound closure on the key-decryption pool ([`kdf_pool`]) from async code;
/// `None` if the pool dropped it.
pub async fn on_kdf_pool<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    match kdf_pool() {
        Some(pool) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            pool.spawn(move || {
                let _ = tx.send(f());
            });
            rx.await.ok()
        }
        None => tokio::task::spawn_blocking(f).await.ok(),
    }
}

/// Runs a CPU-bound closure on the signing pool (one thread per core); `None` if the pool
/// dropped it.
pub async fn on_pool<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMIT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn each_execution_returns_the_backends_answer() {
        for execution in [
            Execution::CpuPool,
            Execution::Blocking { timeout: LIMIT },
            Execution::Async { timeout: LIMIT },
        ] {
            let ok = run(execution, "sign", || async { Ok(7u8) }).await;
            assert_eq!(ok.unwrap(), 7, "{execution:?}");
            let failed = run(execution, "sign", || async {
                Err::<u8, _>(BackendError("refused".into()))
            })
            .await;
            assert!(
                matches!(failed, Err(DispatchError::Backend(BackendError(ref m))) if m == "refused"),
                "{execution:?}: {failed:?}"
            );
        }
    }

    #[tokio::test]
    async fn cpu_pool_work_runs_off_the_runtime() {
        let runtime_thread = std::thread::current().id();
        let worker = run(Execution::CpuPool, "sign", || async {
            Ok(std::thread::current().id())
        })
        .await
        .unwrap();
        assert_ne!(worker, runtime_thread);
    }

    #[tokio::test]
    async fn hanging_backends_time_out_at_their_limit() {
        let started = Instant::now();
        let blocking = run(Execution::Blocking { timeout: LIMIT }, "sign", || async {
            std::thread::sleep(Duration::from_millis(600));
            Ok(())
        })
        .await;
        assert!(
            matches!(blocking, Err(DispatchError::Timeout(50))),
            "{blocking:?}"
        );
        let hanging = run(Execution::Async { timeout: LIMIT }, "sign", || async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await;
        assert!(
            matches!(hanging, Err(DispatchError::Timeout(50))),
            "{hanging:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_panicking_blocking_backend_is_a_dropped_job() {
        // A generous timeout: printing the panic (with a backtrace, when enabled) takes
        // longer than `LIMIT` in a large debug binary, and this test is about the outcome.
        let timeout = Duration::from_secs(10);
        let panicked = run(Execution::Blocking { timeout }, "sign", || async {
            if true {
                panic!("backend bug");
            }
            Ok(())
        })
        .await;
        assert!(
            matches!(panicked, Err(DispatchError::Dropped)),
            "{panicked:?}"
        );
    }
}
