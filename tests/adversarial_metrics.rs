//! Hostile neighbours of the metrics listener (issue 14), against the real binary: a request
//! whose `Host` header is missing, not UTF-8 or given twice is refused (403, JSON body; the
//! Host check fails closed); a foreign page's `Origin` gets no CORS permission to read the
//! exposition; the listener serves GET only; Prometheus' ordinary scrape still passes and the
//! listener answers within its normal latency afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, client, test_secret};
use serde_json::Value;

/// Sends raw bytes over a fresh connection (`http://HOST:PORT` base); returns the status and
/// the body.
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

fn scrape_latency(url: &str, n: usize) -> (Duration, Duration) {
    let c = client();
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let r = c.get(format!("{url}/metrics")).send().unwrap();
            assert_eq!(r.status().as_u16(), 200);
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[n / 2], times[n - 1])
}

#[test]
fn metrics_listener_refuses_hostless_requests() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    common::write_raw_key(&keys, "k0", &test_secret(0));
    let server = Server::start(
        dir.path(),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--metrics-enabled",
            "--metrics-port",
            "0",
        ],
    );
    let url = server.metrics_url();
    let (baseline, _) = scrape_latency(&url, 10);

    let get = |host: &[u8]| -> Vec<u8> {
        let mut r = b"GET /metrics HTTP/1.1\r\n".to_vec();
        r.extend_from_slice(host);
        r.extend_from_slice(b"Connection: close\r\n\r\n");
        r
    };
    // actix-http's parser answers 400 itself to an HTTP/1.1 request without Host or with two
    // (RFC 9112 §3.2); palisade's code never sees them.
    for (what, req) in [
        ("no Host (HTTP/1.1)", get(b"")),
        (
            "two Host headers",
            get(b"Host: localhost\r\nHost: evil.example\r\n"),
        ),
    ] {
        let (s, body) = raw(&url, &req);
        assert!(s == 400 || s == 403, "{what}: {s} {body}");
    }
    for (what, req) in [
        ("non-UTF-8 Host", get(b"Host: \xff\xfe\r\n")),
        ("empty Host", get(b"Host: \r\n")),
        (
            "no Host (HTTP/1.0)",
            b"GET /metrics HTTP/1.0\r\n\r\n".to_vec(),
        ),
    ] {
        let (status, body) = raw(&url, &req);
        assert_eq!(status, 403, "{what}: {body}");
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
        assert!(
            v["error"].as_str().unwrap().to_lowercase().contains("host"),
            "{what}: {body}"
        );
    }
    // Prometheus sends Host (any name: the metrics listener has no allowlist).
    let (s, body) = raw(&url, &get(b"Host: prometheus-target.internal:9001\r\n"));
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("# TYPE"), "{body}");

    // A foreign page gets no CORS permission to read the exposition.
    let r = client()
        .get(format!("{url}/metrics"))
        .header("Origin", "https://evil.example")
        .send()
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // Nothing but GET is served.
    let r = client()
        .post(format!("{url}/metrics"))
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());

    let (median, worst) = scrape_latency(&url, 10);
    eprintln!(
        "scrape after the probes: median {median:?}, worst {worst:?} (baseline {baseline:?})"
    );
    assert!(median <= baseline * 2 + Duration::from_millis(20));
    assert!(worst < Duration::from_millis(500));
    let r = client()
        .get(format!("{}/upcheck", server.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    server.stop();
}
