//! The Ethereum Keymanager API (ethereum/keymanager-APIs, `/eth/v1/keystores`) with the
//! bearer-token authentication the standard requires: `Authorization: Bearer <token>`,
//! compared in constant time; 401 without a token, 403 with a wrong one.
//!
//! Imported keystores are written under `--key-config-path` (mode 0600) as
//! `keymanager/<pubkey>.json` and `.txt` plus a `keymanager-<pubkey>.yaml` `file-keystore`
//! config, so they load again after a restart or reload. Keys from other sources are listed as
//! `readonly` and cannot be deleted here.
//!
//! Secrets in requests: the request body, the keystores, their passwords and the
//! `slashing_protection` document are held in zeroize-on-drop buffers and never printed.
//! Keystores are decrypted on the key-decryption pool ([`crate::keys::kdf_pool`]), never the
//! signing pool, and refused before derivation when their KDF parameters are over the
//! ceilings of [`crate::keys::eip2335`] (an `error` entry naming the ceiling). The
//! `slashing_protection` document is parsed on the blocking pool, not an HTTP worker.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::AppState;
use super::error::ApiError;
use crate::service::keymanager::{DeleteStatus, ImportStatus, KeymanagerError, KeymanagerService};

/// Largest Keymanager request body: 16 MiB.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// The Keymanager API's bearer token (zeroized on drop, never logged).
pub struct ApiToken(Zeroizing<String>);

impl ApiToken {
    /// Reads the token from `path`, or, when the file does not exist, writes a new random one
    /// (32 bytes from the OS, hex) there with mode 0600.
    ///
    /// An existing token file must not be readable or writable by group or others (mode
    /// `0600` or stricter): palisade did not create it, so it does not change its mode
    /// itself, and refuses to start instead, naming the file and the `chmod 600` that fixes it.
    ///
    /// # Errors
    /// A message naming the file (never its content): unreadable, empty, or group/world
    /// accessible.
    pub fn load_or_create(path: &Path) -> Result<ApiToken, String> {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            return Err(format!(
                "the Keymanager API token file {} has mode {:04o}: it must not be accessible \
                 to group or others; run `chmod 600 {}`",
                path.display(),
                meta.permissions().mode() & 0o7777,
                path.display()
            ));
        }
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let token = Zeroizing::new(text.trim().to_string());
                if token.is_empty() {
                    return Err(format!("{} is empty", path.display()));
                }
                Ok(ApiToken(token))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = Zeroizing::new([0u8; 32]);
                getrandom::fill(bytes.as_mut())
                    .map_err(|e| format!("no randomness for the API token: {e}"))?;
                let token = Zeroizing::new(hex::encode(bytes.as_ref()));
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                f.write_all(token.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                tracing::info!(file = %path.display(), "wrote a new Keymanager API token");
                Ok(ApiToken(token))
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Whether `presented` is the token (constant time in the token's content).
    pub fn matches(&self, presented: &str) -> bool {
        let a = self.0.as_bytes();
        let b = presented.as_bytes();
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }
}

/// Checks `Authorization: Bearer <token>`.
///
/// # Errors
/// [`ApiError::Unauthorized`] without a bearer token, [`ApiError::Forbidden`] with a wrong one.
pub fn authorize(req: &HttpRequest, token: &ApiToken) -> Result<(), ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    if token.matches(presented.trim()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("invalid bearer token".into()))
    }
}

/// What the Keymanager handlers share besides [`AppState`].
pub struct KeymanagerState {
    /// The bearer token.
    pub token: Arc<ApiToken>,
    /// `--key-config-path`: where imported keystores are written.
    pub key_config_dir: PathBuf,
}

impl KeymanagerState {
    /// The Keymanager service over `state`'s keys and store and this key-config directory.
    fn service<'a>(&'a self, state: &'a AppState) -> KeymanagerService<'a> {
        KeymanagerService {
            keys: &state.keys,
            store: state.store.as_ref(),
            key_config_dir: &self.key_config_dir,
        }
    }
}

fn message_error(status: actix_web::http::StatusCode, msg: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "message": msg.into() }))
}

impl From<KeymanagerError> for ApiError {
    fn from(e: KeymanagerError) -> Self {
        match e {
            e @ KeymanagerError::LengthMismatch => ApiError::Invalid(e.to_string()),
            KeymanagerError::Protection(p) => ApiError::Protection(p),
            KeymanagerError::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// `GET /eth/v1/keystores`: `{"data": [{"validating_pubkey", "derivation_path", "readonly"}]}`.
pub async fn list(
    state: web::Data<AppState>,
    km: web::Data<KeymanagerState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &km.token)?;
    let data: Vec<serde_json::Value> = km
        .service(&state)
        .list()
        .into_iter()
        .map(|k| {
            json!({
                "validating_pubkey": k.validating_pubkey,
                "derivation_path": k.derivation_path,
                "readonly": k.readonly,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// The body of `POST /eth/v1/keystores`; every field is zeroized on drop, and there is no
/// `Debug`.
#[derive(Deserialize)]
struct ImportRequest {
    keystores: Vec<Zeroizing<String>>,
    passwords: Vec<Zeroizing<String>>,
    #[serde(default)]
    slashing_protection: Option<Zeroizing<String>>,
}

#[derive(Deserialize)]
struct DeleteRequest {
    pubkeys: Vec<String>,
}

/// Reads and parses a request body; `Ok(Err(response))` is the 400 to answer (the standard's
/// `{"message"}` shape).
///
/// # Errors
/// [`ApiError`] when the body cannot be read (413 over [`MAX_BODY_BYTES`]).
async fn read_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Result<T, HttpResponse>, ApiError> {
    use zeroize::Zeroize;
    let mut body = super::read_body(req, payload, MAX_BODY_BYTES).await?;
    let parsed = serde_json::from_slice(&body).map_err(|e| {
        message_error(
            actix_web::http::StatusCode::BAD_REQUEST,
            format!("bad request body: {e}"),
        )
    });
    // The body may hold keystores and passwords.
    body.as_mut().zeroize();
    Ok(parsed)
}

/// `POST /eth/v1/keystores`: decrypts every keystore with its password; imports the optional
/// EIP-3076 `slashing_protection` first (if it fails, no key is activated and every entry is
/// an error); writes the new keystores (0600), enables them in the protection database and
/// serves them. Per keystore: `imported`, `duplicate` (already served) or `error` with a message.
pub async fn import(
    state: web::Data<AppState>,
    km: web::Data<KeymanagerState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &km.token)?;
    let request: ImportRequest = match read_json(&req, payload).await? {
        Ok(r) => r,
        Err(bad_request) => return Ok(bad_request),
    };
    let ImportRequest {
        keystores,
        passwords,
        slashing_protection,
    } = request;
    let statuses = match km
        .service(&state)
        .import(&keystores, &passwords, slashing_protection)
        .await
    {
        Ok(s) => s,
        Err(e @ KeymanagerError::LengthMismatch) => {
            return Ok(message_error(
                actix_web::http::StatusCode::BAD_REQUEST,
                e.to_string(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let data: Vec<serde_json::Value> = statuses
        .into_iter()
        .map(|s| match s {
            ImportStatus::Imported => json!({"status": "imported", "message": ""}),
            ImportStatus::Duplicate => json!({"status": "duplicate", "message": ""}),
            ImportStatus::Error(m) => json!({"status": "error", "message": m}),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// `DELETE /eth/v1/keystores`: disables the keys in the protection database (every instance
/// sharing it then refuses them; their records stay), stops serving them, deletes their files,
/// and answers the EIP-3076 export of every listed key the database knows. Per key:
/// `deleted`, `not_active` (known to the database, not served here), `not_found`, or `error`
/// (malformed, or a read-only key from another source).
pub async fn delete(
    state: web::Data<AppState>,
    km: web::Data<KeymanagerState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &km.token)?;
    let request: DeleteRequest = match read_json(&req, payload).await? {
        Ok(r) => r,
        Err(bad_request) => return Ok(bad_request),
    };
    let (statuses, slashing_protection) = km.service(&state).delete(&request.pubkeys).await?;
    let data: Vec<serde_json::Value> = statuses
        .into_iter()
        .map(|s| match s {
            DeleteStatus::Deleted => json!({"status": "deleted", "message": ""}),
            DeleteStatus::NotActive => json!({"status": "not_active", "message": ""}),
            DeleteStatus::NotFound => json!({"status": "not_found", "message": ""}),
            DeleteStatus::Error(m) => json!({"status": "error", "message": m}),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "data": data,
        "slashing_protection": slashing_protection
    })))
}

/// Registers the Keymanager routes (the standard's paths) on an actix app.
pub fn configure(km: web::Data<KeymanagerState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(km)
            .route("/eth/v1/keystores", web::get().to(list))
            .route("/eth/v1/keystores", web::post().to(import))
            .route("/eth/v1/keystores", web::delete().to(delete));
    }
}
