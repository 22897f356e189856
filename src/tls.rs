//! TLS for every listener (rustls with the `ring` provider) and the HTTP guards around it:
//! client authentication by CA and/or by an allowlist of certificate fingerprints, the Host
//! header allowlist (`--http-host-allowlist`, against DNS rebinding) and CORS origins.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use sha2::Digest;

/// TLS settings of the listeners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first (`--tls-cert-file`).
    pub cert_file: PathBuf,
    /// PEM private key: PKCS#8, PKCS#1 or SEC1 (`--tls-key-file`).
    pub key_file: PathBuf,
    /// PEM CA certificates that client certificates must chain to (`--tls-client-ca-file`).
    pub client_ca_file: Option<PathBuf>,
    /// SHA-256 fingerprints (32 bytes) of the client certificates allowed
    /// (`--tls-allowed-client-fingerprints`).
    pub client_fingerprints: Vec<[u8; 32]>,
}

/// Parses a comma-separated list of SHA-256 certificate fingerprints: 64 hex characters each,
/// `:` separators and case ignored.
///
/// # Errors
/// A message naming the entry that is not 32 bytes of hex.
pub fn parse_fingerprints(list: &str) -> Result<Vec<[u8; 32]>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let clean: String = item.chars().filter(|c| *c != ':').collect();
            hex::decode(&clean)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| format!("`{item}` is not a SHA-256 fingerprint (64 hex characters)"))
        })
        .collect()
}

/// The SHA-256 fingerprint of a DER certificate.
pub fn fingerprint(cert: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(cert).into()
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Accepts a client certificate whose SHA-256 fingerprint is allowed (after the CA check,
/// when a CA is configured too); handshake signatures are verified as usual.
#[derive(Debug)]
struct FingerprintVerifier {
    allowed: Vec<[u8; 32]>,
    ca: Option<Arc<dyn ClientCertVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for FingerprintVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        match &self.ca {
            Some(ca) => ca.root_hint_subjects(),
            None => &[],
        }
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Some(ca) = &self.ca {
            ca.verify_client_cert(end_entity, intermediates, now)?;
        }
        if self.allowed.contains(&fingerprint(end_entity)) {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Builds the rustls server configuration: TLS 1.2 and 1.3, HTTP/1.1, and client
/// authentication when a client CA or fingerprints are given (then mandatory).
///
/// # Errors
/// A message naming the file that cannot be read or does not match.
pub fn server_config(s: &TlsSettings) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&s.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&s.key_file).map_err(|e| {
        format!(
            "cannot read a PEM private key from {}: {e}",
            s.key_file.display()
        )
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let ca: Option<Arc<dyn ClientCertVerifier>> = match &s.client_ca_file {
        None => None,
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(path)? {
                roots
                    .add(c)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Some(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            )
        }
    };
    let builder = if !s.client_fingerprints.is_empty() {
        builder.with_client_cert_verifier(Arc::new(FingerprintVerifier {
            allowed: s.client_fingerprints.clone(),
            ca,
            provider,
        }))
    } else if let Some(ca) = ca {
        builder.with_client_cert_verifier(ca)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "{} and {}: {e}",
            s.cert_file.display(),
            s.key_file.display()
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The Host header allowlist: `*` allows any host; otherwise host names (without port),
/// compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAllowlist(Option<Vec<String>>);

impl HostAllowlist {
    /// Parses `--http-host-allowlist` (comma-separated; `*` for any).
    pub fn parse(list: &str) -> HostAllowlist {
        let hosts: Vec<String> = list
            .split(',')
            .map(|h| h.trim().trim_matches(['[', ']']).to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if hosts.iter().any(|h| h == "*") {
            HostAllowlist(None)
        } else {
            HostAllowlist(Some(hosts))
        }
    }

    /// Whether a `Host` header value (`name`, `name:port`, `[v6]:port`) is allowed.
    pub fn allows(&self, host_header: &str) -> bool {
        let Some(list) = &self.0 else { return true };
        let h = host_header.trim().to_ascii_lowercase();
        let name = if let Some(rest) = h.strip_prefix('[') {
            rest.split(']').next().unwrap_or_default().to_string()
        } else {
            h.rsplit_once(':')
                .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
                .map_or(h.clone(), |(n, _)| n.to_string())
        };
        list.contains(&name)
    }
}

/// Middleware refusing requests whose `Host` header is not in the [`HostAllowlist`] registered
/// as app data (403, JSON body). It fails closed: a request without exactly one `Host` header
/// holding a non-empty visible-ASCII value (missing, as HTTP/1.0 allows; empty; repeated; or
/// not text) is refused with 403 whether or not an allowlist is registered, instead of
/// falling back to a default host. (actix-http already answers 400 itself to an HTTP/1.1
/// request without `Host` or with two, as RFC 9112 §3.2 requires; no handler runs.) Without
/// an allowlist, any present host passes (the metrics listener).
///
/// # Errors
/// The inner service's error, unchanged.
pub async fn host_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let mut values = req.headers().get_all(header::HOST);
    let host = match (values.next(), values.next()) {
        (Some(v), None) => v
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string),
        _ => None,
    };
    let refusal = match host {
        None => Some(
            "the request has no usable Host header (missing, empty, repeated or not ASCII \
             text): refused"
                .to_string(),
        ),
        Some(host) => req
            .app_data::<actix_web::web::Data<HostAllowlist>>()
            .filter(|a| !a.allows(&host))
            .map(|_| {
                let shown: String = host.chars().take(100).collect();
                format!("host `{shown}` is not in --http-host-allowlist")
            }),
    };
    if let Some(message) = refusal {
        tracing::warn!(path = %req.path(), reason = %message, "request refused by the Host check");
        let response = crate::api::error::json_error(StatusCode::FORBIDDEN, message);
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The CORS middleware for `--http-cors-origins` (`*` for any origin): GET and POST with
/// `Content-Type`, `Accept` and `Authorization`; no origin is allowed when the list is empty.
/// It answers the preflights of allowed origins and adds the CORS headers to their answers; a
/// mismatching origin is refused (403, JSON) before it by [`crate::api::request_guard`], and
/// blocked here too (`block_on_origin_mismatch`) should it ever run without that guard.
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut c = actix_cors::Cors::default()
        .block_on_origin_mismatch(true)
        .allowed_methods(["GET", "POST"])
        .allowed_headers([header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION])
        .max_age(3600);
    for o in origins {
        c = if o == "*" {
            c.allow_any_origin()
        } else {
            c.allowed_origin(o)
        };
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_allowlist() {
        let l = HostAllowlist::parse("localhost, 127.0.0.1,[::1]");
        assert!(l.allows("localhost:9000"));
        assert!(l.allows("LOCALHOST"));
        assert!(l.allows("127.0.0.1:9000"));
        assert!(l.allows("[::1]:9000"));
        assert!(!l.allows("evil.example:9000"));
        assert!(!l.allows("127.0.0.1.evil.example"));
        assert!(HostAllowlist::parse("*").allows("anything:1"));
    }

    #[actix_web::test]
    async fn host_guard_fails_closed() {
        use actix_web::{App, HttpResponse, test, web};
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(HostAllowlist::parse("localhost")))
                .wrap(actix_web::middleware::from_fn(host_guard))
                .route("/", web::get().to(|| async { HttpResponse::Ok().finish() })),
        )
        .await;
        let status = |host: Option<&'static [u8]>| {
            let app = &app;
            async move {
                let mut req = test::TestRequest::get().uri("/");
                if let Some(h) = host {
                    req = req
                        .insert_header((header::HOST, header::HeaderValue::from_bytes(h).unwrap()));
                }
                let r = test::call_service(app, req.to_request()).await;
                let code = r.status().as_u16();
                if code == 403 {
                    let body: serde_json::Value = test::read_body_json(r).await;
                    assert!(body["error"].is_string(), "{body}");
                }
                code
            }
        };
        assert_eq!(status(Some(b"localhost:9000")).await, 200);
        // The old code fell back to the connection's default host (`localhost:8080`), which
        // the allowlist passed.
        assert_eq!(status(None).await, 403);
        assert_eq!(status(Some(b"\xfflocalhost")).await, 403);
        assert_eq!(status(Some(b"")).await, 403);
        assert_eq!(status(Some(b"evil.example")).await, 403);
    }

    #[test]
    fn fingerprints() {
        let f = parse_fingerprints(&format!("{}, {}", "ab".repeat(32), "CD:".repeat(31) + "CD"))
            .unwrap();
        assert_eq!(f, vec![[0xab; 32], [0xcd; 32]]);
        assert!(parse_fingerprints("abcd").unwrap_err().contains("abcd"));
    }
}
