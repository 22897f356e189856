//! Tezos consensus requests of one high watermark are recorded in the order they arrived
//! (issue 19, item 5), on both stores, through `TezosService` with a signer whose time to
//! sign is chosen by the test.
//!
//! - `later_levels_that_sign_faster_do_not_refuse_earlier_ones`: 16 rising levels of one key
//!   arrive together and the later ones sign faster; every one is signed. Before the arrival
//!   order, the fastest (the highest level) committed first and refused the other 15.
//! - `random_sequences_match_the_sequential_rules`: a generator over two keys, two kinds,
//!   rising levels, repeats, equivocations, lower levels, random signing times and signing
//!   failures, sent in concurrent waves; every answer, and every final mark, must be what the
//!   sequential rules (`watermark::check` folded in arrival order) give.
//! - `group_commit_fails_whole_batches_and_writes_nothing`: a shared transaction that fails
//!   answers all its requests unavailable and writes nothing.
//! - `postgres_batch_gives_up_on_a_mark_locked_elsewhere`: a mark locked by a stalled
//!   transaction elsewhere fails its batch after the 2 s lock timeout, not never.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::Backend;
use palisade::chain::tezos::payload::{ConsensusKind, KNOWN_MAGIC_BYTES};
use palisade::chain::tezos::policy::Policy;
use palisade::crypto::tezos::{PublicKey, SecretKey, Signature, blake2b_256};
use palisade::keys::memory::MemoryTezosKey;
use palisade::keys::signer::{BackendError, Execution, TezosSigner};
use palisade::keys::tezos::TezosKey;
use palisade::keys::{KeyRegistry, Keys};
use palisade::protection::order::ArrivalOrder;
use palisade::protection::watermark::{self, TezosMark, TezosWatermarkRequest, WatermarkDecision};
use palisade::protection::{ProtectionError, ProtectionStore};
use palisade::service::tezos::{TezosService, TezosSignError, TezosSignRequest};
use rand::{Rng, SeedableRng, rngs::StdRng};

const CHAIN: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

/// An in-memory key that waits `data[5]` milliseconds before signing (polled on the runtime,
/// as a vault key is) and fails when `data[6]` is 0xEE (a backend error: the request gives
/// up its place).
struct Timed {
    inner: MemoryTezosKey,
}

#[async_trait]
impl TezosSigner for Timed {
    fn public_key(&self) -> &PublicKey {
        self.inner.public_key()
    }
    fn execution(&self) -> Execution {
        Execution::Async {
            timeout: Duration::from_secs(20),
        }
    }
    async fn sign(&self, data: &[u8], version: u8) -> Result<Signature, BackendError> {
        tokio::time::sleep(Duration::from_millis(u64::from(data[5]))).await;
        if data[6] == 0xEE {
            return Err(BackendError("the test's signer failed on purpose".into()));
        }
        self.inner.sign(data, version).await
    }
}

/// A Tenderbake (pre)attestation: `magic chain branch(32) tag slot(2) level round
/// payload_hash(32)`; the branch carries the test signer's delay, failure flag and a variant
/// byte (other bytes at the same level and round).
fn consensus(
    kind: ConsensusKind,
    level: u32,
    round: u32,
    delay_ms: u8,
    fail: bool,
    variant: u8,
) -> Vec<u8> {
    let (magic, tag) = match kind {
        ConsensusKind::Preattestation => (0x12, 20),
        _ => (0x13, 21),
    };
    let mut b = vec![magic];
    b.extend_from_slice(&CHAIN);
    let mut branch = [0u8; 32];
    branch[0] = delay_ms;
    branch[1] = if fail { 0xEE } else { 0 };
    branch[2] = variant;
    b.extend_from_slice(&branch);
    b.extend_from_slice(&[tag, 0, 0]);
    b.extend_from_slice(&level.to_be_bytes());
    b.extend_from_slice(&round.to_be_bytes());
    b.extend_from_slice(&[variant; 32]);
    b
}

struct Rig {
    keys: Keys,
    store: Arc<dyn ProtectionStore>,
    order: Arc<ArrivalOrder>,
    secrets: Vec<SecretKey>,
    pkhs: Vec<String>,
}

impl Rig {
    async fn new(url: &str, n_keys: usize) -> Rig {
        let vectors = common::vector("tezos/vectors.json");
        let mut tezos = vec![];
        let mut secrets = vec![];
        let mut pkhs = vec![];
        for v in vectors["vectors"].as_array().unwrap().iter().take(n_keys) {
            let b58 = v["secret_key"].as_str().unwrap();
            let secret = SecretKey::from_b58(b58).unwrap();
            let key = MemoryTezosKey::new(SecretKey::from_b58(b58).unwrap());
            let pkh = key.public_key().pkh_b58();
            tezos.push(TezosKey {
                pkh: pkh.clone(),
                signer: Box::new(Timed { inner: key }),
                policy: Policy::default(),
                origin: "test".into(),
            });
            secrets.push(secret);
            pkhs.push(pkh);
        }
        Rig {
            keys: Keys::new(KeyRegistry::from_parts(vec![], tezos)),
            store: palisade::protection::open(url, 8).await.unwrap(),
            order: Arc::new(ArrivalOrder::default()),
            secrets,
            pkhs,
        }
    }

    fn service(&self) -> TezosService<'_> {
        TezosService {
            keys: &self.keys,
            store: self.store.as_ref(),
            magic_bytes: &KNOWN_MAGIC_BYTES,
            authorized_keys: None,
            order: &self.order,
        }
    }

    async fn sign(&self, key: usize, data: Vec<u8>) -> Result<Signature, TezosSignError> {
        self.service()
            .sign(TezosSignRequest {
                pkh: &self.pkhs[key],
                data,
                authentication: None,
                version: None,
                caller: Some("arrival-order-test".into()),
            })
            .await
            .1
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

fn later_levels_that_sign_faster_do_not_refuse_earlier_ones(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = common::fresh_db(backend, dir.path()) else {
        return;
    };
    runtime().block_on(async {
        let rig = Rig::new(&db.url, 1).await;
        // Level 1 takes 32 ms to sign, level 16 takes 2 ms: the reverse of arrival order.
        let requests = (1..=16u32).map(|level| {
            let delay = (34 - 2 * level) as u8;
            rig.sign(
                0,
                consensus(ConsensusKind::Attestation, level, 0, delay, false, 0),
            )
        });
        let answers = futures_util::future::join_all(requests).await;
        for (level, answer) in (1..=16).zip(&answers) {
            assert!(
                answer.is_ok(),
                "level {level} arrived above every earlier level and was refused: {:?}",
                answer.as_ref().err().map(ToString::to_string)
            );
        }
        let mark = rig
            .store
            .tezos_mark(CHAIN, &rig.pkhs[0], ConsensusKind::Attestation)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((mark.level, mark.round), (16, 0));
        assert_eq!(rig.order.marks_in_flight(), 0);
    });
}

/// One generated request and the answer the sequential rules give it.
struct Step {
    key: usize,
    kind: ConsensusKind,
    data: Vec<u8>,
    level: u32,
    round: u32,
    fail: bool,
}

/// What each mark's generator remembers: its (level, round) and last bytes.
struct GenMark {
    level: u32,
    round: u32,
    /// The last bytes generated that can be signed, with their level and round.
    last: Option<(u32, u32, Vec<u8>)>,
    variant: u8,
}

fn generate(rng: &mut StdRng, n_keys: usize, len: usize) -> Vec<Step> {
    let kinds = [ConsensusKind::Attestation, ConsensusKind::Preattestation];
    let mut marks: Vec<GenMark> = (0..n_keys * kinds.len())
        .map(|_| GenMark {
            level: 1,
            round: 0,
            last: None,
            variant: 0,
        })
        .collect();
    (0..len)
        .map(|_| {
            let m = rng.random_range(0..marks.len());
            let (key, kind) = (m / kinds.len(), kinds[m % kinds.len()]);
            let g = &mut marks[m];
            let delay = rng.random_range(0..=3u8);
            let fail = rng.random_bool(0.05);
            let roll = rng.random_range(0..100);
            let (level, round, data) = match (roll, &g.last) {
                (0..10, Some(last)) => {
                    // The same bytes again (a retry): when they are the mark's, the stored
                    // signature comes back. A new delay byte would change the bytes, so keep
                    // everything as it was.
                    last.clone()
                }
                (10..20, Some(_)) => {
                    // Other bytes at the same level and round: equivocation.
                    g.variant = g.variant.wrapping_add(1);
                    (
                        g.level,
                        g.round,
                        consensus(kind, g.level, g.round, delay, fail, g.variant),
                    )
                }
                (20..30, _) => {
                    let level = g.level.saturating_sub(rng.random_range(1..=3)).max(1);
                    (level, 0, consensus(kind, level, 0, delay, fail, 0))
                }
                (30..40, _) => {
                    g.round += 1;
                    (
                        g.level,
                        g.round,
                        consensus(kind, g.level, g.round, delay, fail, 0),
                    )
                }
                _ => {
                    g.level += rng.random_range(1..=3);
                    g.round = 0;
                    (
                        g.level,
                        g.round,
                        consensus(kind, g.level, g.round, delay, fail, 0),
                    )
                }
            };
            let fail = data[6] == 0xEE;
            if !fail {
                g.last = Some((level, round, data.clone()));
            }
            Step {
                key,
                kind,
                data,
                level,
                round,
                fail,
            }
        })
        .collect()
}

fn random_sequences_match_the_sequential_rules(backend: Backend) {
    let sequences: u64 = std::env::var("TEZOS_ORDER_SEQUENCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut compared = 0usize;
    for seed in 0..sequences {
        let Some(db) = common::fresh_db(backend, &dir.path().join(seed.to_string())) else {
            return;
        };
        std::fs::create_dir_all(dir.path().join(seed.to_string())).unwrap();
        let mut rng = StdRng::seed_from_u64(0x7e20_0019 ^ seed);
        let steps = generate(&mut rng, 2, 48);
        rt.block_on(async {
            let rig = Rig::new(&db.url, 2).await;
            // The oracle: the sequential rules over the arrival order.
            let mut marks: std::collections::HashMap<(usize, &'static str), TezosMark> =
                Default::default();
            let mut i = 0;
            while i < steps.len() {
                let wave = rng.random_range(1..=16).min(steps.len() - i);
                let batch = &steps[i..i + wave];
                let answers = futures_util::future::join_all(
                    batch.iter().map(|s| rig.sign(s.key, s.data.clone())),
                )
                .await;
                for (s, answer) in batch.iter().zip(answers) {
                    let what = format!(
                        "seed {seed}, step {i}: key {} {} level {} round {}",
                        s.key,
                        s.kind.as_str(),
                        s.level,
                        s.round
                    );
                    i += 1;
                    if s.fail {
                        assert!(
                            matches!(answer, Err(TezosSignError::Backend(_))),
                            "{what}: {:?}",
                            answer.map(|_| ())
                        );
                        continue;
                    }
                    let payload_hash = blake2b_256(&s.data);
                    let request = TezosWatermarkRequest {
                        chain_id: CHAIN,
                        pkh: rig.pkhs[s.key].clone(),
                        kind: s.kind,
                        level: s.level,
                        round: s.round,
                        payload_hash,
                        signature: vec![],
                    };
                    let slot = (s.key, s.kind.as_str());
                    let expected_signature = rig.secrets[s.key].sign(&s.data, 2).unwrap();
                    match watermark::check(marks.get(&slot), &request) {
                        Ok(WatermarkDecision::SignAndRecord) => {
                            let sig = answer.unwrap_or_else(|e| panic!("{what}: refused: {e}"));
                            assert_eq!(sig.as_bytes(), expected_signature.as_bytes(), "{what}");
                            marks.insert(
                                slot,
                                TezosMark {
                                    level: s.level,
                                    round: s.round,
                                    payload_hash,
                                    signature: sig.as_bytes().to_vec(),
                                },
                            );
                        }
                        Ok(WatermarkDecision::Repeat(stored)) => {
                            let sig = answer.unwrap_or_else(|e| panic!("{what}: refused: {e}"));
                            assert_eq!(sig.as_bytes(), &stored[..], "{what}: not the stored one");
                        }
                        Err(violation) => match answer {
                            Err(TezosSignError::Protection(ProtectionError::Watermark(v))) => {
                                assert_eq!(v, violation, "{what}")
                            }
                            other => panic!(
                                "{what}: the rules refuse it ({violation}) but got {:?}",
                                other.map(|_| ())
                            ),
                        },
                    }
                    compared += 1;
                }
            }
            for ((key, kind), mark) in &marks {
                let kind = match *kind {
                    "attestation" => ConsensusKind::Attestation,
                    _ => ConsensusKind::Preattestation,
                };
                let stored = rig
                    .store
                    .tezos_mark(CHAIN, &rig.pkhs[*key], kind)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(&stored, mark, "seed {seed}: final mark of key {key}");
            }
            assert_eq!(rig.order.marks_in_flight(), 0, "seed {seed}");
        });
    }
    println!("{sequences} sequences, {compared} answers compared with the sequential rules");
}

/// The Tezos group commit, with faults planted by triggers: a batch whose `COMMIT` fails (a
/// deferred constraint, checked at commit) or whose statement fails (a trigger that aborts
/// one request's audit insert) answers every request of the batch unavailable and leaves
/// every mark and the audit trail as they were; the same requests succeed afterwards.
fn group_commit_fails_whole_batches_and_writes_nothing(backend: Backend) {
    use palisade::protection::audit::AuditEntry;

    let dir = tempfile::tempdir().unwrap();
    let Some(db) = common::fresh_db(backend, dir.path()) else {
        return;
    };
    let url = db.url.clone();
    // One thread: the requests below all join the queue before the drain task first runs,
    // so they share one transaction.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = palisade::protection::open(&url, 4).await.unwrap();
        let mut admin = Admin::connect(backend, &url).await;
        let request = |pkh: &str, level: u32| TezosWatermarkRequest {
            chain_id: CHAIN,
            pkh: pkh.to_string(),
            kind: ConsensusKind::Attestation,
            level,
            round: 0,
            payload_hash: [level as u8; 32],
            signature: vec![level as u8; 64],
        };
        let audit = |r: &TezosWatermarkRequest, caller: &str| {
            AuditEntry::tezos(&r.pkh, "attestation", Some(r.payload_hash))
                .with_level_round(r.level, r.round)
                .with_caller(Some(caller.to_string()))
        };
        let pkhs: Vec<String> = (0..6).map(|i| format!("tz1fake{i}")).collect();
        // The marks start at level 10.
        for pkh in &pkhs {
            let r = request(pkh, 10);
            assert_eq!(
                store
                    .tezos_check_record_and_audit(&r, audit(&r, "setup"))
                    .await
                    .unwrap(),
                WatermarkDecision::SignAndRecord
            );
        }
        let faults: [&str; 2] = match backend {
            Backend::Sqlite => [
                // COMMIT fails: a deferred foreign key the faulty request's audit row breaks.
                "CREATE TABLE fault_parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE fault_child (parent INTEGER REFERENCES fault_parent(id)
                                           DEFERRABLE INITIALLY DEFERRED);
                 CREATE TRIGGER fault AFTER INSERT ON audit_log WHEN NEW.caller = 'fault'
                 BEGIN INSERT INTO fault_child (parent) VALUES (424242); END;",
                // A statement fails: the faulty request's audit insert aborts.
                "DROP TRIGGER fault;
                 CREATE TRIGGER fault BEFORE INSERT ON audit_log WHEN NEW.caller = 'fault'
                 BEGIN SELECT RAISE(ABORT, 'planted fault'); END;",
            ],
            Backend::Postgres => [
                // COMMIT fails: a deferred constraint trigger on the faulty request's row.
                "CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS
                   $$ BEGIN RAISE EXCEPTION 'planted fault'; END $$;
                 CREATE CONSTRAINT TRIGGER fault AFTER INSERT ON audit_log
                   DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                   WHEN (NEW.caller = 'fault') EXECUTE FUNCTION fault();",
                // A statement fails: the faulty request's audit insert aborts.
                "DROP TRIGGER fault ON audit_log;
                 CREATE TRIGGER fault BEFORE INSERT ON audit_log FOR EACH ROW
                   WHEN (NEW.caller = 'fault') EXECUTE FUNCTION fault();",
            ],
        };
        for (round, fault) in faults.iter().enumerate() {
            admin.run(fault).await;
            let before = admin.count("SELECT count(*) FROM audit_log").await;
            let level = 11 + round as u32;
            let batch: Vec<TezosWatermarkRequest> =
                pkhs.iter().map(|p| request(p, level)).collect();
            let answers = futures_util::future::join_all(batch.iter().enumerate().map(|(i, r)| {
                let caller = if i == 3 { "fault" } else { "ok" };
                store.tezos_check_record_and_audit(r, audit(r, caller))
            }))
            .await;
            for (i, answer) in answers.iter().enumerate() {
                assert!(
                    matches!(answer, Err(ProtectionError::Unavailable { .. })),
                    "fault {round}, request {i}: {answer:?}"
                );
            }
            for pkh in &pkhs {
                let mark = store
                    .tezos_mark(CHAIN, pkh, ConsensusKind::Attestation)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    mark.level,
                    10 + round as u32,
                    "fault {round}: {pkh}'s mark moved"
                );
            }
            assert_eq!(
                admin.count("SELECT count(*) FROM audit_log").await,
                before,
                "fault {round}: audit written"
            );
            // Without the faulty request, the same batch commits.
            let answers = futures_util::future::join_all(
                batch
                    .iter()
                    .map(|r| store.tezos_check_record_and_audit(r, audit(r, "ok"))),
            )
            .await;
            for answer in answers {
                assert_eq!(answer.unwrap(), WatermarkDecision::SignAndRecord);
            }
            let moved = admin
                .count(&format!(
                    "SELECT count(*) FROM tezos_high_watermarks WHERE level = {level}"
                ))
                .await;
            assert_eq!(moved as usize, pkhs.len(), "every mark moved to {level}");
        }
    });
    drop(db);
}

/// PostgreSQL: a batch that holds a mark locked by a stalled transaction elsewhere (another
/// instance whose host froze mid-transaction) gives up after the 2 s `lock_timeout` and
/// answers its whole batch 503, writing nothing, instead of waiting for the other holder;
/// once the lock is free the same requests are signed.
#[test]
fn postgres_batch_gives_up_on_a_mark_locked_elsewhere() {
    use palisade::protection::audit::AuditEntry;

    let dir = tempfile::tempdir().unwrap();
    let Some(db) = common::fresh_db(Backend::Postgres, dir.path()) else {
        return;
    };
    let url = db.url.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let store = palisade::protection::open(&url, 4).await.unwrap();
        let request = |pkh: &str| TezosWatermarkRequest {
            chain_id: CHAIN,
            pkh: pkh.to_string(),
            kind: ConsensusKind::Attestation,
            level: 7,
            round: 0,
            payload_hash: [7; 32],
            signature: vec![7; 64],
        };
        let audit = |r: &TezosWatermarkRequest| {
            AuditEntry::tezos(&r.pkh, "attestation", Some(r.payload_hash)).with_level_round(7, 0)
        };
        let batch: Vec<TezosWatermarkRequest> =
            (0..4).map(|i| request(&format!("tz1held{i}"))).collect();
        // The stalled holder: another connection takes the advisory lock of the second mark
        // (class 0x747a, key = first 4 bytes of blake2b-256(chain id || kind || 0 || pkh),
        // as src/protection/postgres/locks.rs derives it) inside an open transaction.
        let mut key_bytes = CHAIN.to_vec();
        key_bytes.extend_from_slice(b"attestation\0");
        key_bytes.extend_from_slice(batch[1].pkh.as_bytes());
        let digest = blake2b_256(&key_bytes);
        let key = i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("BEGIN").execute(&mut holder).await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(0x747a_i32)
            .bind(key)
            .execute(&mut holder)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let answers = futures_util::future::join_all(
            batch
                .iter()
                .map(|r| store.tezos_check_record_and_audit(r, audit(r))),
        )
        .await;
        let waited = started.elapsed();
        for (i, answer) in answers.iter().enumerate() {
            assert!(
                matches!(answer, Err(ProtectionError::Unavailable { .. })),
                "request {i}: {answer:?}"
            );
        }
        assert!(
            waited >= Duration::from_millis(1_500) && waited < Duration::from_secs(15),
            "gave up after the lock timeout, not before and not much later: {waited:?}"
        );
        for r in &batch {
            assert!(
                store
                    .tezos_mark(CHAIN, &r.pkh, ConsensusKind::Attestation)
                    .await
                    .unwrap()
                    .is_none(),
                "{}: nothing recorded",
                r.pkh
            );
        }
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut holder)
            .await
            .unwrap();
        let answers = futures_util::future::join_all(
            batch
                .iter()
                .map(|r| store.tezos_check_record_and_audit(r, audit(r))),
        )
        .await;
        for answer in answers {
            assert_eq!(answer.unwrap(), WatermarkDecision::SignAndRecord);
        }
    });
    drop(db);
}

/// A second connection to the test's database, for planting faults and counting rows.
enum Admin {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Admin {
    async fn connect(backend: Backend, url: &str) -> Admin {
        use sqlx::Connection;
        match backend {
            Backend::Sqlite => Admin::Sqlite(sqlx::SqliteConnection::connect(url).await.unwrap()),
            Backend::Postgres => Admin::Postgres(sqlx::PgConnection::connect(url).await.unwrap()),
        }
    }

    async fn run(&mut self, script: &str) {
        let script = sqlx::raw_sql(sqlx::AssertSqlSafe(script.to_string()));
        match self {
            Admin::Sqlite(c) => script.execute(c).await.map(|_| ()),
            Admin::Postgres(c) => script.execute(c).await.map(|_| ()),
        }
        .unwrap();
    }

    async fn count(&mut self, query: &str) -> i64 {
        let query = sqlx::AssertSqlSafe(query.to_string());
        match self {
            Admin::Sqlite(c) => sqlx::query_scalar(query).fetch_one(c).await,
            Admin::Postgres(c) => sqlx::query_scalar(query).fetch_one(c).await,
        }
        .unwrap()
    }
}

common::store_suite!(
    later_levels_that_sign_faster_do_not_refuse_earlier_ones,
    random_sequences_match_the_sequential_rules,
    group_commit_fails_whole_batches_and_writes_nothing,
);
