//! `GET /upcheck` and `GET /healthcheck` (Web3Signer's shapes).

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;

/// `GET /upcheck`: 200 `OK` (text/plain) while the process serves HTTP.
pub async fn upcheck() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("OK")
}

/// `GET /healthcheck`: Web3Signer's JSON shape. `keys-check` reports `keys-loaded` (eth2),
/// `tezos-keys-loaded` and `error-count` and is DOWN when any key failed to load; the slashing-protection check is
/// DOWN when the database does not answer. 200 when all are UP, 503 otherwise.
pub async fn healthcheck(state: web::Data<AppState>) -> HttpResponse {
    let keys = state.keys.current();
    let loaded = keys.len();
    let errors = keys.errors().len();
    let keys_up = errors == 0;
    let db = tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await;
    let db_up = matches!(db, Ok(Ok(())));
    let status = |up: bool| if up { "UP" } else { "DOWN" };
    let overall = keys_up && db_up;
    let body = json!({
        "status": status(overall),
        "checks": [
            {
                "id": "keys-check",
                "status": status(keys_up),
                "checks": [{
                    "id": "keystores-check",
                    "status": status(keys_up),
                    "data": {
                        "keys-loaded": loaded,
                        "tezos-keys-loaded": keys.tezos_len(),
                        "error-count": errors
                    }
                }]
            },
            {"id": "slashing-protection-db-health-check", "status": status(db_up)}
        ],
        "outcome": status(overall)
    });
    if overall {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
