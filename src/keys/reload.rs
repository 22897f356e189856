//! The key set being served, swapped whole on reload, and the reloader behind `POST /reload`,
//! `GET /reload` and SIGHUP.
//!
//! A reload loads every key from the configured sources into a new registry (on the blocking
//! pool) while the current one keeps signing, registers new eth2 keys in the protection
//! database, then swaps the registry in one atomic step: a request sees either the old set or
//! the new one, never a mix, and requests for keys in both are never interrupted.
//!
//! Keys are decrypted on the key-decryption pool ([`super::kdf_pool`]), not the signing pool,
//! and only keystores whose file or password changed are decrypted again: the log line
//! `keys reloaded` gives `decrypted` and `reused` counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use serde::Serialize;

use super::{KeyRegistry, KeySources};
use crate::protection::ProtectionStore;
use crate::protection::audit::{now_ms, rfc3339_ms};

/// The key registry being served.
pub struct Keys(ArcSwap<KeyRegistry>);

impl Keys {
    /// Serves `registry`.
    pub fn new(registry: KeyRegistry) -> Self {
        Keys(ArcSwap::from_pointee(registry))
    }

    /// The registry now; a request should take it once and use it throughout.
    pub fn current(&self) -> Arc<KeyRegistry> {
        self.0.load_full()
    }

    /// Serves `registry` from now on.
    pub fn replace(&self, registry: KeyRegistry) {
        self.0.store(Arc::new(registry));
    }
}

/// State of the last reload, as `GET /reload` answers it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReloadStatus {
    /// `idle` (never run), `running`, `completed` or `failed`.
    pub status: &'static str,
    /// RFC 3339 UTC.
    pub started_at: Option<String>,
    /// RFC 3339 UTC.
    pub finished_at: Option<String>,
    /// Keys (eth2 public keys and Tezos pkhs) served now and not before.
    pub added: Vec<String>,
    /// Keys served before and not now.
    pub removed: Vec<String>,
    /// Key files that failed to load in this reload.
    pub errors: usize,
    /// Why the reload failed (the previous keys are still served).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Runs one reload at a time.
pub struct Reloader {
    sources: KeySources,
    keys: Arc<Keys>,
    store: Arc<dyn ProtectionStore>,
    running: AtomicBool,
    status: Mutex<ReloadStatus>,
}

impl Reloader {
    /// A reloader of `keys` from `sources`, registering new eth2 keys in `store`.
    pub fn new(sources: KeySources, keys: Arc<Keys>, store: Arc<dyn ProtectionStore>) -> Self {
        Reloader {
            sources,
            keys,
            store,
            running: AtomicBool::new(false),
            status: Mutex::new(ReloadStatus {
                status: "idle",
                ..Default::default()
            }),
        }
    }

    /// The last reload's state.
    pub fn status(&self) -> ReloadStatus {
        self.status.lock().clone()
    }

    /// Starts a reload in the background; `false` (nothing started) when one is running.
    pub fn start(self: &Arc<Self>) -> bool {
        if self.running.swap(true, Ordering::SeqCst) {
            return false;
        }
        *self.status.lock() = ReloadStatus {
            status: "running",
            started_at: Some(rfc3339_ms(now_ms())),
            ..Default::default()
        };
        let me = self.clone();
        tokio::spawn(async move {
            let outcome = me.run().await;
            {
                let mut s = me.status.lock();
                s.finished_at = Some(rfc3339_ms(now_ms()));
                match outcome {
                    Ok((added, removed, errors, counts)) => {
                        tracing::info!(
                            added = added.len(),
                            removed = removed.len(),
                            errors,
                            decrypted = counts.decrypted,
                            reused = counts.reused,
                            "keys reloaded"
                        );
                        s.status = "completed";
                        s.added = added;
                        s.removed = removed;
                        s.errors = errors;
                    }
                    Err(reason) => {
                        tracing::error!(%reason, "key reload failed; the previous keys are still served");
                        s.status = "failed";
                        s.reason = Some(reason);
                    }
                }
            }
            me.running.store(false, Ordering::SeqCst);
        });
        true
    }

    async fn run(
        &self,
    ) -> Result<(Vec<String>, Vec<String>, usize, super::DecryptionCounts), String> {
        let sources = self.sources.clone();
        let fresh = tokio::task::spawn_blocking(move || {
            super::pkcs11::forget_failed_tokens();
            KeyRegistry::load(&sources)
        })
        .await
        .map_err(|e| format!("key loading failed: {e}"))?;
        // New eth2 keys get their validator rows before they can sign.
        self.store
            .register_validators(&fresh.public_keys())
            .await
            .map_err(|e| e.to_string())?;
        let old = self.keys.current();
        let ids = |r: &KeyRegistry| -> std::collections::BTreeSet<String> {
            r.inventory().into_iter().map(|k| k.key).collect()
        };
        let (before, after) = (ids(&old), ids(&fresh));
        let added = after.difference(&before).cloned().collect();
        let removed = before.difference(&after).cloned().collect();
        let errors = fresh.failed().len();
        let counts = fresh.decryption_counts();
        crate::metrics::METRICS.set_keys(&fresh);
        self.keys.replace(fresh);
        Ok((added, removed, errors, counts))
    }
}
