//! Hostile input on the Tezos (octez-signer) listener, through the real binary (issue 14).
//!
//! Every probe asserts the refusal and its status, that nothing was signed or recorded (no
//! `signed` audit row for the probe's bytes, no high watermark moved), and that the listener
//! still answers `GET /authorized_keys` within its normal latency right afterwards:
//!
//! - staking pseudo-operations are only calls by the key's own account to itself: a transfer to
//!   a KT1 whose entrypoint is named `stake`, a `stake` call to another tz1 and another
//!   account's self-call are transactions (refused by a staking-only policy); a real `stake`,
//!   `unstake` and `finalize_unstake` are signed. The operations are forged by Taquito's
//!   `@taquito/local-forging` (an independent encoder; `npm ci` in tests/clients, fails without);
//! - with `--tezos-require-authentication`, 63 KiB `authentication`, `version`, `bls_pk` and
//!   path values are refused before any decoding, and four of them in parallel do not stall a
//!   concurrent request;
//! - with authentication required, an unknown pkh answers exactly like a known one (no 404
//!   before authentication);
//! - `POST /keys/{pkh}` without `Content-Type: application/json` is 415 with a JSON body.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, client, tezos_attestation as attestation, vector};
use palisade::chain::tezos::authentication_message;
use palisade::chain::tezos::payload::ConsensusKind;
use palisade::crypto::tezos::{PublicKey, SecretKey, blake2b_256};
use palisade::protection::audit::AuditDecision;
use serde_json::{Value, json};

const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

/// The latency a healthy listener answers `GET /authorized_keys` within, on a loaded CI box.
const NORMAL_LATENCY: Duration = Duration::from_millis(200);

/// A valid block hash for the forged operations' branch.
const BRANCH: &str = "BLockGenesisGenesisGenesisGenesisGenesisf79b5d1CoW2";

/// A valid originated contract address (the destination of the disguised transfer).
const KT1: &str = "KT1PWx2mnDueood7fEmfbBDKx1D9BAnnXitn";

fn vectors() -> Vec<Value> {
    vector("tezos/vectors.json")["vectors"]
        .as_array()
        .unwrap()
        .clone()
}

/// Writes a `tezos-secret` key config with a policy block (YAML lines, indented here).
fn write_key(dir: &Path, name: &str, secret_key: &str, policy: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let mut yaml = format!("type: tezos-secret\nsecretKey: \"unencrypted:{secret_key}\"\n");
    if !policy.is_empty() {
        yaml.push_str("policy:\n");
        for line in policy.lines() {
            yaml.push_str(&format!("  {line}\n"));
        }
    }
    std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("db.sqlite").display())
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let keys = dir.join("keys");
    let db = db_url(dir);
    let mut args = vec![
        "--key-config-path",
        keys.to_str().unwrap(),
        "--slashing-protection-db-url",
        &db,
        "--tezos-http-listen-port",
        "0",
    ];
    args.extend_from_slice(extra);
    Server::start(dir, &args)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Every audit row's (decision, signing root) so far.
fn audit(db: &str) -> Vec<(AuditDecision, Option<[u8; 32]>)> {
    block_on(async {
        let store = palisade::protection::open(db, 1).await.unwrap();
        store
            .audit_records(0, i64::MAX, 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.entry.decision, r.entry.signing_root))
            .collect()
    })
}

/// Whether the audit trail holds a `signed` row for these hex bytes.
fn was_signed(db: &str, bytes_hex: &str) -> bool {
    let digest = blake2b_256(&hex::decode(bytes_hex).unwrap());
    audit(db)
        .iter()
        .any(|(d, root)| *d == AuditDecision::Signed && *root == Some(digest))
}

fn mark(db: &str, pkh: &str, kind: ConsensusKind) -> Option<(u32, u32)> {
    block_on(async {
        let store = palisade::protection::open(db, 1).await.unwrap();
        store
            .tezos_mark(MAINNET, pkh, kind)
            .await
            .unwrap()
            .map(|m| (m.level, m.round))
    })
}

/// POSTs a JSON string body to `/keys/{pkh}{query}` with `content_type` (none if `None`).
fn post(
    url: &str,
    pkh: &str,
    query: &str,
    body: &str,
    content_type: Option<&str>,
) -> (u16, String) {
    let mut r = client().post(format!("{url}/keys/{pkh}{query}"));
    if let Some(ct) = content_type {
        r = r.header("Content-Type", ct);
    }
    let r = r.body(body.to_string()).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn sign(url: &str, pkh: &str, bytes_hex: &str, query: &str) -> (u16, String) {
    post(
        url,
        pkh,
        query,
        &serde_json::to_string(bytes_hex).unwrap(),
        Some("application/json"),
    )
}

/// Asserts an octez error body `[{"id", "kind", "msg"}]` and returns its message.
fn error_msg(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    let e = &v[0];
    assert!(e["id"].is_string() && e["kind"].is_string(), "{body}");
    e["msg"].as_str().expect("msg").to_string()
}

/// `GET /authorized_keys` answers 200 within [`NORMAL_LATENCY`].
fn assert_responsive(url: &str, when: &str) -> Duration {
    let started = Instant::now();
    let r = client()
        .get(format!("{url}/authorized_keys"))
        .send()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(r.status().as_u16(), 200, "{when}");
    assert!(
        took < NORMAL_LATENCY,
        "{when}: GET /authorized_keys took {took:?} (normal: under {NORMAL_LATENCY:?})"
    );
    took
}

/// Forges `contents` (Taquito's operation JSON) with `@taquito/local-forging` and returns the
/// generic signing request: `03` + the forged hex.
fn forge(contents: &Value) -> String {
    let script = common::taquito_script();
    let dir = script.parent().unwrap();
    let program = r#"
import {LocalForger} from "@taquito/local-forging";
const [branch, contents] = JSON.parse(process.argv[1]);
process.stdout.write(await new LocalForger().forge({branch, contents}));
"#;
    let out = Command::new("node")
        .current_dir(dir)
        .args(["--input-type=module", "-e", program])
        .arg(json!([BRANCH, contents]).to_string())
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "Taquito forge failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let forged = String::from_utf8(out.stdout).unwrap();
    assert!(hex::decode(&forged).is_ok(), "not hex: {forged}");
    format!("03{forged}")
}

/// A Taquito transaction: `amount` mutez from `source` to `destination`, with an entrypoint
/// call (`Unit` parameter) when `entrypoint` is given.
fn transaction(source: &str, destination: &str, amount: u64, entrypoint: Option<&str>) -> Value {
    let mut t = json!({
        "kind": "transaction",
        "source": source,
        "fee": "1420",
        "counter": "7654321",
        "gas_limit": "10600",
        "storage_limit": "257",
        "amount": amount.to_string(),
        "destination": destination,
    });
    if let Some(ep) = entrypoint {
        t["parameters"] = json!({"entrypoint": ep, "value": {"prim": "Unit"}});
    }
    t
}

#[test]
fn staking_policy_refuses_transfers_dressed_as_staking() {
    let dir = tempfile::tempdir().unwrap();
    let vs = vectors();
    write_key(
        &dir.path().join("keys"),
        "staker",
        vs[1]["secret_key"].as_str().unwrap(),
        "allow: [generic]\noperations: [stake, unstake, finalize_unstake]",
    );
    let me = vs[1]["public_key_hash"].as_str().unwrap();
    let other = vs[0]["public_key_hash"].as_str().unwrap();
    let db = db_url(dir.path());
    let server = start(dir.path(), &[]);
    let url = server.tezos_url();
    const TEZ_1M: u64 = 1_000_000_000_000; // 10^12 mutez

    let refused: Vec<(&str, String)> = vec![
        (
            "10^12 mutez to a KT1 whose entrypoint is named stake",
            forge(&json!([transaction(me, KT1, TEZ_1M, Some("stake"))])),
        ),
        (
            "stake call to another tz1",
            forge(&json!([transaction(me, other, TEZ_1M, Some("stake"))])),
        ),
        (
            "unstake call to another tz1",
            forge(&json!([transaction(me, other, TEZ_1M, Some("unstake"))])),
        ),
        (
            "another account's own stake (source is not this key)",
            forge(&json!([transaction(other, other, TEZ_1M, Some("stake"))])),
        ),
        (
            "finalize_unstake carrying an amount",
            forge(&json!([transaction(
                me,
                me,
                TEZ_1M,
                Some("finalize_unstake")
            )])),
        ),
        (
            "a real stake batched with a disguised transfer",
            forge(&json!([
                transaction(me, me, 1_000_000, Some("stake")),
                transaction(me, KT1, TEZ_1M, Some("stake")),
            ])),
        ),
        (
            "plain transfer",
            forge(&json!([transaction(me, other, TEZ_1M, None)])),
        ),
    ];
    for (name, bytes) in &refused {
        let (status, body) = sign(&url, me, bytes, "");
        assert_eq!(status, 403, "{name}: {body}");
        let msg = error_msg(&body);
        assert!(msg.contains("transaction"), "{name}: {msg}");
        assert!(!was_signed(&db, bytes), "{name}: recorded as signed");
        assert_responsive(&url, name);
    }

    // The real staking pseudo-operations of this key are signed.
    let allowed = [
        (
            "stake",
            forge(&json!([transaction(me, me, TEZ_1M, Some("stake"))])),
        ),
        (
            "unstake",
            forge(&json!([transaction(me, me, TEZ_1M, Some("unstake"))])),
        ),
        (
            "finalize_unstake",
            forge(&json!([transaction(me, me, 0, Some("finalize_unstake"))])),
        ),
    ];
    for (name, bytes) in &allowed {
        let (status, body) = sign(&url, me, bytes, "");
        assert_eq!(status, 200, "{name}: {body}");
        assert!(was_signed(&db, bytes), "{name}: no signed audit row");
    }
    for (name, bytes) in &refused {
        assert!(!was_signed(&db, bytes), "{name}: recorded as signed");
    }
    assert_responsive(&url, "after the staking probes");
}

/// A server requiring authentication by five authorized keys (none of them the signing key).
fn authenticated_server(dir: &Path) -> (Server, Vec<SecretKey>) {
    let vs = vectors();
    write_key(
        &dir.join("keys"),
        "baker",
        vs[1]["secret_key"].as_str().unwrap(),
        "",
    );
    let authorized: Vec<SecretKey> = [0usize, 2, 3, 4, 5]
        .iter()
        .map(|&i| SecretKey::from_b58(vs[i]["secret_key"].as_str().unwrap()).unwrap())
        .collect();
    let file = dir.join("authorized_keys");
    let lines: Vec<String> = authorized.iter().map(|k| k.public_key().to_b58()).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let server = start(
        dir,
        &[
            "--tezos-require-authentication",
            "--tezos-authorized-keys",
            file.to_str().unwrap(),
        ],
    );
    (server, authorized)
}

#[test]
fn oversized_parameters_are_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = authenticated_server(dir.path());
    let db = db_url(dir.path());
    let url = server.tezos_url();
    let pkh = vectors()[1]["public_key_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let data = attestation(MAINNET, 10, 0, 1);
    // 63 KiB of valid base58 characters (the worst case for a base58 decoder; the `http`
    // crate refuses URIs of 64 KiB and more, so this is as long as a client can send).
    let huge = "z".repeat(63 * 1024);

    // One at a time: each is refused quickly as malformed.
    let single: [(&str, String, String); 3] = [
        (
            "authentication",
            pkh.clone(),
            format!("?authentication={huge}"),
        ),
        ("version", pkh.clone(), format!("?version={huge}")),
        ("pkh path segment", huge.clone(), String::new()),
    ];
    for (name, target, query) in &single {
        let started = Instant::now();
        let (status, body) = sign(&url, target, &data, query);
        let took = started.elapsed();
        assert!(
            status == 400 || status == 414,
            "63 KiB {name}: {status} {}",
            &body[..body.len().min(300)]
        );
        error_msg(&body);
        assert!(took < Duration::from_secs(1), "63 KiB {name} took {took:?}");
        assert_responsive(&url, name);
    }
    for path in [
        format!("/bls_prove_possession/{pkh}?bls_pk={huge}"),
        format!("/bls_prove_possession/{huge}"),
        format!("/keys/{huge}"),
    ] {
        let r = client().get(format!("{url}{path}")).send().unwrap();
        let status = r.status().as_u16();
        let body = r.text().unwrap();
        assert!(
            status == 400 || status == 414,
            "GET {}…: {status} {body}",
            &path[..40]
        );
        error_msg(&body);
    }

    // Four in parallel: a concurrent request still answers within its normal latency.
    let probes: Vec<_> = (0..4)
        .map(|_| {
            let (url, pkh, data, huge) = (url.clone(), pkh.clone(), data.clone(), huge.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let (status, body) = sign(&url, &pkh, &data, &format!("?authentication={huge}"));
                (status, body, started.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let concurrent = assert_responsive(&url, "while four 63 KiB authentications are in flight");
    for p in probes {
        let (status, body, took) = p.join().unwrap();
        assert!(
            status == 400 || status == 414,
            "parallel 63 KiB authentication: {status} {body}"
        );
        assert!(
            took < Duration::from_secs(1),
            "parallel probe took {took:?}"
        );
    }
    eprintln!("concurrent GET /authorized_keys during the probes: {concurrent:?}");
    assert_eq!(mark(&db, &pkh, ConsensusKind::Attestation), None);
    assert!(!was_signed(&db, &data));
    assert_responsive(&url, "after the parallel probes");
}

#[test]
fn unknown_key_answers_like_a_known_one_until_authenticated() {
    let dir = tempfile::tempdir().unwrap();
    let (server, authorized) = authenticated_server(dir.path());
    let db = db_url(dir.path());
    let url = server.tezos_url();
    let vs = vectors();
    let known = vs[1]["public_key_hash"].as_str().unwrap();
    // A well-formed tz1 the signer does not hold, and a string that is no pkh at all.
    let outsider = SecretKey::generate(palisade::crypto::tezos::Curve::Ed25519);
    let unknown_owner = SecretKey::generate(palisade::crypto::tezos::Curve::Ed25519);
    let unknown = &unknown_owner.public_key().pkh_b58();
    let bogus = "tz1notakey";
    let data = attestation(MAINNET, 20, 0, 1);
    let token = |key: &SecretKey, pkh: &str| {
        let pkh_bytes = palisade::crypto::tezos::decode_pkh(pkh)
            .map(|(curve, hash)| {
                let mut b = [0u8; 21];
                b[0] = curve.pkh_tag();
                b[1..].copy_from_slice(&hash);
                b
            })
            .unwrap();
        let msg = authentication_message(&pkh_bytes, &hex::decode(&data).unwrap());
        key.sign(&msg, 2).unwrap().to_b58()
    };
    let outsider_for_known = token(&outsider, known);
    let outsider_for_unknown = token(&outsider, unknown);

    let cases: [(&str, String, String); 3] = [
        ("no authentication", String::new(), String::new()),
        (
            "outsider's authentication",
            format!("?authentication={outsider_for_known}"),
            format!("?authentication={outsider_for_unknown}"),
        ),
        (
            "authentication that is not a signature",
            "?authentication=edsigNOPE".into(),
            "?authentication=edsigNOPE".into(),
        ),
    ];
    for (name, known_query, unknown_query) in &cases {
        let (status_known, body_known) = sign(&url, known, &data, known_query);
        let (status_unknown, body_unknown) = sign(&url, unknown, &data, unknown_query);
        let (status_bogus, body_bogus) = sign(&url, bogus, &data, unknown_query);
        assert!(
            status_known == 401 || status_known == 403,
            "{name}: known key: {status_known} {body_known}"
        );
        assert_eq!(
            (status_unknown, &body_unknown),
            (status_known, &body_known),
            "{name}: an unknown pkh must answer like a known one"
        );
        assert_eq!(
            (status_bogus, &body_bogus),
            (status_known, &body_known),
            "{name}: a malformed pkh must answer like a known one"
        );
        assert_responsive(&url, name);
    }
    assert_eq!(mark(&db, known, ConsensusKind::Attestation), None);
    assert!(!was_signed(&db, &data));

    // Once authenticated, the unknown key is reported as unknown and the known one signs.
    let client_key = &authorized[0];
    let (status, body) = sign(
        &url,
        unknown,
        &data,
        &format!("?authentication={}", token(client_key, unknown)),
    );
    assert_eq!(status, 404, "{body}");
    error_msg(&body);
    let (status, body) = sign(
        &url,
        known,
        &data,
        &format!("?authentication={}", token(client_key, known)),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(mark(&db, known, ConsensusKind::Attestation), Some((20, 0)));
    // A key whose signature has the generic `sig…` form authenticates too.
    let data2 = attestation(MAINNET, 21, 0, 1);
    let generic = {
        let pkh_bytes = PublicKey::from_b58(vs[1]["public_key"].as_str().unwrap())
            .unwrap()
            .pkh_bytes();
        let msg = authentication_message(&pkh_bytes, &hex::decode(&data2).unwrap());
        client_key.sign(&msg, 2).unwrap().to_generic_b58().unwrap()
    };
    let (status, body) = sign(&url, known, &data2, &format!("?authentication={generic}"));
    assert_eq!(status, 200, "generic sig… authentication: {body}");
}

#[test]
fn signing_requires_a_json_content_type() {
    let dir = tempfile::tempdir().unwrap();
    let vs = vectors();
    write_key(
        &dir.path().join("keys"),
        "baker",
        vs[1]["secret_key"].as_str().unwrap(),
        "",
    );
    let pkh = vs[1]["public_key_hash"].as_str().unwrap();
    let db = db_url(dir.path());
    let server = start(dir.path(), &[]);
    let url = server.tezos_url();
    let data = attestation(MAINNET, 30, 0, 1);
    let body = serde_json::to_string(&data).unwrap();
    for ct in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        Some("not a media type"),
        None,
    ] {
        let (status, answer) = post(&url, pkh, "", &body, ct);
        assert_eq!(status, 415, "Content-Type {ct:?}: {answer}");
        assert!(
            error_msg(&answer).contains("application/json"),
            "{ct:?}: {answer}"
        );
        assert_eq!(mark(&db, pkh, ConsensusKind::Attestation), None, "{ct:?}");
        assert!(!was_signed(&db, &data), "{ct:?}");
        assert_responsive(&url, &format!("after Content-Type {ct:?}"));
    }
    // Two Content-Type headers, one of them JSON.
    let r = client()
        .post(format!("{url}/keys/{pkh}"))
        .header("Content-Type", "text/plain")
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415, "two Content-Type headers");
    assert_eq!(mark(&db, pkh, ConsensusKind::Attestation), None);
    // An unknown key gets the same 415 (nothing about the key is looked at first).
    let (status, _) = post(
        &url,
        "tz1RvhdZ5pcjD19vCCK9PgZpnmErTba3dsBX",
        "",
        &body,
        Some("text/plain"),
    );
    assert_eq!(status, 415);
    let (status, answer) = post(
        &url,
        pkh,
        "",
        &body,
        Some("Application/JSON; charset=utf-8"),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(mark(&db, pkh, ConsensusKind::Attestation), Some((30, 0)));
}
