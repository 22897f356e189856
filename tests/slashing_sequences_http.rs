//! Slashing protection across sequences of operations, through the real binary and the real
//! CLI, on SQLite and on PostgreSQL:
//! - issue 13's four steps (sign 5->10, refuse 4->11, import 3->10 without a signing root,
//!   refuse 4->11 again), with the import done by `palisade slashing-protection import` and by
//!   the Keymanager API's `slashing_protection` document;
//! - seeded random sequences (sign blocks and attestations, CLI imports, pruning, high
//!   watermarks, restarts) checked against the reference model (`tests/common/model.rs`),
//!   with a liveness check so that a signer refusing everything fails too;
//! - two instances on one PostgreSQL database signing conflicting requests while CLI imports
//!   run.
//!
//! Seeds: `PALISADE_MODEL_SEED` (decimal or 0x-hex) replaces the default base seed; sequence
//! `i` uses base + i. `PALISADE_MODEL_SEQUENCES` and `PALISADE_MODEL_STEPS` replace the number
//! of sequences (16) and of steps per sequence (30).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::model::{Model, Msg, slashable};
use common::{Backend, Server, TestDb, attestation, block, fresh_db, signature_of, write_raw_key};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const GVR: u8 = 0x42;
/// Body root bytes of generated blocks (small, so exact repeats and double proposals happen).
const BLOCK_BYTES: [u8; 3] = [1, 2, 3];
/// Beacon block root bytes of generated attestations.
const ATT_BYTES: [u8; 3] = [1, 2, 3];
const DEFAULT_SEED: u64 = 0x5eed_0013;
/// Default number of generated sequences per backend, and of steps per sequence.
const SEQUENCES: u64 = 16;
const STEPS: usize = 30;

// ---------------------------------------------------------------------------------------
// helpers

/// Prints a test's wall time when it ends, also when it fails.
struct WallClock {
    name: String,
    start: Instant,
}

impl WallClock {
    fn new(name: &str) -> WallClock {
        eprintln!("== {name}: start");
        WallClock {
            name: name.to_string(),
            start: Instant::now(),
        }
    }
}

impl Drop for WallClock {
    fn drop(&mut self) {
        let how = if std::thread::panicking() {
            "FAILED"
        } else {
            "done"
        };
        eprintln!(
            "== {}: {how}, wall time {:.1} s",
            self.name,
            self.start.elapsed().as_secs_f64()
        );
    }
}

/// The base seed: `PALISADE_MODEL_SEED` or [`DEFAULT_SEED`].
fn base_seed() -> u64 {
    match std::env::var("PALISADE_MODEL_SEED") {
        Ok(s) if !s.trim().is_empty() => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("PALISADE_MODEL_SEED={s:?} is not a u64"))
        }
        _ => DEFAULT_SEED,
    }
}

fn gvr_hex() -> String {
    format!("0x{}", hex::encode([GVR; 32]))
}

/// The signing root palisade computes for a request body (mainnet, as the server runs).
fn signing_root(body: &Value) -> [u8; 32] {
    let network =
        palisade::chain::eth2::network::NetworkConfig::from_name_or_path("mainnet").unwrap();
    palisade::chain::eth2::request::plan(body, &network)
        .unwrap()
        .signing_root
        .0
}

fn block_msg(slot: u64, byte: u8) -> (Value, Msg) {
    let body = block(GVR, slot, byte);
    let root = signing_root(&body);
    (
        body,
        Msg::Block {
            slot,
            root: Some(root),
        },
    )
}

fn attestation_msg(source: u64, target: u64, byte: u8) -> (Value, Msg) {
    let body = attestation(GVR, source, target, byte);
    let root = signing_root(&body);
    (
        body,
        Msg::Attestation {
            source,
            target,
            root: Some(root),
        },
    )
}

/// Runs `palisade ARGS --slashing-protection-db-url URL`; returns success and stdout+stderr.
fn cli(db_url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .args(["--slashing-protection-db-url", db_url])
        .output()
        .expect("run palisade");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `palisade slashing-protection import --from FILE` of `doc` (written into `dir`).
fn cli_import(db_url: &str, dir: &Path, doc: &str) -> (bool, String) {
    let file = dir.join("import.json");
    std::fs::write(&file, doc).unwrap();
    cli(
        db_url,
        &[
            "slashing-protection",
            "import",
            "--from",
            file.to_str().unwrap(),
        ],
    )
}

/// The attestations (source, target) of `pk` in `palisade slashing-protection export`.
fn exported_attestations(db_url: &str, dir: &Path, pk: &str) -> Vec<(u64, u64)> {
    let file = dir.join("export.json");
    let (ok, out) = cli(
        db_url,
        &[
            "slashing-protection",
            "export",
            "--to",
            file.to_str().unwrap(),
            "--pubkeys",
            pk,
        ],
    );
    assert!(ok, "export failed: {out}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let epoch = |v: &Value| v.as_str().unwrap().parse::<u64>().unwrap();
    doc["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["pubkey"].as_str() == Some(pk))
        .flat_map(|d| d["signed_attestations"].as_array().unwrap().clone())
        .map(|a| (epoch(&a["source_epoch"]), epoch(&a["target_epoch"])))
        .collect()
}

fn root_field(root: Option<[u8; 32]>) -> Option<String> {
    root.map(|r| format!("0x{}", hex::encode(r)))
}

/// One validator entry of an EIP-3076 document.
fn interchange_entry(
    pk: &str,
    blocks: &[(u64, Option<[u8; 32]>)],
    attestations: &[(u64, u64, Option<[u8; 32]>)],
) -> Value {
    let blocks: Vec<Value> = blocks
        .iter()
        .map(|(slot, root)| match root_field(*root) {
            Some(r) => json!({"slot": slot.to_string(), "signing_root": r}),
            None => json!({"slot": slot.to_string()}),
        })
        .collect();
    let attestations: Vec<Value> = attestations
        .iter()
        .map(|(s, t, root)| {
            let mut a = json!({"source_epoch": s.to_string(), "target_epoch": t.to_string()});
            if let Some(r) = root_field(*root) {
                a["signing_root"] = json!(r);
            }
            a
        })
        .collect();
    json!({"pubkey": pk, "signed_blocks": blocks, "signed_attestations": attestations})
}

fn interchange_doc(entries: Vec<Value>) -> String {
    json!({
        "metadata": {"interchange_format_version": "5", "genesis_validators_root": gvr_hex()},
        "data": entries
    })
    .to_string()
}

/// A non-200 answer must be 412 with a JSON body naming the reason.
fn assert_refusal(status: u16, body: &str, what: &dyn Fn() -> String) {
    assert_eq!(
        status,
        412,
        "expected 200 or 412, got {status}: {body}\n{}",
        what()
    );
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|_| panic!("412 without a JSON body: {body}\n{}", what()));
    assert!(
        v["error"].as_str().is_some_and(|e| !e.is_empty()),
        "412 without an error message: {body}\n{}",
        what()
    );
}

fn start_server(data: &Path, keys: &Path, db_url: &str, extra: &[&str]) -> Server {
    std::fs::create_dir_all(data).unwrap();
    let mut args = vec![
        "--key-config-path",
        keys.to_str().unwrap(),
        "--slashing-protection-db-url",
        db_url,
    ];
    args.extend_from_slice(extra);
    Server::start(data, &args)
}

// ---------------------------------------------------------------------------------------
// 1, 2: issue 13's four steps

/// Steps 1 and 2: 5->10 signed, 4->11 refused (it surrounds 5->10).
fn first_two_steps(server: &Server, pk: &str) {
    let (s, body) = server.sign(pk, &attestation(GVR, 5, 10, 1));
    assert_eq!(s, 200, "step 1: ATTESTATION 5->10: {body}");
    signature_of(&body);
    let (s, body) = server.sign(pk, &attestation(GVR, 4, 11, 1));
    assert_refusal(s, &body, &|| {
        "step 2: ATTESTATION 4->11 surrounds 5->10".into()
    });
}

/// The EIP-3076 document of step 3: one attestation 3->10 without a signing root.
fn step3_doc(pk: &str) -> String {
    interchange_doc(vec![interchange_entry(pk, &[], &[(3, 10, None)])])
}

/// Step 4 (4->11 must still be refused) and the export (5->10 still recorded).
fn last_step(server: &Server, pk: &str, db_url: &str, dir: &Path, how: &str) {
    let (status, body) = server.sign(pk, &attestation(GVR, 4, 11, 1));
    let exported = exported_attestations(db_url, dir, pk);
    eprintln!("step 4 after the {how}: {status} {body}; exported attestations: {exported:?}");
    let mut failures = Vec::new();
    if status == 412 {
        assert_refusal(status, &body, &|| "step 4".into());
    } else {
        failures.push(format!(
            "step 4: ATTESTATION 4->11 after the {how} of 3->10 answered {status} (412 expected: \
             it surrounds the signed 5->10): {body}"
        ));
    }
    if !exported.contains(&(5, 10)) {
        failures.push(format!(
            "the export after the {how} has no attestation 5->10 (the signed vote): {exported:?}"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn four_step_surround_cli(backend: Backend) {
    let _clock = WallClock::new(&format!("four_step_surround_cli ({backend:?})"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let Some(db) = fresh_db(backend, &data) else {
        return;
    };
    let keys = dir.path().join("keys");
    write_raw_key(&keys, "k", &common::test_secret(130));
    let pk = common::test_pubkey(130);
    let server = start_server(&data, &keys, &db.url, &[]);

    first_two_steps(&server, &pk);
    let (ok, out) = cli_import(&db.url, dir.path(), &step3_doc(&pk));
    assert!(ok, "step 3: CLI import failed: {out}");
    last_step(&server, &pk, &db.url, dir.path(), "CLI import");
}

/// A development keystore of the repository: (JSON, password, 0x public key).
fn dev_keystore(i: u32) -> (String, String, String) {
    let base = common::repo_dir().join(format!("keystores/keystore-m_12381_3600_{i}_0_0.json"));
    let json = std::fs::read_to_string(&base).unwrap();
    let password = std::fs::read_to_string(base.with_extension("txt"))
        .unwrap()
        .trim_end()
        .to_string();
    let v: Value = serde_json::from_str(&json).unwrap();
    let pk = format!(
        "0x{}",
        v["pubkey"].as_str().unwrap().trim_start_matches("0x")
    );
    (json, password, pk)
}

/// `POST /eth/v1/keystores`; returns the per-keystore statuses.
fn keystores_post(url: &str, token: &str, body: &Value) -> Vec<(String, String)> {
    let r = common::client()
        .post(format!("{url}/eth/v1/keystores"))
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().unwrap_or(Value::Null);
    assert_eq!(status, 200, "POST /eth/v1/keystores: {v}");
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {v}"))
        .iter()
        .map(|d| {
            (
                d["status"].as_str().unwrap_or_default().to_string(),
                d["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A server with the Keymanager API on a fresh database, and its token.
struct KeymanagerRig {
    dir: tempfile::TempDir,
    db: TestDb,
    server: Server,
    token: String,
}

/// `None` when PostgreSQL is not configured (outside CI only).
fn keymanager_rig(backend: Backend) -> Option<KeymanagerRig> {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = fresh_db(backend, &data)?;
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let server = start_server(&data, &keys, &db.url, &["--key-manager-api-enabled"]);
    let token = std::fs::read_to_string(data.join("api-token.txt"))
        .unwrap()
        .trim()
        .to_string();
    Some(KeymanagerRig {
        dir,
        db,
        server,
        token,
    })
}

fn four_step_surround_keymanager(backend: Backend) {
    let _clock = WallClock::new(&format!("four_step_surround_keymanager ({backend:?})"));
    let Some(KeymanagerRig {
        dir,
        db,
        server,
        token,
    }) = keymanager_rig(backend)
    else {
        return;
    };
    let (ks, pw, pk) = dev_keystore(0);

    let statuses = keystores_post(
        &server.url,
        &token,
        &json!({"keystores": [ks], "passwords": [pw]}),
    );
    assert_eq!(statuses[0].0, "imported", "{statuses:?}");
    first_two_steps(&server, &pk);
    // Step 3: the same keystore again with the document. The key is already served, so it
    // is a duplicate, but the document is imported first (an error would name it).
    let statuses = keystores_post(
        &server.url,
        &token,
        &json!({"keystores": [ks], "passwords": [pw], "slashing_protection": step3_doc(&pk)}),
    );
    assert_eq!(
        statuses[0].0, "duplicate",
        "step 3: Keymanager import with the document: {statuses:?}"
    );
    last_step(&server, &pk, &db.url, dir.path(), "Keymanager import");
}

// ---------------------------------------------------------------------------------------
// random fragments of EIP-3076 documents (shared by 3 and 4)

/// A generated import: the document and every record in it (validator index, message).
struct Fragment {
    doc: String,
    records: Vec<(usize, Msg)>,
    /// A validator is listed twice (the import may then be refused as a whole).
    duplicate_entry: bool,
}

/// A signing root that no request can have: 0xee, then a counter.
fn fake_root(counter: &mut u64) -> [u8; 32] {
    *counter += 1;
    let mut r = [0xee; 32];
    r[24..].copy_from_slice(&counter.to_be_bytes());
    r
}

/// A root for an imported record at `body`'s position: missing, fake, or `body`'s real root.
fn random_import_root(
    rng: &mut StdRng,
    fake: &mut u64,
    body: impl FnOnce() -> Value,
) -> Option<[u8; 32]> {
    match rng.random_range(0..10) {
        0..3 => None,
        3..6 => Some(fake_root(fake)),
        _ => Some(signing_root(&body())),
    }
}

/// One validator entry with 0..=3 blocks and 0..=3 attestations at slots and epochs in
/// `0..hi`; each root is missing, fake, or the real root of a request the generators send.
/// About half the records sit at the position of a message in `known` (same slot; same
/// target with another source), to make near-conflicts with the history.
fn random_entry(
    rng: &mut StdRng,
    v: usize,
    pks: &[String],
    hi: u64,
    fake: &mut u64,
    known: &[Msg],
    records: &mut Vec<(usize, Msg)>,
) -> Value {
    let known_slots: Vec<u64> = known
        .iter()
        .filter_map(|m| match m {
            Msg::Block { slot, .. } => Some(*slot),
            _ => None,
        })
        .collect();
    let known_votes: Vec<(u64, u64)> = known
        .iter()
        .filter_map(|m| match m {
            Msg::Attestation { source, target, .. } => Some((*source, *target)),
            _ => None,
        })
        .collect();
    let mut blocks = Vec::new();
    for _ in 0..rng.random_range(0..=3) {
        let slot = match known_slots.choose(rng) {
            Some(s) if rng.random_bool(0.5) => *s,
            _ => rng.random_range(0..hi),
        };
        let byte = *BLOCK_BYTES.choose(rng).unwrap();
        let root = random_import_root(rng, fake, || block(GVR, slot, byte));
        blocks.push((slot, root));
        records.push((v, Msg::Block { slot, root }));
    }
    let mut atts = Vec::new();
    for _ in 0..rng.random_range(0..=3) {
        let (source, target) = match known_votes.choose(rng) {
            Some((_, t)) if rng.random_bool(0.5) => (rng.random_range(0..=*t), *t),
            _ => {
                let source = rng.random_range(0..hi);
                (source, rng.random_range(source..hi))
            }
        };
        let byte = *ATT_BYTES.choose(rng).unwrap();
        let root = random_import_root(rng, fake, || attestation(GVR, source, target, byte));
        atts.push((source, target, root));
        records.push((
            v,
            Msg::Attestation {
                source,
                target,
                root,
            },
        ));
    }
    interchange_entry(&pks[v], &blocks, &atts)
}

/// A random import for one or both validators; `known[v]`: messages known for `v`.
fn random_fragment(
    rng: &mut StdRng,
    pks: &[String],
    hi: u64,
    fake: &mut u64,
    known: &[Vec<Msg>],
    allow_duplicate_entry: bool,
) -> Fragment {
    let mut records = Vec::new();
    let validators: Vec<usize> = if rng.random_bool(0.3) {
        (0..pks.len()).collect()
    } else {
        vec![rng.random_range(0..pks.len())]
    };
    let mut entries: Vec<Value> = validators
        .iter()
        .map(|v| random_entry(rng, *v, pks, hi, fake, &known[*v], &mut records))
        .collect();
    let duplicate_entry = allow_duplicate_entry && rng.random_bool(0.12);
    if duplicate_entry {
        let v = rng.random_range(0..pks.len());
        entries.push(random_entry(rng, v, pks, hi, fake, &known[v], &mut records));
    }
    Fragment {
        doc: interchange_doc(entries),
        records,
        duplicate_entry,
    }
}

// ---------------------------------------------------------------------------------------
// 3: generated sequences through HTTP and the CLI

/// A server with 2 keys on a fresh database. Fields drop in order: server, database, files.
struct Rig {
    server: Server,
    db: TestDb,
    data: PathBuf,
    keys: PathBuf,
    pks: Vec<String>,
    dir: tempfile::TempDir,
}

impl Rig {
    fn new(backend: Backend, key_base: u32) -> Option<Rig> {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let db = fresh_db(backend, &data)?;
        let keys = dir.path().join("keys");
        for i in 0..2 {
            write_raw_key(&keys, &format!("k{i}"), &common::test_secret(key_base + i));
        }
        let pks = (0..2).map(|i| common::test_pubkey(key_base + i)).collect();
        let server = start_server(&data, &keys, &db.url, &[]);
        Some(Rig {
            server,
            db,
            data,
            keys,
            pks,
            dir,
        })
    }

    /// SIGKILL and a new process on the same database.
    fn restart(&mut self) {
        self.server.kill();
        self.server = start_server(&self.data, &self.keys, &self.db.url, &[]);
    }
}

#[derive(Default, Debug, Clone, Copy)]
struct Stats {
    steps: usize,
    signed: usize,
    refused: usize,
    imports: usize,
    imports_refused: usize,
    imported_records: usize,
    prunes: usize,
    high_watermarks: usize,
    restarts: usize,
    liveness: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.signed += o.signed;
        self.refused += o.refused;
        self.imports += o.imports;
        self.imports_refused += o.imports_refused;
        self.imported_records += o.imported_records;
        self.prunes += o.prunes;
        self.high_watermarks += o.high_watermarks;
        self.restarts += o.restarts;
        self.liveness += o.liveness;
    }
}

/// One generated sequence: its seed, the steps so far, the model, the high watermark set.
struct Sequence {
    backend: Backend,
    base: u64,
    index: u64,
    seed: u64,
    rng: StdRng,
    log: Vec<String>,
    model: Model,
    /// (epoch, slot) while a high watermark is set.
    high: Option<(u64, u64)>,
    fake: u64,
    stats: Stats,
}

fn context(backend: Backend, base: u64, index: u64, seed: u64, log: &[String]) -> String {
    format!(
        "replay: PALISADE_MODEL_SEED={base:#x} (sequence {index}, seed {seed:#x}, {backend:?})\n\
         steps so far:\n  {}",
        log.join("\n  ")
    )
}

impl Sequence {
    fn context(&self) -> String {
        context(self.backend, self.base, self.index, self.seed, &self.log)
    }

    /// Sends a BLOCK_V2 or ATTESTATION; a 200 goes to the model (which checks it), anything
    /// else must be a 412. With `must_sign`, anything but 200 fails.
    fn sign(&mut self, rig: &Rig, v: usize, body: &Value, msg: Msg, must_sign: bool) {
        let (status, text) = rig.server.sign(&rig.pks[v], body);
        let reason = if status == 200 {
            String::new()
        } else {
            serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|e| e["error"].as_str().map(|s| format!(" ({s})")))
                .unwrap_or_default()
        };
        let tag = if must_sign { "LIVENESS " } else { "" };
        self.log
            .push(format!("{tag}sign v{v} {msg:?} -> {status}{reason}"));
        if status != 200 {
            assert!(
                !must_sign,
                "LIVENESS: v{v} {msg:?} conflicts with nothing known, is above every \
                 watermark and no high watermark is set, yet it got {status}: {text}\n{}",
                self.context()
            );
            assert_refusal(status, &text, &|| self.context());
            self.stats.refused += 1;
            return;
        }
        signature_of(&text);
        self.stats.signed += 1;
        match msg {
            Msg::Attestation { source, target, .. } => {
                assert!(
                    source <= target,
                    "signed an attestation with source > target: {msg:?}\n{}",
                    self.context()
                );
                if let Some((epoch, _)) = self.high {
                    assert!(
                        source < epoch && target < epoch,
                        "signed {msg:?} at or above the high watermark epoch {epoch}\n{}",
                        self.context()
                    );
                }
            }
            Msg::Block { slot, .. } => {
                if let Some((_, hs)) = self.high {
                    assert!(
                        slot < hs,
                        "signed {msg:?} at or above the high watermark slot {hs}\n{}",
                        self.context()
                    );
                }
            }
        }
        let (backend, base, index, seed, log) =
            (self.backend, self.base, self.index, self.seed, &self.log);
        self.model
            .released(v as u32, msg, &|| context(backend, base, index, seed, log));
    }

    fn random_block(&mut self, rig: &Rig) {
        let v = self.rng.random_range(0..2);
        let slot = self.rng.random_range(0..12);
        let byte = *BLOCK_BYTES.choose(&mut self.rng).unwrap();
        let (body, msg) = block_msg(slot, byte);
        self.sign(rig, v, &body, msg, false);
    }

    fn random_attestation(&mut self, rig: &Rig) {
        let v = self.rng.random_range(0..2);
        let votes: Vec<(u64, u64)> = self
            .model
            .known(v as u32)
            .iter()
            .filter_map(|m| match m {
                Msg::Attestation { source, target, .. } => Some((*source, *target)),
                _ => None,
            })
            .collect();
        let (source, target) = match votes.choose(&mut self.rng) {
            // near a known vote: surrounding it, surrounded by it, or at its target
            Some((s, t)) if self.rng.random_bool(0.4) => match self.rng.random_range(0..3) {
                0 => (
                    s.saturating_sub(self.rng.random_range(1..=2)),
                    t + self.rng.random_range(1..=2),
                ),
                1 => (s + 1, t.saturating_sub(1).max(s + 1)),
                _ => (self.rng.random_range(0..=*t), *t),
            },
            _ => {
                let mut source = self.rng.random_range(0..12);
                let mut target = self.rng.random_range(0..12);
                // mostly source <= target, sometimes not
                if source > target && self.rng.random_bool(0.8) {
                    std::mem::swap(&mut source, &mut target);
                }
                (source, target)
            }
        };
        let byte = *ATT_BYTES.choose(&mut self.rng).unwrap();
        let (body, msg) = attestation_msg(source, target, byte);
        self.sign(rig, v, &body, msg, false);
    }

    /// A message of `v` that every correct signer must sign now: above everything known.
    fn liveness(&mut self, rig: &Rig, v: usize, block_kind: bool) {
        assert!(self.high.is_none());
        self.stats.liveness += 1;
        let (slot, source, target) = self.model.maxima(v as u32);
        if block_kind {
            let slot = slot.map_or(0, |s| s + 1);
            let (body, msg) = block_msg(slot, *BLOCK_BYTES.choose(&mut self.rng).unwrap());
            self.sign(rig, v, &body, msg, true);
        } else {
            let source = source.unwrap_or(0);
            let target = target.map_or(source + 1, |t| t + 1);
            let (body, msg) =
                attestation_msg(source, target, *ATT_BYTES.choose(&mut self.rng).unwrap());
            self.sign(rig, v, &body, msg, true);
        }
    }

    fn import(&mut self, rig: &Rig) {
        self.stats.imports += 1;
        let known: Vec<Vec<Msg>> = (0..2).map(|v| self.model.known(v).to_vec()).collect();
        let f = random_fragment(&mut self.rng, &rig.pks, 12, &mut self.fake, &known, true);
        let (ok, out) = cli_import(&rig.db.url, rig.dir.path(), &f.doc);
        let listed: Vec<String> = f
            .records
            .iter()
            .map(|(v, m)| format!("v{v} {m:?}"))
            .collect();
        self.log.push(format!(
            "CLI import [{}]{} -> {}",
            listed.join(", "),
            if f.duplicate_entry {
                " (a validator listed twice)"
            } else {
                ""
            },
            if ok { "ok" } else { "refused" }
        ));
        if !ok {
            assert!(
                f.duplicate_entry && out.contains("more than once"),
                "CLI import failed: {out}\n{}",
                self.context()
            );
            self.stats.imports_refused += 1;
            return;
        }
        for (v, m) in f.records {
            self.model.imported(v as u32, m);
            self.stats.imported_records += 1;
        }
    }

    fn prune(&mut self, rig: &Rig) {
        self.stats.prunes += 1;
        let keep = self.rng.random_range(0..4u64).to_string();
        let per_epoch = [1u64, 2, 4].choose(&mut self.rng).unwrap().to_string();
        let (ok, out) = cli(
            &rig.db.url,
            &[
                "slashing-protection",
                "prune",
                "--epochs-to-keep",
                &keep,
                "--slots-per-epoch",
                &per_epoch,
            ],
        );
        self.log.push(format!(
            "CLI prune --epochs-to-keep {keep} --slots-per-epoch {per_epoch} -> {}",
            out.trim()
        ));
        assert!(ok, "CLI prune failed: {out}\n{}", self.context());
    }

    fn high_watermark(&mut self, rig: &Rig) {
        self.stats.high_watermarks += 1;
        if self.high.is_some() && self.rng.random_bool(0.7) {
            self.remove_high_watermark(rig);
            return;
        }
        let epoch = self.rng.random_range(2..14u64);
        let slot = self.rng.random_range(2..14u64);
        let (ok, out) = cli(
            &rig.db.url,
            &[
                "slashing-protection",
                "high-watermark",
                "--epoch",
                &epoch.to_string(),
                "--slot",
                &slot.to_string(),
            ],
        );
        self.log.push(format!(
            "CLI high-watermark --epoch {epoch} --slot {slot} -> {}",
            out.trim()
        ));
        assert!(ok, "CLI high-watermark failed: {out}\n{}", self.context());
        self.high = Some((epoch, slot));
    }

    fn remove_high_watermark(&mut self, rig: &Rig) {
        let (ok, out) = cli(
            &rig.db.url,
            &["slashing-protection", "high-watermark", "--remove"],
        );
        self.log
            .push(format!("CLI high-watermark --remove -> {}", out.trim()));
        assert!(
            ok,
            "CLI high-watermark --remove failed: {out}\n{}",
            self.context()
        );
        self.high = None;
    }

    fn run(&mut self, rig: &mut Rig, steps: usize) {
        for _ in 0..steps {
            self.stats.steps += 1;
            match self.rng.random_range(0..100) {
                0..34 => self.random_attestation(rig),
                34..58 => self.random_block(rig),
                58..72 => self.import(rig),
                72..78 => self.prune(rig),
                78..86 => self.high_watermark(rig),
                86..91 => {
                    self.stats.restarts += 1;
                    self.log.push("restart (SIGKILL, new process)".into());
                    rig.restart();
                }
                _ => {
                    if self.high.is_some() {
                        self.random_attestation(rig);
                    } else {
                        let v = self.rng.random_range(0..2);
                        let block_kind = self.rng.random_bool(0.5);
                        self.liveness(rig, v, block_kind);
                    }
                }
            }
        }
        // End: no high watermark, and both kinds of both validators must still be signable.
        if self.high.is_some() {
            self.remove_high_watermark(rig);
        }
        for v in 0..2 {
            self.liveness(rig, v, true);
            self.liveness(rig, v, false);
        }
    }
}

fn generated_sequences(backend: Backend) {
    let _clock = WallClock::new(&format!(
        "generated_sequences_through_http_and_cli ({backend:?})"
    ));
    let base = base_seed();
    let sequences: u64 = std::env::var("PALISADE_MODEL_SEQUENCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEQUENCES);
    let steps: usize = std::env::var("PALISADE_MODEL_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(STEPS);
    let mut total = Stats::default();
    for index in 0..sequences {
        let Some(mut rig) = Rig::new(backend, 140) else {
            return;
        };
        let seed = base.wrapping_add(index);
        eprintln!("sequence {index} ({backend:?}): seed {seed:#x} (PALISADE_MODEL_SEED={base:#x})");
        let mut seq = Sequence {
            backend,
            base,
            index,
            seed,
            rng: StdRng::seed_from_u64(seed),
            log: Vec::new(),
            model: Model::new(),
            high: None,
            fake: 0,
            stats: Stats::default(),
        };
        seq.run(&mut rig, steps);
        eprintln!("sequence {index}: {:?}", seq.stats);
        total.add(&seq.stats);
    }
    eprintln!(
        "generated ({backend:?}, base seed {base:#x}): {sequences} sequences, {} steps; {total:?}",
        total.steps
    );
    assert!(total.signed > 0 && total.refused > 0, "{total:?}");
}

// ---------------------------------------------------------------------------------------
// 4: two instances on one PostgreSQL database, concurrent requests and CLI imports

/// A 200 answer: validator, message, instance, when it was sent and answered (since start).
struct Release {
    v: usize,
    msg: Msg,
    instance: usize,
    sent: Duration,
    answered: Duration,
    signature: String,
}

/// A successful CLI import and when it ran (since start).
struct Import {
    started: Duration,
    finished: Duration,
    records: Vec<(usize, Msg)>,
}

#[test]
fn two_instances_concurrent_imports_postgres() {
    let _clock = WallClock::new("two_instances_concurrent_imports_postgres");
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(Backend::Postgres, dir.path()) else {
        return;
    };
    let keys = dir.path().join("keys");
    for i in 0..2 {
        write_raw_key(&keys, &format!("k{i}"), &common::test_secret(150 + i));
    }
    let pks: Vec<String> = (0..2).map(|i| common::test_pubkey(150 + i)).collect();
    let servers = [
        start_server(&dir.path().join("a"), &keys, &db.url, &[]),
        start_server(&dir.path().join("b"), &keys, &db.url, &[]),
    ];
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let seed = base_seed() ^ 0x2_1257;
    eprintln!(
        "two instances: seed {seed:#x} (from PALISADE_MODEL_SEED={:#x})",
        base_seed()
    );

    const THREADS: u64 = 4;
    const PER_THREAD: usize = 100;
    const HI: u64 = 40;
    const IMPORTS: usize = 5;
    let releases: Mutex<Vec<Release>> = Mutex::new(Vec::new());
    let refused = Mutex::new(0usize);
    let imports: Mutex<Vec<Import>> = Mutex::new(Vec::new());
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (urls, pks, releases, refused) = (&urls, &pks, &releases, &refused);
            s.spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_add(t + 1));
                let client = common::client();
                for _ in 0..PER_THREAD {
                    let v = rng.random_range(0..2);
                    let instance = rng.random_range(0..2);
                    let (body, msg) = if rng.random_bool(0.6) {
                        let target = rng.random_range(0..HI);
                        let source = if rng.random_bool(0.15) {
                            rng.random_range(0..=target)
                        } else {
                            target.saturating_sub(rng.random_range(0..=3))
                        };
                        attestation_msg(source, target, *ATT_BYTES.choose(&mut rng).unwrap())
                    } else {
                        block_msg(
                            rng.random_range(0..HI),
                            *BLOCK_BYTES[..2].choose(&mut rng).unwrap(),
                        )
                    };
                    let sent = t0.elapsed();
                    let r = client
                        .post(format!("{}/api/v1/eth2/sign/{}", urls[instance], pks[v]))
                        .json(&body)
                        .send()
                        .unwrap();
                    let answered = t0.elapsed();
                    let status = r.status().as_u16();
                    let text = r.text().unwrap();
                    if status == 200 {
                        releases.lock().unwrap().push(Release {
                            v,
                            msg,
                            instance,
                            sent,
                            answered,
                            signature: signature_of(&text),
                        });
                    } else {
                        assert_refusal(status, &text, &|| {
                            format!("seed {seed:#x}: v{v} {msg:?} on instance {instance}")
                        });
                        *refused.lock().unwrap() += 1;
                    }
                }
            });
        }
        let (pks, imports, releases, db_url, dir) =
            (&pks, &imports, &releases, &db.url, dir.path());
        s.spawn(move || {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(100));
            let mut fake = 0;
            for _ in 0..IMPORTS {
                std::thread::sleep(Duration::from_millis(rng.random_range(20..200)));
                let mut known = vec![Vec::new(), Vec::new()];
                for r in releases.lock().unwrap().iter() {
                    known[r.v].push(r.msg);
                }
                let f = random_fragment(&mut rng, pks, HI, &mut fake, &known, false);
                let started = t0.elapsed();
                let (ok, out) = cli_import(db_url, dir, &f.doc);
                let finished = t0.elapsed();
                assert!(ok, "seed {seed:#x}: CLI import failed: {out}");
                imports.lock().unwrap().push(Import {
                    started,
                    finished,
                    records: f.records,
                });
            }
        });
    });
    let releases = releases.into_inner().unwrap();
    let imports = imports.into_inner().unwrap();
    let refused = refused.into_inner().unwrap();
    let show = |r: &Release| {
        format!(
            "v{} {:?} on instance {} (sent {:?}, answered {:?})",
            r.v, r.msg, r.instance, r.sent, r.answered
        )
    };

    // Every pair of released messages of one validator is non-slashable.
    for (i, a) in releases.iter().enumerate() {
        for b in &releases[i + 1..] {
            assert!(
                a.v != b.v || !slashable(&a.msg, &b.msg),
                "seed {seed:#x}: both released and slashable: {} and {}",
                show(a),
                show(b)
            );
        }
    }
    // No release is slashable against an import that had finished before it was sent.
    let mut checked = 0usize;
    for r in &releases {
        for im in imports.iter().filter(|im| im.finished < r.sent) {
            for (v, m) in im.records.iter().filter(|(v, _)| *v == r.v) {
                checked += 1;
                assert!(
                    !slashable(m, &r.msg),
                    "seed {seed:#x}: released {} slashable against v{v} {m:?} imported \
                     {:?}..{:?}",
                    show(r),
                    im.started,
                    im.finished
                );
            }
        }
    }
    // Released signatures verify.
    for r in &releases {
        let root = match r.msg {
            Msg::Block { root, .. } | Msg::Attestation { root, .. } => root.unwrap(),
        };
        assert!(
            palisade::crypto::bls::verify(
                &hex::decode(&pks[r.v][2..]).unwrap(),
                &root,
                &hex::decode(r.signature.trim_start_matches("0x")).unwrap(),
            )
            .unwrap(),
            "seed {seed:#x}: signature of {} does not verify",
            show(r)
        );
    }
    // Liveness: above everything released and imported, both instances still sign.
    let mut model = Model::new();
    for r in &releases {
        model.imported(r.v as u32, r.msg);
    }
    for im in &imports {
        for (v, m) in &im.records {
            model.imported(*v as u32, *m);
        }
    }
    for (v, pk) in pks.iter().enumerate() {
        let (slot, source, target) = model.maxima(v as u32);
        let source = source.unwrap_or(0);
        let target = target.map_or(source + 1, |t| t + 1);
        let (body, msg) = attestation_msg(source, target, 1);
        let (s, text) = servers[0].sign(pk, &body);
        assert_eq!(s, 200, "seed {seed:#x}: LIVENESS v{v} {msg:?} on a: {text}");
        let (body, msg) = block_msg(slot.map_or(0, |s| s + 1), 1);
        let (s, text) = servers[1].sign(pk, &body);
        assert_eq!(s, 200, "seed {seed:#x}: LIVENESS v{v} {msg:?} on b: {text}");
    }
    let imported: usize = imports.iter().map(|im| im.records.len()).sum();
    eprintln!(
        "two instances: {} requests, {} released ({} on a, {} on b), {refused} refused; \
         {} imports with {imported} records; {checked} release/import pairs checked; {:.1} s",
        THREADS as usize * PER_THREAD,
        releases.len(),
        releases.iter().filter(|r| r.instance == 0).count(),
        releases.iter().filter(|r| r.instance == 1).count(),
        imports.len(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(releases.len() + refused, THREADS as usize * PER_THREAD);
}

// ---------------------------------------------------------------------------------------
// Keymanager DELETE, then re-import of the same key

/// A DELETE keeps the key's records (it only disables it); after a re-import with its own
/// export the surround stays refused and so does the repeat at the import's watermark, and
/// after one with an older, conflicting document (3->10 without a root) every conflicting vote
/// is refused, including 5->10 itself (the root-less 3->10 stands for an unknown vote at
/// target 10); the next safe vote is signed either way.
fn keymanager_delete_then_reimport(backend: Backend) {
    let _clock = WallClock::new(&format!("keymanager_delete_then_reimport ({backend:?})"));
    let Some(KeymanagerRig {
        dir,
        db,
        server,
        token,
    }) = keymanager_rig(backend)
    else {
        return;
    };
    let (ks, pw, pk) = dev_keystore(1);
    let delete = || -> Value {
        let r = common::client()
            .delete(format!("{}/eth/v1/keystores", server.url))
            .bearer_auth(&token)
            .json(&json!({"pubkeys": [pk]}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().unwrap();
        assert_eq!(v["data"][0]["status"], "deleted", "{v}");
        v
    };

    let st = keystores_post(
        &server.url,
        &token,
        &json!({"keystores": [ks], "passwords": [pw]}),
    );
    assert_eq!(st[0].0, "imported", "{st:?}");
    first_two_steps(&server, &pk);

    // DELETE, then re-import with the DELETE's own export: the surround stays refused, and
    // so does the exact repeat of 5->10 (at the import's target watermark nothing is signed,
    // repeat or not: docs/design.md), while the next vote is signed.
    let deleted = delete();
    let export = deleted["slashing_protection"].as_str().unwrap().to_string();
    let st = keystores_post(
        &server.url,
        &token,
        &json!({"keystores": [ks], "passwords": [pw], "slashing_protection": export}),
    );
    assert_eq!(st[0].0, "imported", "re-import with its export: {st:?}");
    let (s, body) = server.sign(&pk, &attestation(GVR, 5, 10, 1));
    assert_refusal(s, &body, &|| "the repeat of 5->10 at the watermark".into());
    let (s, body) = server.sign(&pk, &attestation(GVR, 4, 11, 1));
    assert_refusal(s, &body, &|| "4->11 after DELETE and re-import".into());

    // DELETE again, re-import with an older document holding 3->10 without a root.
    delete();
    let st = keystores_post(
        &server.url,
        &token,
        &json!({"keystores": [ks], "passwords": [pw], "slashing_protection": step3_doc(&pk)}),
    );
    assert_eq!(
        st[0].0, "imported",
        "re-import with an old document: {st:?}"
    );
    for (s_e, t_e) in [(4, 11), (5, 10), (3, 10), (6, 9)] {
        let (s, body) = server.sign(&pk, &attestation(GVR, s_e, t_e, 1));
        assert_refusal(s, &body, &|| {
            format!("{s_e}->{t_e} after re-import with 3->10")
        });
    }
    let (s, body) = server.sign(&pk, &attestation(GVR, 5, 11, 1));
    assert_eq!(s, 200, "5->11 is safe and must be signed: {body}");
    let (s, body) = server.sign(&pk, &attestation(GVR, 5, 11, 1));
    assert_eq!(
        s, 200,
        "its exact repeat, above the watermarks, is signed again: {body}"
    );
    // Both votes at target 10 are kept as rows (5->10, 3->10, then 5->11). The export stands
    // for them with the watermarks' root-less record at (5, 10), which dominates 3->10.
    assert_eq!(
        common::count_records_any(&db.url),
        (0, 3),
        "rows 5->10, 3->10 and 5->11"
    );
    let exported = exported_attestations(&db.url, dir.path(), &pk);
    assert!(
        exported.contains(&(5, 10)) && exported.contains(&(5, 11)),
        "{exported:?}"
    );
}

// Every sequence runs on every registered store (two_instances_concurrent_imports_postgres
// needs a database two processes share: PostgreSQL only).
common::store_suite!(
    four_step_surround_cli,
    four_step_surround_keymanager,
    generated_sequences,
    keymanager_delete_then_reimport,
);
