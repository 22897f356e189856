//! The Tezos API checked by an implementation that is not ours: Taquito (npm, pinned in
//! `tests/clients/package.json`). `@taquito/remote-signer`'s `RemoteSigner` signs through the
//! running server and verifies every signature itself; `@taquito/signer`/`@taquito/utils`
//! verify tz4 signatures and proofs of possession and decode (and decrypt) our keys.
//!
//! Needs `npm ci` in tests/clients (scripts/test.sh does it); fails, never skips, without it.

mod common;

use std::path::Path;

use common::{Server, taquito, vector};
use palisade::crypto::tezos::{Curve, SecretKey};
use serde_json::{Value, json};

fn write_key(dir: &Path, name: &str, secret_key: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.yaml")),
        format!(
            "type: tezos-secret\nsecretKey: \"unencrypted:{secret_key}\"\npolicy:\n  allow: [block, preattestation, attestation, generic]\n  provePossession: true\n"
        ),
    )
    .unwrap();
}

fn vectors() -> Vec<Value> {
    vector("tezos/vectors.json")["vectors"]
        .as_array()
        .unwrap()
        .clone()
}

fn start(dir: &Path) -> Server {
    let keys = dir.join("keys");
    Server::start(
        dir,
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--tezos-http-listen-port",
            "0",
        ],
    )
}

#[test]
fn taquito_remote_signer_signs_through_palisade() {
    let dir = tempfile::tempdir().unwrap();
    let vs = vectors();
    for (i, v) in vs.iter().enumerate() {
        write_key(
            &dir.path().join("keys"),
            &format!("k{i}"),
            v["secret_key"].as_str().unwrap(),
        );
    }
    let server = start(dir.path());
    let keys: Vec<Value> = vs
        .iter()
        .map(|v| json!({ "pkh": v["public_key_hash"] }))
        .collect();
    const COUNT: usize = 20;
    let out = taquito(
        "remote",
        &json!({
            "url": server.tezos_url(),
            "keys": keys,
            "count": COUNT,
            "start_level": 1000,
            "check_watermark": true,
        }),
    );
    assert_eq!(out["ok"], true, "{out}");
    assert!(
        out["signed"].as_u64().unwrap() >= (COUNT * vs.len()) as u64,
        "{out}"
    );
    for v in &vs {
        let pkh = v["public_key_hash"].as_str().unwrap();
        let per_key = &out["per_key"][pkh];
        assert_eq!(per_key["public_key"], v["public_key"], "{pkh}: {per_key}");
        assert!(per_key["signed"].as_u64().unwrap() >= COUNT as u64, "{pkh}");
        if !pkh.starts_with("tz4") {
            assert_eq!(
                per_key["remote_signer"], true,
                "{pkh}: RemoteSigner itself verified the signatures: {per_key}"
            );
        }
    }
}

#[test]
fn taquito_verifies_tz4_signatures_and_proof_of_possession() {
    let dir = tempfile::tempdir().unwrap();
    let v = vectors()
        .into_iter()
        .find(|v| v["public_key_hash"].as_str().unwrap().starts_with("tz4"))
        .unwrap();
    write_key(
        &dir.path().join("keys"),
        "tz4",
        v["secret_key"].as_str().unwrap(),
    );
    let server = start(dir.path());
    let out = taquito(
        "tz4",
        &json!({
            "url": server.tezos_url(),
            "pkh": v["public_key_hash"],
            "secret_key": v["secret_key"],
            "count": 10,
            "start_level": 500,
            "check_watermark": true,
        }),
    );
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["signed"], 10, "{out}");
    assert_eq!(out["matches_in_memory_signer"], true, "{out}");
    assert_eq!(
        out["proof_of_possession"], v["expected_proof_of_possession"],
        "{out}"
    );
}

#[test]
fn taquito_decodes_and_decrypts_our_keys() {
    // Freshly generated keys of every curve, plus the vector keys.
    let mut secrets: Vec<SecretKey> = [Curve::Ed25519, Curve::Secp256k1, Curve::P256, Curve::Bls]
        .into_iter()
        .map(SecretKey::generate)
        .collect();
    for v in vectors() {
        secrets.push(SecretKey::from_b58(v["secret_key"].as_str().unwrap()).unwrap());
    }
    let encoded: Vec<String> = secrets.iter().map(|s| s.to_b58().to_string()).collect();
    let out = taquito("keys", &json!({ "secret_keys": encoded }));
    let listed = out.as_array().expect("a list");
    assert_eq!(listed.len(), secrets.len());
    for (s, t) in secrets.iter().zip(listed) {
        let pk = s.public_key();
        assert_eq!(t["public_key"], pk.to_b58(), "{}", pk.curve());
        assert_eq!(t["pkh"], pk.pkh_b58());
    }
    // octez's encrypted format, written by us, opened by Taquito.
    for (i, s) in secrets.iter().enumerate() {
        let passphrase = format!("pass phrase {i} ✓");
        let encrypted = s.to_encrypted_b58(passphrase.as_bytes(), [i as u8; 8]);
        let out = taquito(
            "decrypt",
            &json!({ "secret_key": encrypted, "passphrase": passphrase }),
        );
        assert_eq!(out["pkh"], s.public_key().pkh_b58(), "{}", s.curve());
        // And by palisade, as a key config would.
        let back = SecretKey::from_encrypted_b58(&encrypted, passphrase.as_bytes()).unwrap();
        assert_eq!(back.public_key(), s.public_key());
    }
}
