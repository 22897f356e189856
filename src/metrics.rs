//! Prometheus metrics (text format 0.0.4), served on their own listener (`--metrics-enabled`,
//! `--metrics-host`, `--metrics-port`, default `127.0.0.1:9001`) at `GET /metrics`.
//!
//! Names follow Web3Signer's where the meaning is the same
//! (`eth2_slashingprotection_permitted_signings_total`,
//! `eth2_slashingprotection_prevented_signings_total`); palisade's own are prefixed
//! `palisade_`. Durations are in seconds. Label values are fixed sets (chains, message kinds,
//! status codes, backends, reasons): never keys, paths or client input.

use std::sync::LazyLock;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds: 100 µs to 10 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Every metric palisade exports.
pub struct Metrics {
    registry: Registry,
    /// `palisade_signing_requests_total{chain, kind, status}`: signing requests answered, by
    /// HTTP status.
    pub requests: IntCounterVec,
    /// `palisade_signing_request_duration_seconds{chain, kind}`: time from request to answer.
    pub request_duration: HistogramVec,
    /// `eth2_slashingprotection_permitted_signings_total{kind}`: blocks and attestations that
    /// passed slashing protection.
    pub eth2_permitted: IntCounterVec,
    /// `eth2_slashingprotection_prevented_signings_total{kind, reason}`: refused by slashing
    /// protection (`double_block`, `double_vote`, `surround_vote`, `source_after_target`,
    /// `low_watermark`, `high_watermark`, `genesis_mismatch`, `out_of_range`).
    pub eth2_prevented: IntCounterVec,
    /// `palisade_tezos_watermark_rejections_total{kind}`: Tezos consensus requests at or below
    /// their high watermark.
    pub tezos_watermark_rejections: IntCounterVec,
    /// `palisade_policy_rejections_total{chain}`: refused by a key's policy or the magic-byte
    /// list.
    pub policy_rejections: IntCounterVec,
    /// `palisade_protection_db_duration_seconds{operation}`: protection database calls
    /// (`eth2_check_and_record`, `tezos_check_and_record`, `audit_append`).
    pub db_duration: HistogramVec,
    /// `palisade_protection_db_errors_total{operation}`: calls that found the database
    /// unavailable.
    pub db_errors: IntCounterVec,
    /// `palisade_keys_loaded{chain, backend}`: keys being served (`keystore`, `file-raw`,
    /// `memory`, `pkcs11`, `pkcs11-wrapped`).
    pub keys_loaded: IntGaugeVec,
    /// `palisade_key_load_errors`: key files that failed to load.
    pub key_load_errors: IntGauge,
    /// `palisade_hsm_operation_duration_seconds{operation}`: PKCS#11 signing calls.
    pub hsm_duration: HistogramVec,
    /// `palisade_hsm_errors_total{operation}`: PKCS#11 calls that failed or timed out.
    pub hsm_errors: IntCounterVec,
    /// `palisade_backend_call_duration_seconds{backend, operation}`: calls to network key
    /// backends (`backend` = `vault`, …; `operation` = `sign`, `read_secret`, `login`, …), one
    /// observation per attempt.
    pub backend_duration: HistogramVec,
    /// `palisade_backend_call_errors_total{backend, operation}`: attempts that got no answer
    /// or an error status.
    pub backend_errors: IntCounterVec,
    /// `palisade_request_stage_duration_seconds{chain, stage}`: time a signing request spends
    /// in one stage of its path. Tezos consensus requests: `sign` (the key's signature),
    /// `arrival_order_wait` (waiting for the earlier arrivals of the same high watermark to be
    /// recorded), `record` (the high watermark and audit entry committed).
    pub stage_duration: HistogramVec,
    /// `palisade_build_info{version}`: always 1.
    pub build_info: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        labels,
    )
    .expect("valid metric");
    registry
        .register(Box::new(h.clone()))
        .expect("unique metric");
    h
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let key_load_errors =
            IntGauge::new("palisade_key_load_errors", "Key files that failed to load")
                .expect("valid metric");
        r.register(Box::new(key_load_errors.clone()))
            .expect("unique metric");
        let m = Metrics {
            requests: counter(
                &r,
                "palisade_signing_requests_total",
                "Signing requests answered, by chain, message kind and HTTP status",
                &["chain", "kind", "status"],
            ),
            request_duration: histogram(
                &r,
                "palisade_signing_request_duration_seconds",
                "Time from a signing request to its answer",
                &["chain", "kind"],
            ),
            eth2_permitted: counter(
                &r,
                "eth2_slashingprotection_permitted_signings_total",
                "Blocks and attestations that passed slashing protection",
                &["kind"],
            ),
            eth2_prevented: counter(
                &r,
                "eth2_slashingprotection_prevented_signings_total",
                "Blocks and attestations refused by slashing protection, by reason",
                &["kind", "reason"],
            ),
            tezos_watermark_rejections: counter(
                &r,
                "palisade_tezos_watermark_rejections_total",
                "Tezos consensus requests refused by their high watermark",
                &["kind"],
            ),
            policy_rejections: counter(
                &r,
                "palisade_policy_rejections_total",
                "Requests refused by a key's policy or the magic-byte list",
                &["chain"],
            ),
            db_duration: histogram(
                &r,
                "palisade_protection_db_duration_seconds",
                "Protection database calls on the signing path",
                &["operation"],
            ),
            db_errors: counter(
                &r,
                "palisade_protection_db_errors_total",
                "Protection database calls that found the database unavailable",
                &["operation"],
            ),
            keys_loaded: gauge(
                &r,
                "palisade_keys_loaded",
                "Keys being served, by chain and backend",
                &["chain", "backend"],
            ),
            key_load_errors,
            hsm_duration: histogram(
                &r,
                "palisade_hsm_operation_duration_seconds",
                "PKCS#11 signing calls",
                &["operation"],
            ),
            hsm_errors: counter(
                &r,
                "palisade_hsm_errors_total",
                "PKCS#11 calls that failed or timed out",
                &["operation"],
            ),
            stage_duration: histogram(
                &r,
                "palisade_request_stage_duration_seconds",
                "Time a signing request spends in one stage of its path",
                &["chain", "stage"],
            ),
            backend_duration: histogram(
                &r,
                "palisade_backend_call_duration_seconds",
                "Calls to network key backends (vaults, cloud KMS and secret stores), per attempt",
                &["backend", "operation"],
            ),
            backend_errors: counter(
                &r,
                "palisade_backend_call_errors_total",
                "Network key backend call attempts that got no answer or an error status",
                &["backend", "operation"],
            ),
            build_info: gauge(
                &r,
                "palisade_build_info",
                "Build of the running binary (value 1)",
                &["version"],
            ),
            registry: r,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        // Series that alerts watch start at 0, so that `increase()` sees their first event
        // (a series that appears at 1 has no increase).
        for kind in ["BLOCK", "BLOCK_V2", "ATTESTATION"] {
            m.eth2_permitted.with_label_values(&[kind]);
            for reason in PREVENTED_REASONS {
                m.eth2_prevented.with_label_values(&[kind, reason]);
            }
        }
        for kind in ["block", "preattestation", "attestation"] {
            m.tezos_watermark_rejections.with_label_values(&[kind]);
        }
        m.policy_rejections.with_label_values(&["tezos"]);
        for op in [
            "eth2_check_and_record",
            "tezos_check_and_record",
            "audit_append",
        ] {
            m.db_errors.with_label_values(&[op]);
            m.db_duration.with_label_values(&[op]);
        }
        for op in ["sign", "sign_timeout"] {
            m.hsm_errors.with_label_values(&[op]);
        }
        m.hsm_duration.with_label_values(&["sign"]);
        m
    }

    /// The registry's metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::warn!(reason = %e, "cannot encode metrics");
        }
        out
    }

    /// Sets `palisade_keys_loaded` and `palisade_key_load_errors` from the inventory.
    pub fn set_keys(&self, keys: &crate::keys::KeyRegistry) {
        self.keys_loaded.reset();
        for k in keys.inventory() {
            self.keys_loaded
                .with_label_values(&[k.chain.as_str(), backend_class(&k.backend)])
                .inc();
        }
        self.key_load_errors.set(keys.failed().len() as i64);
    }

    /// Records one answered signing request.
    pub fn request(&self, chain: &str, kind: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[chain, kind, status_label(status)])
            .inc();
        self.request_duration
            .with_label_values(&[chain, kind])
            .observe(elapsed.as_secs_f64());
    }

    /// Records `elapsed` in `palisade_request_stage_duration_seconds{chain, stage}`.
    pub fn stage(&self, chain: &str, stage: &str, elapsed: Duration) {
        self.stage_duration
            .with_label_values(&[chain, stage])
            .observe(elapsed.as_secs_f64());
    }

    /// Records one protection database call and whether it found the database unavailable.
    pub fn db_call(&self, operation: &str, elapsed: Duration, unavailable: bool) {
        self.db_duration
            .with_label_values(&[operation])
            .observe(elapsed.as_secs_f64());
        if unavailable {
            self.db_errors.with_label_values(&[operation]).inc();
        }
    }
}

/// The metrics of this process.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// A backend description reduced to its class, for a bounded label set.
pub fn backend_class(backend: &str) -> &'static str {
    if backend.starts_with("pkcs11-wrapped") {
        "pkcs11-wrapped"
    } else if backend.starts_with("pkcs11") {
        "pkcs11"
    } else if backend.starts_with("keystore") {
        "keystore"
    } else if backend == "file-raw" {
        "file-raw"
    } else if backend == "memory" {
        "memory"
    } else {
        "other"
    }
}

/// HTTP status as a label from a fixed set.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        412 => "412",
        413 => "413",
        503 => "503",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// Every `reason` of `eth2_slashingprotection_prevented_signings_total`.
const PREVENTED_REASONS: [&str; 9] = [
    "double_block",
    "double_vote",
    "surround_vote",
    "source_after_target",
    "low_watermark",
    "high_watermark",
    "genesis_mismatch",
    "out_of_range",
    "disabled",
];

/// The label of an eth2 slashing-protection refusal.
pub fn prevented_reason(e: &crate::protection::ProtectionError) -> &'static str {
    e.outcome().metric_label.unwrap_or("other")
}

/// `GET /metrics`.
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(METRICS.render())
}

/// Registers `GET /metrics` on an actix app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics))
        .route("/openapi.json", web::get().to(crate::api::openapi::metrics));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_build_info_and_bounded_labels() {
        METRICS.request("eth2", "ATTESTATION", 412, Duration::from_micros(700));
        let text = METRICS.render();
        assert!(text.contains("palisade_build_info{version=\""), "{text}");
        assert!(
            text.contains(
                "palisade_signing_requests_total{chain=\"eth2\",kind=\"ATTESTATION\",status=\"412\"}"
            ),
            "{text}"
        );
        assert_eq!(status_label(502), "5xx");
        assert_eq!(backend_class("pkcs11 token `t` label `l`"), "pkcs11");
        assert_eq!(
            backend_class("pkcs11-wrapped keystore x (token `t`)"),
            "pkcs11-wrapped"
        );
        assert_eq!(backend_class("keystore a.json (file-keystore)"), "keystore");
    }
}
