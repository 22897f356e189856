//! The Tezos (octez-signer) API through the real binary: vectors signed over HTTP, the
//! high-watermark sequence on both stores, authentication, policy, bad input, key import and
//! a two-instance race on PostgreSQL.

mod common;

use std::path::Path;

use common::{
    Backend, Server, client, fresh_db, tezos_attestation as attestation, tezos_block as block,
    tezos_transfer, vector,
};
use palisade::chain::tezos::authentication_message;
use palisade::chain::tezos::payload::ConsensusKind;
use palisade::crypto::tezos::{PublicKey, SecretKey, Signature};
use serde_json::Value;

const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

/// Writes a `tezos-secret` key config.
fn write_tezos_key(dir: &Path, name: &str, secret_key: &str, policy: Option<&str>) {
    std::fs::create_dir_all(dir).unwrap();
    let mut yaml = format!("type: tezos-secret\nsecretKey: \"unencrypted:{secret_key}\"\n");
    if let Some(p) = policy {
        yaml.push_str("policy:\n");
        for line in p.lines() {
            yaml.push_str(&format!("  {line}\n"));
        }
    }
    std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

fn signature_b58(body: &str) -> String {
    json(body)["signature"]
        .as_str()
        .unwrap_or_else(|| panic!("no signature: {body}"))
        .to_string()
}

/// Asserts a Tezos error body: `[{"id", "kind", "msg"}]`.
fn assert_tezos_error(body: &str) -> String {
    let v = json(body);
    let e = &v[0];
    assert!(e["id"].is_string() && e["kind"].is_string(), "{body}");
    e["msg"].as_str().expect("msg").to_string()
}

/// Reads one high watermark through the store.
fn mark(url: &str, pkh: &str, kind: ConsensusKind) -> Option<(u32, u32)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = palisade::protection::open(url, 1).await.unwrap();
        store
            .tezos_mark(MAINNET, pkh, kind)
            .await
            .unwrap()
            .map(|m| (m.level, m.round))
    })
}

fn tezos_vectors() -> Vec<Value> {
    vector("tezos/vectors.json")["vectors"]
        .as_array()
        .unwrap()
        .clone()
}

fn start_with_keys(dir: &Path, db_url: &str, extra: &[&str]) -> Server {
    let keys = dir.join("keys");
    let mut args = vec![
        "--key-config-path",
        keys.to_str().unwrap(),
        "--slashing-protection-db-url",
        db_url,
        "--tezos-http-listen-port",
        "0",
    ];
    args.extend_from_slice(extra);
    Server::start(dir, &args)
}

#[test]
fn vectors_sign_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let vectors = tezos_vectors();
    for (i, v) in vectors.iter().enumerate() {
        write_tezos_key(
            &dir.path().join("keys"),
            &format!("k{i}"),
            v["secret_key"].as_str().unwrap(),
            Some("allow: [generic, block, preattestation, attestation]\nprovePossession: true"),
        );
    }
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let server = start_with_keys(dir.path(), &db, &["--tezos-allow-list-known-keys"]);
    let mut known = Vec::new();
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let pkh = v["public_key_hash"].as_str().unwrap();
        known.push(pkh.to_string());
        let (status, body) = server.tezos_get(&format!("/keys/{pkh}"));
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(json(&body)["public_key"], v["public_key"], "{name}");

        // The file's payload (0x03 0x1234) is not a decodable operation, which palisade
        // refuses; a well-formed transfer is signed instead and compared with the in-process
        // signature of the same key (checked byte-exact against the file in crypto::tezos).
        let bytes = hex::encode(tezos_transfer(
            &palisade::crypto::tezos::decode_pkh_bytes(pkh).unwrap(),
            1,
        ));
        let (status, body) = server.tezos_sign(pkh, &bytes, "");
        assert_eq!(status, 200, "{name}: {body}");
        let sig = signature_b58(&body);
        let secret = SecretKey::from_b58(v["secret_key"].as_str().unwrap()).unwrap();
        let raw = hex::decode(&bytes).unwrap();
        assert_eq!(sig, secret.sign(&raw, 2).unwrap().to_b58(), "{name}");
        let public_key = PublicKey::from_b58(v["public_key"].as_str().unwrap()).unwrap();
        let parsed = Signature::from_b58_for(public_key.curve(), &sig).unwrap();
        assert!(
            public_key.verify(&raw, &parsed, 2),
            "{name}: signature does not verify"
        );
        let (status, body) = server.tezos_sign(pkh, v["signed_bytes_hex"].as_str().unwrap(), "");
        assert_eq!(
            status, 400,
            "{name}: too short for a generic operation: {body}"
        );
        match v["curve"].as_str().unwrap() {
            "ed25519" => {}
            "secp256k1" | "p256" => {
                assert!(palisade::crypto::tezos::is_low_s(&parsed), "{name}: high S")
            }
            _ => {
                let (status, body) = server.tezos_sign(pkh, &bytes, "?version=1");
                assert_eq!(status, 200, "{body}");
                assert_eq!(signature_b58(&body), secret.sign(&raw, 1).unwrap().to_b58());
                let (status, body) = server.tezos_sign(pkh, &bytes, "?version=0");
                assert_eq!(status, 400, "{body}");
                // A repeat is answered with the stored signature only in its own ciphersuite.
                let att = attestation(MAINNET, 7, 0, 1);
                let (status, body) = server.tezos_sign(pkh, &att, "");
                assert_eq!(status, 200, "{body}");
                let first = signature_b58(&body);
                let (status, body) = server.tezos_sign(pkh, &att, "?version=1");
                assert_eq!(
                    status, 409,
                    "AUG repeat of a POP-signed attestation: {body}"
                );
                let (status, body) = server.tezos_sign(pkh, &att, "?version=3");
                assert_eq!((status, signature_b58(&body)), (200, first));
                let (status, body) = server.tezos_get(&format!("/bls_prove_possession/{pkh}"));
                assert_eq!(status, 200, "{body}");
                assert_eq!(
                    json(&body)["bls_prove_possession"],
                    v["expected_proof_of_possession"]
                );
            }
        }
        if v["curve"] != "bls12-381 (MinPk)" {
            let (status, body) = server.tezos_get(&format!("/bls_prove_possession/{pkh}"));
            assert_eq!(status, 400, "{name}: {body}");
            assert_tezos_error(&body);
        }
    }
    let (status, body) = server.tezos_get("/known_keys");
    assert_eq!(status, 200);
    known.sort();
    let listed: Vec<String> = serde_json::from_value(json(&body)["known_keys"].clone()).unwrap();
    assert_eq!(listed, known);
    let (status, body) = server.tezos_get("/authorized_keys");
    assert_eq!((status, json(&body)), (200, serde_json::json!({})));
    let (status, body) = server.tezos_get("/keys/tz1RvhdZ5pcjD19vCCK9PgZpnmErTba3dsBX");
    assert_eq!(status, 404, "{body}");
    assert_tezos_error(&body);
}

/// The 10-step sequence of `tenderbake_payloads.json` against a fresh server.
fn watermark_sequence(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(backend, dir.path()) else {
        return;
    };
    let v = &tezos_vectors()[0];
    write_tezos_key(
        &dir.path().join("keys"),
        "baker",
        v["secret_key"].as_str().unwrap(),
        None,
    );
    let pkh = v["public_key_hash"].as_str().unwrap();
    let public_key = PublicKey::from_b58(v["public_key"].as_str().unwrap()).unwrap();
    let server = start_with_keys(dir.path(), &db.url, &[]);
    let steps = vector("tezos/tenderbake_payloads.json")["watermark_sequence"]["steps"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(steps.len(), 10);
    let mut last_signed: std::collections::HashMap<String, String> = Default::default();
    for (i, step) in steps.iter().enumerate() {
        let bytes = step["payload_hex"].as_str().unwrap();
        let (status, body) = server.tezos_sign(pkh, bytes, "");
        match step["expected"].as_str().unwrap() {
            "Success" => {
                assert_eq!(status, 200, "step {i}: {body}");
                let sig = signature_b58(&body);
                let parsed = Signature::from_b58(&sig).unwrap();
                assert!(public_key.verify(&hex::decode(bytes).unwrap(), &parsed, 2));
                if let Some(previous) = last_signed.get(bytes) {
                    assert_eq!(&sig, previous, "step {i}: a repeat gets the same signature");
                }
                last_signed.insert(bytes.to_string(), sig);
            }
            "Refused" => {
                assert_eq!(status, 409, "step {i}: {body}");
                assert!(
                    assert_tezos_error(&body).contains("high watermark"),
                    "{body}"
                );
            }
            other => panic!("unknown expectation {other}"),
        }
    }
    // The marks now hold the last signed (level, round) per kind on mainnet.
    assert_eq!(mark(&db.url, pkh, ConsensusKind::Block), Some((12, 0)));
    assert_eq!(
        mark(&db.url, pkh, ConsensusKind::Preattestation),
        Some((11, 6))
    );
    assert_eq!(
        mark(&db.url, pkh, ConsensusKind::Attestation),
        Some((11, 0))
    );
}

#[test]
fn watermark_sequence_sqlite() {
    watermark_sequence(Backend::Sqlite);
}

#[test]
fn watermark_sequence_postgres() {
    watermark_sequence(Backend::Postgres);
}

#[test]
fn watermark_survives_restart_and_refuses_double_signing() {
    let dir = tempfile::tempdir().unwrap();
    let v = &tezos_vectors()[2];
    write_tezos_key(
        &dir.path().join("keys"),
        "baker",
        v["secret_key"].as_str().unwrap(),
        None,
    );
    let pkh = v["public_key_hash"].as_str().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let server = start_with_keys(dir.path(), &db, &[]);
    let first = attestation(MAINNET, 100, 0, 1);
    let (status, body) = server.tezos_sign(pkh, &first, "");
    assert_eq!(status, 200, "{body}");
    let sig = signature_b58(&body);
    server.stop();
    let server = start_with_keys(dir.path(), &db, &[]);
    // Same level and round, other bytes: a double attestation.
    let (status, body) = server.tezos_sign(pkh, &attestation(MAINNET, 100, 0, 2), "");
    assert_eq!(status, 409, "{body}");
    // The same bytes again: the stored signature (ECDSA included), not a new one.
    let (status, body) = server.tezos_sign(pkh, &first, "");
    assert_eq!((status, signature_b58(&body)), (200, sig));
    // Blocks have their own mark.
    let (status, body) = server.tezos_sign(pkh, &block(MAINNET, 100, 0, 1), "");
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.tezos_sign(pkh, &block(MAINNET, 100, 0, 9), "");
    assert_eq!(status, 409);
    let (status, _) = server.tezos_sign(pkh, &block(MAINNET, 100, 1, 9), "");
    assert_eq!(status, 200);
}

fn bad_input(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(backend, dir.path()) else {
        return;
    };
    let v = &tezos_vectors()[0];
    write_tezos_key(
        &dir.path().join("keys"),
        "baker",
        v["secret_key"].as_str().unwrap(),
        Some("chainIds: [NetXdQprcVkpaWU]"),
    );
    let pkh = v["public_key_hash"].as_str().unwrap();
    let server = start_with_keys(dir.path(), &db.url, &[]);
    let (status, body) = server.tezos_sign(pkh, &attestation(MAINNET, 50, 1, 1), "");
    assert_eq!(status, 200, "{body}");
    let good_block = block(MAINNET, 50, 1, 1);
    let (status, body) = server.tezos_sign(pkh, &good_block, "");
    assert_eq!(status, 200, "{body}");
    let marks = || {
        (
            mark(&db.url, pkh, ConsensusKind::Attestation),
            mark(&db.url, pkh, ConsensusKind::Block),
        )
    };
    let before = marks();
    assert_eq!(before, (Some((50, 1)), Some((50, 1))));

    let higher = attestation(MAINNET, 60, 0, 3);
    let cases: Vec<(&str, String, u16)> = vec![
        ("odd hex", format!("\"{}0\"", &higher), 400),
        ("not hex", "\"13zz\"".into(), 400),
        (
            "not a JSON string",
            format!("{{\"data\": \"{higher}\"}}"),
            400,
        ),
        ("not JSON", higher.clone(), 400),
        ("empty", "\"\"".into(), 400),
        (
            "truncated attestation",
            format!("\"{}\"", &higher[..90]),
            400,
        ),
        (
            "truncated block",
            format!("\"{}\"", &block(MAINNET, 70, 0, 1)[..170]),
            400,
        ),
        ("unknown magic byte", format!("\"04{}\"", &higher[2..]), 400),
        (
            "oversize",
            format!("\"{}{}\"", higher, "00".repeat(40 * 1024)),
            400,
        ),
        (
            "wrong chain",
            format!("\"{}\"", attestation([0x7a, 0xf6, 0xa7, 0x70], 70, 0, 1)),
            403,
        ),
        (
            "generic refused by default policy",
            format!("\"03{}\"", "11".repeat(40)),
            403,
        ),
    ];
    for (name, body, want) in cases {
        let r = client()
            .post(format!("{}/keys/{pkh}", server.tezos_url()))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        assert_eq!(status, want, "{name}: {text}");
        let msg = assert_tezos_error(&text);
        if name == "unknown magic byte" {
            assert!(msg.contains("0x04"), "{name}: {msg}");
        }
        assert_eq!(marks(), before, "{name} moved a watermark");
    }
    let (status, body) = server.tezos_sign(pkh, &higher, "?version=abc");
    assert_eq!(status, 400, "{body}");
    assert_eq!(marks(), before);
}

#[test]
fn bad_input_sqlite() {
    bad_input(Backend::Sqlite);
}

#[test]
fn bad_input_postgres() {
    bad_input(Backend::Postgres);
}

#[test]
fn policy_and_magic_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let vs = tezos_vectors();
    write_tezos_key(
        &dir.path().join("keys"),
        "wallet",
        vs[0]["secret_key"].as_str().unwrap(),
        Some("allow: [generic, michelson_data]\noperations: [transaction, reveal]"),
    );
    write_tezos_key(
        &dir.path().join("keys"),
        "baker",
        vs[1]["secret_key"].as_str().unwrap(),
        Some("allow: [generic, attestation]"),
    );
    let wallet = vs[0]["public_key_hash"].as_str().unwrap();
    let baker = vs[1]["public_key_hash"].as_str().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let server = start_with_keys(dir.path(), &db, &[]);

    let source = {
        let mut s = vec![0u8];
        s.extend_from_slice(&[0x11; 20]);
        s
    };
    let manager = |tag: u8, tail: &[u8]| {
        let mut b = vec![tag];
        b.extend_from_slice(&source);
        b.extend_from_slice(&[0x80, 0x01, 0x05, 0x90, 0x4e, 0x00]); // fee, counter, gas, storage
        b.extend_from_slice(tail);
        b
    };
    let generic = |ops: &[Vec<u8>]| {
        let mut b = vec![0x03];
        b.extend_from_slice(&[0x22; 32]);
        for op in ops {
            b.extend_from_slice(op);
        }
        hex::encode(b)
    };
    let mut transaction_tail = vec![0x0a, 0x00];
    transaction_tail.extend_from_slice(&source);
    transaction_tail.push(0x00);
    let transaction = manager(108, &transaction_tail);
    let mut delegation_tail = vec![0xff];
    delegation_tail.extend_from_slice(&source);
    let delegation = manager(110, &delegation_tail);

    let (status, body) =
        server.tezos_sign(wallet, &generic(std::slice::from_ref(&transaction)), "");
    assert_eq!(status, 200, "transaction: {body}");
    let (status, body) = server.tezos_sign(wallet, &generic(std::slice::from_ref(&delegation)), "");
    assert_eq!(status, 403, "delegation: {body}");
    assert!(assert_tezos_error(&body).contains("delegation"), "{body}");
    let (status, body) =
        server.tezos_sign(wallet, &generic(&[transaction.clone(), delegation]), "");
    assert_eq!(status, 403, "batch with a delegation: {body}");
    let (status, body) = server.tezos_sign(wallet, &generic(&[vec![0xc8, 1, 2, 3]]), "");
    assert_eq!(status, 403, "undecodable operation fails closed: {body}");
    let (status, body) = server.tezos_sign(wallet, "05010000000568656c6c6f", "");
    assert_eq!(status, 200, "michelson data: {body}");
    let (status, body) = server.tezos_sign(wallet, &attestation(MAINNET, 1, 0, 1), "");
    assert_eq!(status, 403, "wallet may not attest: {body}");
    let (status, body) = server.tezos_sign(baker, &block(MAINNET, 1, 0, 1), "");
    assert_eq!(status, 403, "baker may not bake: {body}");
    let (status, body) = server.tezos_sign(baker, &attestation(MAINNET, 1, 0, 1), "");
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.tezos_get(&format!("/bls_prove_possession/{baker}"));
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.tezos_get("/known_keys");
    assert_eq!(status, 404, "known keys are not listed by default");
    server.stop();

    // The global magic-byte list overrides key policies.
    let server = start_with_keys(dir.path(), &db, &["--tezos-magic-bytes", "0x11,0x12,0x13"]);
    let (status, body) = server.tezos_sign(wallet, &generic(&[transaction]), "");
    assert_eq!(status, 403, "{body}");
    assert!(assert_tezos_error(&body).contains("0x03"), "{body}");
    let (status, body) = server.tezos_sign(baker, &attestation(MAINNET, 2, 0, 1), "");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn authentication_as_octez_client_builds_it() {
    let dir = tempfile::tempdir().unwrap();
    let vs = tezos_vectors();
    write_tezos_key(
        &dir.path().join("keys"),
        "baker",
        vs[0]["secret_key"].as_str().unwrap(),
        None,
    );
    let pkh = vs[0]["public_key_hash"].as_str().unwrap();
    // The client's authorized key (tz2) and an outsider (tz3).
    let client_key = SecretKey::from_b58(vs[2]["secret_key"].as_str().unwrap()).unwrap();
    let outsider = SecretKey::from_b58(vs[4]["secret_key"].as_str().unwrap()).unwrap();
    let authorized = dir.path().join("authorized_keys");
    std::fs::write(
        &authorized,
        format!("# the baker host\n{}\n", client_key.public_key().to_b58()),
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let server = start_with_keys(
        dir.path(),
        &db,
        &[
            "--tezos-require-authentication",
            "--tezos-authorized-keys",
            authorized.to_str().unwrap(),
        ],
    );
    let (status, body) = server.tezos_get("/authorized_keys");
    assert_eq!(status, 200);
    assert_eq!(
        json(&body)["authorized_keys"],
        serde_json::json!([client_key.public_key().pkh_b58()])
    );
    let baker_pkh = PublicKey::from_b58(vs[0]["public_key"].as_str().unwrap())
        .unwrap()
        .pkh_bytes();
    let auth = |key: &SecretKey, data: &str| {
        let msg = authentication_message(&baker_pkh, &hex::decode(data).unwrap());
        key.sign(&msg, 2).unwrap().to_b58()
    };
    let data = attestation(MAINNET, 5, 0, 1);
    let (status, body) = server.tezos_sign(pkh, &data, "");
    assert_eq!(status, 401, "{body}");
    assert_tezos_error(&body);
    let (status, body) = server.tezos_sign(
        pkh,
        &data,
        &format!("?authentication={}", auth(&outsider, &data)),
    );
    assert_eq!(status, 403, "outsider: {body}");
    // Signed by the right key over other data (a replayed token).
    let other = attestation(MAINNET, 6, 0, 1);
    let (status, body) = server.tezos_sign(
        pkh,
        &data,
        &format!("?authentication={}", auth(&client_key, &other)),
    );
    assert_eq!(status, 403, "token for other data: {body}");
    assert_eq!(mark(&db, pkh, ConsensusKind::Attestation), None);
    let (status, body) = server.tezos_sign(
        pkh,
        &data,
        &format!("?authentication={}", auth(&client_key, &data)),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(mark(&db, pkh, ConsensusKind::Attestation), Some((5, 0)));
}

#[test]
fn import_octez_secret_keys() {
    let dir = tempfile::tempdir().unwrap();
    let vs = tezos_vectors();
    let password_file = dir.path().join("password.txt");
    std::fs::write(&password_file, "correct horse battery staple\n").unwrap();
    let encrypted = SecretKey::from_b58(vs[4]["secret_key"].as_str().unwrap())
        .unwrap()
        .to_encrypted_b58(b"correct horse battery staple", [7; 8]);
    let secret_keys = dir.path().join("secret_keys");
    std::fs::write(
        &secret_keys,
        serde_json::to_string_pretty(&serde_json::json!([
            {"name": "baker", "value": format!("unencrypted:{}", vs[0]["secret_key"].as_str().unwrap())},
            {"name": "consensus_tz4", "value": format!("unencrypted:{}", vs[5]["secret_key"].as_str().unwrap())},
            {"name": "cold", "value": format!("encrypted:{encrypted}")},
        ]))
        .unwrap(),
    )
    .unwrap();
    let keys = dir.path().join("keys");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["keys", "import-octez", "--secret-keys"])
            .arg(&secret_keys)
            .arg("--out")
            .arg(&keys)
            .args(extra)
            .output()
            .unwrap()
    };
    // A wrong password writes nothing.
    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, "nope\n").unwrap();
    let out = run(&["--password-file", wrong.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cold"), "{stderr}");
    assert!(!keys.exists() || std::fs::read_dir(&keys).unwrap().count() == 0);

    let out = run(&["--password-file", password_file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for v in [&vs[0], &vs[4], &vs[5]] {
        assert!(
            stdout.contains(v["public_key_hash"].as_str().unwrap()),
            "{stdout}"
        );
    }
    for name in ["baker", "consensus_tz4", "cold"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys.join(format!("{name}.yaml")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    // Importing again never overwrites.
    assert!(
        !run(&["--password-file", password_file.to_str().unwrap()])
            .status
            .success()
    );

    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let server = start_with_keys(dir.path(), &db, &[]);
    for v in [&vs[0], &vs[4], &vs[5]] {
        let (status, body) =
            server.tezos_get(&format!("/keys/{}", v["public_key_hash"].as_str().unwrap()));
        assert_eq!(status, 200, "{body}");
        assert_eq!(json(&body)["public_key"], v["public_key"]);
    }
    // The encrypted key signs.
    let (status, body) = server.tezos_sign(
        vs[4]["public_key_hash"].as_str().unwrap(),
        &attestation(MAINNET, 1, 0, 1),
        "",
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn two_instances_race_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(Backend::Postgres, dir.path()) else {
        return;
    };
    let vs = tezos_vectors();
    write_tezos_key(
        &dir.path().join("keys"),
        "baker",
        vs[0]["secret_key"].as_str().unwrap(),
        None,
    );
    let pkh = vs[0]["public_key_hash"].as_str().unwrap().to_string();
    let public_key = PublicKey::from_b58(vs[0]["public_key"].as_str().unwrap()).unwrap();
    let a_dir = dir.path().join("a");
    let b_dir = dir.path().join("b");
    for d in [&a_dir, &b_dir] {
        std::fs::create_dir_all(d).unwrap();
        std::os::unix::fs::symlink(dir.path().join("keys"), d.join("keys")).unwrap();
    }
    let a = start_with_keys(&a_dir, &db.url, &[]);
    let b = start_with_keys(&b_dir, &db.url, &[]);
    let (a_url, b_url) = (a.tezos_url(), b.tezos_url());
    const PAIRS: u32 = 300;
    let mut signed = 0;
    for level in 1..=PAIRS {
        let x = attestation(MAINNET, level, 0, 1);
        let y = attestation(MAINNET, level, 0, 2);
        let send = |url: String, bytes: String, pkh: String| {
            std::thread::spawn(move || {
                let r = client()
                    .post(format!("{url}/keys/{pkh}"))
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_string(&bytes).unwrap())
                    .send()
                    .unwrap();
                (r.status().as_u16(), r.text().unwrap(), bytes)
            })
        };
        let ta = send(a_url.clone(), x, pkh.clone());
        let tb = send(b_url.clone(), y, pkh.clone());
        let results = [ta.join().unwrap(), tb.join().unwrap()];
        let ok: Vec<_> = results.iter().filter(|r| r.0 == 200).collect();
        assert_eq!(
            ok.len(),
            1,
            "level {level}: exactly one signed: {results:?}"
        );
        assert!(
            results.iter().any(|r| r.0 == 409),
            "level {level}: the other gets 409: {results:?}"
        );
        let sig = Signature::from_b58(&signature_b58(&ok[0].1)).unwrap();
        assert!(public_key.verify(&hex::decode(&ok[0].2).unwrap(), &sig, 2));
        signed += 1;
    }
    assert_eq!(signed, PAIRS);
    assert_eq!(
        mark(&db.url, &pkh, ConsensusKind::Attestation),
        Some((PAIRS, 0))
    );
}
