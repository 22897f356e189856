//! Sign and verify time of each Tezos curve as palisade computes it (issue 19, item 6):
//! `SecretKey::sign` (blake2b-256 of the bytes, then Ed25519 / ECDSA with RFC 6979 nonces
//! and low-S / BLS / ML-DSA-44) and `PublicKey::verify` (the authentication path), one
//! thread, over a 150-byte attestation-like message.
//!
//! `cargo bench --bench curves` prints, per curve: sign µs/op and verify µs/op (the median of
//! 5 rounds of `CURVES_OPS` operations, 2,000 by default, after 200 warm-up operations),
//! and the one-core rate. Pin it for stable figures: `taskset -c 1 cargo bench --bench
//! curves`. Under `cargo test --benches` it runs 20 operations per curve and checks that
//! every signature verifies and that signing is deterministic, so the bench cannot rot.
//!
//! Keys: the `tests/vectors/tezos/vectors.json` keys (tz1, tz2, tz3, tz4) and octez's
//! hard-coded tz5 key (`tests/vectors/tz5/octez_hardcoded_mdsk.txt`).

use std::path::Path;
use std::time::Instant;

use palisade::crypto::tezos::SecretKey;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` probes
    }
    let full = std::env::args().any(|a| a == "--bench");
    let ops: usize = std::env::var("CURVES_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 2_000 } else { 20 });
    let (rounds, warm_up) = if full { (5, 200) } else { (1, 2) };

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("tezos/vectors.json")).unwrap())
            .unwrap();
    let mut keys: Vec<(String, SecretKey)> = vec![];
    let mut seen = std::collections::HashSet::new();
    for v in vectors["vectors"].as_array().unwrap() {
        let pkh = v["public_key_hash"].as_str().unwrap();
        if seen.insert(pkh[..3].to_string()) {
            let secret = SecretKey::from_b58(v["secret_key"].as_str().unwrap()).unwrap();
            keys.push((
                format!("{} ({})", &pkh[..3], v["curve"].as_str().unwrap()),
                secret,
            ));
        }
    }
    let tz5 = std::fs::read_to_string(root.join("tz5/octez_hardcoded_mdsk.txt")).unwrap();
    keys.push((
        "tz5 (ML-DSA-44)".into(),
        SecretKey::from_b58(tz5.trim()).unwrap(),
    ));

    // An attestation: magic, chain id, branch, tag, slot, level, round, payload hash.
    let mut message = vec![0x13, 0x7a, 0x06, 0xa7, 0x70];
    message.extend_from_slice(&[0xab; 32]);
    message.extend_from_slice(&[21, 0, 3]);
    message.extend_from_slice(&1_000_000u32.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&[0xcd; 32]);
    message.resize(150, 0);

    println!(
        "curves: {ops} operations x {rounds} rounds per curve, one thread ({} cores visible)",
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    println!(
        "{:<26} {:>14} {:>16} {:>16}",
        "curve", "sign us/op", "verify us/op", "signs/s (1 core)"
    );
    for (name, secret) in &keys {
        let public = secret.public_key();
        // Signing version 2 (octez's current one); tz5 exists from version 3.
        let version = if name.starts_with("tz5") { 3 } else { 2 };
        let first = secret.sign(&message, version).unwrap();
        assert!(public.verify(&message, &first, version), "{name}: verifies");
        assert_eq!(
            secret.sign(&message, version).unwrap().as_bytes(),
            first.as_bytes(),
            "{name}: deterministic"
        );
        for i in 0..warm_up {
            message[150 - 1] = i as u8;
            std::hint::black_box(secret.sign(&message, version).unwrap());
        }
        let mut sign_us = vec![];
        let mut verify_us = vec![];
        for _ in 0..rounds {
            let mut signatures = Vec::with_capacity(ops);
            let t = Instant::now();
            for i in 0..ops {
                message[40..44].copy_from_slice(&(i as u32).to_be_bytes());
                signatures.push(secret.sign(&message, version).unwrap());
            }
            sign_us.push(t.elapsed().as_secs_f64() * 1e6 / ops as f64);
            let t = Instant::now();
            for (i, sig) in signatures.iter().enumerate() {
                message[40..44].copy_from_slice(&(i as u32).to_be_bytes());
                assert!(public.verify(&message, sig, version), "{name}: verifies");
            }
            verify_us.push(t.elapsed().as_secs_f64() * 1e6 / ops as f64);
        }
        let (s, v) = (median(sign_us), median(verify_us));
        println!("{name:<26} {s:>14.1} {v:>16.1} {:>16.0}", 1e6 / s);
    }
}
