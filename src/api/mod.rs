//! HTTP handlers only: they translate requests to calls and errors to status codes.

pub mod error;
pub mod eth2;
pub mod health;

use std::sync::Arc;

use actix_web::web;

use crate::chain::eth2::network::NetworkConfig;
use crate::keys::KeyRegistry;
use crate::protection::ProtectionStore;

/// Largest request body accepted by the eth2 API: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Loaded keys.
    pub keys: Arc<KeyRegistry>,
    /// The slashing-protection record.
    pub store: Arc<dyn ProtectionStore>,
    /// Fork schedule and preset.
    pub network: Arc<NetworkConfig>,
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
            .route("/upcheck", web::get().to(health::upcheck))
            .route("/healthcheck", web::get().to(health::healthcheck))
            .default_service(web::to(|| async {
                error::json_error(actix_web::http::StatusCode::NOT_FOUND, "no such route")
            }));
    }
}
