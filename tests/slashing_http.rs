//! Slashing protection through the real binary, on SQLite and on PostgreSQL: one HTTP test
//! per rule (412 and nothing new recorded), repeats signed without a new record, out-of-order
//! messages signed, records kept across a restart, concurrent conflicting requests.

mod common;

use common::{Backend, Server, TestDb, attestation, block, signature_of, write_raw_key};

const GVR: u8 = 0x42;

/// Row counts (blocks, attestations) of a database.
fn count_records(url: &str) -> (i64, i64) {
    common::count_records_any(url)
}

/// Runs each test body on SQLite and on PostgreSQL.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(super::Backend::Sqlite) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(super::Backend::Postgres) })*
        }
    };
}

on_both_stores!(
    double_proposal_refused_repeat_allowed,
    double_vote_refused,
    surrounding_vote_refused,
    surrounded_vote_refused,
    source_after_target_refused,
    wrong_genesis_validators_root_refused,
    records_survive_a_restart,
    concurrent_conflicting_requests_sign_exactly_one,
);

/// A server with one key on a fresh database.
struct Env {
    server: Server,
    pk: String,
    db: TestDb,
    dir: tempfile::TempDir,
}

/// `None` when PostgreSQL is not configured (outside CI only).
fn env(backend: Backend) -> Option<Env> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let db = common::fresh_db(backend, &dir.path().join("data"))?;
    let server = start(dir.path(), &db);
    Some(Env {
        server,
        pk: common::test_pubkey(10),
        db,
        dir,
    })
}

fn start(dir: &std::path::Path, db: &TestDb) -> Server {
    let keys = dir.join("keys");
    write_raw_key(&keys, "k", &common::test_secret(10));
    Server::start(
        &dir.join("data"),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--slashing-protection-db-url",
            &db.url,
        ],
    )
}

/// Sends `body`, expects 412 and that the record did not change.
fn assert_refused(env: &Env, body: &serde_json::Value, what: &str) {
    let before = count_records(&env.db.url);
    let (status, text) = env.server.sign(&env.pk, body);
    assert_eq!(status, 412, "{what}: {text}");
    let err: serde_json::Value = serde_json::from_str(&text).expect("JSON error body");
    assert!(
        err["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {text}"
    );
    assert_eq!(
        count_records(&env.db.url),
        before,
        "{what}: nothing new recorded"
    );
}

fn status(env: &Env, body: &serde_json::Value) -> u16 {
    env.server.sign(&env.pk, body).0
}

fn double_proposal_refused_repeat_allowed(backend: Backend) {
    let Some(env) = env(backend) else { return };
    let (s, first) = env.server.sign(&env.pk, &block(GVR, 100, 1));
    assert_eq!(s, 200, "{first}");
    assert_eq!(count_records(&env.db.url), (1, 0));
    // identical block again: signed, same signature, no new record
    let (s, again) = env.server.sign(&env.pk, &block(GVR, 100, 1));
    assert_eq!(s, 200);
    assert_eq!(signature_of(&again), signature_of(&first));
    assert_eq!(count_records(&env.db.url), (1, 0));
    assert_refused(&env, &block(GVR, 100, 2), "double proposal");
    // an earlier slot that conflicts with nothing is signed (no watermark from own signing)
    assert_eq!(status(&env, &block(GVR, 99, 3)), 200);
    assert_eq!(count_records(&env.db.url), (2, 0));
}

fn double_vote_refused(backend: Backend) {
    let Some(env) = env(backend) else { return };
    assert_eq!(status(&env, &attestation(GVR, 3, 4, 1)), 200);
    assert_eq!(
        status(&env, &attestation(GVR, 3, 4, 1)),
        200,
        "identical repeat"
    );
    assert_eq!(count_records(&env.db.url), (0, 1));
    assert_refused(&env, &attestation(GVR, 3, 4, 2), "double vote");
}

fn surrounding_vote_refused(backend: Backend) {
    let Some(env) = env(backend) else { return };
    assert_eq!(status(&env, &attestation(GVR, 5, 6, 1)), 200);
    assert_refused(
        &env,
        &attestation(GVR, 4, 7, 1),
        "new vote surrounds the recorded one",
    );
}

fn surrounded_vote_refused(backend: Backend) {
    let Some(env) = env(backend) else { return };
    assert_eq!(status(&env, &attestation(GVR, 2, 9, 1)), 200);
    assert_refused(
        &env,
        &attestation(GVR, 3, 8, 1),
        "new vote is surrounded by the recorded one",
    );
    // out of order but conflicting with nothing: signed
    assert_eq!(status(&env, &attestation(GVR, 0, 1, 1)), 200);
}

fn source_after_target_refused(backend: Backend) {
    let Some(env) = env(backend) else { return };
    assert_refused(&env, &attestation(GVR, 5, 4, 1), "source > target");
    assert_eq!(count_records(&env.db.url), (0, 0));
}

fn wrong_genesis_validators_root_refused(backend: Backend) {
    let Some(env) = env(backend) else { return };
    assert_eq!(
        status(&env, &attestation(GVR, 1, 2, 1)),
        200,
        "binds the database to GVR"
    );
    assert_refused(
        &env,
        &attestation(0x43, 2, 3, 1),
        "attestation for another chain",
    );
    assert_refused(&env, &block(0x43, 10, 1), "block for another chain");
}

fn records_survive_a_restart(backend: Backend) {
    let Some(mut env) = env(backend) else { return };
    assert_eq!(status(&env, &block(GVR, 50, 1)), 200);
    assert_eq!(status(&env, &attestation(GVR, 10, 11, 1)), 200);
    // SIGKILL, then a new process on the same database: only committed records survive
    env.server.kill();
    env.server = start(env.dir.path(), &env.db);
    assert_eq!(count_records(&env.db.url), (1, 1));
    assert_refused(&env, &block(GVR, 50, 2), "double proposal after restart");
    assert_refused(
        &env,
        &attestation(GVR, 10, 11, 2),
        "double vote after restart",
    );
    assert_refused(&env, &attestation(GVR, 9, 12, 1), "surround after restart");
    assert_refused(
        &env,
        &attestation(0x43, 12, 13, 1),
        "genesis binding after restart",
    );
    assert_eq!(
        status(&env, &block(GVR, 50, 1)),
        200,
        "exact repeat still signs"
    );
}

fn concurrent_conflicting_requests_sign_exactly_one(backend: Backend) {
    let Some(env) = env(backend) else { return };
    let url = env.server.url.clone();
    for target in 1..=20u64 {
        let handles: Vec<_> = (0..4u8)
            .map(|variant| {
                let url = url.clone();
                let pk = env.pk.clone();
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
    assert_eq!(count_records(&env.db.url), (0, 20));
}
