//! Every operation kind palisade decodes since it decodes every operation of protocol 025
//! (PsUshuai), through the real binary: a key whose `policy.operations` names the kind signs
//! it (200), a key whose policy does not name it refuses it (403, naming the kind). Bytes are
//! forged by Taquito's local forger (`tests/clients/tezos_forge.mjs`, `@taquito/local-forging`
//! 24.2.0) where it supports the kind, and built from the octez layouts otherwise
//! (`src/proto_025_PsUshuai/lib_protocol/operation_repr.ml` and the files named below, octez
//! commit d26a8bef82159434e5a6db6a6d329f29dc8172dd).
//!
//! Also: an unknown future operation tag is refused by default and signed when the policy
//! names `unknown`, and in both cases the same key still signs a block and an attestation
//! right after it (consensus signing does not depend on the operation decoder). One palisade
//! process serves every case.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, repo_dir, tezos_attestation as attestation, tezos_block, vector};
use palisade::chain::tezos::operations::OperationKind;
use serde_json::Value;

const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

/// Writes a `tezos-secret` key config with `policy` (YAML lines) under `dir`.
fn write_tezos_key(dir: &Path, name: &str, secret_key: &str, policy: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let mut yaml =
        format!("type: tezos-secret\nsecretKey: \"unencrypted:{secret_key}\"\npolicy:\n");
    for line in policy.lines() {
        yaml.push_str(&format!("  {line}\n"));
    }
    std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
}

/// Runs `node tests/clients/tezos_forge.mjs` (Taquito must be installed: `npm ci` in
/// tests/clients) and checks that its output is still the recorded vector.
fn taquito_forged() -> Vec<Value> {
    let dir = repo_dir().join("tests/clients");
    assert!(
        dir.join("node_modules/@taquito/local-forging").exists(),
        "Taquito's local forger is not installed: run `npm ci` in tests/clients (scripts/test.sh does)"
    );
    let out = Command::new("node")
        .arg(dir.join("tezos_forge.mjs"))
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "tezos_forge.mjs failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let live: Value = serde_json::from_slice(&out.stdout).unwrap();
    let recorded = vector("tezos-operations/taquito_forged.json");
    assert_eq!(
        live, recorded,
        "Taquito's output differs from tests/vectors/tezos-operations/taquito_forged.json"
    );
    live["forged"].as_array().unwrap().clone()
}

/// A generic request (magic 0x03, branch 0x44…) of `contents`, as hex.
fn generic(contents: &[u8]) -> String {
    let mut b = vec![0x03];
    b.extend_from_slice(&[0x44; 32]);
    b.extend_from_slice(contents);
    hex::encode(b)
}

/// A manager operation header: `tag source(tz1 0x11…) fee counter gas storage`.
fn manager(tag: u8) -> Vec<u8> {
    let mut m = vec![tag, 0];
    m.extend_from_slice(&[0x11; 20]);
    m.extend_from_slice(&[0xe8, 0x07, 0x14, 0x90, 0x4e, 0xac, 0x02]);
    m
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `(label, kind, contents)` built from the octez layouts, for the kinds Taquito cannot forge
/// and for a signed-zarith amount Taquito forges wrongly.
fn hand_built() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let tz2: &[u8] = &[&[1u8][..], &[0x22; 20]].concat();
    let tz1: &[u8] = &[&[0u8][..], &[0x11; 20]].concat();
    let len = |n: usize| (n as u32).to_be_bytes();
    // An inlined attestation (branch, tag 21, slot, level, round, payload hash, signature),
    // taken whole by its dynamic_size length.
    let inlined = cat(&[
        &[0x22; 32],
        &[21, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0],
        &[0x33; 32],
        &[0x44; 64],
    ]);
    vec![
        (
            "smart_rollup_cement: rollup(20)",
            "smart_rollup_cement",
            cat(&[&manager(202), &[0xbb; 20]]),
        ),
        (
            // sc_rollup_commitment_repr.ml: state(32) inbox_level int32 predecessor(32) ticks int64.
            "smart_rollup_publish",
            "smart_rollup_publish",
            cat(&[
                &manager(203),
                &[0xbb; 20],
                &[0xee; 32],
                &7u32.to_be_bytes(),
                &[0xcc; 32],
                &1u64.to_be_bytes(),
            ]),
        ),
        (
            // sc_rollup_game_repr.ml refutation_encoding: 0 start, two commitment hashes.
            "smart_rollup_refute/start",
            "smart_rollup_refute",
            cat(&[
                &manager(204),
                &[0xbb; 20],
                tz2,
                &[0],
                &[0xcc; 32],
                &[0xcd; 32],
            ]),
        ),
        (
            // 1 move: choice tick (n), step 1 proof: pvm_step bytes, input proof 1 reveal,
            // 2 dal page (sc_rollup_proof_repr.ml; dal_slot_repr.ml Page.encoding).
            "smart_rollup_refute/move+dal_page_proof",
            "smart_rollup_refute",
            cat(&[
                &manager(204),
                &[0xbb; 20],
                tz2,
                &[1, 0xe8, 0x07, 1],
                &len(3),
                &[9, 9, 9],
                &[0xff, 1, 2],
                &10u32.to_be_bytes(),
                &[4, 0, 5],
                &len(2),
                &[7, 7],
            ]),
        ),
        (
            "smart_rollup_timeout: rollup alice bob",
            "smart_rollup_timeout",
            cat(&[&manager(205), &[0xbb; 20], tz1, tz2]),
        ),
        (
            "smart_rollup_recover_bond: rollup staker",
            "smart_rollup_recover_bond",
            cat(&[&manager(207), &[0xbb; 20], tz1]),
        ),
        (
            // Data_encoding.z: 100 is a4 01 (Taquito forges 64, which octez reads as -36).
            "increase_paid_storage/100",
            "increase_paid_storage",
            cat(&[&manager(113), &[0xa4, 0x01, 0x01], &[0x55; 20], &[0]]),
        ),
        (
            // seed_repr.ml vdf_solution_encoding: two 100-byte forms.
            "vdf_revelation",
            "vdf_revelation",
            cat(&[&[8], &[1; 100], &[2; 100]]),
        ),
        (
            "double_consensus_operation_evidence: slot op1 op2",
            "double_consensus_operation_evidence",
            cat(&[
                &[2, 0, 1],
                &len(inlined.len()),
                &inlined,
                &len(inlined.len()),
                &inlined,
            ]),
        ),
        (
            "double_baking_evidence: bh1 bh2",
            "double_baking_evidence",
            cat(&[&[3], &len(3), &[1, 2, 3], &len(3), &[4, 5, 6]]),
        ),
        (
            // dal_slot_repr.ml Shard_with_proof; cryptobox.ml shard (int31, 32-byte scalars), proof(48).
            "dal_entrapment_evidence",
            "dal_entrapment_evidence",
            cat(&[
                &[24],
                &len(inlined.len()),
                &inlined,
                &[0, 1, 3, 0xff, 2],
                &5u32.to_be_bytes(),
                &len(64),
                &[0x61; 64],
                &[0x62; 48],
            ]),
        ),
    ]
}

/// The kinds a key must name since palisade decodes every operation.
fn new_kinds() -> Vec<&'static str> {
    OperationKind::ALL
        .iter()
        .filter(|k| !OperationKind::DEFAULT.contains(k) && **k != OperationKind::Unknown)
        .map(|k| k.as_str())
        .collect()
}

fn message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    v[0]["msg"].as_str().unwrap_or(body).to_string()
}

#[test]
fn every_operation_kind_is_signed_only_when_named() {
    let forged = taquito_forged();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let vs = vector("tezos/vectors.json")["vectors"]
        .as_array()
        .unwrap()
        .clone();
    let consensus = "allow: [generic, block, preattestation, attestation]";
    write_tezos_key(
        &keys,
        "named",
        vs[0]["secret_key"].as_str().unwrap(),
        &format!("{consensus}\noperations: [{}]", new_kinds().join(", ")),
    );
    write_tezos_key(
        &keys,
        "unnamed",
        vs[2]["secret_key"].as_str().unwrap(),
        consensus,
    );
    write_tezos_key(
        &keys,
        "optin",
        vs[4]["secret_key"].as_str().unwrap(),
        &format!("{consensus}\noperations: [transaction, unknown]"),
    );
    let named = vs[0]["public_key_hash"].as_str().unwrap();
    let unnamed = vs[2]["public_key_hash"].as_str().unwrap();
    let optin = vs[4]["public_key_hash"].as_str().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let server = Server::start(
        dir.path(),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--slashing-protection-db-url",
            &db,
            "--tezos-http-listen-port",
            "0",
        ],
    );

    let mut cases: Vec<(String, String, String)> = Vec::new(); // (label, kind, request hex)
    for f in &forged {
        let kind = f["kind"].as_str().unwrap();
        if OperationKind::DEFAULT.iter().any(|k| k.as_str() == kind) {
            continue; // the tz4 reveal: a default kind, checked below
        }
        let label = format!("taquito {}", f["label"].as_str().unwrap());
        cases.push((
            label,
            kind.into(),
            format!("03{}", f["forged_hex"].as_str().unwrap()),
        ));
    }
    for (label, kind, contents) in hand_built() {
        cases.push((
            format!("octez layout {label}"),
            kind.into(),
            generic(&contents),
        ));
    }
    // Every new kind is covered.
    for k in new_kinds() {
        assert!(
            cases.iter().any(|(_, kind, _)| kind == k),
            "no case for {k}"
        );
    }
    for (label, kind, bytes) in &cases {
        let (status, body) = server.tezos_sign(named, bytes, "");
        assert_eq!(status, 200, "{label}: named key: {body}");
        let (status, body) = server.tezos_sign(unnamed, bytes, "");
        assert_eq!(status, 403, "{label}: unnamed key: {body}");
        let msg = message(&body);
        assert!(
            msg.contains(&format!("does not allow {kind} operations")),
            "{label}: {msg}"
        );
        let (status, body) = server.tezos_sign(optin, bytes, "");
        assert_eq!(status, 403, "{label}: opt-in key: {body}");
    }
    // A tz4 reveal with its proof (Taquito): a default kind, signed without naming it.
    let reveal = forged
        .iter()
        .find(|f| f["label"] == "reveal/tz4+proof")
        .unwrap();
    let reveal = format!("03{}", reveal["forged_hex"].as_str().unwrap());
    let (status, body) = server.tezos_sign(unnamed, &reveal, "");
    assert_eq!(status, 200, "tz4 reveal by default: {body}");
    let (status, body) = server.tezos_sign(named, &reveal, "");
    assert_eq!(status, 403, "tz4 reveal not named: {body}");

    // An unknown future tag (0x60 is unassigned), after a transaction.
    let mut transfer = manager(108);
    transfer.extend_from_slice(&[0x01, 0x00, 0x00]);
    transfer.extend_from_slice(&[0x11; 20]);
    transfer.push(0x00);
    let unknown = generic(&cat(&[&transfer, &[0x60, 0xde, 0xad, 0xbe, 0xef]]));
    for (pkh, want) in [(unnamed, 403), (named, 403), (optin, 200)] {
        let (status, body) = server.tezos_sign(pkh, &unknown, "");
        assert_eq!(status, want, "unknown tag for {pkh}: {body}");
        if want == 403 {
            let msg = message(&body);
            assert!(msg.contains("0x60") && msg.contains("`unknown`"), "{msg}");
        }
        // Consensus signing right after it is unaffected.
        let (status, body) = server.tezos_sign(pkh, &tezos_block(MAINNET, 10, 0, 1), "");
        assert_eq!(status, 200, "block after the unknown tag for {pkh}: {body}");
        let (status, body) = server.tezos_sign(pkh, &attestation(MAINNET, 10, 0, 1), "");
        assert_eq!(
            status, 200,
            "attestation after the unknown tag for {pkh}: {body}"
        );
    }
    // A consensus operation inside a generic request stays refused, even for the opt-in key.
    let mut inside = vec![21, 0, 1, 0, 0, 0, 11, 0, 0, 0, 0];
    inside.extend_from_slice(&[0x33; 32]);
    let (status, body) = server.tezos_sign(optin, &generic(&inside), "");
    assert_eq!(status, 403, "attestation inside a generic request: {body}");
    assert!(message(&body).contains("consensus"), "{body}");
    server.stop();
}
