//! Tezos signing throughput at concurrency 1 and 8 through the real binary over HTTP, on
//! both stores (issue 19, item 5): the figures the closing notes carry, printed by
//! `scripts/test.sh` in their own step (`--nocapture`).
//!
//! Cells, each `TEZOS_BENCH_SECS` seconds (5 by default), with in-memory tz3 (P-256) keys,
//! the key type, and a durable high watermark:
//! - `c=1, one key`: one client, rising levels;
//! - `c=8, 8 keys`: eight clients, each with its own key, rising levels;
//! - `c=8, one key`: eight clients on one key, each taking the next level from a shared
//!   counter just before it sends; a request that reaches the server after a higher level
//!   is refused (409), which is correct: only the order of arrival at the server is kept.
//!
//! Each cell prints signed/s, refusals, p50 and p99 (ms), and the CPU time per signed
//! request of palisade, of the PostgreSQL backends, and of this load generator, from
//! `/proc`. The first two cells must answer every request with 200.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, Server, fresh_db, tezos_attestation};
use palisade::crypto::tezos::{Curve, SecretKey};

/// Clock ticks per second of `/proc/*/stat` times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in ticks, and its command name.
fn cpu_ticks(stat: &Path) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(stat).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based, proc(5)).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// CPU ticks so far of palisade (`pid`), of every `postgres` process, and of this process.
fn cpu_now(pid: u32) -> [u64; 3] {
    let palisade = cpu_ticks(Path::new(&format!("/proc/{pid}/stat"))).map_or(0, |c| c.1);
    let me = cpu_ticks(Path::new("/proc/self/stat")).map_or(0, |c| c.1);
    let mut postgres = 0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            if let Some((comm, ticks)) = cpu_ticks(&entry.path().join("stat"))
                && comm == "postgres"
            {
                postgres += ticks;
            }
        }
    }
    [palisade, postgres, me]
}

struct Cell {
    signed: u64,
    refused: u64,
    other: u64,
    latencies_ms: Vec<f64>,
    elapsed: Duration,
    cpu: [u64; 3],
}

/// Runs `clients` threads for `secs`; thread `t` signs for `pkhs[t % pkhs.len()]` at the
/// level `next_level(t)` gives, until the time is up.
fn run_cell(
    server: &Server,
    pkhs: &[String],
    clients: usize,
    secs: f64,
    next_level: &(dyn Fn(usize) -> u32 + Sync),
) -> Cell {
    let base = server.tezos_url();
    let cpu_before = cpu_now(server.pid());
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let results: Vec<(u64, u64, u64, Vec<f64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|t| {
                let url = format!("{base}/keys/{}", pkhs[t % pkhs.len()]);
                s.spawn(move || {
                    let client = common::client();
                    let (mut signed, mut refused, mut other, mut ms) = (0, 0, 0, vec![]);
                    while Instant::now() < deadline {
                        let level = next_level(t);
                        let body = serde_json::to_string(&tezos_attestation(
                            [0x7e, 0x19, 0, 0],
                            level,
                            0,
                            9,
                        ))
                        .unwrap();
                        let sent = Instant::now();
                        let r = client
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .body(body)
                            .send()
                            .unwrap();
                        let status = r.status().as_u16();
                        let _ = r.bytes();
                        ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                        match status {
                            200 => signed += 1,
                            409 => refused += 1,
                            _ => other += 1,
                        }
                    }
                    (signed, refused, other, ms)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let cpu_after = cpu_now(server.pid());
    let mut cell = Cell {
        signed: 0,
        refused: 0,
        other: 0,
        latencies_ms: vec![],
        elapsed,
        cpu: [0; 3],
    };
    for i in 0..3 {
        cell.cpu[i] = cpu_after[i].saturating_sub(cpu_before[i]);
    }
    for (s, r, o, ms) in results {
        cell.signed += s;
        cell.refused += r;
        cell.other += o;
        cell.latencies_ms.extend(ms);
    }
    cell.latencies_ms.sort_by(f64::total_cmp);
    cell
}

fn print_cell(store: &str, name: &str, cell: &Cell, ticks: f64) {
    let at = |q: f64| {
        let v = &cell.latencies_ms;
        v[((v.len() as f64 - 1.0) * q).round() as usize]
    };
    let per = |t: u64| t as f64 / ticks * 1000.0 / cell.signed.max(1) as f64;
    println!(
        "[tezos concurrency] {store:<10} {name:<13} {:>7.0} signed/s  refused {:>5}  other {:>3}  p50 {:>5.2} ms  p99 {:>6.2} ms  CPU/signed: palisade {:.3} ms, postgres {:.3} ms, load generator {:.3} ms",
        cell.signed as f64 / cell.elapsed.as_secs_f64(),
        cell.refused,
        cell.other,
        at(0.5),
        at(0.99),
        per(cell.cpu[0]),
        per(cell.cpu[1]),
        per(cell.cpu[2]),
    );
}

#[test]
fn tezos_throughput_cells() {
    let secs: f64 = std::env::var("TEZOS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let ticks = clock_ticks();
    println!(
        "[tezos concurrency] {} cores visible, {secs} s per cell, tz3 (P-256) keys in memory, HTTP, durable watermark",
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("db")).unwrap();
        let Some(db) = fresh_db(backend, &tmp.path().join("db")) else {
            continue;
        };
        let keys = tmp.path().join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let pkhs: Vec<String> = (0..8)
            .map(|i| {
                let secret = SecretKey::generate(Curve::P256);
                std::fs::write(
                    keys.join(format!("baker{i}.yaml")),
                    format!(
                        "type: tezos-secret\nsecretKey: \"unencrypted:{}\"\n",
                        &*secret.to_b58()
                    ),
                )
                .unwrap();
                secret.public_key().pkh_b58()
            })
            .collect();
        let server = Server::start(
            &tmp.path().join("data"),
            &[
                "--key-config-path",
                keys.to_str().unwrap(),
                "--tezos-http-listen-port",
                "0",
                "--slashing-protection-db-url",
                db.url.as_str(),
            ],
        );
        let store = format!("{backend:?}");
        // Warm up: connections, the curve's tables, the database's caches.
        let warm = AtomicU32::new(1);
        run_cell(&server, &pkhs, 8, 0.5, &|_| {
            warm.fetch_add(1, Ordering::Relaxed)
        });

        let level = AtomicU32::new(100_000);
        let one = run_cell(&server, &pkhs[..1], 1, secs, &|_| {
            level.fetch_add(1, Ordering::Relaxed)
        });
        print_cell(&store, "c=1, one key", &one, ticks);
        assert_eq!((one.refused, one.other), (0, 0), "c=1 refuses nothing");

        let levels: Vec<AtomicU32> = (0..8).map(|_| AtomicU32::new(1_000_000)).collect();
        let eight = run_cell(&server, &pkhs, 8, secs, &|t| {
            levels[t].fetch_add(1, Ordering::Relaxed)
        });
        print_cell(&store, "c=8, 8 keys", &eight, ticks);
        assert_eq!(
            (eight.refused, eight.other),
            (0, 0),
            "each client's levels rise on its own key: nothing may be refused"
        );

        let shared = AtomicU32::new(2_000_000);
        let one_key = run_cell(&server, &pkhs[..1], 8, secs, &|_| {
            shared.fetch_add(1, Ordering::Relaxed)
        });
        print_cell(&store, "c=8, one key", &one_key, ticks);
        assert_eq!(one_key.other, 0, "only watermark refusals");
        server.stop();
    }
}
