//! `POST /reload` and `GET /reload` (loopback clients, or the Keymanager API token; SIGHUP
//! does the same).

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::error::ApiError;

/// `POST /reload`: starts loading the keys again from the configured keystores and key config
/// directories; keys added are served, keys removed are not, the others sign throughout.
/// 202 with the status when started; 409 when a reload is running; 403 for a client that is
/// not on the loopback interface.
pub async fn start(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    super::admin_allowed(&req, "reloading")?;
    let reloader = state
        .reloader
        .as_ref()
        .ok_or_else(|| ApiError::Invalid("this server does not reload keys".into()))?;
    if reloader.start() {
        Ok(HttpResponse::Accepted().json(reloader.status()))
    } else {
        Ok(HttpResponse::Conflict().json(serde_json::json!({
            "error": "a reload is already running",
            "reload": reloader.status()
        })))
    }
}

/// `GET /reload`: the last reload's status (`idle`, `running`, `completed`, `failed`), its
/// times, the keys added and removed and the number of key files that failed.
pub async fn status(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    super::admin_allowed(&req, "reloading")?;
    let reloader = state
        .reloader
        .as_ref()
        .ok_or_else(|| ApiError::Invalid("this server does not reload keys".into()))?;
    Ok(HttpResponse::Ok().json(reloader.status()))
}
