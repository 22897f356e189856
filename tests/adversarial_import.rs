//! A large interchange import does not stall signing (issue 14, item 6): a 200,000-record
//! EIP-3076 file (about 25 MB) is imported through the CLI while the running server signs
//! attestations for another key on the same SQLite database. Before, the import held SQLite's
//! writer lock for its whole length (seconds) and every signature waited behind it; now it is
//! written in bounded batches ([`palisade::protection::interchange::IMPORT_BATCH_RECORDS`]) and
//! signing interleaves. The figures (import time, signing latency during it) are printed.

mod common;

use std::time::{Duration, Instant};

use common::{Server, attestation, test_pubkey, test_secret, write_raw_key};

const GVR: u8 = 0x42;

/// An interchange file with `validators` validators of `per` attestations each (with roots).
fn big_interchange(validators: u32, per: u64) -> String {
    let data: Vec<serde_json::Value> = (0..validators)
        .map(|v| {
            let mut pk = [0x8au8; 48];
            pk[..4].copy_from_slice(&v.to_be_bytes());
            let atts: Vec<serde_json::Value> = (0..per)
                .map(|e| {
                    serde_json::json!({
                        "source_epoch": e.to_string(),
                        "target_epoch": (e + 1).to_string(),
                        "signing_root": format!("0x{}", hex::encode([(e % 251) as u8; 32])),
                    })
                })
                .collect();
            serde_json::json!({
                "pubkey": format!("0x{}", hex::encode(pk)),
                "signed_blocks": [],
                "signed_attestations": atts,
            })
        })
        .collect();
    serde_json::json!({
        "metadata": {
            "interchange_format_version": "5",
            "genesis_validators_root": format!("0x{}", hex::encode([GVR; 32])),
        },
        "data": data,
    })
    .to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn large_import_does_not_stall_signing() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    write_raw_key(&keys, "k", &test_secret(20));
    let data = dir.path().join("data");
    let db = format!(
        "sqlite://{}",
        data.join("slashing-protection.sqlite").display()
    );
    let server = Server::start(
        &data,
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--slashing-protection-db-url",
            &db,
        ],
    );
    let pk = test_pubkey(20);
    let (s, body) = server.sign(&pk, &attestation(GVR, 0, 1, 1));
    assert_eq!(s, 200, "{body}");

    let file = dir.path().join("big.json");
    let json = big_interchange(1000, 200);
    std::fs::write(&file, &json).unwrap();

    let import = {
        let (file, db) = (file.clone(), db.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
                .args(["slashing-protection", "import", "--from"])
                .arg(&file)
                .args(["--slashing-protection-db-url", &db])
                .output()
                .unwrap();
            (out, t.elapsed())
        })
    };
    // Sign while the import runs (and a little after).
    let mut latencies = Vec::new();
    let mut epoch = 1;
    let started = Instant::now();
    while !import.is_finished() || latencies.is_empty() {
        epoch += 1;
        let t = Instant::now();
        let (s, body) = server.sign(&pk, &attestation(GVR, epoch - 1, epoch, 1));
        latencies.push(t.elapsed());
        assert_eq!(s, 200, "attestation {epoch} during the import: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "import did not finish"
        );
    }
    let (out, import_time) = import.join().unwrap();
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let upcheck = Instant::now();
    let r = common::client()
        .get(format!("{}/upcheck", server.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let upcheck = upcheck.elapsed();

    latencies.sort();
    let (p50, p99, max) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        *latencies.last().unwrap(),
    );
    println!(
        "import of {} bytes (200,000 attestations) took {:.2} s; {} attestations signed meanwhile: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; /upcheck after {:.1} ms",
        json.len(),
        import_time.as_secs_f64(),
        latencies.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        upcheck.as_secs_f64() * 1e3,
    );
    // One batch is tens of milliseconds of SQLite work here; the whole file in one
    // transaction held every signature for seconds.
    assert!(
        max < Duration::from_millis(1000),
        "a signature waited {max:?} behind the import"
    );
    let (_, atts) = common::count_records_any(&db);
    assert!(atts >= 200_000, "every record imported ({atts})");
}
