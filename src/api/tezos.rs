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
use crate::chain::tezos::authentication_message;
use crate::chain::tezos::base58::{self, Prefix};
use crate::chain::tezos::payload::{self, Payload, magic_byte_name};
use crate::crypto::tezos::{Curve, PublicKey, Signature, blake2b_256, decode_pkh};
use crate::keys::tezos::TezosKey;
use crate::keys::{Keys, SignError, on_pool};
use crate::metrics::METRICS;
use crate::protection::audit::AuditEntry;
use crate::protection::watermark::{TezosWatermarkRequest, WatermarkDecision};
use crate::protection::{ProtectionError, ProtectionStore};

/// Largest request body: 64 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest raw query string accepted (bytes, before percent-decoding): 1 KiB; longer is 414.
/// The longest legitimate one, `authentication=<BLsig…>&version=N`, is under 160 bytes.
pub const MAX_QUERY_BYTES: usize = 1024;

/// Longest `authentication` value accepted: 200 characters. Base58 Tezos signatures are 96
/// (`sig…`), 98–99 (`edsig…`, `spsig1…`, `p2sig…`) or 142 (`BLsig…`) characters.
pub const MAX_AUTHENTICATION_CHARS: usize = 200;

/// Longest `version` value accepted: 3 characters (a `u8`).
pub const MAX_VERSION_CHARS: usize = 3;

/// Longest `bls_pk` value accepted: 100 characters (a `BLpk…` is 76).
pub const MAX_BLS_PK_CHARS: usize = 100;

/// Longest `{pkh}` path segment accepted: 40 characters (every `tz1…`–`tz4…` is 36).
pub const MAX_PKH_CHARS: usize = 40;

/// Signature version used when the request gives none: 2 (for tz4, the proof-of-possession
/// ciphersuite).
pub const DEFAULT_SIGNATURE_VERSION: u8 = 2;

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
}

/// The keys allowed to authenticate signing requests, with their pkhs computed once (octez-client
/// asks `GET /authorized_keys` before every signature).
#[derive(Debug)]
pub struct AuthorizedKeys {
    keys: Vec<PublicKey>,
    pkhs: Vec<String>,
}

impl AuthorizedKeys {
    /// Wraps the authorized public keys.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        let pkhs = keys.iter().map(PublicKey::pkh_b58).collect();
        AuthorizedKeys { keys, pkhs }
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
    fn from(e: ProtectionError) -> Self {
        match e {
            ProtectionError::Watermark(v) => TezosError::new(
                StatusCode::CONFLICT,
                "palisade.tezos.high_watermark",
                v.to_string(),
            ),
            other @ ProtectionError::Unavailable(_) => TezosError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "palisade.tezos.database_unavailable",
                other.to_string(),
            ),
            other => TezosError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "palisade.tezos.internal",
                other.to_string(),
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

fn key(state: &TezosState, pkh: &str) -> Result<Arc<TezosKey>, TezosError> {
    state
        .keys
        .current()
        .tezos(pkh)
        .ok_or_else(|| TezosError::unknown_key(pkh))
}

/// An `authentication` query value, base58-decoded once: a signature with its scheme's prefix,
/// or the scheme-less `sig…` form (64 bytes, for ed25519, secp256k1 and P-256 keys).
enum Authentication {
    Typed(Signature),
    Generic(Vec<u8>),
}

impl Authentication {
    /// Decodes `s` (already bounded by [`MAX_AUTHENTICATION_CHARS`]); `None` if it is no
    /// Tezos signature.
    fn decode(s: &str) -> Option<Authentication> {
        let mut candidates = Curve::ALL.map(Curve::signature_prefix).to_vec();
        candidates.push(Prefix::GenericSignature);
        let (prefix, raw) = base58::decode_any(s, &candidates).ok()?;
        match Curve::ALL
            .into_iter()
            .find(|c| c.signature_prefix() == prefix)
        {
            Some(curve) => Signature::from_raw(curve, &raw)
                .ok()
                .map(Authentication::Typed),
            None => Some(Authentication::Generic(raw)),
        }
    }

    /// Whether this signature over `message` is by `pk`: one verification, or for tz4 keys
    /// two (signature version 2, proof-of-possession ciphersuite, then 1, AUG).
    fn is_by(&self, pk: &PublicKey, message: &[u8]) -> bool {
        let versions: &[u8] = if pk.curve() == Curve::Bls {
            &[2, 1]
        } else {
            &[2]
        };
        let verify = |sig: &Signature| versions.iter().any(|v| pk.verify(message, sig, *v));
        match self {
            Authentication::Typed(sig) => sig.curve() == pk.curve() && verify(sig),
            Authentication::Generic(raw) => {
                pk.curve() != Curve::Bls
                    && Signature::from_raw(pk.curve(), raw).is_ok_and(|sig| verify(&sig))
            }
        }
    }
}

/// Checks the `authentication` signature over `0x04 0x01 || pkh || data` against every
/// authorized key, where `pkh` is the binary form of the request's `{pkh}` path segment. It
/// does not look the key up: an unknown or malformed pkh fails exactly like a wrong signature
/// (401 without `authentication`, 403 otherwise), so that keys cannot be enumerated.
fn authenticate(
    authorized: &[PublicKey],
    pkh: &str,
    data: &[u8],
    authentication: Option<&str>,
) -> Result<(), TezosError> {
    let auth = authentication.ok_or_else(TezosError::missing_authentication)?;
    let Ok((curve, hash)) = decode_pkh(pkh) else {
        return Err(TezosError::bad_authentication());
    };
    let auth = Authentication::decode(auth).ok_or_else(TezosError::bad_authentication)?;
    let mut pkh_bytes = [0u8; 21];
    pkh_bytes[0] = curve.pkh_tag();
    pkh_bytes[1..].copy_from_slice(&hash);
    let message = authentication_message(&pkh_bytes, data);
    if authorized.iter().any(|pk| auth.is_by(pk, &message)) {
        Ok(())
    } else {
        Err(TezosError::bad_authentication())
    }
}

/// The hash a high watermark keeps of the signed bytes: blake2b-256 of the bytes, except for
/// tz4 keys signing with the AUG ciphersuite (version 1), where it covers `"AUG" || bytes`, so
/// that an exact repeat is only answered with a stored signature of the same ciphersuite (a
/// repeat in the other ciphersuite is refused like any other conflicting request).
/// `digest` is blake2b-256 of `data`, already computed for the audit trail.
fn watermark_hash(curve: Curve, version: u8, data: &[u8], digest: [u8; 32]) -> [u8; 32] {
    if curve == Curve::Bls && version == 1 {
        let mut tagged = b"AUG".to_vec();
        tagged.extend_from_slice(data);
        blake2b_256(&tagged)
    } else {
        digest
    }
}

/// Runs a signing closure: on the CPU signing pool for in-memory keys; on the blocking pool
/// with the backend's timeout for I/O-bound backends (HSMs). A backend failure or timeout is
/// 503 (nothing signed), a dropped job 500.
async fn sign_on_pool(
    io_timeout: Option<std::time::Duration>,
    f: impl FnOnce() -> Result<Signature, SignError> + Send + 'static,
) -> Result<Signature, TezosError> {
    let started = std::time::Instant::now();
    let outcome = match io_timeout {
        None => on_pool(f).await,
        Some(limit) => match tokio::time::timeout(limit, tokio::task::spawn_blocking(f)).await {
            Ok(joined) => {
                let failed = !matches!(joined, Ok(Ok(_)));
                METRICS
                    .hsm_duration
                    .with_label_values(&["sign"])
                    .observe(started.elapsed().as_secs_f64());
                if failed {
                    METRICS.hsm_errors.with_label_values(&["sign"]).inc();
                }
                joined.ok()
            }
            Err(_) => {
                METRICS
                    .hsm_errors
                    .with_label_values(&["sign_timeout"])
                    .inc();
                return Err(TezosError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "palisade.tezos.signing_backend",
                    format!(
                        "signing backend did not answer within {} ms",
                        limit.as_millis()
                    ),
                ));
            }
        },
    };
    outcome
        .ok_or_else(|| {
            TezosError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "palisade.tezos.internal",
                "signing pool dropped the job",
            )
        })?
        .map_err(|e| {
            TezosError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "palisade.tezos.signing_backend",
                e.to_string(),
            )
        })
}

fn parse_version(raw: Option<&str>, curve: Curve) -> Result<u8, TezosError> {
    let version = match raw {
        None => DEFAULT_SIGNATURE_VERSION,
        Some(v) => v
            .parse::<u8>()
            .map_err(|_| TezosError::bad_request(format!("version `{v}` is not a number")))?,
    };
    if curve == Curve::Bls && version == 0 {
        return Err(TezosError::bad_request(
            "BLS (tz4) keys need signature version 1 (AUG) or 2 and later (proof of possession)",
        ));
    }
    Ok(version)
}

/// The audit trail's kind of a non-consensus operation, by magic byte.
fn audit_kind(magic: u8) -> &'static str {
    match magic {
        0x03 => "generic_operation",
        0x05 => "michelson_data",
        0x01 => "legacy_block",
        0x02 => "legacy_endorsement",
        _ => "unknown",
    }
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

/// [`sign`] without the request metrics; sets `kind` once the bytes are parsed.
async fn sign_inner(
    state: web::Data<TezosState>,
    pkh: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
    kind_label: &mut &'static str,
) -> Result<HttpResponse, TezosError> {
    // Everything the client controls is bounded before it is decoded, and nothing about the
    // key is looked at before the caller is authenticated.
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
    if let Some(authorized) = &state.authorized_keys {
        authenticate(&authorized.keys, pkh, &data, authentication)?;
    }
    let key = key(&state, pkh)?;
    let curve = key.signer.public_key().curve();
    let version = parse_version(version, curve)?;
    let parsed = payload::parse(&data).map_err(|e| TezosError::bad_request(e.to_string()))?;
    let magic = data[0];
    let consensus = match &parsed {
        Payload::Consensus(c) => Some(c.clone()),
        _ => None,
    };
    let digest = blake2b_256(&data);
    let audit = {
        let kind = match &consensus {
            Some(c) => c.kind.as_str(),
            None => audit_kind(magic),
        };
        *kind_label = kind;
        let entry =
            AuditEntry::tezos(&key.pkh, kind, Some(digest)).with_caller(super::caller(&req));
        match &consensus {
            Some(c) => entry.with_level_round(c.level, c.round),
            None => entry,
        }
    };
    let refused_by_policy = if !state.magic_bytes.contains(&magic) {
        Some(format!(
            "magic byte 0x{magic:02x} ({}) is not in this signer's allowed magic bytes",
            magic_byte_name(magic).unwrap_or("unknown")
        ))
    } else {
        key.policy
            .check(&parsed, &key.signer.public_key().pkh_bytes())
            .err()
            .map(|e| e.to_string())
    };
    if let Some(reason) = refused_by_policy {
        METRICS
            .policy_rejections
            .with_label_values(&["tezos"])
            .inc();
        // The refusal is answered even if it cannot be recorded.
        if let Err(e) = state.store.append_audit(&audit.refused(&reason)).await {
            tracing::warn!(reason = %e, "could not record a refusal in the audit log");
        }
        return Err(TezosError::policy(reason));
    }
    let data = Arc::new(data);
    let (signer_key, to_sign) = (key.clone(), data.clone());
    let timeout = key.signer.io_timeout();
    let signature =
        sign_on_pool(timeout, move || signer_key.signer.sign(&to_sign, version)).await?;
    let released = match consensus {
        None => {
            // No high watermark: the audit entry alone is committed before release.
            let t = std::time::Instant::now();
            let appended = state.store.append_audit(&audit).await;
            METRICS.db_call("audit_append", t.elapsed(), appended.is_err());
            appended?;
            signature
        }
        Some(c) => {
            let request = TezosWatermarkRequest {
                chain_id: c.chain_id,
                pkh: key.pkh.clone(),
                kind: c.kind,
                level: c.level,
                round: c.round,
                payload_hash: watermark_hash(curve, version, &data, digest),
                signature: signature.as_bytes().to_vec(),
            };
            let t = std::time::Instant::now();
            let decided = state
                .store
                .tezos_check_record_and_audit(&request, audit)
                .await;
            METRICS.db_call(
                "tezos_check_and_record",
                t.elapsed(),
                matches!(decided, Err(ProtectionError::Unavailable(_))),
            );
            if matches!(decided, Err(ProtectionError::Watermark(_))) {
                METRICS
                    .tezos_watermark_rejections
                    .with_label_values(&[c.kind.as_str()])
                    .inc();
            }
            match decided {
                Ok(WatermarkDecision::SignAndRecord) => signature,
                Ok(WatermarkDecision::Repeat(stored)) => Signature::from_raw(curve, &stored)
                    .map_err(|e| {
                        TezosError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "palisade.tezos.internal",
                            format!("stored signature unreadable: {e}"),
                        )
                    })?,
                Err(e) => {
                    tracing::warn!(pkh = %key.pkh, kind = c.kind.as_str(), level = c.level, round = c.round, reason = %e, "tezos signing refused");
                    return Err(e.into());
                }
            }
        }
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({ "signature": released.to_b58() })))
}

/// `GET /keys/{pkh}` → `{"public_key": "…"}`.
pub async fn public_key(
    state: web::Data<TezosState>,
    pkh: web::Path<String>,
) -> Result<HttpResponse, TezosError> {
    let key = key(&state, pkh_segment(&pkh)?)?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "public_key": key.signer.public_key().to_b58() })))
}

/// `GET /authorized_keys`: `{}` without authentication, else the authorized keys' pkhs.
pub async fn authorized_keys(state: web::Data<TezosState>) -> HttpResponse {
    match &state.authorized_keys {
        None => HttpResponse::Ok().json(serde_json::json!({})),
        Some(authorized) => {
            HttpResponse::Ok().json(serde_json::json!({ "authorized_keys": authorized.pkhs }))
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
    let key = key(&state, pkh)?;
    if key.signer.public_key().curve() != Curve::Bls {
        return Err(TezosError::bad_request(format!(
            "{} is not a BLS (tz4) key: no proof of possession",
            key.pkh
        )));
    }
    if !key.policy.allows_prove_possession() {
        return Err(TezosError::policy(
            "policy of this key does not allow proofs of possession (provePossession: true)",
        ));
    }
    let override_pk = match bls_pk {
        None => None,
        Some(b58) => {
            let pk = PublicKey::from_b58(b58)
                .map_err(|e| TezosError::bad_request(format!("bls_pk: {e}")))?;
            if pk.curve() != Curve::Bls {
                return Err(TezosError::bad_request("bls_pk must be a BLpk public key"));
            }
            Some(pk)
        }
    };
    let proof = sign_on_pool(key.signer.io_timeout(), move || {
        key.signer.prove_possession(override_pk.as_ref())
    })
    .await?;
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
    use crate::crypto::tezos::SecretKey;

    fn status(r: Result<(), TezosError>) -> Option<u16> {
        r.err().map(|e| e.status.as_u16())
    }

    #[test]
    fn authentication_is_checked_without_the_key_and_in_every_form() {
        let client = SecretKey::generate(Curve::Ed25519);
        let bls = SecretKey::generate(Curve::Bls);
        let authorized = vec![bls.public_key(), client.public_key()];
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
        let sig = SecretKey::generate(Curve::Bls)
            .sign(b"x", 2)
            .unwrap()
            .to_b58();
        assert!(sig.len() <= MAX_AUTHENTICATION_CHARS, "{}", sig.len());
        let pk = SecretKey::generate(Curve::Bls).public_key().to_b58();
        assert!(pk.len() <= MAX_BLS_PK_CHARS, "{}", pk.len());
        let query = format!("authentication={sig}&version=255");
        assert!(query.len() <= MAX_QUERY_BYTES);
    }
}
