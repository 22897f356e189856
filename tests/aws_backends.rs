//! AWS key backends through the real binary, against moto (PyPI's AWS emulator) started per
//! test by `tests/vaults/moto_server.py`, whose KMS `Sign` is patched to sign the digest as
//! given (`MessageType=DIGEST`), as AWS does; `moto_check.py` proves that patch with boto3.
//!
//! - `aws-kms`: tz2 and tz3 keys signing inside KMS, driven by Taquito's RemoteSigner (which
//!   verifies every signature and checks low-S: KMS answers high-S about half the time); a
//!   KMS that hangs or answers 503 gives 503 for its keys only and moves no watermark; an RSA
//!   key, a missing key and an unreadable credential are load errors naming the file.
//! - `aws-secret` (Web3Signer's key config) and `aws-secrets-bulk` (name prefix and tags):
//!   BLS secrets from Secrets Manager signing Web3Signer's published RANDAO example byte for
//!   byte; reload follows added and deleted secrets.
//! - A bulk load of 10,000 secrets, timed, with its batch calls bounded by `concurrency`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::moto::Moto;
use common::{Server, test_pubkey, test_secret, vector, write_tezos_baker};
use serde_json::{Value, json};

/// The (dummy) secret access key the key configs read from a file.
const SECRET_ACCESS_KEY: &str = "moto-secret-access-key-not-for-logs";

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

/// The AWS fields of a key config: moto's endpoint, an access key whose secret is in a file.
fn aws_fields(moto: &Moto) -> String {
    let ca = moto
        .ca
        .as_ref()
        .map(|c| format!("tlsCaFile: {}\n", c.display()))
        .unwrap_or_default();
    format!(
        "region: us-east-1\nendpointOverride: {}\nauthenticationMode: SPECIFIED\n\
         accessKeyId: AKIDTEST\nsecretAccessKeyFile: ../aws-secret\n{ca}",
        moto.endpoint
    )
}

#[test]
fn kms_keys_sign_for_a_tezos_client_and_fail_alone() {
    // Over HTTPS under the harness's own CA (tlsCaFile).
    let moto = Moto::start_with(true);
    let k1 = moto.create_key("ECC_SECG_P256K1");
    let p256 = moto.create_key("ECC_NIST_P256");
    let rsa = moto.create_key("RSA_2048");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    write(dir.path(), "aws-secret", SECRET_ACCESS_KEY);
    let config = |key: &str| {
        format!(
            "type: aws-kms\n{}kmsKeyId: {key}\ntimeoutMs: 1500\n\
             policy: {{ allow: [block, preattestation, attestation, generic] }}\n",
            aws_fields(&moto)
        )
    };
    write(&keys, "k1.yaml", &config(&k1));
    write(&keys, "p256.yaml", &config(&p256));
    write(&keys, "rsa.yaml", &config(&rsa));
    write(
        &keys,
        "missing.yaml",
        &config("11111111-2222-3333-4444-555555555555"),
    );
    write(
        &keys,
        "nocred.yaml",
        &config(&k1).replace(
            "secretAccessKeyFile: ../aws-secret",
            "secretAccessKeyEnv: PALISADE_TEST_UNSET_AWS_SECRET",
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
    let kms: Vec<&Value> = inv
        .iter()
        .filter(|k| {
            k["backend"]
                .as_str()
                .is_some_and(|b| b.starts_with("aws-kms"))
        })
        .collect();
    assert_eq!(kms.len(), 2, "{inv:?}");
    let pkh_of = |id: &str| -> String {
        kms.iter()
            .find(|k| k["backend"].as_str().unwrap().contains(id))
            .unwrap_or_else(|| panic!("{id} not in {inv:?}"))["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (tz2, tz3) = (pkh_of(&k1), pkh_of(&p256));
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
        ("rsa.yaml", "RSA_2048"),
        ("missing.yaml", "NotFoundException"),
        ("nocred.yaml", "PALISADE_TEST_UNSET_AWS_SECRET is not set"),
    ] {
        assert!(
            failed.iter().any(|f| f.contains(file) && f.contains(why)),
            "{file}: {failed:?}"
        );
    }

    // Taquito's RemoteSigner: 40 signatures per key verified and checked low-S, then the
    // watermark checks.
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
        || moto.outage(Some("hang")),
        || moto.outage(None),
    );
    let refused = common::failing_backend_fails_alone(
        &server,
        &tz2,
        &memory_pkh,
        || moto.outage(Some("503")),
        || moto.outage(None),
    );
    assert!(refused.contains("signing_backend"), "{refused}");

    // Latency through palisade (debug build, SQLite, this machine), beside the in-memory key.
    common::print_tezos_latency(&server, "aws-kms tz3", &tz3, &memory_pkh);

    let metrics = common::metrics_text(&server);
    assert!(
        metrics.contains(
            r#"palisade_backend_call_duration_seconds_count{backend="aws-kms",operation="sign"}"#
        ),
        "no KMS sign metrics"
    );
    for line in server.stderr_lines() {
        assert!(!line.contains(SECRET_ACCESS_KEY), "{line}");
    }
}

#[test]
fn secrets_manager_configs_bulk_filters_and_reload() {
    let moto = Moto::start();
    let example = vector("eth2-signing/web3signer_openapi_examples.json");
    let mut names = vec!["keys/example".to_string()];
    let mut values = vec![example["secret_key"].as_str().unwrap().to_string()];
    moto.bulk_secrets(&names, &values, json!({}));
    // 30 validators tagged role=validator, one of them holding two keys; decoys: the same
    // prefix with another tag, another prefix with the tag; one secret that is not a key.
    names = (0..30).map(|i| format!("validators/k{i:03}")).collect();
    values = (0..30).map(test_secret).collect();
    values[29] = format!("{}\n{}", test_secret(29), test_secret(30));
    names.push("validators/broken".into());
    values.push("0x1234".into());
    moto.bulk_secrets(&names, &values, json!({"role": "validator"}));
    moto.bulk_secrets(
        &(0..5)
            .map(|i| format!("validators/other{i}"))
            .collect::<Vec<_>>(),
        &(50..55).map(test_secret).collect::<Vec<_>>(),
        json!({"role": "other"}),
    );
    moto.bulk_secrets(
        &(0..3)
            .map(|i| format!("elsewhere/k{i}"))
            .collect::<Vec<_>>(),
        &(60..63).map(test_secret).collect::<Vec<_>>(),
        json!({"role": "validator"}),
    );

    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    write(dir.path(), "aws-secret", SECRET_ACCESS_KEY);
    // Web3Signer's format, its secret access key inline.
    write(
        &keys,
        "example.yaml",
        &format!(
            "type: aws-secret\nkeyType: BLS\nauthenticationMode: SPECIFIED\nregion: us-east-1\n\
             accessKeyId: AKIDTEST\nsecretAccessKey: {SECRET_ACCESS_KEY}\n\
             secretName: keys/example\nendpointOverride: {}\n",
            moto.endpoint
        ),
    );
    write(
        &keys,
        "bulk.yaml",
        &format!(
            "type: aws-secrets-bulk\n{}namePrefix: validators/\ntags: {{ role: validator }}\n\
             concurrency: 4\n",
            aws_fields(&moto)
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
    assert!(loaded.contains(&example["pubkey"].as_str().unwrap().to_string()));
    for i in 0..31 {
        assert!(loaded.contains(&test_pubkey(i)), "key {i} missing");
    }
    assert_eq!(loaded.len(), 32, "decoys loaded: {loaded:?}");
    let inv = inventory(&server);
    let broken: Vec<&Value> = inv.iter().filter(|k| k["status"] != "active").collect();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(
        broken[0].to_string().contains("validators/broken"),
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

    // One secret deleted, one added, then a reload.
    let (s, v) = moto.call(
        "secretsmanager.DeleteSecret",
        json!({"SecretId": "validators/k000", "ForceDeleteWithoutRecovery": true}),
    );
    assert_eq!(s, 200, "{v}");
    moto.bulk_secrets(
        &["validators/k100".to_string()],
        &[test_secret(100)],
        json!({"role": "validator"}),
    );
    let outcome = reload(&server);
    assert_eq!(outcome["status"], "completed", "{outcome}");
    let after = public_keys(&server);
    assert!(!after.contains(&test_pubkey(0)));
    assert!(after.contains(&test_pubkey(100)));
    assert_eq!(after.len(), 32);
    for line in server.stderr_lines() {
        assert!(!line.contains(SECRET_ACCESS_KEY), "{line}");
        assert!(!line.contains(&test_secret(3)[2..]), "{line}");
    }
}

#[test]
fn bulk_load_of_10000_secrets_from_secrets_manager() {
    let n: u32 = std::env::var("PALISADE_VAULT_BULK_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let moto = Moto::start();
    let names: Vec<String> = (0..n).map(|i| format!("many/k{i:05}")).collect();
    let values: Vec<String> = (0..n).map(|i| test_secret(1_000 + i)).collect();
    moto.bulk_secrets(&names, &values, json!({"role": "validator"}));
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    write(dir.path(), "aws-secret", SECRET_ACCESS_KEY);
    write(
        &keys,
        "bulk.yaml",
        &format!(
            "type: aws-secrets-bulk\n{}namePrefix: many/\nconcurrency: 8\n",
            aws_fields(&moto)
        ),
    );
    moto.reset_stats();
    let started = Instant::now();
    let server = Server::start(
        &dir.path().join("data"),
        &["--key-config-path", keys.to_str().unwrap()],
    );
    let startup = started.elapsed();
    assert_eq!(public_keys(&server).len(), n as usize);
    let stats = moto.stats();
    let batches = stats["requests"]["secretsmanager.BatchGetSecretValue"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(batches, u64::from(n).div_ceil(20), "{stats}");
    let in_flight = stats["max_in_flight"].as_u64().unwrap();
    // The harness counts a call finished only once it has written the answer, so the next
    // call may be counted before: one more than the bound.
    assert!(
        in_flight <= 8 + 1,
        "more than `concurrency` calls in flight: {stats}"
    );
    let line = server
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("aws secrets bulk load"))
        .unwrap_or_default();
    println!(
        "aws-secrets-bulk: {n} BLS secrets from Secrets Manager (moto), concurrency 8: palisade \
         started serving them in {:.2} s, {batches} batch calls, at most {in_flight} in flight; \
         {line}",
        startup.as_secs_f64()
    );
}
