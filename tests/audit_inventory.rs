//! The audit trail and the key inventory through the real binary, on SQLite and PostgreSQL:
//! signed and refused requests on both chains leave audit rows (with kind, position, reason
//! and caller) and per-key counts; `GET /api/v1/keys` and `palisade keys list` show every key
//! with its backend, status and activity; `palisade audit export` writes JSON lines and CSV;
//! retention deletes old rows and keeps the totals.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Backend, Server, attestation, block, fork_info, fresh_db, test_pubkey};
use palisade::crypto::tezos::blake2b_256;
use serde_json::{Value, json};

const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

fn palisade(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .expect("run palisade")
}

fn ok_stdout(args: &[&str]) -> String {
    let out = palisade(args);
    assert!(
        out.status.success(),
        "palisade {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn export_jsonl(db: &str, since: &str) -> Vec<Value> {
    ok_stdout(&[
        "audit",
        "export",
        "--since",
        since,
        "--format",
        "jsonl",
        "--slashing-protection-db-url",
        db,
    ])
    .lines()
    .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
    .collect()
}

/// Writes the keys: an eth2 `file-raw` key, a keystore that cannot load (its `pubkey` is in
/// the clear), and a Tezos baker key whose policy refuses generic operations.
fn write_keys(dir: &Path) -> (String, String) {
    let keys = dir.join("keys");
    common::write_raw_key(&keys, "validator", &common::test_secret(0));
    let pkh = common::write_tezos_baker(&keys, Some("block, preattestation, attestation"));
    let ks = dir.join("keystores");
    std::fs::create_dir_all(&ks).unwrap();
    std::fs::write(
        ks.join("broken.json"),
        json!({"version": 4, "pubkey": test_pubkey(1)[2..], "crypto": {}}).to_string(),
    )
    .unwrap();
    std::fs::write(ks.join("broken.txt"), "password").unwrap();
    (test_pubkey(0), pkh)
}

fn find<'a>(inventory: &'a Value, key: &str) -> &'a Value {
    inventory["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == key)
        .unwrap_or_else(|| panic!("{key} not in the inventory: {inventory}"))
}

fn audit_and_inventory(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(backend, dir.path()) else {
        return;
    };
    let (validator, baker) = write_keys(dir.path());
    let keys = dir.path().join("keys");
    let ks = dir.path().join("keystores");
    let server = Server::start(
        dir.path(),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--keystores-path",
            ks.to_str().unwrap(),
            "--slashing-protection-db-url",
            &db.url,
            "--tezos-http-listen-port",
            "0",
        ],
    );

    // eth2: block signed, conflicting block refused, attestation signed, RANDAO signed.
    let (s, b) = server.sign(&validator, &block(7, 100, 1));
    assert_eq!(s, 200, "{b}");
    let (s, b) = server.sign(&validator, &block(7, 100, 2));
    assert_eq!(s, 412, "{b}");
    let (s, b) = server.sign(&validator, &attestation(7, 2, 3, 9));
    assert_eq!(s, 200, "{b}");
    let randao = json!({"type": "RANDAO_REVEAL", "fork_info": fork_info(7), "randao_reveal": {"epoch": "5"}});
    let (s, b) = server.sign(&validator, &randao);
    assert_eq!(s, 200, "{b}");

    // Tezos: attestation signed, lower level refused (409), generic refused by policy (403).
    let high = common::tezos_attestation(MAINNET, 10, 0, 1);
    let (s, b) = server.tezos_sign(&baker, &high, "");
    assert_eq!(s, 200, "{b}");
    let (s, b) = server.tezos_sign(&baker, &common::tezos_attestation(MAINNET, 9, 0, 2), "");
    assert_eq!(s, 409, "{b}");
    let (s, b) = server.tezos_sign(&baker, &format!("03{}", "11".repeat(40)), "");
    assert_eq!(s, 403, "{b}");

    // Inventory over HTTP.
    let (s, body) = server.get("/api/v1/keys");
    assert_eq!(s, 200, "{body}");
    let inv: Value = serde_json::from_str(&body).unwrap();
    assert!(inv.get("activity_error").is_none(), "{inv}");
    let v = find(&inv, &validator);
    assert_eq!(v["chain"], "eth2");
    assert_eq!(v["status"], "active");
    assert_eq!(v["backend"], "file-raw");
    assert!(
        v["source"].as_str().unwrap().ends_with("validator.yaml"),
        "{v}"
    );
    assert!(v["loaded_at"].as_str().unwrap().ends_with('Z'), "{v}");
    assert_eq!(
        (v["signed"].as_u64(), v["refused"].as_u64()),
        (Some(3), Some(1)),
        "{v}"
    );
    assert_eq!(v["last_signed"]["kind"], "RANDAO_REVEAL", "{v}");
    assert_eq!(v["last_signed"]["epoch"], 5, "{v}");
    let broken = find(&inv, &test_pubkey(1));
    assert_eq!(broken["status"], "failed");
    assert_eq!(broken["chain"], "eth2");
    assert!(broken["source"].as_str().unwrap().ends_with("broken.json"));
    assert!(!broken["reason"].as_str().unwrap().is_empty(), "{broken}");
    let t = find(&inv, &baker);
    assert_eq!(t["chain"], "tezos");
    assert_eq!(t["status"], "active");
    assert_eq!(t["backend"], "memory");
    assert!(t["public_key"].as_str().unwrap().len() > 40, "{t}");
    assert_eq!(
        (t["signed"].as_u64(), t["refused"].as_u64()),
        (Some(1), Some(2)),
        "{t}"
    );
    assert_eq!(t["last_signed"]["kind"], "attestation");
    assert_eq!(
        (
            t["last_signed"]["level"].as_u64(),
            t["last_signed"]["round"].as_u64()
        ),
        (Some(10), Some(0))
    );

    // The CLI shows the same inventory.
    let cli: Value = serde_json::from_str(&ok_stdout(&[
        "keys",
        "list",
        "--url",
        &server.url,
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(cli["keys"], inv["keys"]);
    let table = ok_stdout(&["keys", "list", "--url", &server.url]);
    assert!(table.starts_with("CHAIN"), "{table}");
    assert!(
        table.contains(&baker) && table.contains("failed:"),
        "{table}"
    );
    assert!(table.contains("attestation level 10 round 0"), "{table}");

    // The audit trail: seven decisions in order, with positions, reasons and the caller.
    let rows = export_jsonl(&db.url, "1h");
    let summary: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["chain"].as_str().unwrap().to_string(),
                r["kind"].as_str().unwrap().to_string(),
                r["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("eth2", "BLOCK_V2", "signed"),
        ("eth2", "BLOCK_V2", "refused"),
        ("eth2", "ATTESTATION", "signed"),
        ("eth2", "RANDAO_REVEAL", "signed"),
        ("tezos", "attestation", "signed"),
        ("tezos", "attestation", "refused"),
        ("tezos", "generic_operation", "refused"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(summary, expected, "{rows:#?}");
    for r in &rows {
        assert_eq!(r["caller"], "127.0.0.1", "{r}");
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(r["decision"] == "refused", r["reason"].is_string(), "{r}");
    }
    assert_eq!(
        (rows[0]["slot"].as_u64(), rows[0]["key"].as_str()),
        (Some(100), Some(validator.as_str()))
    );
    assert!(
        rows[1]["reason"].as_str().unwrap().contains("slot 100"),
        "{}",
        rows[1]
    );
    assert_eq!(
        (
            rows[2]["source_epoch"].as_u64(),
            rows[2]["epoch"].as_u64(),
            rows[2]["slot"].as_u64()
        ),
        (Some(2), Some(3), Some(96))
    );
    assert_eq!(rows[3]["epoch"], 5);
    assert_eq!(
        (rows[4]["level"].as_u64(), rows[4]["round"].as_u64()),
        (Some(10), Some(0))
    );
    assert_eq!(
        rows[4]["signing_root"],
        format!(
            "0x{}",
            hex::encode(blake2b_256(&hex::decode(&high).unwrap()))
        )
    );
    assert!(
        rows[5]["reason"]
            .as_str()
            .unwrap()
            .contains("high watermark"),
        "{}",
        rows[5]
    );
    assert!(
        rows[6]["reason"].as_str().unwrap().contains("policy")
            || rows[6]["reason"].as_str().unwrap().contains("not allowed"),
        "{}",
        rows[6]
    );

    // CSV: a header and the same seven rows.
    let csv_text = ok_stdout(&[
        "audit",
        "export",
        "--since",
        "2000-01-01",
        "--format",
        "csv",
        "--slashing-protection-db-url",
        &db.url,
    ]);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    let decision_col = headers.iter().position(|h| h == "decision").unwrap();
    let decisions: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[decision_col].to_string())
        .collect();
    assert_eq!(
        decisions,
        expected.iter().map(|e| e.2.clone()).collect::<Vec<_>>()
    );

    // --until before everything, and --since in the future, export nothing.
    assert!(export_jsonl(&db.url, "2099-01-01").is_empty());
    // An existing output file is never overwritten.
    let out_file = dir.path().join("audit.jsonl");
    std::fs::write(&out_file, "keep").unwrap();
    let out = palisade(&[
        "audit",
        "export",
        "--since",
        "1h",
        "--out",
        out_file.to_str().unwrap(),
        "--slashing-protection-db-url",
        &db.url,
    ]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "keep");

    // Pruning deletes the rows and keeps the per-key totals.
    ok_stdout(&[
        "audit",
        "prune",
        "--older-than",
        "0s",
        "--slashing-protection-db-url",
        &db.url,
    ]);
    assert!(export_jsonl(&db.url, "2000-01-01").is_empty());
    let (_, body) = server.get("/api/v1/keys");
    let after: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(find(&after, &validator)["signed"], 3);
    assert_eq!(find(&after, &baker)["refused"], 2);
    server.stop();
}

#[test]
fn audit_and_inventory_sqlite() {
    audit_and_inventory(Backend::Sqlite);
}

#[test]
fn audit_and_inventory_postgres() {
    audit_and_inventory(Backend::Postgres);
}

/// `--audit-retention-days` deletes older rows at start-up; newer ones stay.
#[test]
fn retention_prunes_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use palisade::protection::audit::{AuditEntry, now_ms};
        let store = palisade::protection::open(&db, 1).await.unwrap();
        let mut old = AuditEntry::tezos("tz1old", "block", None).with_level_round(1, 0);
        old.time_ms = now_ms() - 3 * 86_400_000;
        store.append_audit(&old).await.unwrap();
        let recent = AuditEntry::tezos("tz1new", "block", None).with_level_round(2, 0);
        store.append_audit(&recent).await.unwrap();
    });
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--slashing-protection-db-url",
            &db,
            "--audit-retention-days",
            "2",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = export_jsonl(&db, "2000-01-01");
        if rows.len() == 1 {
            assert_eq!(rows[0]["key"], "tz1new");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old audit row not pruned: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.stop();
}

/// `palisade audit export | head -1`: the reader closes the pipe after one line. The export
/// stops with one line that names the output (`cannot write the audit export: Broken
/// pipe`), not the database, and no backtrace even with `RUST_BACKTRACE=1`.
#[test]
fn export_to_a_closed_pipe_names_the_output() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Far more than a pipe buffer (64 KiB) plus the export's own buffer.
    rt.block_on(async {
        use palisade::protection::audit::AuditEntry;
        let store = palisade::protection::open(&db, 1).await.unwrap();
        for level in 0..3000 {
            let e = AuditEntry::tezos("tz1pipe", "block", None).with_level_round(level, 0);
            store.append_audit(&e).await.unwrap();
        }
    });
    for format in ["jsonl", "csv"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args([
                "audit",
                "export",
                "--since",
                "2000-01-01",
                "--format",
                format,
            ])
            .args(["--slashing-protection-db-url", &db])
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "{format}: a first line");
        // The reader is dropped here: the pipe is closed.
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1), "{format}: {stderr}");
        assert!(
            stderr.contains("cannot write the audit export") && stderr.contains("Broken pipe"),
            "{format}: {stderr}"
        );
        for wrong in ["unavailable", "database", "backtrace", "panicked"] {
            assert!(
                !stderr.to_lowercase().contains(wrong),
                "{format}: `{wrong}` in {stderr}"
            );
        }
        assert_eq!(stderr.trim().lines().count(), 1, "{format}: {stderr}");
    }
}

/// The inventory is refused to clients that are not on the loopback interface.
#[actix_web::test]
async fn inventory_is_loopback_only() {
    use actix_web::{App, test};
    use palisade::api::{self, AppState};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let state = AppState {
        keys: Arc::new(palisade::keys::Keys::new(
            palisade::keys::KeyRegistry::default(),
        )),
        store: palisade::protection::open(&url, 1).await.unwrap(),
        network: Arc::new(
            palisade::chain::eth2::network::NetworkConfig::from_name_or_path("mainnet").unwrap(),
        ),
        reloader: None,
    };
    let app = test::init_service(App::new().configure(api::configure(state))).await;
    for (peer, want) in [
        ("10.1.2.3:5000", 403),
        ("127.0.0.1:5000", 200),
        ("[::1]:5000", 200),
    ] {
        let req = test::TestRequest::get()
            .uri("/api/v1/keys")
            .peer_addr(peer.parse().unwrap())
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status().as_u16(), want, "{peer}");
        let body: Value = test::read_body_json(resp).await;
        if want == 403 {
            assert!(
                body["error"].as_str().unwrap().contains("loopback"),
                "{body}"
            );
        } else {
            assert_eq!(body["keys"], json!([]));
        }
        // Reloading is loopback-only too (this app has no reloader: 400 on loopback).
        let req = test::TestRequest::post()
            .uri("/reload")
            .peer_addr(peer.parse().unwrap())
            .to_request();
        let resp = test::call_service(&app, req).await;
        let expected = if want == 403 { 403 } else { 400 };
        assert_eq!(resp.status().as_u16(), expected, "{peer}");
    }
}
