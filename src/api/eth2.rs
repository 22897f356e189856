//! Web3Signer's eth2 API: `POST /api/v1/eth2/sign/{identifier}` and `GET /api/v1/eth2/publicKeys`.

use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::error::ApiError;
use super::{AppState, MAX_BODY_BYTES};
use crate::chain::eth2::request::RequestError;
use crate::metrics::METRICS;
use crate::service::eth2::{Eth2SignError, Eth2SignRequest};

/// Parses an identifier: `0x` + 96 hex characters (a 48-byte BLS public key).
/// Longer identifiers are refused before any decoding.
fn parse_identifier(id: &str) -> Result<[u8; 48], ApiError> {
    let hex_part = id.strip_prefix("0x").unwrap_or(id);
    if hex_part.len() != 96 {
        return Err(ApiError::Invalid(
            "identifier must be a 0x-prefixed 48-byte BLS public key (96 hex characters)".into(),
        ));
    }
    hex::decode(hex_part)
        .ok()
        .and_then(|b| <[u8; 48]>::try_from(b).ok())
        .ok_or_else(|| {
            ApiError::Invalid("identifier must be a 0x-prefixed 48-byte BLS public key".into())
        })
}

/// Whether the client wants JSON: `Accept` absent, or naming `application/json` or `*/*`.
fn wants_json(req: &HttpRequest) -> bool {
    match req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(accept) => {
            let a = accept.to_ascii_lowercase();
            a.trim().is_empty() || a.contains("application/json") || a.contains("*/*")
        }
    }
}

/// `POST /api/v1/eth2/sign/{identifier}`: recomputes the signing root from the typed body,
/// checks and records blocks and attestations in slashing protection (committed before the
/// signature is released), and answers `{"signature": "0x…"}` (96 bytes) or bare hex as
/// `text/plain` when the client does not accept JSON.
///
/// Every decision is recorded in the audit trail (time, key, type, slot/epoch, signed or
/// refused and why, caller IP): for blocks and attestations in the protection transaction, for
/// other types in its own transaction, committed before the signature is released.
///
/// Errors: 400 malformed body or identifier, 404 unknown key, 412 refused by slashing
/// protection, 413 body over 1 MiB, 503 protection database unavailable or key backend past
/// its timeout (nothing released), 500 backend fault.
pub async fn sign(
    state: web::Data<AppState>,
    identifier: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let mut kind = "unknown";
    let result = sign_inner(state, identifier, req, payload, &mut kind).await;
    let status = match &result {
        Ok(r) => r.status().as_u16(),
        Err(e) => actix_web::ResponseError::status_code(e).as_u16(),
    };
    METRICS.request("eth2", kind, status, started.elapsed());
    result
}

/// [`sign`] without the request metrics; sets `kind` to the request's type once known.
/// Decodes the identifier and body, calls [`Eth2Service::sign`], encodes the answer.
async fn sign_inner(
    state: web::Data<AppState>,
    identifier: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
    kind: &mut &'static str,
) -> Result<HttpResponse, ApiError> {
    let public_key = parse_identifier(&identifier)?;
    let service = state.eth2_service();
    // An unknown key is answered before the body is read.
    if service.signer(&public_key).is_none() {
        return Err(ApiError::UnknownKey(identifier.to_string()));
    }
    let body = super::read_body(&req, payload, MAX_BODY_BYTES).await?;
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(RequestError::NotJson(e.to_string())))?;
    let (signed_kind, result) = service
        .sign(Eth2SignRequest {
            public_key,
            body: &json,
            caller: super::caller(&req),
        })
        .await;
    *kind = signed_kind;
    let signature = result.map_err(|e| match e {
        Eth2SignError::UnknownKey(_) => ApiError::UnknownKey(identifier.to_string()),
        Eth2SignError::BadRequest(e) => ApiError::BadRequest(e),
        Eth2SignError::Protection(e) => ApiError::Protection(e),
        Eth2SignError::Backend(e) => ApiError::Sign(e),
        Eth2SignError::BackendTimeout(ms) => ApiError::BackendTimeout(ms),
        Eth2SignError::Release(e) => ApiError::Internal(e.to_string()),
    })?;
    let hex_sig = format!("0x{}", hex::encode(signature));
    if wants_json(&req) {
        Ok(HttpResponse::Ok().json(serde_json::json!({ "signature": hex_sig })))
    } else {
        Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(hex_sig))
    }
}

/// `GET /api/v1/eth2/publicKeys`: JSON array of the loaded keys as `0x` + 96 hex characters.
pub async fn public_keys(state: web::Data<AppState>) -> HttpResponse {
    let keys: Vec<String> = state
        .keys
        .current()
        .public_keys()
        .iter()
        .map(|k| format!("0x{}", hex::encode(k)))
        .collect();
    HttpResponse::Ok().json(keys)
}

/// `GET /api/v1/eth2/highWatermark`: `{"epoch": "E", "slot": "S"}` (decimal strings) when a
/// high watermark is set, `{}` otherwise; 503 when the database is unavailable.
pub async fn high_watermark(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(match state.store.high_watermark().await? {
        Some(h) => HttpResponse::Ok().json(h),
        None => HttpResponse::Ok().json(serde_json::json!({})),
    })
}
