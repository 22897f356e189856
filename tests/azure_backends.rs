//! Azure Key Vault key backends through the real binary, against the Key Vault stand-in
//! (`tests/vaults/azure_standin.py`, HTTPS under its own CA, with the Entra token endpoint),
//! which `tests/vaults/azure_sdk_check.py` proves faithful with Microsoft's Python SDKs; no
//! Azure emulator is installable here.
//!
//! - `azure-key`: tz2 (P-256K) and tz3 (P-256) keys signing inside Key Vault through the
//!   official Rust SDK, driven by Taquito's RemoteSigner (which verifies every signature and
//!   checks low-S: the stand-in answers high-S about half the time, as Key Vault does); a vault
//!   that hangs or answers 503 gives 503 for its keys only and moves no watermark; a wrong
//!   client secret and a missing key are load errors naming the file, with no secret logged.
//! - `azure-secret` (Web3Signer's key config) and `azure-secrets-bulk` (tags, name prefix):
//!   BLS secrets signing Web3Signer's published RANDAO example byte for byte; reload follows
//!   added and removed secrets.
//! - A bulk load of 10,000 secrets, timed, its reads bounded by `concurrency`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::azure::{AzureStandIn, CLIENT_SECRET};
use common::{Server, test_pubkey, test_secret, vector, write_tezos_baker};
use serde_json::{Value, json};

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

fn reload(server: &Server) -> Value {
    let r = common::client()
        .post(format!("{}/reload", server.url))
        .header("Content-Type", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let v = json_of(&server.get("/reload").1);
        if v["status"] != "running" {
            return v;
        }
        assert!(Instant::now() < deadline, "reload never finished: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn key_vault_keys_sign_for_a_tezos_client_and_fail_alone() {
    let az = AzureStandIn::start();
    az.create_key("baker-k1", "P-256K");
    az.create_key("baker-p256", "P-256");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let config = |name: &str| {
        format!(
            "type: azure-key\n{}keyName: {name}\ntimeoutMs: 1500\n\
             policy: {{ allow: [block, preattestation, attestation, generic] }}\n",
            az.config_fields()
        )
    };
    write(&keys, "k1.yaml", &config("baker-k1"));
    write(&keys, "p256.yaml", &config("baker-p256"));
    write(&keys, "missing.yaml", &config("no-such-key"));
    write(dir.path(), "wrong-secret", "not-the-client-secret");
    write(
        &keys,
        "denied.yaml",
        &config("baker-k1").replace(
            &format!("clientSecretFile: {}", az.secret_file.display()),
            "clientSecretFile: ../wrong-secret",
        ),
    );
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
    let inv = inventory(&server);
    let vault: Vec<&Value> = inv
        .iter()
        .filter(|k| {
            k["backend"]
                .as_str()
                .is_some_and(|b| b.starts_with("azure-key"))
        })
        .collect();
    assert_eq!(vault.len(), 2, "{inv:?}");
    let pkh_of = |name: &str| -> String {
        vault
            .iter()
            .find(|k| {
                k["backend"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("keys/{name}/"))
            })
            .unwrap_or_else(|| panic!("{name} not in {inv:?}"))["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (tz2, tz3) = (pkh_of("baker-k1"), pkh_of("baker-p256"));
    assert!(
        tz2.starts_with("tz2") && tz3.starts_with("tz3"),
        "{tz2} {tz3}"
    );
    let failed: Vec<String> = inv
        .iter()
        .filter(|k| k["status"] != "active")
        .map(|k| k.to_string())
        .collect();
    for (file, why) in [
        ("missing.yaml", "KeyNotFound"),
        ("denied.yaml", "AADSTS7000215"),
    ] {
        assert!(
            failed.iter().any(|f| f.contains(file) && f.contains(why)),
            "{file}: {failed:?}"
        );
    }

    let out = common::taquito(
        "remote",
        &json!({
            "url": server.tezos_url(),
            "keys": [{"pkh": tz2}, {"pkh": tz3}],
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
        &tz3,
        &memory_pkh,
        || az.outage(Some("hang")),
        || az.outage(None),
    );
    let refused = common::failing_backend_fails_alone(
        &server,
        &tz2,
        &memory_pkh,
        || az.outage(Some("503")),
        || az.outage(None),
    );
    assert!(refused.contains("signing_backend"), "{refused}");

    // Latency through palisade (debug build, SQLite, this machine), beside the in-memory key.
    common::print_tezos_latency(&server, "azure-key tz3", &tz3, &memory_pkh);

    let metrics = common::metrics_text(&server);
    assert!(
        metrics.contains(
            r#"palisade_backend_call_duration_seconds_count{backend="azure-key-vault",operation="sign"}"#
        ),
        "no Key Vault sign metrics"
    );
    for line in server.stderr_lines() {
        assert!(
            !line.contains(CLIENT_SECRET) && !line.contains("not-the-client-secret"),
            "{line}"
        );
    }
}

#[test]
fn key_vault_secrets_configs_bulk_filters_and_reload() {
    let az = AzureStandIn::start();
    let example = vector("eth2-signing/web3signer_openapi_examples.json");
    az.bulk_secrets(
        &["example".to_string()],
        &[example["secret_key"].as_str().unwrap().to_string()],
        json!({}),
    );
    let mut names: Vec<String> = (0..30).map(|i| format!("validator-{i:03}")).collect();
    let mut values: Vec<String> = (0..30).map(test_secret).collect();
    values[29] = format!("{}\n{}", test_secret(29), test_secret(30));
    names.push("validator-broken".into());
    values.push("0x1234".into());
    az.bulk_secrets(&names, &values, json!({"role": "validator"}));
    az.bulk_secrets(
        &(0..5)
            .map(|i| format!("validator-other{i}"))
            .collect::<Vec<_>>(),
        &(50..55).map(test_secret).collect::<Vec<_>>(),
        json!({"role": "other"}),
    );
    az.bulk_secrets(
        &(0..3).map(|i| format!("elsewhere-{i}")).collect::<Vec<_>>(),
        &(60..63).map(test_secret).collect::<Vec<_>>(),
        json!({"role": "validator"}),
    );
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    // Web3Signer's format (its secret inline), pointed at the stand-in.
    write(
        &keys,
        "example.yaml",
        &format!(
            "type: azure-secret\nkeyType: BLS\nsecretName: example\n{}",
            az.config_fields().replace(
                &format!("clientSecretFile: {}", az.secret_file.display()),
                &format!("clientSecret: {CLIENT_SECRET}"),
            )
        ),
    );
    write(
        &keys,
        "bulk.yaml",
        &format!(
            "type: azure-secrets-bulk\n{}namePrefix: validator-\ntags: {{ role: validator }}\n\
             concurrency: 4\n",
            az.certificate_fields()
        ),
    );
    // The bulk config authenticates with the client certificate; a third config with the
    // managed identity (App Service's endpoint, which the SDK finds from the environment).
    az.bulk_secrets(&["managed".to_string()], &[test_secret(70)], json!({}));
    write(
        &keys,
        "managed.yaml",
        &format!(
            "type: azure-secret\nsecretName: managed\n{}",
            az.managed_identity_fields()
        ),
    );
    let identity_env = az.identity_env();
    let env: Vec<(&str, &str)> = identity_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let server = Server::start_with_env(
        &dir.path().join("data"),
        &[
            "--network",
            "minimal",
            "--key-config-path",
            keys.to_str().unwrap(),
        ],
        &env,
    );
    let loaded = public_keys(&server);
    assert!(
        loaded.contains(&test_pubkey(70)),
        "managed identity key missing"
    );
    assert!(loaded.contains(&example["pubkey"].as_str().unwrap().to_string()));
    for i in 0..31 {
        assert!(loaded.contains(&test_pubkey(i)), "key {i} missing");
    }
    assert_eq!(loaded.len(), 33, "decoys loaded: {loaded:?}");
    let inv = inventory(&server);
    let broken: Vec<&Value> = inv.iter().filter(|k| k["status"] != "active").collect();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(
        broken[0].to_string().contains("validator-broken"),
        "{broken:?}"
    );

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
    assert_eq!(
        json_of(&r.text().unwrap())["signature"],
        case["expected_signature"]
    );

    // A new secret, and one whose tag no longer matches, then a reload.
    az.bulk_secrets(
        &["validator-100".to_string()],
        &[test_secret(100)],
        json!({"role": "validator"}),
    );
    az.bulk_secrets(
        &["validator-000".to_string()],
        &[test_secret(0)],
        json!({"role": "retired"}),
    );
    let outcome = reload(&server);
    assert_eq!(outcome["status"], "completed", "{outcome}");
    let after = public_keys(&server);
    assert!(!after.contains(&test_pubkey(0)));
    assert!(after.contains(&test_pubkey(100)));
    assert_eq!(after.len(), 33);
    for line in server.stderr_lines() {
        assert!(!line.contains(CLIENT_SECRET), "{line}");
        assert!(!line.contains(&test_secret(3)[2..]), "{line}");
    }
}

#[test]
fn bulk_load_of_10000_secrets_from_key_vault() {
    let n: u32 = std::env::var("PALISADE_VAULT_BULK_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let az = AzureStandIn::start();
    let names: Vec<String> = (0..n).map(|i| format!("bls-{i:05}")).collect();
    let values: Vec<String> = (0..n).map(|i| test_secret(1_000 + i)).collect();
    az.bulk_secrets(&names, &values, json!({"role": "validator"}));
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    write(
        &keys,
        "bulk.yaml",
        &format!(
            "type: azure-secrets-bulk\n{}tags: {{ role: validator }}\nconcurrency: 16\n",
            az.config_fields()
        ),
    );
    az.reset_stats();
    let started = Instant::now();
    let server = Server::start(
        &dir.path().join("data"),
        &["--key-config-path", keys.to_str().unwrap()],
    );
    let startup = started.elapsed();
    assert_eq!(public_keys(&server).len(), n as usize);
    let stats = az.stats();
    let in_flight = stats["max_inflight"].as_u64().unwrap();
    // The stand-in counts a request finished only once it has written the answer, so the
    // next read on that connection may be counted before: one more than the bound.
    assert!(
        in_flight <= 16 + 1,
        "more than `concurrency` reads in flight: {stats}"
    );
    let line = server
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("azure secrets bulk load"))
        .unwrap_or_default();
    println!(
        "azure-secrets-bulk: {n} BLS secrets from the Key Vault stand-in, concurrency 16: \
         palisade started serving them in {:.2} s, at most {in_flight} reads in flight; {line}",
        startup.as_secs_f64()
    );
}
