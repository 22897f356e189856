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
use crate::keys::{KeyInfo, MemoryKey, Signer, eip2335};
use crate::protection::audit::{Chain, now_ms};
use crate::protection::interchange;

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
    fn files(&self, pubkey_hex: &str) -> (PathBuf, PathBuf, PathBuf) {
        let dir = self.key_config_dir.join("keymanager");
        (
            dir.join(format!("{pubkey_hex}.json")),
            dir.join(format!("{pubkey_hex}.txt")),
            self.key_config_dir
                .join(format!("keymanager-{pubkey_hex}.yaml")),
        )
    }
}

/// Whether a key was imported through this API (its config is a `keymanager-*.yaml`).
fn imported_here(info: &KeyInfo) -> bool {
    info.source
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("keymanager-") && n.ends_with(".yaml"))
}

/// The EIP-2334 `path` a keystore file states, if any.
fn derivation_path(file: &Path) -> String {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("path").and_then(|p| p.as_str()).map(str::to_string))
        .unwrap_or_default()
}

fn message_error(status: actix_web::http::StatusCode, msg: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "message": msg.into() }))
}

/// `GET /eth/v1/keystores`: `{"data": [{"validating_pubkey", "derivation_path", "readonly"}]}`.
pub async fn list(
    state: web::Data<AppState>,
    km: web::Data<KeymanagerState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &km.token)?;
    let registry = state.keys.current();
    let data: Vec<serde_json::Value> = registry
        .inventory()
        .into_iter()
        .filter(|k| k.chain == Chain::Eth2)
        .map(|k| {
            let readonly = !imported_here(&k);
            let path = if readonly {
                if k.source.extension().is_some_and(|e| e == "json") {
                    derivation_path(&k.source)
                } else {
                    String::new()
                }
            } else {
                derivation_path(&km.files(k.key.trim_start_matches("0x")).0)
            };
            json!({ "validating_pubkey": k.key, "derivation_path": path, "readonly": readonly })
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

fn write_0600(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
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
    if request.keystores.len() != request.passwords.len() {
        return Ok(message_error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "keystores and passwords must have the same length",
        ));
    }
    let n = request.keystores.len();
    // Decrypt on the key-decryption pool (scrypt is slow by design), never the signing pool.
    let keystores = request.keystores.clone();
    let passwords = request.passwords.clone();
    let decrypted: Vec<Result<(MemoryKey, String), String>> = crate::keys::on_kdf_pool(move || {
        use rayon::prelude::*;
        keystores
            .par_iter()
            .zip(passwords.par_iter())
            .map(|(ks, pw)| {
                eip2335::decrypt_bls(ks, pw)
                    .map(|sk| {
                        let key = MemoryKey::new(sk);
                        let hex_pk = hex::encode(key.public_key());
                        (key, hex_pk)
                    })
                    .map_err(|e| e.to_string())
            })
            .collect()
    })
    .await
    .ok_or_else(|| ApiError::Internal("decryption failed: the pool dropped the job".into()))?;

    let all_error = |msg: String| {
        HttpResponse::Ok().json(json!({
            "data": (0..n).map(|_| json!({"status": "error", "message": msg})).collect::<Vec<_>>()
        }))
    };
    if let Some(text) = request.slashing_protection.clone() {
        // Parsing a large document is CPU work: off the HTTP worker.
        let parsed = tokio::task::spawn_blocking(move || interchange::parse(&text))
            .await
            .map_err(|e| ApiError::Internal(format!("slashing_protection parsing failed: {e}")))?;
        let prepared = match parsed {
            Ok(p) => p,
            Err(e) => return Ok(all_error(format!("slashing_protection not imported: {e}"))),
        };
        if let Err(e) = state.store.import(&prepared).await {
            return Ok(all_error(format!("slashing_protection not imported: {e}")));
        }
    }

    let registry = state.keys.current();
    let mut statuses: Vec<serde_json::Value> = Vec::with_capacity(n);
    let mut added: Vec<(Arc<dyn Signer>, KeyInfo)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, d) in decrypted.into_iter().enumerate() {
        let (key, hex_pk) = match d {
            Ok(v) => v,
            Err(e) => {
                statuses.push(json!({"status": "error", "message": e}));
                continue;
            }
        };
        let id = format!("0x{hex_pk}");
        if registry.get(&key.public_key()).is_some() || !seen.insert(hex_pk.clone()) {
            statuses.push(json!({"status": "duplicate", "message": ""}));
            continue;
        }
        let (ks_file, pw_file, yaml) = km.files(&hex_pk);
        let written = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(ks_file.parent().unwrap_or(Path::new(".")))?;
            write_0600(&ks_file, request.keystores[i].as_bytes())?;
            write_0600(&pw_file, request.passwords[i].as_bytes())?;
            write_0600(
                &yaml,
                format!(
                    "type: file-keystore\nkeyType: BLS\nkeystoreFile: keymanager/{hex_pk}.json\nkeystorePasswordFile: keymanager/{hex_pk}.txt\n"
                )
                .as_bytes(),
            )
        })();
        if let Err(e) = written {
            for f in [&ks_file, &pw_file, &yaml] {
                let _ = std::fs::remove_file(f);
            }
            statuses.push(
                json!({"status": "error", "message": format!("cannot persist the keystore: {e}")}),
            );
            continue;
        }
        if let Err(e) = state.store.set_enabled(&[key.public_key()], true).await {
            for f in [&ks_file, &pw_file, &yaml] {
                let _ = std::fs::remove_file(f);
            }
            statuses.push(json!({"status": "error", "message": e.to_string()}));
            continue;
        }
        added.push((
            Arc::new(key),
            KeyInfo {
                chain: Chain::Eth2,
                key: id,
                public_key: None,
                backend: format!("keystore {} (file-keystore)", ks_file.display()),
                source: yaml,
                loaded_at_ms: now_ms(),
            },
        ));
        statuses.push(json!({"status": "imported", "message": ""}));
    }
    if !added.is_empty() {
        let count = added.len();
        let next = state.keys.current().with_eth2(added);
        crate::metrics::METRICS.set_keys(&next);
        state.keys.replace(next);
        tracing::info!(
            keys = count,
            "keystores imported through the Keymanager API"
        );
    }
    Ok(HttpResponse::Ok().json(json!({ "data": statuses })))
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
    let registry = state.keys.current();
    let known: std::collections::HashSet<[u8; 48]> =
        state.store.validators().await?.into_iter().collect();
    let mut statuses = Vec::new();
    let mut to_delete: Vec<[u8; 48]> = Vec::new();
    let mut exported: Vec<[u8; 48]> = Vec::new();
    for pk in &request.pubkeys {
        let parsed = hex::decode(pk.trim_start_matches("0x"))
            .ok()
            .and_then(|b| <[u8; 48]>::try_from(b).ok());
        let Some(key) = parsed else {
            statuses.push(json!({"status": "error", "message": format!("`{pk}` is not a 48-byte public key")}));
            continue;
        };
        let id = format!("0x{}", hex::encode(key));
        match registry.info(&id) {
            Some(info) if !imported_here(info) => {
                statuses.push(json!({"status": "error", "message": format!("{id} is read-only: it was not imported through this API")}));
            }
            Some(_) => {
                to_delete.push(key);
                exported.push(key);
                statuses.push(json!({"status": "deleted", "message": ""}));
            }
            None if known.contains(&key) => {
                exported.push(key);
                statuses.push(json!({"status": "not_active", "message": ""}));
            }
            None => statuses.push(json!({"status": "not_found", "message": ""})),
        }
    }
    if !to_delete.is_empty() {
        // Disable first: from the commit on, no instance records (so signs) for these keys.
        state.store.set_enabled(&to_delete, false).await?;
        let next = state.keys.current().without_eth2(&to_delete);
        crate::metrics::METRICS.set_keys(&next);
        state.keys.replace(next);
        for key in &to_delete {
            let (ks, pw, yaml) = km.files(&hex::encode(key));
            crate::keys::forget_decrypted(&ks);
            for f in [yaml, ks, pw] {
                let _ = std::fs::remove_file(f);
            }
        }
        tracing::info!(
            keys = to_delete.len(),
            "keystores deleted through the Keymanager API"
        );
    }
    let slashing_protection = if exported.is_empty() {
        empty_interchange(&state).await?
    } else {
        match crate::protection::export(state.store.as_ref(), Some(&exported)).await {
            Ok(i) => serde_json::to_string(&i).map_err(|e| ApiError::Internal(e.to_string()))?,
            Err(crate::protection::ProtectionError::Import(_)) => empty_interchange(&state).await?,
            Err(e) => return Err(e.into()),
        }
    };
    Ok(HttpResponse::Ok().json(json!({
        "data": statuses,
        "slashing_protection": slashing_protection
    })))
}

/// An interchange with no records: the database's genesis validators root, or zeros when it
/// has none yet (nothing was ever signed or imported).
async fn empty_interchange(state: &AppState) -> Result<String, ApiError> {
    let root = state
        .store
        .genesis_validators_root()
        .await?
        .unwrap_or([0; 32]);
    serde_json::to_string(&interchange::build(root, Vec::new()))
        .map_err(|e| ApiError::Internal(e.to_string()))
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
