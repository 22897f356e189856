//! Slashing protection through the real binary on SQLite: one HTTP test per rule (412 and
//! nothing new recorded), repeats signed without a new record, out-of-order messages signed,
//! records kept across a restart.

mod common;

use common::{Server, attestation, block, count_records, signature_of, write_raw_key};

const GVR: u8 = 0x42;

fn start(dir: &std::path::Path) -> (Server, String) {
    let keys = dir.join("keys");
    write_raw_key(&keys, "k", &common::test_secret(10));
    let server = Server::start(
        &dir.join("data"),
        &["--key-config-path", keys.to_str().unwrap()],
    );
    (server, common::test_pubkey(10))
}

/// Sends `body`, expects 412 and that the record did not change.
fn assert_refused(server: &Server, pk: &str, body: &serde_json::Value, what: &str) {
    let before = count_records(&server.db_url());
    let (status, text) = server.sign(pk, body);
    assert_eq!(status, 412, "{what}: {text}");
    let err: serde_json::Value = serde_json::from_str(&text).expect("JSON error body");
    assert!(
        err["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {text}"
    );
    assert_eq!(
        count_records(&server.db_url()),
        before,
        "{what}: nothing new recorded"
    );
}

#[test]
fn double_proposal_refused_repeat_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pk) = start(dir.path());
    let (s, first) = server.sign(&pk, &block(GVR, 100, 1));
    assert_eq!(s, 200, "{first}");
    assert_eq!(count_records(&server.db_url()), (1, 0));
    // identical block again: signed, same signature, no new record
    let (s, again) = server.sign(&pk, &block(GVR, 100, 1));
    assert_eq!(s, 200);
    assert_eq!(signature_of(&again), signature_of(&first));
    assert_eq!(count_records(&server.db_url()), (1, 0));
    assert_refused(&server, &pk, &block(GVR, 100, 2), "double proposal");
    // an earlier slot that conflicts with nothing is signed (no watermark from own signing)
    let (s, _) = server.sign(&pk, &block(GVR, 99, 3));
    assert_eq!(s, 200);
    assert_eq!(count_records(&server.db_url()), (2, 0));
}

#[test]
fn double_vote_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pk) = start(dir.path());
    assert_eq!(server.sign(&pk, &attestation(GVR, 3, 4, 1)).0, 200);
    assert_eq!(
        server.sign(&pk, &attestation(GVR, 3, 4, 1)).0,
        200,
        "identical repeat"
    );
    assert_eq!(count_records(&server.db_url()), (0, 1));
    assert_refused(&server, &pk, &attestation(GVR, 3, 4, 2), "double vote");
}

#[test]
fn surrounding_vote_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pk) = start(dir.path());
    assert_eq!(server.sign(&pk, &attestation(GVR, 5, 6, 1)).0, 200);
    assert_refused(
        &server,
        &pk,
        &attestation(GVR, 4, 7, 1),
        "new vote surrounds the recorded one",
    );
}

#[test]
fn surrounded_vote_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pk) = start(dir.path());
    assert_eq!(server.sign(&pk, &attestation(GVR, 2, 9, 1)).0, 200);
    assert_refused(
        &server,
        &pk,
        &attestation(GVR, 3, 8, 1),
        "new vote is surrounded by the recorded one",
    );
    // out of order but conflicting with nothing: signed
    assert_eq!(server.sign(&pk, &attestation(GVR, 0, 1, 1)).0, 200);
}

#[test]
fn source_after_target_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pk) = start(dir.path());
    assert_refused(&server, &pk, &attestation(GVR, 5, 4, 1), "source > target");
    assert_eq!(count_records(&server.db_url()), (0, 0));
}

#[test]
fn wrong_genesis_validators_root_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pk) = start(dir.path());
    assert_eq!(
        server.sign(&pk, &attestation(GVR, 1, 2, 1)).0,
        200,
        "binds the database to GVR"
    );
    assert_refused(
        &server,
        &pk,
        &attestation(0x43, 2, 3, 1),
        "attestation for another chain",
    );
    assert_refused(&server, &pk, &block(0x43, 10, 1), "block for another chain");
}

#[test]
fn records_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pk) = start(dir.path());
    assert_eq!(server.sign(&pk, &block(GVR, 50, 1)).0, 200);
    assert_eq!(server.sign(&pk, &attestation(GVR, 10, 11, 1)).0, 200);
    server.stop(); // SIGKILL: only committed records survive

    let (server, pk) = start(dir.path());
    assert_eq!(count_records(&server.db_url()), (1, 1));
    assert_refused(
        &server,
        &pk,
        &block(GVR, 50, 2),
        "double proposal after restart",
    );
    assert_refused(
        &server,
        &pk,
        &attestation(GVR, 10, 11, 2),
        "double vote after restart",
    );
    assert_refused(
        &server,
        &pk,
        &attestation(GVR, 9, 12, 1),
        "surround after restart",
    );
    assert_refused(
        &server,
        &pk,
        &attestation(0x43, 12, 13, 1),
        "genesis binding after restart",
    );
    assert_eq!(
        server.sign(&pk, &block(GVR, 50, 1)).0,
        200,
        "exact repeat still signs"
    );
}

#[test]
fn concurrent_conflicting_requests_sign_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pk) = start(dir.path());
    let url = server.url.clone();
    for target in 1..=20u64 {
        let handles: Vec<_> = (0..4u8)
            .map(|variant| {
                let url = url.clone();
                let pk = pk.clone();
                std::thread::spawn(move || {
                    common::client()
                        .post(format!("{url}/api/v1/eth2/sign/{pk}"))
                        .json(&attestation(GVR, target - 1, target, 10 + variant))
                        .send()
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "target {target}: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 412).count(),
            3,
            "target {target}: {statuses:?}"
        );
    }
    assert_eq!(count_records(&server.db_url()), (0, 20));
}
