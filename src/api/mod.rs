//! HTTP handlers only: they translate requests to calls and errors to status codes.

pub mod error;
pub mod eth2;
pub mod health;
pub mod inventory;
pub mod keymanager;
pub mod openapi;
pub mod reload;
pub mod tezos;

use std::sync::Arc;

use actix_web::web;

use crate::chain::eth2::network::NetworkConfig;
use crate::keys::{Keys, Reloader};
use crate::protection::ProtectionStore;
use error::ApiError;

/// Largest request body accepted by the eth2 API: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than the limit (bytes).
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The connection failed mid-body.
    #[error("cannot read request body: {0}")]
    Read(String),
}

/// Reads a request body, refusing more than `limit` bytes before buffering them (by
/// `Content-Length` when given, else while streaming).
///
/// # Errors
/// [`BodyError`].
pub async fn read_body(
    req: &actix_web::HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, BodyError> {
    use futures_util::StreamExt;
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<usize>().ok())
        && len > limit
    {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The client's IP address as the listener saw it (proxy headers are not trusted), for the
/// audit trail.
pub fn caller(req: &actix_web::HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// Admin routes (`/api/v1/keys`, `/reload`): with the Keymanager API on, any client presenting
/// its bearer token; otherwise loopback clients only.
///
/// # Errors
/// [`ApiError::Forbidden`] or [`ApiError::Unauthorized`].
pub fn admin_allowed(req: &actix_web::HttpRequest, what: &str) -> Result<(), ApiError> {
    if let Some(token) = req.app_data::<web::Data<keymanager::ApiToken>>() {
        return keymanager::authorize(req, token);
    }
    if req.peer_addr().is_some_and(|a| a.ip().is_loopback()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{what} is served to loopback clients only (or with the Keymanager API token)"
        )))
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The keys being served (swapped whole by a reload).
    pub keys: Arc<Keys>,
    /// The slashing-protection record.
    pub store: Arc<dyn ProtectionStore>,
    /// Fork schedule and preset.
    pub network: Arc<NetworkConfig>,
    /// Reloads the keys (`POST /reload`); `None`: reloading is not offered.
    pub reloader: Option<Arc<Reloader>>,
}

/// Registers the eth2 signing API and health routes on an actix app.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state))
            .app_data(web::PathConfig::default().error_handler(|err, _| {
                let msg = err.to_string();
                actix_web::error::InternalError::from_response(
                    err,
                    error::json_error(actix_web::http::StatusCode::BAD_REQUEST, msg),
                )
                .into()
            }))
            .route("/api/v1/eth2/sign/{identifier}", web::post().to(eth2::sign))
            .route("/api/v1/eth2/publicKeys", web::get().to(eth2::public_keys))
            .route(
                "/api/v1/eth2/highWatermark",
                web::get().to(eth2::high_watermark),
            )
            .route("/api/v1/keys", web::get().to(inventory::keys))
            .route("/openapi.json", web::get().to(openapi::eth2))
            .route("/reload", web::post().to(reload::start))
            .route("/reload", web::get().to(reload::status))
            .route("/upcheck", web::get().to(health::upcheck))
            .route("/healthcheck", web::get().to(health::healthcheck))
            .default_service(web::to(|| async {
                error::json_error(actix_web::http::StatusCode::NOT_FOUND, "no such route")
            }));
    }
}
