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

/// Path prefixes of the eth2 listener's admin routes: `/reload`, the key inventory
/// `/api/v1/keys` and the Keymanager API (`/eth/…`, every route of that standard).
pub const ETH2_ADMIN_PREFIXES: &[&str] = &["/reload", "/api/v1/keys", "/eth/"];

/// The cross-site policy of one listener, enforced by [`request_guard`] on every request
/// before it reaches routing or a handler. Registered as app data (`web::Data<RequestGuard>`).
///
/// - A request carrying an `Origin` header (a web page's request) is refused with 403 unless
///   the origin is in `--http-cors-origins` (exact match, ASCII case ignored; `*` allows any).
///   This holds for CORS preflights too, so a page gets no permission either way.
/// - On an admin route (path under one of `admin_prefixes`), every request carrying an
///   `Origin` is refused with 403, whatever `--http-cors-origins` says: no page may reload
///   keys, read the inventory or use the Keymanager API.
/// - With `require_json`, every request whose method may change state (anything but GET,
///   HEAD and OPTIONS) must carry exactly one `Content-Type` whose media type is
///   `application/json` (parameters such as `; charset=utf-8` allowed, case ignored), else
///   415. A browser cannot send that type cross-site without a CORS preflight, which the
///   origin rule refuses, so a page cannot sign or administer through a "simple" request
///   (`text/plain`, forms, `sendBeacon`). Every validator client sends it (Lighthouse,
///   Teku, Prysm, Nimbus, Lodestar; Prysm on `POST /reload` too).
///
/// Refusals are JSON `{"error": "…"}`. Without this app data the strictest policy applies
/// (no origin allowed, the eth2 admin prefixes, JSON required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestGuard {
    /// `None`: any origin (`*`); otherwise the allowed origins, lowercased.
    origins: Option<Vec<String>>,
    /// Admin route prefixes (refuse any `Origin`).
    admin_prefixes: &'static [&'static str],
    /// Whether state-changing methods need `Content-Type: application/json`.
    require_json: bool,
}

impl RequestGuard {
    /// A policy: `cors_origins` as given to `--http-cors-origins` (`*` for any), the admin
    /// route prefixes, and whether state-changing requests must be JSON.
    pub fn new(
        cors_origins: &[String],
        admin_prefixes: &'static [&'static str],
        require_json: bool,
    ) -> RequestGuard {
        let origins = if cors_origins.iter().any(|o| o.trim() == "*") {
            None
        } else {
            Some(
                cors_origins
                    .iter()
                    .map(|o| o.trim().to_ascii_lowercase())
                    .filter(|o| !o.is_empty())
                    .collect(),
            )
        };
        RequestGuard {
            origins,
            admin_prefixes,
            require_json,
        }
    }

    /// The eth2 listener's policy: [`ETH2_ADMIN_PREFIXES`], JSON required.
    pub fn eth2(cors_origins: &[String]) -> RequestGuard {
        RequestGuard::new(cors_origins, ETH2_ADMIN_PREFIXES, true)
    }

    /// Whether `origin` (an `Origin` header value) may make cross-origin requests.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        match &self.origins {
            None => true,
            Some(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin.trim())),
        }
    }

    /// Whether `path` (the request path as routed) is an admin route.
    pub fn is_admin(&self, path: &str) -> bool {
        let path = path.to_ascii_lowercase();
        self.admin_prefixes.iter().any(|p| path.starts_with(p))
    }

    /// The refusal for a request, if any: (status, message). `headers` are the request's,
    /// `path` the path as routed.
    pub fn check(
        &self,
        method: &actix_web::http::Method,
        path: &str,
        headers: &actix_web::http::header::HeaderMap,
    ) -> Result<(), (actix_web::http::StatusCode, String)> {
        use actix_web::http::{Method, StatusCode, header};
        let mut origins = headers.get_all(header::ORIGIN);
        match (origins.next(), origins.next()) {
            (None, _) => {}
            (Some(_), Some(_)) => {
                return Err((
                    StatusCode::FORBIDDEN,
                    "requests with more than one Origin header are refused".into(),
                ));
            }
            (Some(origin), None) => {
                let shown = shown_origin(origin);
                if self.is_admin(path) {
                    return Err((
                        StatusCode::FORBIDDEN,
                        format!(
                            "admin routes refuse requests from web pages (Origin `{shown}`),                              whatever --http-cors-origins allows"
                        ),
                    ));
                }
                if !origin.to_str().is_ok_and(|o| self.origin_allowed(o)) {
                    return Err((
                        StatusCode::FORBIDDEN,
                        format!("origin `{shown}` is not in --http-cors-origins"),
                    ));
                }
            }
        }
        let safe = [Method::GET, Method::HEAD, Method::OPTIONS].contains(method);
        if self.require_json && !safe && !is_json_content_type(headers) {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "{method} {path} needs exactly one `Content-Type: application/json` header                      (what validator clients send); other types, which a web page may send                      cross-site, are refused"
                ),
            ));
        }
        Ok(())
    }
}

/// An `Origin` value for a message: at most 100 characters, non-text bytes replaced.
fn shown_origin(origin: &actix_web::http::header::HeaderValue) -> String {
    String::from_utf8_lossy(origin.as_bytes())
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(100)
        .collect()
}

/// Whether the request carries exactly one `Content-Type` whose media type is
/// `application/json` (RFC 9110 §8.3: type and subtype case-insensitive, parameters after
/// `;` allowed). Reusable by any listener's handlers.
pub fn is_json_content_type(headers: &actix_web::http::header::HeaderMap) -> bool {
    let mut values = headers.get_all(actix_web::http::header::CONTENT_TYPE);
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    value.to_str().is_ok_and(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("application/json")
    })
}

/// Middleware enforcing the [`RequestGuard`] registered as app data (the strictest policy
/// when none is): a refused request is answered 403 or 415 with a JSON body and never reaches
/// routing, CORS or a handler, so nothing is signed, recorded or reloaded. Wrap it outside
/// the CORS middleware (`App::wrap` order: later is outer).
///
/// # Errors
/// The inner service's error, unchanged.
pub async fn request_guard(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let strictest;
    let guard = match req.app_data::<web::Data<RequestGuard>>() {
        Some(g) => g.get_ref(),
        None => {
            strictest = RequestGuard::eth2(&[]);
            &strictest
        }
    };
    // The path as the router sees it (percent-decoded where actix decodes it), so an
    // encoded admin path cannot slip past the prefix check.
    let path = req.match_info().as_str().to_string();
    if let Err((status, message)) = guard.check(req.method(), &path, req.headers()) {
        tracing::warn!(
            method = %req.method(),
            %path,
            status = status.as_u16(),
            reason = %message,
            "request refused by the cross-site guard"
        );
        return Ok(req.into_response(error::json_error(status, message)));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
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

impl AppState {
    /// The eth2 signing service over this state's keys, store and network.
    pub fn eth2_service(&self) -> crate::service::eth2::Eth2Service<'_> {
        crate::service::eth2::Eth2Service {
            keys: &self.keys,
            store: self.store.as_ref(),
            network: &self.network,
        }
    }
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

#[cfg(test)]
mod tests {
    use actix_web::http::header::{self, HeaderMap, HeaderValue};
    use actix_web::http::{Method, StatusCode};
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test as atest};

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn json_content_type() {
        let ct = |v: &[u8]| is_json_content_type(&headers(&[(header::CONTENT_TYPE, v)]));
        assert!(ct(b"application/json"));
        assert!(ct(b"application/json; charset=utf-8"));
        assert!(ct(b"Application/JSON;charset=UTF-8"));
        assert!(ct(b" application/json "));
        for bad in [
            &b"text/plain"[..],
            b"text/plain; application/json",
            b"application/jsonp",
            b"application/json-seq",
            b"application/x-www-form-urlencoded",
            b"multipart/form-data; boundary=x",
            b"",
            b"application/\xffjson",
        ] {
            assert!(!ct(bad), "{}", String::from_utf8_lossy(bad));
        }
        assert!(!is_json_content_type(&HeaderMap::new()));
        assert!(!is_json_content_type(&headers(&[
            (header::CONTENT_TYPE, b"application/json"),
            (header::CONTENT_TYPE, b"text/plain"),
        ])));
    }

    #[test]
    fn guard_rules() {
        let g = RequestGuard::eth2(&["https://Dashboard.example".to_string()]);
        let sign = "/api/v1/eth2/sign/0xab";
        let json = (header::CONTENT_TYPE, &b"application/json"[..]);
        let status = |m: Method, path: &str, h: &[(header::HeaderName, &[u8])]| {
            g.check(&m, path, &headers(h)).err().map(|(s, _)| s)
        };
        assert_eq!(
            status(Method::POST, sign, std::slice::from_ref(&json)),
            None
        );
        assert_eq!(
            status(Method::POST, sign, &[(header::CONTENT_TYPE, b"text/plain")]),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        assert_eq!(
            status(Method::DELETE, "/eth/v1/keystores", &[]),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        assert_eq!(status(Method::GET, "/upcheck", &[]), None);
        let allowed = (header::ORIGIN, &b"https://dashboard.example"[..]);
        let foreign = (header::ORIGIN, &b"https://evil.example"[..]);
        assert_eq!(
            status(Method::POST, sign, &[json.clone(), allowed.clone()]),
            None
        );
        assert_eq!(
            status(Method::OPTIONS, sign, std::slice::from_ref(&allowed)),
            None
        );
        for h in [
            vec![json.clone(), foreign.clone()],
            vec![json.clone(), (header::ORIGIN, &b"null"[..])],
            vec![
                json.clone(),
                (header::ORIGIN, &b"https://dashboard.example\xff"[..]),
            ],
            vec![json.clone(), allowed.clone(), allowed.clone()],
        ] {
            assert_eq!(status(Method::POST, sign, &h), Some(StatusCode::FORBIDDEN));
        }
        assert_eq!(
            status(Method::OPTIONS, sign, std::slice::from_ref(&foreign)),
            Some(StatusCode::FORBIDDEN)
        );
        for path in ["/reload", "/api/v1/keys", "/eth/v1/keystores", "/RELOAD"] {
            for m in [Method::GET, Method::POST, Method::DELETE, Method::OPTIONS] {
                assert_eq!(
                    status(m.clone(), path, &[json.clone(), allowed.clone()]),
                    Some(StatusCode::FORBIDDEN),
                    "{m} {path}"
                );
            }
        }
        // `*` allows any origin, but never on admin routes.
        let any = RequestGuard::eth2(&["*".to_string()]);
        let h = headers(&[json.clone(), foreign.clone()]);
        assert!(any.check(&Method::POST, sign, &h).is_ok());
        assert!(any.check(&Method::POST, "/reload", &h).is_err());
        // The Tezos listener's policy: origins only.
        let tezos = RequestGuard::new(&[], &[], false);
        assert!(
            tezos
                .check(&Method::POST, "/keys/tz1", &HeaderMap::new())
                .is_ok()
        );
        assert!(
            tezos
                .check(
                    &Method::GET,
                    "/keys/tz1",
                    &headers(std::slice::from_ref(&foreign))
                )
                .is_err()
        );
    }

    #[actix_web::test]
    async fn middleware_refuses_before_the_handler_with_json() {
        let app = atest::init_service(
            App::new()
                .app_data(web::Data::new(RequestGuard::eth2(&[])))
                .wrap(from_fn(request_guard))
                .route(
                    "/reload",
                    web::post().to(|| async { HttpResponse::Accepted().finish() }),
                )
                .route(
                    "/api/v1/eth2/sign/{identifier}",
                    web::post().to(|| async { HttpResponse::Ok().finish() }),
                ),
        )
        .await;
        let call = |req: atest::TestRequest| {
            let app = &app;
            async move { atest::call_service(app, req.to_request()).await }
        };
        // A percent-encoded admin path is routed as `/reload`, and refused as one.
        let r = call(
            atest::TestRequest::post()
                .uri("/%72eload")
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .insert_header((header::ORIGIN, "https://evil.example")),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = atest::read_body_json(r).await;
        assert!(body["error"].as_str().unwrap().contains("Origin"), "{body}");
        let r = call(
            atest::TestRequest::post()
                .uri("/api/v1/eth2/sign/0xab")
                .insert_header((header::CONTENT_TYPE, "text/plain")),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let body: serde_json::Value = atest::read_body_json(r).await;
        assert!(
            body["error"].as_str().unwrap().contains("application/json"),
            "{body}"
        );
        let r = call(
            atest::TestRequest::post()
                .uri("/%72eload")
                .insert_header((header::CONTENT_TYPE, "application/json")),
        )
        .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
}
