//! The slot-start burst: 10,000 validators each send one ATTESTATION as fast as the server
//! accepts them, against PostgreSQL (`DATABASE_URL`), through the real release binary.
//!
//! Prints: wall time, signatures per second, p50/p99 latency, and in the same run the raw
//! blst signing rate of the same 10,000 messages (no HTTP, no database), on one core and on
//! all cores, with the ratio palisade rate ÷ raw rate.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench burst`
//! Knobs: `BURST_VALIDATORS` (10000; 200 when run by `cargo test`), `BURST_CONCURRENCY` (64).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use palisade::chain::eth2::network::NetworkConfig;
use palisade::chain::eth2::request::plan;
use palisade::crypto::bls::SecretKey;
use rayon::prelude::*;

fn secret(i: u32) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = 0x20;
    b[24..28].copy_from_slice(&0x5eed_u32.to_be_bytes());
    b[28..].copy_from_slice(&(i + 1).to_be_bytes());
    b
}

fn pg_admin(admin: &str, sql: String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(admin)
            .await
            .expect("connect to DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut c)
            .await
            .unwrap();
    });
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` probes
    }
    // `cargo bench` passes --bench: the full burst. Under `cargo test` it is a 200-validator
    // smoke run, so the bench cannot rot unnoticed.
    let full = std::env::args().any(|a| a == "--bench");
    let Ok(admin) = std::env::var("DATABASE_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "DATABASE_URL must be set under CI=true"
        );
        println!("burst: DATABASE_URL not set, nothing run");
        return;
    };
    let n: u32 = std::env::var("BURST_VALIDATORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 10_000 } else { 200 });
    let concurrency: usize = std::env::var("BURST_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);

    // keys
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    let t = Instant::now();
    let secrets: Vec<SecretKey> = (0..n)
        .into_par_iter()
        .map(|i| SecretKey::from_bytes(&secret(i)).unwrap())
        .collect();
    let pubkeys: Vec<String> = secrets
        .par_iter()
        .map(|k| format!("0x{}", hex::encode(k.public_key())))
        .collect();
    for i in 0..n {
        std::fs::write(
            keys_dir.join(format!("v{i:05}.yaml")),
            format!(
                "type: file-raw\nprivateKey: \"0x{}\"\n",
                hex::encode(secret(i))
            ),
        )
        .unwrap();
    }
    println!("prepared {n} validator keys in {:.2?}", t.elapsed());

    // one attestation per validator, all in the same slot (64 committees)
    let epoch = 300_000u64;
    let gvr = format!("0x{}", "4b".repeat(32));
    let bodies: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let root = |b: u8| format!("0x{}", hex::encode([b; 32]));
            serde_json::json!({
                "type": "ATTESTATION",
                "fork_info": {"fork": {"previous_version": "0x05000000", "current_version": "0x05000000", "epoch": "364032"},
                              "genesis_validators_root": gvr},
                "attestation": {"slot": (epoch * 32 + 5).to_string(), "index": (i % 64).to_string(),
                    "beacon_block_root": root(7), "source": {"epoch": (epoch - 1).to_string(), "root": root(8)},
                    "target": {"epoch": epoch.to_string(), "root": root(9)}}
            })
        })
        .collect();
    let network = NetworkConfig::from_name_or_path("mainnet").unwrap();
    let roots: Vec<[u8; 32]> = bodies
        .iter()
        .map(|b| plan(b, &network).unwrap().signing_root.0)
        .collect();

    // raw blst signing of the same messages
    let t = Instant::now();
    for (k, r) in secrets.iter().zip(&roots) {
        std::hint::black_box(k.sign(r));
    }
    let raw_one = n as f64 / t.elapsed().as_secs_f64();
    let raw_all_rate = |secrets: &[SecretKey]| {
        let t = Instant::now();
        secrets.par_iter().zip(roots.par_iter()).for_each(|(k, r)| {
            std::hint::black_box(k.sign(r));
        });
        n as f64 / t.elapsed().as_secs_f64()
    };
    let raw_all_before = raw_all_rate(&secrets);

    // fresh database, release server
    let db_name = format!("palisade_burst_{}", std::process::id());
    pg_admin(
        &admin,
        format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"),
    );
    pg_admin(&admin, format!("CREATE DATABASE {db_name}"));
    let db_url = format!("{}/{db_name}", admin.rsplit_once('/').unwrap().0);
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["serve", "--http-listen-port", "0", "--network", "mainnet"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--key-config-path")
        .arg(&keys_dir)
        .args([
            "--slashing-protection-db-url",
            &db_url,
            "--slashing-protection-db-pool-size",
            "16",
        ])
        .env("PALISADE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start palisade");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("palisade exited").unwrap();
        if let Some(u) = line.split("listening on ").nth(1) {
            break u.trim().to_string();
        }
    };
    println!(
        "server ready with {n} keys (load + registration) in {:.2?}",
        t.elapsed()
    );

    // the burst
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (wall, mut latencies, failures) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        let requests = bodies.iter().zip(&pubkeys).map(|(body, pk)| {
            let client = client.clone();
            let url = format!("{url}/api/v1/eth2/sign/{pk}");
            let body = body.to_string();
            async move {
                let t = Instant::now();
                let r = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                (t.elapsed(), ok)
            }
        });
        let t = Instant::now();
        let results: Vec<(Duration, bool)> = futures_util::stream::iter(requests)
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let wall = t.elapsed();
        let failures = results.iter().filter(|(_, ok)| !ok).count();
        (
            wall,
            results.into_iter().map(|(d, _)| d).collect::<Vec<_>>(),
            failures,
        )
    });
    let _ = child.kill();
    let _ = child.wait();
    // again after the burst: this machine's speed drifts, so the ratio uses the mean of both
    let raw_all_after = raw_all_rate(&secrets);
    let raw_all = (raw_all_before + raw_all_after) / 2.0;
    pg_admin(
        &admin,
        format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"),
    );

    latencies.sort();
    let rate = n as f64 / wall.as_secs_f64();
    println!(
        "== burst: {n} ATTESTATIONs, {concurrency} in flight, PostgreSQL, {cores} cores (server, database and load generator share them)"
    );
    println!("wall time        {:.2?}", wall);
    println!("signatures/s     {rate:.0}");
    println!("latency p50      {:.2?}", percentile(&latencies, 0.50));
    println!("latency p99      {:.2?}", percentile(&latencies, 0.99));
    println!("failures         {failures}");
    println!(
        "raw blst, 1 core      {raw_one:.0}/s   ratio palisade/raw = {:.2}",
        rate / raw_one
    );
    println!(
        "raw blst, {cores} cores     {raw_all:.0}/s (before {raw_all_before:.0}, after {raw_all_after:.0})   ratio palisade/raw = {:.2}",
        rate / raw_all
    );
    assert_eq!(failures, 0, "every request must be signed");
}
