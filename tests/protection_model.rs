//! Model-based randomized tests of the protection invariant, through the real stores (SQLite
//! and PostgreSQL): seeded sequences of signing (blocks and attestations: near-duplicates,
//! exact repeats, out-of-order epochs, source after target), imports (random EIP-3076
//! fragments with and without signing roots, conflicting or not, some malformed or for
//! another chain), pruning, disabling and re-enabling, setting and removing the high
//! watermark, restarts and migrations (export, then import into a fresh database). After
//! every step the reference model (`tests/common/model.rs`, independent of
//! `protection/rules.rs`) checks that nothing released is slashable against anything released
//! or imported before, that every refusal has a reason, that a failed import changed nothing,
//! and that a message every correct signer must sign is signed.
//!
//! `PALISADE_MODEL_SEQUENCES` sets the number of sequences per store (default 2,000; the long
//! run in the closing note used 100,000), `PALISADE_MODEL_SEED` the first seed. A failure
//! prints its seed and the shrunk sequence of steps.

mod common;

use std::fmt;
use std::sync::Arc;

use common::model::{Model, Msg};
use common::{Backend, TestDb, fresh_db};
use palisade::protection::{
    self, Decision, HighWatermark, ProtectedMessage, ProtectionError, ProtectionStore,
    ValidatorHistory, interchange,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const GVR: [u8; 32] = [0x42; 32];
const OTHER_GVR: [u8; 32] = [0x43; 32];
const VALIDATORS: u32 = 2;
const SLOTS_PER_EPOCH: u64 = 4;
const MAX_EPOCH: u64 = 14;
const MAX_SLOT: u64 = 40;

/// One step of a sequence.
#[derive(Clone)]
enum Op {
    /// Sign a block at `slot` whose body is identified by `body` (same body: same root).
    Block { v: u32, slot: u64, body: u8 },
    /// Sign an attestation `source -> target` for block root `body`.
    Attestation {
        v: u32,
        source: u64,
        target: u64,
        body: u8,
    },
    /// Sign what every correct signer must sign now: above every known slot, or with the
    /// highest known source and a target above every known target.
    MustSign { v: u32, block: bool },
    /// Import an interchange file (`entries` validator entries; the same validator may
    /// appear twice, which the parser may refuse); `gvr` is the file's root.
    Import {
        entries: Vec<(u32, Vec<Msg>)>,
        gvr: [u8; 32],
    },
    /// Prune, keeping `keep` epochs below each validator's newest record.
    Prune { keep: u64 },
    /// Disable (`false`) or re-enable (`true`) a validator.
    SetEnabled { v: u32, enabled: bool },
    /// Set (`Some`) or remove (`None`) the high watermark.
    High(Option<(u64, u64)>),
    /// Close the store and open it again.
    Restart,
    /// Export every validator, import the file into a fresh database, continue there.
    Migrate,
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Block { v, slot, body } => write!(f, "v{v} sign block({slot}, body {body})"),
            Op::Attestation {
                v,
                source,
                target,
                body,
            } => write!(f, "v{v} sign att({source}->{target}, body {body})"),
            Op::MustSign { v, block } => {
                write!(f, "v{v} must sign {}", if *block { "block" } else { "att" })
            }
            Op::Import { entries, gvr } => {
                write!(f, "import (gvr {:02x}) {entries:?}", gvr[0])
            }
            Op::Prune { keep } => write!(f, "prune keep {keep}"),
            Op::SetEnabled { v, enabled } => write!(f, "v{v} enabled={enabled}"),
            Op::High(h) => write!(f, "high watermark {h:?}"),
            Op::Restart => write!(f, "restart"),
            Op::Migrate => write!(f, "migrate (export, import into a fresh database)"),
        }
    }
}

/// The 32-byte signing root of a request: the same request always has the same root, any
/// other request another one.
fn root(kind: u8, a: u64, b: u64, body: u8) -> [u8; 32] {
    let mut r = [0u8; 32];
    r[0] = kind;
    r[1] = body;
    r[2..10].copy_from_slice(&a.to_be_bytes());
    r[10..18].copy_from_slice(&b.to_be_bytes());
    r[31] = 0x5a;
    r
}

fn block_msg(slot: u64, body: u8) -> Msg {
    Msg::Block {
        slot,
        root: Some(root(1, slot, 0, body)),
    }
}

fn att_msg(source: u64, target: u64, body: u8) -> Msg {
    Msg::Attestation {
        source,
        target,
        root: Some(root(2, source, target, body)),
    }
}

fn random_record(rng: &mut StdRng) -> Msg {
    let no_root = rng.random_bool(0.35);
    let m = if rng.random_bool(0.4) {
        block_msg(rng.random_range(0..MAX_SLOT), rng.random_range(0..3))
    } else {
        let source = rng.random_range(0..MAX_EPOCH);
        let target = if rng.random_bool(0.1) {
            source.saturating_sub(1)
        } else {
            rng.random_range(source..MAX_EPOCH)
        };
        att_msg(source, target, rng.random_range(0..3))
    };
    match (m, no_root) {
        (Msg::Block { slot, .. }, true) => Msg::Block { slot, root: None },
        (Msg::Attestation { source, target, .. }, true) => Msg::Attestation {
            source,
            target,
            root: None,
        },
        (m, false) => m,
    }
}

/// A random sequence of `len` steps for seed `seed`.
fn generate(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len)
        .map(|_| {
            let v = rng.random_range(0..VALIDATORS);
            match rng.random_range(0..100) {
                0..=24 => Op::Block {
                    v,
                    slot: rng.random_range(0..MAX_SLOT),
                    body: rng.random_range(0..3),
                },
                25..=59 => {
                    let source = rng.random_range(0..MAX_EPOCH);
                    let target = if rng.random_bool(0.08) {
                        source.saturating_sub(rng.random_range(1..3))
                    } else {
                        rng.random_range(source..MAX_EPOCH)
                    };
                    Op::Attestation {
                        v,
                        source,
                        target,
                        body: rng.random_range(0..3),
                    }
                }
                60..=67 => Op::MustSign {
                    v,
                    block: rng.random_bool(0.4),
                },
                68..=79 => {
                    let n_entries = if rng.random_bool(0.15) { 2 } else { 1 };
                    let entries = (0..n_entries)
                        .map(|_| {
                            let n = rng.random_range(1..5);
                            let who = if n_entries == 2 && rng.random_bool(0.5) {
                                0
                            } else {
                                rng.random_range(0..VALIDATORS)
                            };
                            (who, (0..n).map(|_| random_record(&mut rng)).collect())
                        })
                        .collect();
                    let gvr = if rng.random_bool(0.05) {
                        OTHER_GVR
                    } else {
                        GVR
                    };
                    Op::Import { entries, gvr }
                }
                80..=84 => Op::Prune {
                    keep: rng.random_range(0..3),
                },
                85..=88 => Op::SetEnabled {
                    v,
                    enabled: rng.random_bool(0.5),
                },
                89..=93 => Op::High(if rng.random_bool(0.5) {
                    let epoch = rng.random_range(1..MAX_EPOCH + 2);
                    Some((epoch, epoch * SLOTS_PER_EPOCH + rng.random_range(0..4)))
                } else {
                    None
                }),
                94..=98 => Op::Restart,
                _ => Op::Migrate,
            }
        })
        .collect()
}

/// The interchange JSON for an import step, as another signer or an operator would write it.
fn interchange_json(entries: &[(u32, Vec<Msg>)], keys: &[[u8; 48]], gvr: [u8; 32]) -> String {
    let hex32 = |r: &[u8; 32]| format!("0x{}", hex::encode(r));
    let data: Vec<serde_json::Value> = entries
        .iter()
        .map(|(v, msgs)| {
            let mut blocks = Vec::new();
            let mut atts = Vec::new();
            for m in msgs {
                match m {
                    Msg::Block { slot, root } => {
                        let mut b = serde_json::json!({"slot": slot.to_string()});
                        if let Some(r) = root {
                            b["signing_root"] = hex32(r).into();
                        }
                        blocks.push(b);
                    }
                    Msg::Attestation {
                        source,
                        target,
                        root,
                    } => {
                        let mut a = serde_json::json!({
                            "source_epoch": source.to_string(),
                            "target_epoch": target.to_string(),
                        });
                        if let Some(r) = root {
                            a["signing_root"] = hex32(r).into();
                        }
                        atts.push(a);
                    }
                }
            }
            serde_json::json!({
                "pubkey": format!("0x{}", hex::encode(keys[*v as usize])),
                "signed_blocks": blocks,
                "signed_attestations": atts,
            })
        })
        .collect();
    serde_json::json!({
        "metadata": {"interchange_format_version": "5", "genesis_validators_root": hex32(&gvr)},
        "data": data,
    })
    .to_string()
}

/// Where a sequence's stores live: a fresh database per sequence on SQLite; on PostgreSQL one
/// database for many sequences (fresh validator keys each time) and a fresh one per migration.
struct Env {
    backend: Backend,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    /// Databases that must outlive their stores (dropped at the end).
    dbs: Vec<TestDb>,
    /// Databases made so far (names the SQLite folders).
    serial: usize,
    migrations: usize,
}

impl Env {
    fn new(backend: Backend) -> Option<Env> {
        // Decisions, not durability, are under test: SQLite files live in memory where the
        // platform has a tmpfs (`PALISADE_MODEL_TMPDIR` overrides).
        let base = std::env::var_os("PALISADE_MODEL_TMPDIR")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                let shm = std::path::Path::new("/dev/shm");
                shm.is_dir().then(|| shm.to_path_buf())
            })
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::tempdir_in(base)
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut env = Env {
            backend,
            dir,
            rt,
            dbs: Vec::new(),
            serial: 0,
            migrations: 0,
        };
        env.new_db()?;
        Some(env)
    }

    /// A new empty database; its URL.
    fn new_db(&mut self) -> Option<String> {
        self.serial += 1;
        let sub = self.dir.path().join(format!("db{}", self.serial));
        std::fs::create_dir_all(&sub).unwrap();
        let db = fresh_db(self.backend, &sub)?;
        let url = db.url.clone();
        if self.backend == Backend::Postgres {
            // These tests check decisions, not durability (tests/db_unavailable.rs and the
            // store's own commit path do): commits need not wait for the WAL flush here.
            let name = url.rsplit('/').next().unwrap();
            common::pg_admin(
                &url,
                &format!("ALTER DATABASE {name} SET synchronous_commit = off"),
            )
            .unwrap();
        }
        self.dbs.push(db);
        Some(url)
    }

    fn open(&self, url: &str) -> Arc<dyn ProtectionStore> {
        self.rt.block_on(protection::open(url, 4)).unwrap()
    }
}

/// What one run of a sequence did.
#[derive(Default)]
struct Counts {
    steps: usize,
    signed: usize,
    refused: usize,
    imports: usize,
    failed_imports: usize,
}

fn history_of(
    env: &Env,
    store: &dyn ProtectionStore,
    keys: &[[u8; 48]],
) -> Result<Vec<ValidatorHistory>, String> {
    keys.iter()
        .map(|k| env.rt.block_on(store.history(k)).map_err(|e| e.to_string()))
        .collect()
}

/// Whether `m` is at or above the high watermark `high` (then it must not be signed).
fn at_or_above(m: &Msg, high: Option<&HighWatermark>) -> bool {
    match (m, high) {
        (Msg::Block { slot, .. }, Some(h)) => *slot >= h.slot,
        (Msg::Attestation { source, target, .. }, Some(h)) => {
            *source >= h.epoch || *target >= h.epoch
        }
        _ => false,
    }
}

/// Runs `ops` on a fresh store; `Err` describes the first broken rule.
fn run(env: &mut Env, seed: u64, ops: &[Op], counts: &mut Counts) -> Result<(), String> {
    // Fresh validator keys per run, so that runs sharing a PostgreSQL database do not meet.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let nonce: u64 = rng.random::<u64>() ^ std::process::id() as u64;
    let keys: Vec<[u8; 48]> = (0..VALIDATORS)
        .map(|i| {
            let mut k = [0u8; 48];
            k[0] = 0xb0 + i as u8;
            k[1..9].copy_from_slice(&nonce.to_be_bytes());
            k[9..17].copy_from_slice(
                &std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
                    .to_be_bytes()[8..],
            );
            k
        })
        .collect();
    let mut url = if env.backend == Backend::Sqlite {
        env.new_db().unwrap()
    } else {
        env.dbs.last().unwrap().url.clone()
    };
    let mut store = env.open(&url);
    env.rt
        .block_on(store.register_validators(&keys))
        .map_err(|e| e.to_string())?;
    // Bind the database to the chain (an empty import), as a first signature would.
    let bind = interchange::parse(&interchange_json(&[], &keys, GVR)).unwrap();
    env.rt
        .block_on(store.import(&bind))
        .map_err(|e| e.to_string())?;
    let mut model = Model::new();
    let mut enabled = vec![true; VALIDATORS as usize];
    let mut high: Option<HighWatermark> = None;
    let result = (|| {
        for (i, op) in ops.iter().enumerate() {
            counts.steps += 1;
            let at = |what: String| format!("step {i} ({op:?}): {what}");
            let sign = |store: &Arc<dyn ProtectionStore>,
                        v: u32,
                        m: Msg|
             -> Result<Result<Decision, ProtectionError>, String> {
                let (message, signing_root) = match m {
                    Msg::Block { slot, root } => (ProtectedMessage::Block { slot }, root.unwrap()),
                    Msg::Attestation {
                        source,
                        target,
                        root,
                    } => (
                        ProtectedMessage::Attestation { source, target },
                        root.unwrap(),
                    ),
                };
                Ok(env.rt.block_on(store.check_and_record(
                    &keys[v as usize],
                    GVR,
                    message,
                    signing_root,
                )))
            };
            // A sign step: the release must be allowed by the model; a refusal needs a reason.
            let mut signed = |store: &Arc<dyn ProtectionStore>,
                              model: &mut Model,
                              v: u32,
                              m: Msg,
                              must: bool|
             -> Result<(), String> {
                match sign(store, v, m)? {
                    Ok(_) => {
                        let c = model.conflicts(v, &m);
                        if !c.is_empty() {
                            return Err(at(format!(
                                "INVARIANT BROKEN: released {m:?}, slashable against {c:?}"
                            )));
                        }
                        if !enabled[v as usize] {
                            return Err(at(format!("released {m:?} for a disabled validator")));
                        }
                        if at_or_above(&m, high.as_ref()) {
                            return Err(at(format!(
                                "released {m:?} at or above the high watermark {high:?}"
                            )));
                        }
                        model.imported(v, m);
                        counts.signed += 1;
                        Ok(())
                    }
                    Err(ProtectionError::Slashable(_)) | Err(ProtectionError::Disabled(_)) => {
                        let excused = !enabled[v as usize] || at_or_above(&m, high.as_ref());
                        if must && !excused {
                            return Err(at(format!(
                                "refused {m:?}, which every correct signer must sign (known: {:?})",
                                model.known(v)
                            )));
                        }
                        counts.refused += 1;
                        Ok(())
                    }
                    Err(e) => Err(at(format!("{m:?}: a fault, not a refusal: {e}"))),
                }
            };
            match op {
                Op::Block { v, slot, body } => {
                    signed(&store, &mut model, *v, block_msg(*slot, *body), false)?
                }
                Op::Attestation {
                    v,
                    source,
                    target,
                    body,
                } => signed(
                    &store,
                    &mut model,
                    *v,
                    att_msg(*source, *target, *body),
                    false,
                )?,
                Op::MustSign { v, block } => {
                    let (slot, source, target) = model.maxima(*v);
                    let m = if *block {
                        block_msg(slot.map_or(0, |s| s + 1), 7)
                    } else {
                        let s = source.unwrap_or(0);
                        let t = target.map_or(s, |t| t + 1).max(s + 1);
                        att_msg(s, t, 7)
                    };
                    signed(&store, &mut model, *v, m, true)?
                }
                Op::Import { entries, gvr } => {
                    let json = interchange_json(entries, &keys, *gvr);
                    let parsed = interchange::parse(&json);
                    // The store refuses only another chain's file; read the record before
                    // such an import, to check that the refusal changed nothing.
                    let before = if parsed.is_ok() && *gvr != GVR {
                        Some(history_of(env, store.as_ref(), &keys)?)
                    } else {
                        None
                    };
                    let result = parsed
                        .map_err(ProtectionError::from)
                        .and_then(|p| env.rt.block_on(store.import(&p)));
                    counts.imports += 1;
                    match result {
                        Ok(_) => {
                            if *gvr != GVR {
                                return Err(at("an import for another chain succeeded".into()));
                            }
                            for (v, msgs) in entries {
                                for m in msgs {
                                    model.imported(*v, *m);
                                }
                            }
                        }
                        Err(ProtectionError::Import(_)) => {
                            counts.failed_imports += 1;
                            if let Some(before) = before
                                && before != history_of(env, store.as_ref(), &keys)?
                            {
                                return Err(at("a failed import changed the record".into()));
                            }
                        }
                        Err(e) => return Err(at(format!("import fault: {e}"))),
                    }
                }
                Op::Prune { keep } => {
                    env.rt
                        .block_on(store.prune(*keep, SLOTS_PER_EPOCH))
                        .map_err(|e| at(e.to_string()))?;
                }
                Op::SetEnabled { v, enabled: on } => {
                    env.rt
                        .block_on(store.set_enabled(&[keys[*v as usize]], *on))
                        .map_err(|e| at(e.to_string()))?;
                    enabled[*v as usize] = *on;
                }
                Op::High(h) => {
                    let h = h.map(|(epoch, slot)| HighWatermark { epoch, slot });
                    env.rt
                        .block_on(store.set_high_watermark(h))
                        .map_err(|e| at(e.to_string()))?;
                    high = h;
                }
                Op::Restart => {
                    // The old store (its pool, caches and workers) goes as the new one comes.
                    store = env.open(&url);
                }
                Op::Migrate => {
                    let doc = env
                        .rt
                        .block_on(protection::export(store.as_ref(), Some(&keys)))
                        .map_err(|e| at(e.to_string()))?;
                    let json = serde_json::to_string(&doc).unwrap();
                    if env.backend == Backend::Postgres {
                        // Operator step: the high watermark is global; clear it before leaving.
                        env.rt
                            .block_on(store.set_high_watermark(None))
                            .map_err(|e| at(e.to_string()))?;
                    }
                    url = env.new_db().unwrap();
                    env.migrations += 1;
                    store = env.open(&url);
                    let prepared = interchange::parse(&json).map_err(|e| at(e.to_string()))?;
                    env.rt
                        .block_on(store.import(&prepared))
                        .map_err(|e| at(format!("re-import of an export failed: {e}")))?;
                    // A fresh database: keys enabled, no high watermark.
                    enabled = vec![true; VALIDATORS as usize];
                    high = None;
                }
            }
        }
        Ok(())
    })();
    // Shared PostgreSQL databases: leave no high watermark for the next run.
    let _ = env.rt.block_on(store.set_high_watermark(None));
    result
}

/// Greedily removes steps while the run still fails; returns the smallest failing sequence.
fn shrink(env: &mut Env, seed: u64, mut ops: Vec<Op>) -> Vec<Op> {
    let mut i = 0;
    while i < ops.len() {
        let mut fewer = ops.clone();
        fewer.remove(i);
        if run(env, seed, &fewer, &mut Counts::default()).is_err() {
            ops = fewer;
        } else {
            i += 1;
        }
    }
    ops
}

/// Runs `count` sequences from `first` on `backend`, in `workers` threads with a database
/// (and runtime) each; panics with the shrunk sequence of the first failure.
fn sequences(backend: Backend, count_var: &str, default: usize) {
    let count: usize = std::env::var(count_var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let first: u64 = std::env::var("PALISADE_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_0013);
    let workers: usize = std::env::var("PALISADE_MODEL_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
        .clamp(1, count.max(1));
    if backend == Backend::Postgres && common::postgres_admin_url().is_none() {
        return;
    }
    let started = std::time::Instant::now();
    let totals: Vec<(Counts, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    let mut env = Env::new(backend).expect("database");
                    let mut counts = Counts::default();
                    for n in (w..count).step_by(workers) {
                        let seed = first + n as u64;
                        let ops = generate(seed, 10 + (seed % 31) as usize);
                        // PostgreSQL: a fresh database now and then, so pruning stays cheap.
                        if backend == Backend::Postgres && counts.steps > 0 && n % 40 < workers {
                            env.dbs.truncate(0);
                            env.new_db();
                        }
                        if let Err(e) = run(&mut env, seed, &ops, &mut counts) {
                            let small = shrink(&mut env, seed, ops);
                            let steps: Vec<String> =
                                small.iter().map(|o| format!("  {o:?}")).collect();
                            panic!(
                                "{backend:?}: seed {seed} failed: {e}\nshrunk to {} steps (replay with PALISADE_MODEL_SEED={seed} PALISADE_MODEL_SEQUENCES=1):\n{}",
                                small.len(),
                                steps.join("\n")
                            );
                        }
                        if backend == Backend::Sqlite {
                            env.dbs.truncate(0);
                            for entry in std::fs::read_dir(env.dir.path()).unwrap().flatten() {
                                let _ = std::fs::remove_dir_all(entry.path());
                            }
                        }
                    }
                    (counts, env.migrations)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut c = Counts::default();
    let mut migrations = 0;
    for (t, m) in totals {
        c.steps += t.steps;
        c.signed += t.signed;
        c.refused += t.refused;
        c.imports += t.imports;
        c.failed_imports += t.failed_imports;
        migrations += m;
    }
    assert!(
        c.signed > 0 && c.refused > 0,
        "the sequences both sign and refuse"
    );
    println!(
        "{backend:?}: {count} sequences, {} steps ({} signed, {} refused, {} imports of which {} refused, {migrations} migrations) in {:.1} s with {workers} workers; seeds {first}..{}",
        c.steps,
        c.signed,
        c.refused,
        c.imports,
        c.failed_imports,
        started.elapsed().as_secs_f64(),
        first + count as u64
    );
}

/// 2,000 generated sequences (`PALISADE_MODEL_SEQUENCES`) against the reference model.
fn model_sequences(backend: Backend) {
    sequences(backend, "PALISADE_MODEL_SEQUENCES", 2000);
}

/// The long run for the closing note: `cargo test --release --test protection_model --
/// --ignored` (100,000 sequences per store unless `PALISADE_MODEL_LONG` says otherwise).
#[test]
#[ignore]
fn model_sequences_long() {
    sequences(Backend::Sqlite, "PALISADE_MODEL_LONG", 100_000);
    sequences(Backend::Postgres, "PALISADE_MODEL_LONG", 100_000);
}

/// The reference model itself, on the consensus-spec cases.
#[test]
fn model_matches_the_spec_cases() {
    use common::model::slashable;
    let a = Some([0xaa; 32]);
    let b = Some([0xbb; 32]);
    let blk = |slot, root| Msg::Block { slot, root };
    let att = |source, target, root| Msg::Attestation {
        source,
        target,
        root,
    };
    assert!(!slashable(&blk(1, a), &blk(1, a)));
    assert!(slashable(&blk(1, a), &blk(1, b)));
    assert!(slashable(&blk(1, None), &blk(1, a)));
    assert!(slashable(&blk(1, None), &blk(1, None)));
    assert!(!slashable(&blk(1, a), &blk(2, b)));
    assert!(!slashable(&att(1, 2, a), &att(1, 2, a)));
    assert!(slashable(&att(1, 2, a), &att(1, 2, b)));
    assert!(slashable(&att(1, 2, a), &att(0, 2, a)));
    assert!(slashable(&att(1, 2, None), &att(1, 2, None)));
    assert!(slashable(&att(5, 10, a), &att(4, 11, b)));
    assert!(slashable(&att(4, 11, b), &att(5, 10, a)));
    assert!(!slashable(&att(5, 10, a), &att(5, 11, b)));
    assert!(!slashable(&att(5, 10, a), &att(4, 9, b)));
    assert!(!slashable(&att(1, 2, a), &blk(2, a)));
}

/// The sequence at the store level: sign 5->10, refuse 4->11, import 3->10 without a
/// root, and 4->11 must still be refused (it surrounds 5->10).
fn import_does_not_unlock_a_surround(backend: Backend) {
    let Some(mut env) = Env::new(backend) else {
        return;
    };
    let url = env.dbs.last().unwrap().url.clone();
    let store = env.open(&url);
    let key = [0xc1; 48];
    let sign = |s, t, body| {
        env.rt.block_on(store.check_and_record(
            &key,
            GVR,
            ProtectedMessage::Attestation {
                source: s,
                target: t,
            },
            root(2, s, t, body),
        ))
    };
    assert!(sign(5, 10, 0).is_ok());
    assert!(matches!(sign(4, 11, 0), Err(ProtectionError::Slashable(_))));
    let json = interchange_json(
        &[(
            0,
            vec![Msg::Attestation {
                source: 3,
                target: 10,
                root: None,
            }],
        )],
        &[key],
        GVR,
    );
    env.rt
        .block_on(store.import(&interchange::parse(&json).unwrap()))
        .unwrap();
    let after = sign(4, 11, 0);
    assert!(
        matches!(after, Err(ProtectionError::Slashable(_))),
        "4->11 after importing 3->10 must be refused, got {after:?}"
    );
    let history = env.rt.block_on(store.history(&key)).unwrap();
    assert!(
        history
            .attestations
            .iter()
            .any(|a| a.source_epoch == 5 && a.target_epoch == 10),
        "the record of 5->10 survives the import: {history:?}"
    );
    let _ = &mut env;
}

/// A refused message binds nothing: on an unbound database, a block refused by the high
/// watermark must not bind the database to its genesis validators root (on PostgreSQL the
/// group-commit batch used to bind to its first job's root whatever the decision).
fn refused_message_binds_no_genesis(backend: Backend) {
    let Some(env) = Env::new(backend) else {
        return;
    };
    let url = env.dbs.last().unwrap().url.clone();
    let store = env.open(&url);
    let key = [0xc2; 48];
    env.rt
        .block_on(store.set_high_watermark(Some(HighWatermark { epoch: 0, slot: 0 })))
        .unwrap();
    let refused = env.rt.block_on(store.check_and_record(
        &key,
        OTHER_GVR,
        ProtectedMessage::Block { slot: 5 },
        root(1, 5, 0, 0),
    ));
    assert!(
        matches!(refused, Err(ProtectionError::Slashable(_))),
        "{refused:?}"
    );
    assert_eq!(
        env.rt.block_on(store.genesis_validators_root()).unwrap(),
        None,
        "a refused message bound the database"
    );
    env.rt.block_on(store.set_high_watermark(None)).unwrap();
    let signed = env.rt.block_on(store.check_and_record(
        &key,
        GVR,
        ProtectedMessage::Block { slot: 5 },
        root(1, 5, 0, 0),
    ));
    assert!(
        signed.is_ok(),
        "the chain's first block is signed: {signed:?}"
    );
    assert_eq!(
        env.rt.block_on(store.genesis_validators_root()).unwrap(),
        Some(GVR)
    );
}

// The model-based sequences and the store-level regressions run on every registered store.
common::store_suite!(
    model_sequences,
    import_does_not_unlock_a_surround,
    refused_message_binds_no_genesis,
);
