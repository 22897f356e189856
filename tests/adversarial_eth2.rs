//! Hostile neighbours of the eth2 listener (issue 14), replayed against the real binary: a
//! browser page on the signer host (cross-site `fetch` without a preflight, a foreign
//! `Origin`, admin routes called from a page) and requests whose `Host` header is missing or
//! not UTF-8 (DNS rebinding fails closed). Each probe asserts the refusal, its status and JSON
//! body, that nothing was signed, recorded or reloaded, and that the server still answers
//! `/upcheck` within its normal latency; the legitimate requests of validator clients and of a
//! configured CORS origin still pass.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, attestation, block, client, repo_dir, test_pubkey, test_secret};
use serde_json::{Value, json};

const GVR: u8 = 9;
const ALLOWED_ORIGIN: &str = "https://dashboard.example";
const FOREIGN_ORIGIN: &str = "https://evil.example";

/// A POST with an optional `Content-Type`, `Origin` and bearer token; returns status, the
/// response headers and the body.
fn post(
    url: &str,
    content_type: Option<&str>,
    origin: Option<&str>,
    token: Option<&str>,
    body: String,
) -> (u16, reqwest::header::HeaderMap, String) {
    request(
        reqwest::Method::POST,
        url,
        content_type,
        origin,
        token,
        body,
    )
}

fn request(
    method: reqwest::Method,
    url: &str,
    content_type: Option<&str>,
    origin: Option<&str>,
    token: Option<&str>,
    body: String,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = client().request(method, url).body(body);
    if let Some(ct) = content_type {
        r = r.header("Content-Type", ct);
    }
    if let Some(o) = origin {
        r = r.header("Origin", o);
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().unwrap())
}

/// Asserts a refusal: the status and a JSON body `{"error": "…"}` mentioning `mentions`.
fn assert_refused(what: &str, got: (u16, String), want: u16, mentions: &str) {
    let (status, body) = got;
    assert_eq!(status, want, "{what}: {body}");
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error: {body}"));
    assert!(
        msg.to_ascii_lowercase().contains(mentions),
        "{what}: `{msg}` does not mention `{mentions}`"
    );
}

/// Sends raw bytes over a fresh connection (`http://HOST:PORT` base) and returns the status
/// and body of the answer; the request must ask for `Connection: close`.
fn raw(base: &str, request: &[u8]) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The median and worst `/upcheck` latency over `n` requests.
fn upcheck_latency(server: &Server, n: usize) -> (Duration, Duration) {
    let c = client();
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let r = c.get(format!("{}/upcheck", server.url)).send().unwrap();
            assert_eq!(r.status().as_u16(), 200);
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[n / 2], times[n - 1])
}

/// The server still answers `/upcheck` within its normal latency: the median no more than
/// twice the baseline's plus 20 ms, and no request over 500 ms.
fn assert_still_up(server: &Server, baseline: Duration) {
    let (median, worst) = upcheck_latency(server, 20);
    eprintln!(
        "upcheck after the probes: median {median:?}, worst {worst:?} (baseline {baseline:?})"
    );
    assert!(
        median <= baseline * 2 + Duration::from_millis(20),
        "upcheck median {median:?} against a baseline of {baseline:?}"
    );
    assert!(worst < Duration::from_millis(500), "upcheck took {worst:?}");
}

fn reload_status(server: &Server, token: Option<&str>) -> Value {
    let (s, _, body) = request(
        reqwest::Method::GET,
        &format!("{}/reload", server.url),
        None,
        None,
        token,
        String::new(),
    );
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn start(dir: &std::path::Path, extra: &[&str]) -> Server {
    let keys = dir.join("keys");
    common::write_raw_key(&keys, "k0", &test_secret(0));
    let mut args = vec!["--key-config-path", keys.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(dir, &args)
}

/// The probe: a page `fetch`es an attestation 0 → 1,000,000 as `text/plain` (a
/// "simple" request, no preflight). Refused with 415, nothing recorded, and the validator's
/// next ordinary attestation still signs.
#[test]
fn cross_site_signing_is_refused_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let (baseline, _) = upcheck_latency(&server, 20);
    let pk = test_pubkey(0);
    let sign_url = format!("{}/api/v1/eth2/sign/{pk}", server.url);
    let surround = attestation(GVR, 0, 1_000_000, 1).to_string();

    // Every Content-Type a browser may send without a preflight, and none at all.
    for ct in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
        Some("application/jsonp"),
        Some("application/json-seq"),
        Some("text/json"),
    ] {
        let (s, _, body) = post(&sign_url, ct, None, None, surround.clone());
        assert_refused(
            &format!("sign as {ct:?}"),
            (s, body),
            415,
            "application/json",
        );
    }
    // The same with a page's Origin.
    let (s, _, body) = post(
        &sign_url,
        Some("text/plain"),
        Some(FOREIGN_ORIGIN),
        None,
        surround.clone(),
    );
    assert!(
        s == 403 || s == 415,
        "text/plain from a foreign origin: {s} {body}"
    );
    // A foreign Origin with a JSON body (what a preflight would have allowed to a page).
    let (s, _, body) = post(
        &sign_url,
        Some("application/json"),
        Some(FOREIGN_ORIGIN),
        None,
        surround.clone(),
    );
    assert_refused("sign from a foreign origin", (s, body), 403, "origin");
    // `Origin: null` (sandboxed frames, file: pages) is foreign too.
    let (s, _, body) = post(
        &sign_url,
        Some("application/json"),
        Some("null"),
        None,
        surround.clone(),
    );
    assert_refused("sign from origin null", (s, body), 403, "origin");
    // A preflight from a foreign origin gets no permission.
    let r = client()
        .request(reqwest::Method::OPTIONS, &sign_url)
        .header("Origin", FOREIGN_ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    assert_eq!(
        common::count_records(&server.db_url()),
        (0, 0),
        "a refused cross-site request recorded something"
    );

    // Validator clients (no Origin, JSON) still sign, with the media type in any case and
    // with parameters; the validator is not bricked.
    for (i, ct) in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
    ]
    .into_iter()
    .enumerate()
    {
        let i = i as u64;
        let (s, _, body) = post(
            &sign_url,
            Some(ct),
            None,
            None,
            attestation(GVR, 1 + i, 2 + i, 1).to_string(),
        );
        assert_eq!(s, 200, "{ct}: {body}");
        common::signature_of(&body);
    }
    assert_eq!(common::count_records(&server.db_url()), (0, 3));

    // POST /reload from a page: 403 with an Origin, 415 as text/plain; the reload never ran.
    let reload = format!("{}/reload", server.url);
    let (s, _, body) = post(
        &reload,
        Some("application/json"),
        Some(FOREIGN_ORIGIN),
        None,
        String::new(),
    );
    assert_refused("POST /reload with an Origin", (s, body), 403, "origin");
    let (s, _, body) = post(&reload, Some("text/plain"), None, None, String::new());
    assert_refused(
        "POST /reload as text/plain",
        (s, body),
        415,
        "application/json",
    );
    let (s, _, body) = post(&reload, None, None, None, String::new());
    assert_refused(
        "POST /reload without a Content-Type",
        (s, body),
        415,
        "application/json",
    );
    assert_eq!(reload_status(&server, None)["status"], "idle");
    // The admin reads refuse a page too.
    for path in ["/reload", "/api/v1/keys"] {
        let (s, _, body) = request(
            reqwest::Method::GET,
            &format!("{}{path}", server.url),
            None,
            Some(FOREIGN_ORIGIN),
            None,
            String::new(),
        );
        assert_refused(
            &format!("GET {path} with an Origin"),
            (s, body),
            403,
            "origin",
        );
    }
    // The operator's reload (JSON, no Origin) runs.
    let (s, _, body) = post(&reload, Some("application/json"), None, None, String::new());
    assert_eq!(s, 202, "{body}");

    assert_still_up(&server, baseline);
    server.stop();
}

/// With `--http-cors-origins` set and the Keymanager API on: the configured origin is served
/// with the CORS headers, any other origin is refused before the handler, and the admin
/// routes refuse every Origin, the configured one included, token or not.
#[test]
fn cors_origins_and_admin_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "--http-cors-origins",
            ALLOWED_ORIGIN,
            "--key-manager-api-enabled",
        ],
    );
    let token = std::fs::read_to_string(dir.path().join("api-token.txt"))
        .unwrap()
        .trim()
        .to_string();
    let (baseline, _) = upcheck_latency(&server, 20);
    let pk = test_pubkey(0);
    let sign_url = format!("{}/api/v1/eth2/sign/{pk}", server.url);

    // The configured origin: preflight answered, request served with its CORS headers.
    let pre = client()
        .request(reqwest::Method::OPTIONS, &sign_url)
        .header("Origin", ALLOWED_ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .unwrap();
    assert_eq!(pre.status().as_u16(), 200);
    assert_eq!(pre.headers()["access-control-allow-origin"], ALLOWED_ORIGIN);
    let (s, headers, body) = post(
        &sign_url,
        Some("application/json"),
        Some(ALLOWED_ORIGIN),
        None,
        block(GVR, 5, 1).to_string(),
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(headers["access-control-allow-origin"], ALLOWED_ORIGIN);
    common::signature_of(&body);
    assert_eq!(common::count_records(&server.db_url()), (1, 0));

    // Another origin: 403 before the handler (no record), and a foreign one whose name
    // only begins like the allowed one.
    for origin in [
        FOREIGN_ORIGIN,
        "https://dashboard.example.evil.example",
        "null",
    ] {
        let (s, headers, body) = post(
            &sign_url,
            Some("application/json"),
            Some(origin),
            None,
            block(GVR, 6, 1).to_string(),
        );
        assert!(headers.get("access-control-allow-origin").is_none());
        assert_refused(&format!("sign from {origin}"), (s, body), 403, "origin");
    }
    assert_eq!(common::count_records(&server.db_url()), (1, 0));

    // The Keymanager API from a page, even the allowed one, even with the token: 403, and
    // nothing imported or deleted.
    let ks = format!("{}/eth/v1/keystores", server.url);
    let keystore =
        std::fs::read_to_string(repo_dir().join("keystores/keystore-m_12381_3600_0_0_0.json"))
            .unwrap();
    let import = json!({"keystores": [keystore], "passwords": ["x"]}).to_string();
    for origin in [FOREIGN_ORIGIN, ALLOWED_ORIGIN] {
        let (s, _, body) = post(
            &ks,
            Some("application/json"),
            Some(origin),
            Some(&token),
            import.clone(),
        );
        assert_refused(
            &format!("Keymanager import from {origin}"),
            (s, body),
            403,
            "origin",
        );
        let (s, _, body) = request(
            reqwest::Method::DELETE,
            &ks,
            Some("application/json"),
            Some(origin),
            Some(&token),
            json!({"pubkeys": [pk]}).to_string(),
        );
        assert_refused(
            &format!("Keymanager delete from {origin}"),
            (s, body),
            403,
            "origin",
        );
        let (s, _, body) = request(
            reqwest::Method::GET,
            &ks,
            None,
            Some(origin),
            Some(&token),
            String::new(),
        );
        assert_refused(
            &format!("Keymanager list from {origin}"),
            (s, body),
            403,
            "origin",
        );
        // POST /reload from the allowed origin, with the token.
        let (s, _, body) = post(
            &format!("{}/reload", server.url),
            Some("application/json"),
            Some(origin),
            Some(&token),
            String::new(),
        );
        assert_refused(
            &format!("POST /reload from {origin}"),
            (s, body),
            403,
            "origin",
        );
    }
    // Keymanager writes need JSON too (a form cannot delete a key).
    let (s, _, body) = request(
        reqwest::Method::DELETE,
        &ks,
        Some("text/plain"),
        None,
        Some(&token),
        json!({"pubkeys": [pk]}).to_string(),
    );
    assert_refused(
        "Keymanager delete as text/plain",
        (s, body),
        415,
        "application/json",
    );
    let (s, _, body) = post(&ks, Some("text/plain"), None, Some(&token), import.clone());
    assert_refused(
        "Keymanager import as text/plain",
        (s, body),
        415,
        "application/json",
    );
    assert_eq!(reload_status(&server, Some(&token))["status"], "idle");
    // Nothing was imported or deleted: the list (no Origin, with the token) has key 0 only,
    // and it still signs.
    let (s, _, body) = request(
        reqwest::Method::GET,
        &ks,
        None,
        None,
        Some(&token),
        String::new(),
    );
    assert_eq!(s, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).unwrap();
    let listed: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["validating_pubkey"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![pk.as_str()]);
    assert_eq!(server.sign(&pk, &block(GVR, 7, 1)).0, 200);

    assert_still_up(&server, baseline);
    server.stop();
}

/// `Host` missing, not UTF-8, or given twice: 403 with a JSON body (the allowlist fails
/// closed); an allowed Host over the same raw connection passes.
#[test]
fn host_header_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let (baseline, _) = upcheck_latency(&server, 20);
    let pk = test_pubkey(0);
    let body = attestation(GVR, 0, 1_000_000, 1).to_string();
    let sign = |host: &[u8]| -> Vec<u8> {
        let mut r = format!("POST /api/v1/eth2/sign/{pk} HTTP/1.1\r\n").into_bytes();
        r.extend_from_slice(host);
        r.extend_from_slice(
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        r
    };
    // actix-http's parser answers 400 itself (before any of palisade's code) to an HTTP/1.1
    // request without Host or with two (RFC 9112 §3.2).
    for (what, req) in [
        ("no Host (HTTP/1.1)", sign(b"")),
        (
            "two Host headers",
            sign(b"Host: localhost\r\nHost: evil.example\r\n"),
        ),
    ] {
        let (s, body) = raw(&server.url, &req);
        assert!(s == 400 || s == 403, "{what}: {s} {body}");
    }
    let cases: [(&str, Vec<u8>); 4] = [
        ("non-UTF-8 Host", sign(b"Host: \xff\xfelocalhost\r\n")),
        ("non-ASCII UTF-8 Host", sign("Host: lоcalhost\r\n".as_bytes())),
        ("empty Host", sign(b"Host: \r\n")),
        (
            "no Host (HTTP/1.0)",
            format!(
                "POST /api/v1/eth2/sign/{pk} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        ),
    ];
    for (what, req) in cases {
        assert_refused(what, raw(&server.url, &req), 403, "host");
    }
    for path in ["/upcheck", "/reload", "/api/v1/eth2/publicKeys"] {
        let req = format!("GET {path} HTTP/1.0\r\n\r\n");
        assert_refused(
            &format!("GET {path} without Host"),
            raw(&server.url, req.as_bytes()),
            403,
            "host",
        );
    }
    assert_eq!(common::count_records(&server.db_url()), (0, 0));
    // A rebinding name is refused; the allowed names pass.
    let (s, _) = raw(&server.url, &sign(b"Host: evil.example:9000\r\n"));
    assert_eq!(s, 403);
    let ok = |host: &str| {
        let b = attestation(GVR, 1, 2, 1).to_string();
        let req = format!(
            "POST /api/v1/eth2/sign/{pk} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
            b.len()
        );
        raw(&server.url, req.as_bytes())
    };
    let (s, body) = ok("127.0.0.1");
    assert_eq!(s, 200, "{body}");
    let (s, body) = ok("LOCALHOST:9000");
    assert_eq!(s, 200, "{body}");
    assert_eq!(common::count_records(&server.db_url()), (0, 1));
    assert_still_up(&server, baseline);
    server.stop();
}
