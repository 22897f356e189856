//! TLS and the HTTP guards through the real binary, with certificates made at test time
//! (`rcgen`): every listener (eth2, Tezos, metrics) speaks TLS; client authentication by CA and
//! by certificate fingerprint; the Host header allowlist; CORS origins.

mod common;

use std::path::Path;

use common::{Server, block};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use reqwest::blocking::Client;

struct Pki {
    ca_pem: String,
    /// `(cert PEM, key PEM, DER)` of a client certificate issued by the CA.
    client_ca: (String, String, Vec<u8>),
    /// `(cert PEM, key PEM, DER)` of a self-signed client certificate.
    client_self: (String, String, Vec<u8>),
}

/// Writes `server.pem`, `server.key` and `ca.pem` into `dir`; returns the PKI.
fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    std::fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["validator-client".to_string()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    let self_key = KeyPair::generate().unwrap();
    let self_cert = CertificateParams::new(vec!["self-signed-client".to_string()])
        .unwrap()
        .self_signed(&self_key)
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        client_ca: (
            client_cert.pem(),
            client_key.serialize_pem(),
            client_cert.der().to_vec(),
        ),
        client_self: (
            self_cert.pem(),
            self_key.serialize_pem(),
            self_cert.der().to_vec(),
        ),
    }
}

/// A client trusting the test CA only, presenting `identity` (cert PEM, key PEM) if given.
fn tls_client(pki: &Pki, identity: Option<&(String, String, Vec<u8>)>) -> Client {
    let mut b = Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .timeout(std::time::Duration::from_secs(30));
    if let Some((cert, key, _)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

fn status(client: &Client, url: &str) -> Result<u16, String> {
    client
        .get(url)
        .send()
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

fn tls_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--tls-cert-file",
        dir.join("server.pem").to_str().unwrap(),
        "--tls-key-file",
        dir.join("server.key").to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn start(dir: &Path, args: &[String]) -> Server {
    let keys = dir.join("keys");
    common::write_raw_key(&keys, "validator", &common::test_secret(0));
    let mut all = vec!["--key-config-path".to_string(), keys.display().to_string()];
    all.extend(args.iter().cloned());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    Server::start(dir, &refs)
}

#[test]
fn every_listener_speaks_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let server = start(
        dir.path(),
        &tls_args(
            dir.path(),
            &[
                "--tezos-http-listen-port",
                "0",
                "--metrics-enabled",
                "--metrics-port",
                "0",
            ],
        ),
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let client = tls_client(&pki, None);
    assert_eq!(status(&client, &format!("{}/upcheck", server.url)), Ok(200));
    let signed = client
        .post(format!(
            "{}/api/v1/eth2/sign/{}",
            server.url,
            common::test_pubkey(0)
        ))
        .json(&block(3, 5, 1))
        .send()
        .unwrap();
    assert_eq!(signed.status().as_u16(), 200);
    assert!(server.tezos_url().starts_with("https://"));
    assert_eq!(
        status(&client, &format!("{}/authorized_keys", server.tezos_url())),
        Ok(200)
    );
    assert!(server.metrics_url().starts_with("https://"));
    assert_eq!(
        status(&client, &format!("{}/metrics", server.metrics_url())),
        Ok(200)
    );

    // Plain HTTP to the TLS port, and a client that does not trust the CA, get nothing.
    let plain = server.url.replacen("https://", "http://", 1);
    let answered = common::client()
        .get(format!("{plain}/upcheck"))
        .send()
        .map(|r| r.status().as_u16());
    assert!(!matches!(answered, Ok(200)), "{answered:?}");
    let untrusting = Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(status(&untrusting, &format!("{}/upcheck", server.url)).is_err());
    server.stop();
}

#[test]
fn client_authentication_by_ca_and_by_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let ca_file = dir.path().join("ca.pem");

    let by_ca = start(
        dir.path(),
        &tls_args(
            dir.path(),
            &["--tls-client-ca-file", ca_file.to_str().unwrap()],
        ),
    );
    let url = format!("{}/upcheck", by_ca.url);
    assert!(
        status(&tls_client(&pki, None), &url).is_err(),
        "no client certificate"
    );
    assert_eq!(
        status(&tls_client(&pki, Some(&pki.client_ca)), &url),
        Ok(200)
    );
    assert!(
        status(&tls_client(&pki, Some(&pki.client_self)), &url).is_err(),
        "a certificate from another issuer"
    );
    by_ca.stop();

    let dir2 = tempfile::tempdir().unwrap();
    for f in ["server.pem", "server.key"] {
        std::fs::copy(dir.path().join(f), dir2.path().join(f)).unwrap();
    }
    let allowed = hex::encode(palisade::tls::fingerprint(&pki.client_self.2));
    let by_fingerprint = start(
        dir2.path(),
        &tls_args(
            dir2.path(),
            &["--tls-allowed-client-fingerprints", &allowed],
        ),
    );
    let url = format!("{}/upcheck", by_fingerprint.url);
    assert_eq!(
        status(&tls_client(&pki, Some(&pki.client_self)), &url),
        Ok(200)
    );
    assert!(
        status(&tls_client(&pki, Some(&pki.client_ca)), &url).is_err(),
        "a certificate whose fingerprint is not listed"
    );
    assert!(status(&tls_client(&pki, None), &url).is_err());
    by_fingerprint.stop();
}

#[test]
fn tls_settings_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--http-listen-port")
            .arg("0")
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let missing = dir.path().join("missing.pem");
    assert!(run(&["--tls-cert-file", missing.to_str().unwrap()]).contains("go together"));
    let err = run(&[
        "--tls-cert-file",
        missing.to_str().unwrap(),
        "--tls-key-file",
        missing.to_str().unwrap(),
    ]);
    assert!(err.contains("missing.pem"), "{err}");
    assert!(
        run(&["--tls-client-ca-file", missing.to_str().unwrap()]).contains("needs --tls-cert-file")
    );
    let err = run(&[
        "--tls-cert-file",
        missing.to_str().unwrap(),
        "--tls-key-file",
        missing.to_str().unwrap(),
        "--tls-allowed-client-fingerprints",
        "zz",
    ]);
    assert!(err.contains("`zz` is not a SHA-256 fingerprint"), "{err}");
}

#[test]
fn host_allowlist_and_cors() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "--http-cors-origins".to_string(),
            "https://ops.example".to_string(),
        ],
    );
    let client = common::client();
    let upcheck = format!("{}/upcheck", server.url);
    let r = client
        .get(&upcheck)
        .header("Host", "evil.example")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body: serde_json::Value = r.json().unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("evil.example"),
        "{body}"
    );
    let r = client
        .get(&upcheck)
        .header("Host", "localhost:9000")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // CORS: the listed origin gets its headers; another origin does not.
    let preflight = |origin: &str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/v1/eth2/publicKeys", server.url),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .send()
            .unwrap()
    };
    let ok = preflight("https://ops.example");
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(
        ok.headers()["access-control-allow-origin"]
            .to_str()
            .unwrap(),
        "https://ops.example"
    );
    let other = preflight("https://evil.example");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    server.stop();

    let dir = tempfile::tempdir().unwrap();
    let any = start(
        dir.path(),
        &["--http-host-allowlist".to_string(), "*".to_string()],
    );
    let r = client
        .get(format!("{}/upcheck", any.url))
        .header("Host", "signer.internal")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    any.stop();
}
