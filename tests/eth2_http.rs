//! The eth2 API through the real binary: Web3Signer OpenAPI examples and deposit known
//! answers signed byte-exact over HTTP, content negotiation, key listing, health.

mod common;

use common::{Server, signature_of, vector, write_raw_key};
use serde_json::Value;

fn start_with_keys(secrets: &[&str], network: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    for (i, s) in secrets.iter().enumerate() {
        write_raw_key(&keys, &format!("key{i}"), s);
    }
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--network",
            network,
            "--key-config-path",
            keys.to_str().unwrap(),
        ],
    );
    (dir, server)
}

#[test]
fn web3signer_openapi_examples_sign_byte_exact_over_http() {
    let v = vector("eth2-signing/web3signer_openapi_examples.json");
    let secret = v["secret_key"].as_str().unwrap();
    // The registration example uses the `minimal` genesis fork version (see the vectors README).
    let (mut dir, mut server) = start_with_keys(&[secret], "minimal");
    let mut blocks_signed: Vec<(String, String)> = Vec::new();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    for case in cases {
        let body = &case["request_body"];
        // The five BLOCK_V2 examples share slot 0 with two different roots: slashing
        // protection must refuse the second root, so such a case gets a fresh database.
        if body["type"] == "BLOCK_V2" {
            let slot = body["beacon_block"]["block_header"]["slot"]
                .as_str()
                .unwrap()
                .to_string();
            let root = case["expected_signing_root"].as_str().unwrap().to_string();
            if blocks_signed.iter().any(|(s, r)| *s == slot && *r != root) {
                let (conflict_status, _) = server.sign(
                    case["request_path"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap(),
                    body,
                );
                assert_eq!(
                    conflict_status, 412,
                    "a second root at slot {slot} is a double proposal"
                );
                server.stop();
                (dir, server) = start_with_keys(&[secret], "minimal");
                blocks_signed.clear();
            }
            blocks_signed.push((slot, root));
        }
        let r = common::client()
            .post(format!(
                "{}{}",
                server.url,
                case["request_path"].as_str().unwrap()
            ))
            .json(body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", case["name"]);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let sig = signature_of(&r.text().unwrap());
        assert_eq!(
            sig,
            case["expected_signature"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
    drop(dir);
}

#[test]
fn deposit_known_answers_over_http() {
    let v = vector("eth2-signing/deposit_kats.json");
    let cases = v["cases"].as_array().unwrap();
    let secrets: Vec<&str> = cases
        .iter()
        .map(|c| c["secret_key"].as_str().unwrap())
        .collect();
    let (_dir, server) = start_with_keys(&secrets, "mainnet");
    for case in cases {
        let pubkey = case["pubkey"].as_str().unwrap();
        let (status, body) = server.sign(pubkey, &case["request_body"]);
        assert_eq!(status, 200, "{}: {body}", case["name"]);
        assert_eq!(
            signature_of(&body),
            case["expected_signature"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn accept_header_selects_json_or_plain_text() {
    let v = vector("eth2-signing/web3signer_openapi_examples.json");
    let (_dir, server) = start_with_keys(&[v["secret_key"].as_str().unwrap()], "minimal");
    let case = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["request_body"]["type"] == "RANDAO_REVEAL")
        .unwrap();
    let url = format!("{}{}", server.url, case["request_path"].as_str().unwrap());
    let expected = case["expected_signature"].as_str().unwrap();
    for accept in [
        None,
        Some("application/json"),
        Some("*/*"),
        Some("text/html, */*;q=0.1"),
    ] {
        let mut rq = common::client().post(&url).json(&case["request_body"]);
        if let Some(a) = accept {
            rq = rq.header("Accept", a);
        }
        let r = rq.send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{accept:?}"
        );
        assert_eq!(signature_of(&r.text().unwrap()), expected);
    }
    let r = common::client()
        .post(&url)
        .header("Accept", "text/plain")
        .json(&case["request_body"])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(r.text().unwrap(), expected);
}

#[test]
fn public_keys_upcheck_and_healthcheck() {
    let secrets = [common::test_secret(1), common::test_secret(2)];
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    for (i, s) in secrets.iter().enumerate() {
        write_raw_key(&keys, &format!("k{i}"), s);
    }
    // One broken key file: the server still starts with the others and reports the error.
    std::fs::write(
        keys.join("broken.yaml"),
        "type: file-keystore\nkeystoreFile: missing.json\nkeystorePasswordFile: missing.txt\n",
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--key-config-path", keys.to_str().unwrap()],
    );

    let (status, body) = server.get("/api/v1/eth2/publicKeys");
    assert_eq!(status, 200);
    let mut listed: Vec<String> = serde_json::from_str(&body).unwrap();
    listed.sort();
    let mut expected = vec![common::test_pubkey(1), common::test_pubkey(2)];
    expected.sort();
    assert_eq!(listed, expected);

    assert_eq!(server.get("/upcheck"), (200, "OK".to_string()));

    let (status, body) = server.get("/healthcheck");
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status, 503,
        "a key that failed to load makes the keys check DOWN: {body}"
    );
    assert_eq!(h["status"], "DOWN");
    let keys_check = h["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "keys-check")
        .unwrap();
    assert_eq!(keys_check["checks"][0]["data"]["keys-loaded"], 2);
    assert_eq!(keys_check["checks"][0]["data"]["error-count"], 1);
    let db = h["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "slashing-protection-db-health-check")
        .unwrap();
    assert_eq!(db["status"], "UP");
    assert!(
        server
            .stderr_lines()
            .iter()
            .any(|l| l.contains("broken.yaml") && l.contains("key not loaded")),
        "the failing file is logged by name"
    );
}

#[test]
fn healthy_server_reports_up() {
    let (_dir, server) = start_with_keys(&[&common::test_secret(3)], "mainnet");
    let (status, body) = server.get("/healthcheck");
    assert_eq!(status, 200, "{body}");
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["status"], "UP");
    assert_eq!(h["checks"][0]["checks"][0]["data"]["error-count"], 0);
}

#[test]
fn development_keystores_load_with_their_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let ks = common::repo_dir().join("keystores");
    let server = Server::start(
        &dir.path().join("data"),
        &["--keystores-path", ks.to_str().unwrap()],
    );
    let (_, body) = server.get("/api/v1/eth2/publicKeys");
    let listed: Vec<String> = serde_json::from_str(&body).unwrap();
    assert_eq!(
        listed.len(),
        5,
        "all five development keystores load: {body}"
    );
    let (status, body) = server.get("/healthcheck");
    assert_eq!(status, 200, "{body}");
}
