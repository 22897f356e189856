//! A real validator client runs a chain through palisade (issue 15): a single-node Lodestar
//! devnet (`lodestar dev` with no local validators and a mocked execution engine), palisade
//! holding the interop validator keys as EIP-2335 keystores and serving the chain's
//! `config.yaml`, and a Lodestar validator client whose only signer is palisade.
//!
//! Phase 1: the chain finalizes and palisade answered 200 to every request, of every duty type.
//! Phase 2: a second validator client with the same keys (another graffiti, its own empty
//! slashing database) runs beside the first on the same palisade: palisade answers 412 to the
//! conflicting proposals (and attestations, when they differ), never 400 or 5xx, and the chain
//! keeps finalizing. Then the EIP-3076 export and the audit trail hold no double proposal, no
//! double vote and no surround vote.
//!
//! Lodestar 1.5.1 comes from `tests/clients/devnet` (`npm ci`, done by `scripts/test.sh`). Both
//! tests are `#[ignore]`d (minutes each, one devnet at a time): run them with
//! `cargo test --test devnet -- --ignored --nocapture --test-threads 1`.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Server, client, repo_dir};
use palisade::keys::keystore_writer::{KdfParams, encrypt_with};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Interop validators in genesis (all held by palisade).
const VALIDATORS: u64 = 16;
/// Public key of interop validator 0.
const INTEROP_PUBKEY_0: &str = "0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c";
/// The sign request types a validator client sends for its duties after Altair.
const DUTY_TYPES: [&str; 8] = [
    "BLOCK_V2",
    "RANDAO_REVEAL",
    "ATTESTATION",
    "AGGREGATION_SLOT",
    "AGGREGATE_AND_PROOF",
    "SYNC_COMMITTEE_MESSAGE",
    "SYNC_COMMITTEE_SELECTION_PROOF",
    "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF",
];

#[derive(Clone, Copy)]
struct Preset {
    name: &'static str,
    slots_per_epoch: u64,
    seconds_per_slot: u64,
}

const MAINNET: Preset = Preset {
    name: "mainnet",
    slots_per_epoch: 32,
    seconds_per_slot: 1,
};
const MINIMAL: Preset = Preset {
    name: "minimal",
    slots_per_epoch: 8,
    seconds_per_slot: 2,
};

#[test]
#[ignore = "devnet (Lodestar beacon node and validator clients through palisade, ~4 minutes): scripts/test.sh runs it"]
fn devnet_mainnet_preset() {
    run_devnet(MAINNET);
}

#[test]
#[ignore = "devnet (Lodestar beacon node and validator clients through palisade, ~3 minutes): scripts/test.sh runs it"]
fn devnet_minimal_preset() {
    run_devnet(MINIMAL);
}

// ---------------------------------------------------------------------------------------------
// Interop keys

/// BLS12-381 group order r, big-endian 64-bit limbs.
const R: [u64; 4] = [
    0x73ed_a753_299d_7d48,
    0x3339_d808_09a1_d805,
    0x53bd_a402_fffe_5bfe,
    0xffff_ffff_0000_0001,
];

fn ge(a: &[u64; 4], b: &[u64; 4]) -> bool {
    for i in 0..4 {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

fn sub(a: &mut [u64; 4], b: &[u64; 4]) {
    let mut borrow = false;
    for i in (0..4).rev() {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(borrow as u64);
        a[i] = d2;
        borrow = b1 || b2;
    }
}

/// Interop secret key `i` (big-endian): `int.from_le_bytes(sha256(i as 32 bytes LE)) mod r`,
/// as Lodestar's `interopSecretKey` and the other clients derive it.
fn interop_secret(i: u64) -> [u8; 32] {
    let mut le = [0u8; 32];
    le[..8].copy_from_slice(&i.to_le_bytes());
    let mut digest: [u8; 32] = Sha256::digest(le).into();
    digest.reverse(); // now big-endian
    let mut n = [0u64; 4];
    for (k, limb) in n.iter_mut().enumerate() {
        *limb = u64::from_be_bytes(digest[k * 8..k * 8 + 8].try_into().unwrap());
    }
    while ge(&n, &R) {
        sub(&mut n, &R);
    }
    let mut out = [0u8; 32];
    for (k, limb) in n.iter().enumerate() {
        out[k * 8..k * 8 + 8].copy_from_slice(&limb.to_be_bytes());
    }
    out
}

fn pubkey_hex(secret: &[u8; 32]) -> String {
    let sk = palisade::crypto::bls::SecretKey::from_bytes(secret).unwrap();
    format!("0x{}", hex::encode(sk.public_key()))
}

/// Writes interop keys 0..n as EIP-2335 keystores (PBKDF2 with 1,024 iterations, so start-up
/// is quick) with `<stem>.txt` passwords; returns the public keys.
fn write_interop_keystores(dir: &Path, n: u64) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let secret = interop_secret(i);
            let password = format!("interop-{i}");
            let mut salt = [0u8; 32];
            salt[..8].copy_from_slice(&i.to_le_bytes());
            let mut iv = [0u8; 16];
            iv[..8].copy_from_slice(&i.to_be_bytes());
            let ks = encrypt_with(
                &secret,
                &password,
                &KdfParams::Pbkdf2 { c: 1024, salt },
                &iv,
                "",
                &format!("interop validator {i}"),
                uuid::Uuid::from_u128(0x1500_0000 + i as u128),
            )
            .unwrap();
            std::fs::write(dir.join(format!("interop-{i}.json")), ks.to_string()).unwrap();
            std::fs::write(dir.join(format!("interop-{i}.txt")), &password).unwrap();
            pubkey_hex(&secret)
        })
        .collect()
}

#[test]
fn interop_key_zero_matches_the_known_public_key() {
    assert_eq!(pubkey_hex(&interop_secret(0)), INTEROP_PUBKEY_0);
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A child started in its own process group; the whole group is killed on drop.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command, log: &Path, cwd: &Path) -> Proc {
        let out = File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child }
    }

    fn kill(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &pgid])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Prints the tail of every log when the test panics (declared after the temporary directory
/// and before the processes, so it runs after they are killed and before the logs are deleted).
struct LogTails(Vec<PathBuf>);

impl Drop for LogTails {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for log in &self.0 {
            let Ok(text) = std::fs::read_to_string(log) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "---- last lines of {} ----",
                log.file_name().unwrap().to_string_lossy()
            );
            for l in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{l}");
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn lodestar_bin() -> PathBuf {
    let bin = repo_dir().join("tests/clients/devnet/node_modules/.bin/lodestar");
    assert!(
        bin.exists(),
        "Lodestar is not installed at {}: run scripts/test.sh (it runs `npm ci --prefix tests/clients/devnet`)",
        bin.display()
    );
    bin
}

fn lodestar() -> Command {
    let mut cmd = Command::new(lodestar_bin());
    cmd.env("NODE_NO_WARNINGS", "1");
    cmd
}

// ---------------------------------------------------------------------------------------------
// Observations

/// `palisade_signing_requests_total{chain="eth2"}` by (kind, status).
fn answers(metrics_url: &str) -> BTreeMap<(String, u16), u64> {
    let text = metrics_text(metrics_url);
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("palisade_signing_requests_total{") else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").unwrap();
        let labels = parse_labels(labels);
        if labels.get("chain").map(String::as_str) != Some("eth2") {
            continue;
        }
        let kind = labels["kind"].clone();
        let status: u16 = labels["status"].parse().unwrap();
        out.insert((kind, status), value.trim().parse::<f64>().unwrap() as u64);
    }
    out
}

fn parse_labels(s: &str) -> HashMap<String, String> {
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

fn metrics_text(metrics_url: &str) -> String {
    client()
        .get(format!("{metrics_url}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

/// (p50, p99) of the eth2 signing latency of `kind` (every kind with `None`), as the upper
/// bounds of the histogram buckets they fall in (seconds), and the number of observations.
fn latency(metrics_url: &str, kind: Option<&str>) -> (String, String, u64) {
    let text = metrics_text(metrics_url);
    let mut buckets: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("palisade_signing_request_duration_seconds_bucket{")
        else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").unwrap();
        let labels = parse_labels(labels);
        if labels.get("chain").map(String::as_str) != Some("eth2")
            || kind.is_some_and(|k| labels.get("kind").map(String::as_str) != Some(k))
        {
            continue;
        }
        let le = labels["le"].clone();
        let key = if le == "+Inf" {
            u64::MAX
        } else {
            (le.parse::<f64>().unwrap() * 1e9) as u64
        };
        let e = buckets.entry(key).or_insert((le, 0));
        e.1 += value.trim().parse::<f64>().unwrap() as u64;
    }
    let total = buckets.get(&u64::MAX).map(|b| b.1).unwrap_or(0);
    let q = |q: f64| {
        buckets
            .values()
            .find(|(_, c)| *c as f64 >= q * total as f64)
            .map(|(le, _)| format!("<= {le} s"))
            .unwrap_or_else(|| "n/a".into())
    };
    (q(0.5), q(0.99), total)
}

struct Beacon {
    url: String,
}

impl Beacon {
    fn get(&self, path: &str) -> Option<Value> {
        let r = client()
            .get(format!("{}{path}", self.url))
            .timeout(Duration::from_secs(10))
            .send()
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().ok()
    }

    fn finalized_epoch(&self) -> Option<u64> {
        let v = self.get("/eth/v1/beacon/states/head/finality_checkpoints")?;
        v["data"]["finalized"]["epoch"].as_str()?.parse().ok()
    }

    fn head_slot(&self) -> Option<u64> {
        let v = self.get("/eth/v1/beacon/headers/head")?;
        v["data"]["header"]["message"]["slot"]
            .as_str()?
            .parse()
            .ok()
    }

    /// Slots in `from..=to` with a canonical block, and the graffiti of those blocks.
    fn proposed(&self, from: u64, to: u64) -> (Vec<u64>, BTreeMap<String, u64>) {
        let mut slots = Vec::new();
        let mut graffiti = BTreeMap::new();
        for slot in from..=to {
            if let Some(b) = self.get(&format!("/eth/v2/beacon/blocks/{slot}")) {
                slots.push(slot);
                let g = b["data"]["message"]["body"]["graffiti"]
                    .as_str()
                    .unwrap_or("");
                let bytes = hex::decode(g.trim_start_matches("0x")).unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes)
                    .trim_end_matches('\0')
                    .to_string();
                *graffiti.entry(text).or_insert(0) += 1;
            }
        }
        (slots, graffiti)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn print_answers(title: &str, a: &BTreeMap<(String, u16), u64>) {
    eprintln!("{title}:");
    for ((kind, status), n) in a {
        eprintln!("    {kind:<40} {status}  {n}");
    }
}

// ---------------------------------------------------------------------------------------------
// Slashing-protection checks

/// A signed attestation (source, target, signing root) of one key.
type Vote = (u64, u64, Option<String>);

/// Panics on a double vote or a surround vote among `votes` (one key).
fn assert_no_slashable_votes(who: &str, votes: &[Vote]) {
    for (i, a) in votes.iter().enumerate() {
        for b in &votes[i + 1..] {
            if a.1 == b.1 {
                assert!(
                    a.0 == b.0 && a.2.is_some() && a.2 == b.2,
                    "{who}: double vote at target {}: {a:?} and {b:?}",
                    a.1
                );
            }
            let surrounds = |x: &Vote, y: &Vote| x.0 < y.0 && y.1 < x.1;
            assert!(
                !surrounds(a, b) && !surrounds(b, a),
                "{who}: surround vote: {a:?} and {b:?}"
            );
        }
    }
}

/// Checks the EIP-3076 export: per key, one block per slot and no slashable vote pair.
/// Returns (blocks, attestations, keys).
fn check_interchange(doc: &Value, gvr: &str) -> (usize, usize, usize) {
    assert_eq!(doc["metadata"]["interchange_format_version"], "5");
    assert_eq!(
        doc["metadata"]["genesis_validators_root"].as_str(),
        Some(gvr),
        "the export names the devnet's genesis validators root"
    );
    let (mut blocks, mut atts) = (0, 0);
    let data = doc["data"].as_array().unwrap();
    for entry in data {
        let pk = entry["pubkey"].as_str().unwrap();
        let mut slots = BTreeMap::new();
        for b in entry["signed_blocks"].as_array().unwrap() {
            let slot: u64 = b["slot"].as_str().unwrap().parse().unwrap();
            let root = b["signing_root"].as_str().map(str::to_string);
            if let Some(prev) = slots.insert(slot, root.clone()) {
                panic!("{pk}: two block records at slot {slot}: {prev:?} and {root:?}");
            }
            blocks += 1;
        }
        let votes: Vec<Vote> = entry["signed_attestations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["source_epoch"].as_str().unwrap().parse().unwrap(),
                    a["target_epoch"].as_str().unwrap().parse().unwrap(),
                    a["signing_root"].as_str().map(str::to_string),
                )
            })
            .collect();
        atts += votes.len();
        assert_no_slashable_votes(pk, &votes);
    }
    (blocks, atts, data.len())
}

/// Checks the audit trail (`palisade audit export`, JSONL): every signed block of a key at a
/// slot has one signing root, signed attestations hold no slashable pair. Returns (signed
/// blocks, refused blocks, refused attestations).
fn check_audit(jsonl: &str) -> (usize, usize, usize) {
    let mut block_roots: HashMap<(String, u64), BTreeSet<String>> = HashMap::new();
    let mut votes: HashMap<String, BTreeSet<(u64, u64, String)>> = HashMap::new();
    let (mut refused_blocks, mut refused_atts) = (0, 0);
    for line in jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let r: Value = serde_json::from_str(line).unwrap();
        if r["chain"] != "eth2" {
            continue;
        }
        let kind = r["kind"].as_str().unwrap_or("");
        let signed = r["decision"] == "signed";
        let key = r["key"].as_str().unwrap_or("").to_string();
        let root = r["signing_root"].as_str().unwrap_or("").to_string();
        match kind {
            "BLOCK" | "BLOCK_V2" if signed => {
                let slot = r["slot"].as_u64().unwrap();
                block_roots.entry((key, slot)).or_default().insert(root);
            }
            "BLOCK" | "BLOCK_V2" => refused_blocks += 1,
            "ATTESTATION" if signed => {
                let source = r["source_epoch"].as_u64().unwrap();
                let target = r["epoch"].as_u64().unwrap();
                votes.entry(key).or_default().insert((source, target, root));
            }
            "ATTESTATION" => refused_atts += 1,
            _ => {}
        }
    }
    for ((key, slot), roots) in &block_roots {
        assert_eq!(
            roots.len(),
            1,
            "audit: {key} signed {} different blocks at slot {slot}: {roots:?}",
            roots.len()
        );
    }
    for (key, v) in &votes {
        let v: Vec<Vote> = v
            .iter()
            .map(|(s, t, r)| (*s, *t, Some(r.clone())))
            .collect();
        assert_no_slashable_votes(&format!("audit {key}"), &v);
    }
    (block_roots.len(), refused_blocks, refused_atts)
}

/// After the validator clients stopped: for every key, its newest signed attestation
/// (source s, target t) from the audit trail, then a double vote (same epochs, another block
/// root) and a surrounding vote (s - 1, t + 1) at `fork` (the head state's `Fork`, JSON). Both must get
/// 412, and the record must not change. Two clients on one beacon node attest to identical
/// data (a repeat, signed again as EIP-3076 allows), so this is where conflicting
/// attestations of real chain positions meet palisade. Returns the number of 412s.
fn probe_conflicting_attestations(
    server: &Server,
    fork: &Value,
    gvr: &str,
    audit: &str,
    slots_per_epoch: u64,
) -> u64 {
    let mut newest: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in audit.lines().filter(|l| !l.trim().is_empty()) {
        let r: Value = serde_json::from_str(line).unwrap();
        if r["chain"] == "eth2" && r["kind"] == "ATTESTATION" && r["decision"] == "signed" {
            let t = r["epoch"].as_u64().unwrap();
            let s = r["source_epoch"].as_u64().unwrap();
            let e = newest
                .entry(r["key"].as_str().unwrap().to_string())
                .or_insert((s, t));
            if t > e.1 {
                *e = (s, t);
            }
        }
    }
    assert_eq!(newest.len() as u64, VALIDATORS, "every key attested");
    let root = |b: u8| format!("0x{}", hex::encode([b; 32]));
    let body = |source: u64, target: u64| {
        serde_json::json!({
            "type": "ATTESTATION",
            "fork_info": {"fork": fork, "genesis_validators_root": gvr},
            "attestation": {
                "slot": (target * slots_per_epoch).to_string(), "index": "0", "beacon_block_root": root(0xee),
                "source": {"epoch": source.to_string(), "root": root(0xaa)},
                "target": {"epoch": target.to_string(), "root": root(0xbb)},
            }
        })
    };
    let mut refused = 0;
    for (key, (s, t)) in &newest {
        let key = format!("0x{}", key.trim_start_matches("0x"));
        let (status, text) = server.sign(&key, &body(*s, *t));
        assert_eq!(status, 412, "double vote at target {t} for {key}: {text}");
        refused += 1;
        if *s > 0 {
            let (status, text) = server.sign(&key, &body(s - 1, t + 1));
            assert_eq!(
                status,
                412,
                "vote ({}, {}) surrounding ({s}, {t}) for {key}: {text}",
                s - 1,
                t + 1
            );
            refused += 1;
        }
    }
    refused
}

// ---------------------------------------------------------------------------------------------
// The run

fn wait_until<T>(
    what: &str,
    deadline: Instant,
    procs: &mut [&mut Proc],
    mut f: impl FnMut() -> Option<T>,
) -> T {
    loop {
        if let Some(v) = f() {
            return v;
        }
        for p in procs.iter_mut() {
            p.assert_running();
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn run_devnet(preset: Preset) {
    let started = Instant::now();
    lodestar_bin();
    let palisade_bin = env!("CARGO_BIN_EXE_palisade");
    let tmp = tempfile::TempDir::new().unwrap();
    let t = tmp.path();
    let logs = LogTails(vec![
        t.join("beacon.log"),
        t.join("vc1.log"),
        t.join("vc2.log"),
    ]);
    let epoch_secs = preset.slots_per_epoch * preset.seconds_per_slot;

    // The chain's config: Altair at genesis, Bellatrix at 1, Capella at 2 (pre-merge, the
    // execution engine mocked), Deneb (EIP-4844 in Lodestar 1.5.1) never.
    std::fs::write(
        t.join("params.yaml"),
        format!(
            "PRESET_BASE: {preset}\nCONFIG_NAME: palisade-devnet-{preset}\n\
             MIN_GENESIS_ACTIVE_VALIDATOR_COUNT: {VALIDATORS}\n\
             GENESIS_FORK_VERSION: 0x00001020\n\
             ALTAIR_FORK_VERSION: 0x01001020\nALTAIR_FORK_EPOCH: 0\n\
             BELLATRIX_FORK_VERSION: 0x02001020\nBELLATRIX_FORK_EPOCH: 1\n\
             CAPELLA_FORK_VERSION: 0x03001020\nCAPELLA_FORK_EPOCH: 2\n\
             EIP4844_FORK_VERSION: 0x04001020\nEIP4844_FORK_EPOCH: 18446744073709551615\n\
             SECONDS_PER_SLOT: {}\n",
            preset.seconds_per_slot,
            preset = preset.name,
        ),
    )
    .unwrap();
    // Lodestar writes the complete config.yaml it runs with; palisade and both validator
    // clients read that file.
    let out = lodestar()
        .current_dir(t)
        .args(["dev", "--preset", preset.name, "--paramsFile"])
        .arg(t.join("params.yaml"))
        .args(["--genesisValidators", &VALIDATORS.to_string()])
        .arg("--dumpTestnetFiles")
        .arg(t.join("testnet"))
        .output()
        .expect("run lodestar dev --dumpTestnetFiles");
    assert!(
        out.status.success(),
        "lodestar dev --dumpTestnetFiles failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let config = t.join("testnet/config.yaml");
    let config_text = std::fs::read_to_string(&config).unwrap();
    assert!(
        config_text.contains(&format!("PRESET_BASE: {}", preset.name)),
        "{config_text}"
    );

    // palisade with the interop keys as keystores.
    assert_eq!(pubkey_hex(&interop_secret(0)), INTEROP_PUBKEY_0);
    let pubkeys = write_interop_keystores(&t.join("keystores"), VALIDATORS);
    let palisade_data = t.join("palisade-data");
    std::fs::create_dir_all(&palisade_data).unwrap();
    let server = Server::start(
        &palisade_data,
        &[
            "--network",
            config.to_str().unwrap(),
            "--keystores-path",
            t.join("keystores").to_str().unwrap(),
            "--metrics-enabled",
            "--metrics-port",
            "0",
        ],
    );
    let metrics_url = server.metrics_url();
    let (status, body) = server.get("/api/v1/eth2/publicKeys");
    assert_eq!(status, 200, "{body}");
    let served: BTreeSet<String> = serde_json::from_str(&body).unwrap();
    assert_eq!(
        served,
        pubkeys.iter().cloned().collect(),
        "palisade serves the interop keys"
    );

    // The beacon node: dev mode, no local validators, no discovery, a mocked engine.
    let rest_port = free_port();
    let p2p_port = free_port();
    let beacon = Beacon {
        url: format!("http://127.0.0.1:{rest_port}"),
    };
    let genesis_time = now_secs() + 20;
    let bn_dir = t.join("beacon");
    std::fs::create_dir_all(&bn_dir).unwrap();
    let mut cmd = lodestar();
    cmd.args(["dev", "--preset", preset.name, "--paramsFile"])
        .arg(&config)
        .args(["--genesisValidators", &VALIDATORS.to_string()])
        .args(["--genesisTime", &genesis_time.to_string()])
        .arg("--dataDir")
        .arg(bn_dir.join("data"))
        .args([
            "--rest.address",
            "127.0.0.1",
            "--rest.port",
            &rest_port.to_string(),
        ])
        .args([
            "--listenAddress",
            "127.0.0.1",
            "--port",
            &p2p_port.to_string(),
        ])
        .args([
            "--discv5",
            "false",
            "--network.connectToDiscv5Bootnodes",
            "false",
        ])
        .args([
            "--execution.engineMock",
            "--eth1",
            "false",
            "--metrics",
            "false",
        ])
        .args(["--logLevel", "info"]);
    let mut bn = Proc::spawn("beacon node", cmd, &t.join("beacon.log"), &bn_dir);
    let genesis = wait_until(
        "the beacon node's REST API",
        Instant::now() + Duration::from_secs(90),
        &mut [&mut bn],
        || beacon.get("/eth/v1/beacon/genesis"),
    );
    let gvr = genesis["data"]["genesis_validators_root"]
        .as_str()
        .unwrap()
        .to_string();

    let validator = |n: u32, graffiti: &str| -> Proc {
        let dir = t.join(format!("vc{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = lodestar();
        cmd.args(["validator", "--preset", preset.name, "--network", "dev"])
            .arg("--paramsFile")
            .arg(&config)
            .arg("--dataDir")
            .arg(dir.join("data"))
            .args(["--beaconNodes", &beacon.url])
            .args([
                "--externalSigner.url",
                &server.url,
                "--externalSigner.fetch",
            ])
            .args([
                "--graffiti",
                graffiti,
                "--metrics",
                "false",
                "--logLevel",
                "info",
            ]);
        Proc::spawn(
            if n == 1 {
                "validator client 1"
            } else {
                "validator client 2"
            },
            cmd,
            &t.join(format!("vc{n}.log")),
            &dir,
        )
    };
    let mut vc1 = validator(1, "palisade-devnet-vc1");

    // Phase 1: finality (epoch 2 is the first finalized epoch, at the start of epoch 4).
    let phase1_deadline = Instant::now()
        + Duration::from_secs(genesis_time.saturating_sub(now_secs()) + 7 * epoch_secs + 30);
    let finalized1 = wait_until(
        "the first finalized epoch",
        phase1_deadline,
        &mut [&mut bn, &mut vc1],
        || beacon.finalized_epoch().filter(|e| *e >= 2),
    );
    let phase1_slot = beacon.head_slot().unwrap();
    let phase1 = answers(&metrics_url);
    let (p50_1, p99_1, n1) = latency(&metrics_url, None);
    print_answers(
        &format!(
            "[devnet {}] phase 1: finalized epoch {finalized1} at slot {phase1_slot}; palisade answers",
            preset.name
        ),
        &phase1,
    );
    let not_200: Vec<_> = phase1.iter().filter(|((_, s), _)| *s != 200).collect();
    assert!(
        not_200.is_empty(),
        "phase 1: palisade answered other than 200: {not_200:?}"
    );
    for kind in DUTY_TYPES {
        assert!(
            phase1.get(&(kind.to_string(), 200)).copied().unwrap_or(0) > 0,
            "phase 1: no {kind} signed by palisade: {phase1:?}"
        );
    }

    // Phase 2: a second validator client with the same keys, its own empty slashing database.
    let mut vc2 = validator(2, "palisade-devnet-vc2");
    let phase2_deadline = Instant::now() + Duration::from_secs(3 * epoch_secs + 60);
    let blocks_412 = |a: &BTreeMap<(String, u16), u64>| {
        a.get(&("BLOCK_V2".to_string(), 412)).copied().unwrap_or(0)
    };
    let finalized2 = wait_until(
        "finality to advance and a refused proposal with two validator clients",
        phase2_deadline,
        &mut [&mut bn, &mut vc1, &mut vc2],
        || {
            let f = beacon.finalized_epoch()?;
            (f > finalized1 && blocks_412(&answers(&metrics_url)) > 0).then_some(f)
        },
    );
    let end_slot = beacon.head_slot().unwrap();
    let all = answers(&metrics_url);
    let (p50, p99, n) = latency(&metrics_url, None);
    let (proposed1, graffiti1) = beacon.proposed(1, phase1_slot);
    let (proposed2, graffiti2) = beacon.proposed(phase1_slot + 1, end_slot);
    let fork = beacon
        .get("/eth/v1/beacon/states/head/fork")
        .expect("the head state's fork")["data"]
        .clone();
    vc2.kill();
    vc1.kill();
    bn.kill();
    let per_kind: Vec<String> = DUTY_TYPES
        .iter()
        .map(|k| {
            let (p50, p99, n) = latency(&metrics_url, Some(k));
            format!("{k} p50 {p50}, p99 {p99} ({n})")
        })
        .collect();

    print_answers(
        &format!(
            "[devnet {}] phase 2: finalized epoch {finalized2} at slot {end_slot}; palisade answers (whole run)",
            preset.name
        ),
        &all,
    );
    let bad: Vec<_> = all
        .iter()
        .filter(|((_, s), _)| *s != 200 && *s != 412)
        .collect();
    assert!(
        bad.is_empty(),
        "palisade answered other than 200 or 412: {bad:?}"
    );
    assert!(blocks_412(&all) > 0, "no conflicting proposal refused");

    // The audit trail (read while palisade runs), then the conflicting-attestation probes,
    // then the EIP-3076 export after palisade stopped.
    let db_url = server.db_url();
    let audit_export = || {
        let out = Command::new(palisade_bin)
            .args(["audit", "export", "--since", "1days", "--format", "jsonl"])
            .args(["--slashing-protection-db-url", &db_url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "audit export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let audit = audit_export();
    let signed_votes: BTreeSet<(String, u64, u64)> = audit
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "ATTESTATION" && r["decision"] == "signed")
        .map(|r| {
            let n = |f: &str| r[f].as_u64().unwrap();
            (
                r["key"].as_str().unwrap().to_string(),
                n("source_epoch"),
                n("epoch"),
            )
        })
        .collect();
    let probes_412 =
        probe_conflicting_attestations(&server, &fork, &gvr, &audit, preset.slots_per_epoch);
    let probes_seen = answers(&metrics_url)
        .get(&("ATTESTATION".to_string(), 412))
        .copied()
        .unwrap_or(0)
        - all
            .get(&("ATTESTATION".to_string(), 412))
            .copied()
            .unwrap_or(0);
    assert_eq!(
        probes_seen, probes_412,
        "the metrics count every probe refusal"
    );
    server.stop();
    let export = t.join("interchange.json");
    let out = Command::new(palisade_bin)
        .args(["slashing-protection", "export", "--to"])
        .arg(&export)
        .args(["--slashing-protection-db-url", &db_url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let (ex_blocks, ex_atts, ex_keys) = check_interchange(&doc, &gvr);
    assert_eq!(ex_keys as u64, VALIDATORS, "every validator has records");
    assert_eq!(
        ex_atts,
        signed_votes.len(),
        "the export holds exactly the attestations signed before the probes (a refusal records nothing)"
    );
    let audit = audit_export();
    let (audit_blocks, audit_refused_blocks, audit_refused_atts) = check_audit(&audit);
    assert!(
        audit_refused_blocks > 0,
        "the audit trail holds the refusals"
    );
    assert!(
        audit_blocks >= proposed1.len() + proposed2.len(),
        "every canonical block was signed by palisade ({audit_blocks} signed, {} canonical)",
        proposed1.len() + proposed2.len()
    );

    let count = |a: &BTreeMap<(String, u16), u64>, s: u16| -> u64 {
        a.iter()
            .filter(|((_, st), _)| *st == s)
            .map(|(_, n)| n)
            .sum()
    };
    eprintln!(
        "[devnet {p}] figures: preset {p}, {VALIDATORS} validators, {sps} s slots, {spe} slots per epoch\n\
         \x20   phase 1 (one validator client): finalized epoch {finalized1} at slot {phase1_slot}; \
         slots proposed {pr1} / missed {m1}; graffiti {graffiti1:?}; \
         {a1} answers, all 200; latency p50 {p50_1}, p99 {p99_1} ({n1} requests)\n\
         \x20   phase 2 (two validator clients): finalized epoch {finalized2} at slot {end_slot}; \
         slots proposed {pr2} / missed {m2}; graffiti {graffiti2:?}; \
         200: {ok}, 412: {refused} (blocks {b412}, attestations {a412}); \
         conflicting attestations sent after the clients stopped: {probes_412}, all 412\n\
         \x20   whole run latency p50 {p50}, p99 {p99} ({n} requests); by type: {per_kind}\n\
         \x20   export: {ex_keys} keys, {ex_blocks} blocks, {ex_atts} attestations, no double or surround vote; \
         audit: {audit_blocks} (key, slot) blocks each with one root, {audit_refused_blocks} refused blocks, \
         {audit_refused_atts} refused attestations\n\
         \x20   wall time {wall:.0} s",
        p = preset.name,
        sps = preset.seconds_per_slot,
        spe = preset.slots_per_epoch,
        pr1 = proposed1.len(),
        m1 = phase1_slot as usize - proposed1.len(),
        a1 = count(&phase1, 200),
        pr2 = proposed2.len(),
        m2 = (end_slot - phase1_slot) as usize - proposed2.len(),
        ok = count(&all, 200),
        refused = count(&all, 412),
        b412 = blocks_412(&all),
        a412 = all
            .get(&("ATTESTATION".to_string(), 412))
            .copied()
            .unwrap_or(0),
        per_kind = per_kind.join("; "),
        wall = started.elapsed().as_secs_f64(),
    );
    drop(logs);
}
