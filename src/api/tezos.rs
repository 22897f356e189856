//! The octez-signer HTTP API (default port 6732), as `octez-client -R`, `octez-baker` remote
//! keys and Taquito's `RemoteSigner` call it:
//!
//! - `POST /keys/{pkh}[?authentication=<sig>&version=<n>]`, body a JSON string of hex bytes
//!   (magic byte first) → `{"signature": "edsig…|spsig1…|p2sig…|BLsig…"}`
//! - `GET /keys/{pkh}` → `{"public_key": "edpk…|sppk…|p2pk…|BLpk…"}`
//! - `GET /authorized_keys` → `{}`, or `{"authorized_keys": ["tz…"]}` with authentication on
//! - `GET /known_keys` → `{"known_keys": ["tz…"]}` (only with `--tezos-allow-list-known-keys`)
//! - `GET /bls_prove_possession/{pkh}[?bls_pk=BLpk…]` → `{"bls_prove_possession": "BLsig…"}`
//!   (tz4 keys whose policy allows it)
//!
//! Errors use octez's JSON error shape `[{"id": "…", "kind": "temporary", "msg": "…"}]`: 400
//! malformed, 401 missing authentication, 403 bad authentication or refused by policy, 404
//! unknown key, 409 refused by the high watermark, 414 query string too long, 415 a `POST`
//! without `Content-Type: application/json`, 503 database unavailable.
//!
//! Hostile input is bounded before any decoding: the raw query string
//! ([`MAX_QUERY_BYTES`]), each query parameter ([`MAX_AUTHENTICATION_CHARS`],
//! [`MAX_VERSION_CHARS`], [`MAX_BLS_PK_CHARS`]) and the `{pkh}` path segment
//! ([`MAX_PKH_CHARS`]) are checked by length first, and the `authentication` signature is
//! base58-decoded once per request, not once per authorized key. With authentication required,
//! `POST /keys/{pkh}` authenticates before it looks the key up, so an unknown pkh answers exactly
//! like a known one (401 without `authentication`, 403 with a wrong one); only an authenticated
//! caller learns that a key is unknown (404). `GET /keys/{pkh}` stays unauthenticated, as in
//! octez (`octez-client` fetches public keys without authentication).
//!
//! `POST /keys/{pkh}` requires `Content-Type: application/json` (any parameters, e.g.
//! `charset`): what octez-client (its RPC client sends the first of its media types, JSON) and
//! Taquito's `RemoteSigner` (`@taquito/http-utils` sets `application/json`) send, and what a
//! browser cannot send cross-site without a CORS preflight.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;

use super::BodyError;
use crate::crypto::tezos::PublicKey;
use crate::keys::Keys;
use crate::metrics::METRICS;
use crate::protection::order::ArrivalOrder;
use crate::protection::{ProtectionError, ProtectionStore};
use crate::service::tezos::{AuthenticationInput, TezosService, TezosSignError, TezosSignRequest};
pub use crate::service::tezos::{AuthorizedKeys, DEFAULT_SIGNATURE_VERSION};

/// Largest request body: 64 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest raw query string accepted (bytes, before percent-decoding): 4 KiB; longer is 414.
/// The longest legitimate one, `authentication=<mdsig…>&version=NNN`, is 3,343 bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

/// Longest `authentication` value accepted: 3,400 characters. Base58 Tezos signatures are 96
/// (`sig…`), 98–99 (`edsig…`, `spsig1…`, `p2sig…`), 142 (`BLsig…`) or 3,316 (`mdsig…`, tz5
/// authorized keys) characters.
pub const MAX_AUTHENTICATION_CHARS: usize = 3400;

/// Longest `version` value accepted: 3 characters (a `u8`).
pub const MAX_VERSION_CHARS: usize = 3;

/// Longest `bls_pk` value accepted: 100 characters (a `BLpk…` is 76).
pub const MAX_BLS_PK_CHARS: usize = 100;

/// Longest `{pkh}` path segment accepted: 40 characters (every `tz1…`–`tz5…` is 36).
pub const MAX_PKH_CHARS: usize = 40;

/// What the Tezos handlers share.
#[derive(Clone)]
pub struct TezosState {
    /// The keys being served (the Tezos part is used here).
    pub keys: Arc<Keys>,
    /// Where the high watermarks live.
    pub store: Arc<dyn ProtectionStore>,
    /// Magic bytes signed at all (`--tezos-magic-bytes`).
    pub magic_bytes: Vec<u8>,
    /// Whether `GET /known_keys` answers.
    pub allow_list_known_keys: bool,
    /// `Some` when every signing request must be authenticated by one of these keys.
    pub authorized_keys: Option<Arc<AuthorizedKeys>>,
    /// The arrival order of consensus requests per high watermark, shared by the HTTP and
    /// binary transports (a clone of the state shares it).
    pub order: Arc<ArrivalOrder>,
}

impl TezosState {
    /// The Tezos signing service over this state's keys, store, magic bytes and authorized
    /// keys.
    pub fn service(&self) -> TezosService<'_> {
        TezosService {
            keys: &self.keys,
            store: self.store.as_ref(),
            magic_bytes: &self.magic_bytes,
            authorized_keys: self.authorized_keys.as_deref(),
            order: &self.order,
        }
    }
}

/// An error in octez's JSON shape.
#[derive(Debug)]
pub struct TezosError {
    status: StatusCode,
    id: &'static str,
    msg: String,
}

impl TezosError {
    /// The HTTP status this error is answered with (the binary transports count it in the
    /// same request metrics).
    pub fn status_u16(&self) -> u16 {
        self.status.as_u16()
    }

    /// The error's message (what the binary transports send in octez's `failure` error).
    pub fn message(&self) -> &str {
        &self.msg
    }

    fn new(status: StatusCode, id: &'static str, msg: impl Into<String>) -> Self {
        TezosError {
            status,
            id,
            msg: msg.into(),
        }
    }
    fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "palisade.tezos.malformed_request",
            msg,
        )
    }
    fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "palisade.tezos.unsupported_media_type",
            "POST /keys/{pkh} needs exactly one `Content-Type: application/json` header (the body \
             is a JSON string of hex bytes)",
        )
    }
    fn missing_authentication() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "palisade.tezos.missing_authentication",
            "this signer requires an authentication signature (query parameter `authentication`)",
        )
    }
    fn bad_authentication() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "palisade.tezos.bad_authentication",
            "the authentication signature is not by an authorized key",
        )
    }
    fn unknown_key(pkh: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "palisade.tezos.unknown_key",
            format!("no key for {pkh}"),
        )
    }
    fn policy(msg: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "palisade.tezos.refused_by_policy",
            msg,
        )
    }
}

impl std::fmt::Display for TezosError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.id, self.msg)
    }
}

impl ResponseError for TezosError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(serde_json::json!([
            { "id": self.id, "kind": "temporary", "msg": self.msg }
        ]))
    }
}

impl From<BodyError> for TezosError {
    fn from(e: BodyError) -> Self {
        TezosError::bad_request(e.to_string())
    }
}

impl From<ProtectionError> for TezosError {
    /// The status comes from [`ProtectionError::outcome`]; the octez error id names the
    /// case (high watermark, database unavailable, anything else).
    fn from(e: ProtectionError) -> Self {
        let status = super::error::protection_status(&e);
        let id = match e {
            ProtectionError::Watermark(_) => "palisade.tezos.high_watermark",
            _ if e.is_unavailable() => "palisade.tezos.database_unavailable",
            _ => "palisade.tezos.internal",
        };
        let msg = match e {
            ProtectionError::Watermark(v) => v.to_string(),
            other => other.to_string(),
        };
        TezosError::new(status, id, msg)
    }
}

impl From<TezosSignError> for TezosError {
    fn from(e: TezosSignError) -> Self {
        let msg = e.to_string();
        match e {
            TezosSignError::MissingAuthentication => TezosError::missing_authentication(),
            TezosSignError::BadAuthentication => TezosError::bad_authentication(),
            TezosSignError::UnknownKey(pkh) => TezosError::unknown_key(&pkh),
            TezosSignError::Malformed(m) => TezosError::bad_request(m),
            TezosSignError::Policy(m) => TezosError::policy(m),
            TezosSignError::Protection(p) => p.into(),
            TezosSignError::BackendTimeout(_) | TezosSignError::Backend(_) => TezosError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "palisade.tezos.signing_backend",
                msg,
            ),
            TezosSignError::Internal(m) => TezosError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "palisade.tezos.internal",
                m,
            ),
        }
    }
}

/// Query parameters of `POST /keys/{pkh}`.
#[derive(Debug, Default, Deserialize)]
struct SignQuery {
    authentication: Option<String>,
    version: Option<String>,
}

/// Query parameters of `GET /bls_prove_possession/{pkh}`.
#[derive(Debug, Default, Deserialize)]
struct PopQuery {
    bls_pk: Option<String>,
}

/// Parses the query string, refusing one longer than [`MAX_QUERY_BYTES`] (414) before any
/// decoding.
fn query<T: for<'de> Deserialize<'de>>(req: &HttpRequest) -> Result<T, TezosError> {
    let raw = req.query_string();
    if raw.len() > MAX_QUERY_BYTES {
        return Err(TezosError::new(
            StatusCode::URI_TOO_LONG,
            "palisade.tezos.query_too_long",
            format!("query string is longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    web::Query::<T>::from_query(raw)
        .map(web::Query::into_inner)
        .map_err(|e| TezosError::bad_request(format!("bad query string: {e}")))
}

/// Refuses a query parameter longer than `max` characters (400).
fn bounded<'a>(
    name: &str,
    value: Option<&'a str>,
    max: usize,
) -> Result<Option<&'a str>, TezosError> {
    match value {
        Some(v) if v.len() > max => Err(TezosError::bad_request(format!(
            "query parameter `{name}` is longer than {max} characters"
        ))),
        other => Ok(other),
    }
}

/// Refuses a `{pkh}` path segment longer than [`MAX_PKH_CHARS`] (400): no key has one.
fn pkh_segment(pkh: &str) -> Result<&str, TezosError> {
    if pkh.len() > MAX_PKH_CHARS {
        return Err(TezosError::bad_request(format!(
            "`{{pkh}}` is longer than {MAX_PKH_CHARS} characters: not a public key hash"
        )));
    }
    Ok(pkh)
}

/// Refuses a request without exactly one `Content-Type` whose media type is `application/json`
/// (415), by [`super::is_json_content_type`], the rule of every listener.
fn require_json(req: &HttpRequest) -> Result<(), TezosError> {
    if super::is_json_content_type(req.headers()) {
        Ok(())
    } else {
        Err(TezosError::unsupported_media_type())
    }
}

/// [`crate::service::tezos::authenticate`], answered as HTTP: 401 without `authentication`,
/// 403 otherwise.
#[cfg(test)]
fn authenticate(
    authorized: &[PublicKey],
    pkh: &str,
    data: &[u8],
    authentication: Option<&str>,
) -> Result<(), TezosError> {
    crate::service::tezos::authenticate(
        authorized,
        pkh,
        data,
        authentication.map(AuthenticationInput::Base58),
    )
    .map_err(TezosError::from)
}

/// `POST /keys/{pkh}`: parses the bytes by fixed offsets, applies the global magic-byte list
/// and the key's policy, signs, and for block/preattestation/attestation checks and records
/// the high watermark (committed before the signature is returned; an exact repeat of the
/// bytes last signed at the mark gets the stored signature). Every decision (signed, refused by
/// policy or by the high watermark) is recorded in the audit trail with the caller's IP; a
/// signature is released only after its audit entry committed.
pub async fn sign(
    state: web::Data<TezosState>,
    pkh: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, TezosError> {
    let started = std::time::Instant::now();
    let mut kind = "unknown";
    let result = sign_inner(state, pkh, req, body, &mut kind).await;
    let status = match &result {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.status.as_u16(),
    };
    METRICS.request("tezos", kind, status, started.elapsed());
    result
}

/// [`sign`] without the request metrics; sets `kind` once the bytes are parsed. Bounds and
/// decodes the request, calls [`TezosService::sign`], encodes the answer.
async fn sign_inner(
    state: web::Data<TezosState>,
    pkh: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
    kind_label: &mut &'static str,
) -> Result<HttpResponse, TezosError> {
    // Everything the client controls is bounded before it is decoded, and nothing about the
    // key is looked at before the caller is authenticated (by the service).
    let pkh = pkh_segment(&pkh)?;
    require_json(&req)?;
    let q: SignQuery = query(&req)?;
    let authentication = bounded(
        "authentication",
        q.authentication.as_deref(),
        MAX_AUTHENTICATION_CHARS,
    )?;
    let version = bounded("version", q.version.as_deref(), MAX_VERSION_CHARS)?;
    let body = super::read_body(&req, body, MAX_BODY_BYTES).await?;
    let hex_str: String = serde_json::from_slice(&body).map_err(|e| {
        TezosError::bad_request(format!("body must be a JSON string of hex bytes: {e}"))
    })?;
    let data = hex::decode(hex_str.trim_start_matches("0x"))
        .map_err(|e| TezosError::bad_request(format!("body is not valid hex: {e}")))?;
    let (kind, result) = state
        .service()
        .sign(TezosSignRequest {
            pkh,
            data,
            authentication: authentication.map(AuthenticationInput::Base58),
            version,
            caller: super::caller(&req),
        })
        .await;
    *kind_label = kind;
    let signature = result?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "signature": signature.to_b58() })))
}

/// `GET /keys/{pkh}` → `{"public_key": "…"}`.
pub async fn public_key(
    state: web::Data<TezosState>,
    pkh: web::Path<String>,
) -> Result<HttpResponse, TezosError> {
    let key = state.service().key(pkh_segment(&pkh)?)?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "public_key": key.signer.public_key().to_b58() })))
}

/// `GET /authorized_keys`: `{}` without authentication, else the authorized keys' pkhs.
pub async fn authorized_keys(state: web::Data<TezosState>) -> HttpResponse {
    match &state.authorized_keys {
        None => HttpResponse::Ok().json(serde_json::json!({})),
        Some(authorized) => {
            HttpResponse::Ok().json(serde_json::json!({ "authorized_keys": authorized.pkhs() }))
        }
    }
}

/// `GET /known_keys` (only with `--tezos-allow-list-known-keys`).
pub async fn known_keys(state: web::Data<TezosState>) -> Result<HttpResponse, TezosError> {
    if !state.allow_list_known_keys {
        return Err(TezosError::new(
            StatusCode::NOT_FOUND,
            "palisade.tezos.no_such_route",
            "listing known keys is disabled (--tezos-allow-list-known-keys)",
        ));
    }
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "known_keys": state.keys.current().tezos_pkhs() })))
}

/// `GET /bls_prove_possession/{pkh}[?bls_pk=BLpk…]`: a proof of possession of the key (or of
/// `bls_pk`), for tz4 keys whose policy sets `provePossession: true`.
pub async fn bls_prove_possession(
    state: web::Data<TezosState>,
    pkh: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, TezosError> {
    let pkh = pkh_segment(&pkh)?;
    let q: PopQuery = query(&req)?;
    let bls_pk = bounded("bls_pk", q.bls_pk.as_deref(), MAX_BLS_PK_CHARS)?;
    let proof = state.service().prove_possession(pkh, bls_pk).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "bls_prove_possession": proof.to_b58() })))
}

/// Registers the octez-signer routes on an actix app.
pub fn configure(state: TezosState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state))
            .route("/keys/{pkh}", web::post().to(sign))
            .route("/keys/{pkh}", web::get().to(public_key))
            .route("/authorized_keys", web::get().to(authorized_keys))
            .route("/known_keys", web::get().to(known_keys))
            .route(
                "/bls_prove_possession/{pkh}",
                web::get().to(bls_prove_possession),
            )
            .route("/upcheck", web::get().to(super::health::upcheck))
            .route("/openapi.json", web::get().to(super::openapi::tezos))
            .default_service(web::to(|| async {
                TezosError::new(
                    StatusCode::NOT_FOUND,
                    "palisade.tezos.no_such_route",
                    "no such route",
                )
                .error_response()
            }));
    }
}

/// Reads `--tezos-authorized-keys`: one base58 public key per line; blank lines and `#`
/// comments are skipped.
///
/// # Errors
/// A message naming the file and line of a key that does not decode.
pub fn read_authorized_keys(path: &std::path::Path) -> Result<Vec<PublicKey>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        keys.push(
            PublicKey::from_b58(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?,
        );
    }
    if keys.is_empty() {
        return Err(format!("{} holds no public key", path.display()));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tezos::authentication_message;
    use crate::crypto::tezos::{Curve, SecretKey};

    fn status(r: Result<(), TezosError>) -> Option<u16> {
        r.err().map(|e| e.status.as_u16())
    }

    #[test]
    fn authentication_is_checked_without_the_key_and_in_every_form() {
        let client = SecretKey::generate(Curve::Ed25519);
        let bls = SecretKey::generate(Curve::Bls);
        let tz5 = SecretKey::generate(Curve::Mldsa44);
        let authorized = vec![bls.public_key(), client.public_key(), tz5.public_key()];
        let signer = SecretKey::generate(Curve::Secp256k1).public_key();
        let pkh = signer.pkh_b58();
        let data = [0x13, 1, 2, 3];
        let message = authentication_message(&signer.pkh_bytes(), &data);
        let typed = client.sign(&message, 2).unwrap();
        let generic = typed.to_generic_b58().unwrap();
        let by_bls = bls.sign(&message, 2).unwrap().to_b58();
        let check = |pkh: &str, auth: Option<&str>| authenticate(&authorized, pkh, &data, auth);
        assert_eq!(status(check(&pkh, Some(&typed.to_b58()))), None);
        assert_eq!(status(check(&pkh, Some(&generic))), None);
        assert_eq!(status(check(&pkh, Some(&by_bls))), None);
        let by_tz5 = tz5.sign(&message, 3).unwrap().to_b58();
        assert_eq!(status(check(&pkh, Some(&by_tz5))), None);
        // The same tz5 signature over other bytes is refused, and so is any `mdsig…` where no
        // authorized key is tz5 (refused before it is decoded).
        assert_eq!(
            status(authenticate(&authorized, &pkh, &[0x13, 9], Some(&by_tz5))),
            Some(403)
        );
        assert_eq!(
            status(authenticate(&authorized[..2], &pkh, &data, Some(&by_tz5))),
            Some(403)
        );
        assert_eq!(status(check(&pkh, None)), Some(401));
        // Over another pkh, a malformed pkh, or not a signature at all: all 403 alike.
        let other = SecretKey::generate(Curve::Ed25519).public_key().pkh_b58();
        assert_eq!(status(check(&other, Some(&generic))), Some(403));
        assert_eq!(status(check("tz1notakey", Some(&generic))), Some(403));
        assert_eq!(status(check("tz1notakey", None)), Some(401));
        assert_eq!(status(check(&pkh, Some("edsigNOPE"))), Some(403));
        assert_eq!(status(check(&pkh, Some(""))), Some(403));
        // A signature by a key that is not authorized.
        let outsider = SecretKey::generate(Curve::Ed25519)
            .sign(&message, 2)
            .unwrap();
        assert_eq!(status(check(&pkh, Some(&outsider.to_b58()))), Some(403));
    }

    #[test]
    fn limits_are_checked_before_decoding() {
        assert!(bounded("version", Some("2"), MAX_VERSION_CHARS).is_ok());
        assert!(bounded("version", None, MAX_VERSION_CHARS).is_ok());
        let long = "9".repeat(MAX_VERSION_CHARS + 1);
        let err = bounded("version", Some(&long), MAX_VERSION_CHARS).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.msg.contains("version"), "{}", err.msg);
        let pkh = SecretKey::generate(Curve::Bls).public_key().pkh_b58();
        assert_eq!(pkh.len(), 36);
        assert!(pkh_segment(&pkh).is_ok());
        assert!(pkh_segment(&"t".repeat(MAX_PKH_CHARS + 1)).is_err());
        // The longest signature and public key fit their limits.
        let sig = SecretKey::generate(Curve::Mldsa44)
            .sign(b"x", 3)
            .unwrap()
            .to_b58();
        assert!(sig.len() <= MAX_AUTHENTICATION_CHARS, "{}", sig.len());
        let pk = SecretKey::generate(Curve::Bls).public_key().to_b58();
        assert!(pk.len() <= MAX_BLS_PK_CHARS, "{}", pk.len());
        let query = format!("authentication={sig}&version=255");
        assert!(query.len() <= MAX_QUERY_BYTES);
    }
}
