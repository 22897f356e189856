//! Checks against implementations that are not ours:
//! - Lodestar's SSZ types + @chainsafe/blst (Node) build random requests of every type,
//!   compute the signing roots themselves and verify palisade's signatures;
//! - keystores made by `ethstaker-deposit` (the tool stakers use) load and sign, and py_ecc
//!   verifies the signatures.
//!
//! Both need the client packages installed by `scripts/test.sh` (npm ci in tests/clients,
//! a Python venv in tests/clients/python/.venv). They fail, never skip, when missing.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Server, python, repo_dir, signature_of, write_raw_key};

fn clients_dir() -> PathBuf {
    repo_dir().join("tests/clients")
}

fn require(path: &std::path::Path, hint: &str) {
    assert!(path.exists(), "{} is missing: {hint}", path.display());
}

#[test]
fn lodestar_and_blst_verify_random_requests_of_every_type() {
    require(
        &clients_dir().join("node_modules/@lodestar/types"),
        "run `npm ci` in tests/clients (scripts/test.sh does)",
    );
    let script = clients_dir().join("eth2_random.mjs");

    // The script's own root code against the published examples first.
    let out = Command::new("node")
        .arg(&script)
        .arg("--self-check")
        .arg(common::vectors_dir().join("eth2-signing/web3signer_openapi_examples.json"))
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "self-check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    random_requests_verify("mainnet", &[], &["--count", "260", "--seed", "7"], 200);
}

/// The minimal preset on palisade's built-in `minimal` network: Lodestar's minimal-preset
/// SSZ types (`LODESTAR_PRESET=minimal`: 32-member sync committees, 4 committees per slot)
/// compute every root, with every fork scheduled (Altair at epoch 4, then one every 4).
#[test]
fn lodestar_minimal_preset_verifies_random_requests_of_every_type() {
    require_clients();
    random_requests_verify(
        "minimal",
        &[("LODESTAR_PRESET", "minimal")],
        &["--count", "260", "--seed", "11"],
        200,
    );
}

/// A custom `config.yaml` whose `PRESET_BASE` is `minimal` and whose fork versions are its
/// own (last byte 0x42), written by the independent client from its schedule.
#[test]
fn lodestar_minimal_preset_custom_config_verifies_random_requests() {
    require_clients();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let out = Command::new("node")
        .arg(clients_dir().join("eth2_random.mjs"))
        .env("LODESTAR_PRESET", "minimal")
        .args([
            "--fork-epoch-step",
            "3",
            "--fork-version-tag",
            "42",
            "--write-config",
        ])
        .arg(&config)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = std::fs::read_to_string(&config).unwrap();
    assert!(yaml.contains("PRESET_BASE: 'minimal'"), "{yaml}");
    random_requests_verify(
        config.to_str().unwrap(),
        &[("LODESTAR_PRESET", "minimal")],
        &[
            "--count",
            "260",
            "--seed",
            "13",
            "--fork-epoch-step",
            "3",
            "--fork-version-tag",
            "42",
        ],
        200,
    );
}

fn require_clients() {
    require(
        &clients_dir().join("node_modules/@lodestar/types"),
        "run `npm ci` in tests/clients (scripts/test.sh does)",
    );
}

/// Starts palisade on `network` with four keys, runs the independent client against it
/// with `env` and `args`, and asserts that at least `min_passed` requests verified and none
/// failed.
fn random_requests_verify(network: &str, env: &[(&str, &str)], args: &[&str], min_passed: usize) {
    let script = clients_dir().join("eth2_random.mjs");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    for i in 0..4 {
        write_raw_key(&keys, &format!("k{i}"), &common::test_secret(100 + i));
    }
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--network",
            network,
            "--key-config-path",
            keys.to_str().unwrap(),
        ],
    );
    let out = Command::new("node")
        .arg(&script)
        .envs(env.iter().copied())
        .args(["--url", &server.url])
        .args(args)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "independent client failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains("passed"))
        .unwrap_or_default();
    let passed: usize = summary
        .split_whitespace()
        .zip(summary.split_whitespace().skip(1))
        .find(|(_, w)| w.starts_with("passed"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= min_passed,
        "at least {min_passed} requests verified, got: {summary}"
    );
    assert!(summary.contains(" 0 failed"), "{summary}");
}

#[test]
fn ethstaker_deposit_keystores_load_and_sign() {
    let py = python();
    require(
        &py,
        "create the venv: scripts/test.sh does `python3 -m venv tests/clients/python/.venv` and installs requirements.txt",
    );
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("validator_keys");
    let out = Command::new(&py)
        .arg(clients_dir().join("python/gen_keystores.py"))
        .args([
            "--out",
            ks.to_str().unwrap(),
            "--count",
            "3",
            "--password",
            "Kl€ine Prüfung ü",
            "--kdf",
            "pbkdf2",
        ])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "gen_keystores failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut expected: Vec<String> = manifest["pubkeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 3);

    let server = Server::start(
        &dir.path().join("data"),
        &["--keystores-path", ks.to_str().unwrap()],
    );
    let (_, body) = server.get("/api/v1/eth2/publicKeys");
    let mut listed: Vec<String> = serde_json::from_str(&body).unwrap();
    listed.sort();
    assert_eq!(
        listed, expected,
        "every ethstaker-deposit keystore loads with its password"
    );

    for (i, pk) in expected.iter().enumerate() {
        let req = common::attestation(9, i as u64, i as u64 + 1, 1);
        let (status, body) = server.sign(pk, &req);
        assert_eq!(status, 200, "{body}");
        let sig = signature_of(&body);
        let plan = palisade::chain::eth2::request::plan(
            &req,
            &palisade::chain::eth2::network::NetworkConfig::from_name_or_path("mainnet").unwrap(),
        )
        .unwrap();
        let verified = Command::new(&py)
            .arg(clients_dir().join("python/gen_keystores.py"))
            .args(["--verify", pk, &format!("{}", plan.signing_root), &sig])
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "py_ecc rejects the signature of {pk}: {}",
            String::from_utf8_lossy(&verified.stdout)
        );
        assert_eq!(String::from_utf8_lossy(&verified.stdout).trim(), "ok");
    }
}
