//! `GET /openapi.json` on each listener: the OpenAPI 3.0 documents of `openapi/`, compiled in.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

/// The documents' YAML text: eth2 listener, Tezos listener, metrics listener.
const ETH2: &str = include_str!("../../openapi/eth2.yaml");
const TEZOS: &str = include_str!("../../openapi/tezos.yaml");
const METRICS: &str = include_str!("../../openapi/metrics.yaml");

fn parse(yaml: &'static str) -> Result<serde_json::Value, String> {
    serde_norway::from_str(yaml).map_err(|e| format!("OpenAPI document unreadable: {e}"))
}

static ETH2_DOC: LazyLock<Result<serde_json::Value, String>> = LazyLock::new(|| parse(ETH2));
static TEZOS_DOC: LazyLock<Result<serde_json::Value, String>> = LazyLock::new(|| parse(TEZOS));
static METRICS_DOC: LazyLock<Result<serde_json::Value, String>> = LazyLock::new(|| parse(METRICS));

fn answer(doc: &Result<serde_json::Value, String>) -> HttpResponse {
    match doc {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => super::error::json_error(StatusCode::INTERNAL_SERVER_ERROR, e.clone()),
    }
}

/// `GET /openapi.json` on the eth2 listener (`openapi/eth2.yaml`).
pub async fn eth2() -> HttpResponse {
    answer(&ETH2_DOC)
}

/// `GET /openapi.json` on the Tezos listener (`openapi/tezos.yaml`).
pub async fn tezos() -> HttpResponse {
    answer(&TEZOS_DOC)
}

/// `GET /openapi.json` on the metrics listener (`openapi/metrics.yaml`).
pub async fn metrics() -> HttpResponse {
    answer(&METRICS_DOC)
}
