//! Several palisade instances on one PostgreSQL database (`DATABASE_URL`), through the real
//! binary: the two-instance race, a database outage, and the operator commands (import,
//! export, high watermark) used while servers run.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, Server, attestation, block, fresh_db, signature_of, write_raw_key};
use palisade::chain::eth2::network::NetworkConfig;
use palisade::chain::eth2::request::plan;
use palisade::protection::rules;

const GVR: u8 = 0x42;

fn keys_dir(dir: &std::path::Path, n: u32) -> std::path::PathBuf {
    let keys = dir.join("keys");
    for i in 0..n {
        write_raw_key(&keys, &format!("k{i}"), &common::test_secret(200 + i));
    }
    keys
}

fn serve(dir: &std::path::Path, name: &str, keys: &std::path::Path, db_url: &str) -> Server {
    let data = dir.join(name);
    std::fs::create_dir_all(&data).unwrap();
    Server::start(
        &data,
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--slashing-protection-db-url",
            db_url,
        ],
    )
}

fn verify(pk: &str, body: &serde_json::Value, sig: &str) -> bool {
    let root = plan(body, &NetworkConfig::from_name_or_path("mainnet").unwrap())
        .unwrap()
        .signing_root;
    palisade::crypto::bls::verify(
        &hex::decode(&pk[2..]).unwrap(),
        root.as_slice(),
        &hex::decode(&sig[2..]).unwrap(),
    )
    .unwrap()
}

#[test]
fn two_instances_race_exactly_one_of_each_conflicting_pair_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(Backend::Postgres, dir.path()) else {
        return;
    };
    let keys = keys_dir(dir.path(), 4);
    let a = serve(dir.path(), "a", &keys, &db.url);
    let b = serve(dir.path(), "b", &keys, &db.url);
    let pks: Vec<String> = (0..4).map(|i| common::test_pubkey(200 + i)).collect();
    const PAIRS: u64 = 1000;

    // (pair index, kind) -> statuses; each pair sends one variant to each instance at once
    let results = Arc::new(Mutex::new(Vec::new()));
    let work: Vec<(u64, bool)> = (0..PAIRS).flat_map(|i| [(i, true), (i, false)]).collect();
    let work = Arc::new(Mutex::new(work.into_iter()));
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let (work, results, pks, urls) = (
                work.clone(),
                results.clone(),
                &pks,
                [a.url.clone(), b.url.clone()],
            );
            scope.spawn(move || {
                let client = common::client();
                loop {
                    let Some((i, is_attestation)) = work.lock().unwrap().next() else {
                        break;
                    };
                    let pk = &pks[(i % 4) as usize];
                    let n = i / 4 + 1; // per key: distinct targets/slots
                    let bodies = if is_attestation {
                        [attestation(GVR, n - 1, n, 1), attestation(GVR, n - 1, n, 2)]
                    } else {
                        [block(GVR, n * 32, 1), block(GVR, n * 32, 2)]
                    };
                    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
                        let hs: Vec<_> = bodies
                            .iter()
                            .zip(urls.iter())
                            .map(|(body, url)| {
                                let client = client.clone();
                                s.spawn(move || {
                                    let r = client
                                        .post(format!("{url}/api/v1/eth2/sign/{pk}"))
                                        .json(body)
                                        .send()
                                        .unwrap();
                                    (r.status().as_u16(), r.text().unwrap())
                                })
                            })
                            .collect();
                        hs.into_iter().map(|h| h.join().unwrap()).collect()
                    });
                    results
                        .lock()
                        .unwrap()
                        .push((i, is_attestation, pk.clone(), bodies, answers));
                }
            });
        }
    });
    let results = results.lock().unwrap();
    assert_eq!(results.len() as u64, 2 * PAIRS);
    for (i, is_att, pk, bodies, answers) in results.iter() {
        let signed: Vec<usize> = (0..2).filter(|k| answers[*k].0 == 200).collect();
        assert_eq!(
            signed.len(),
            1,
            "pair {i} (attestation: {is_att}): exactly one signed: {answers:?}"
        );
        let other = 1 - signed[0];
        assert_eq!(
            answers[other].0, 412,
            "pair {i}: the other is refused: {answers:?}"
        );
        let sig = signature_of(&answers[signed[0]].1);
        assert!(
            verify(pk, &bodies[signed[0]], &sig),
            "pair {i}: released signature verifies"
        );
    }
    assert_eq!(
        common::count_records_any(&db.url),
        (PAIRS as i64, PAIRS as i64),
        "exactly one record per pair"
    );
}

/// A TCP proxy to PostgreSQL that can be cut (open connections reset, new ones closed at once).
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                conns2
                    .lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[test]
fn postgres_outage_gives_503_then_signing_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(Backend::Postgres, dir.path()) else {
        return;
    };
    // route palisade through the proxy: same database, host:port of the proxy
    let (scheme_user, rest) = db.url.split_once('@').unwrap();
    let (hostport, dbname) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(hostport.to_string());
    let via_proxy = format!("{scheme_user}@127.0.0.1:{}/{dbname}", proxy.port);
    let keys = keys_dir(dir.path(), 1);
    let server = serve(dir.path(), "a", &keys, &via_proxy);
    let pk = common::test_pubkey(200);

    let mut target = 0u64;
    let mut next = || {
        target += 1;
        attestation(GVR, target - 1, target, 1)
    };
    for _ in 0..20 {
        assert_eq!(server.sign(&pk, &next()).0, 200);
    }
    proxy.cut();
    for _ in 0..10 {
        let (status, body) = server.sign(&pk, &next());
        assert_eq!(status, 503, "during the outage: {body}");
        assert!(
            !body.contains("\"signature\""),
            "no signature without a record: {body}"
        );
    }
    let (status, body) = server.get("/healthcheck");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("\"slashing-protection-db-health-check\",\"status\":\"DOWN\""),
        "{body}"
    );

    proxy.restore();
    // the pool reconnects by itself
    let mut resumed = false;
    for _ in 0..50 {
        if server.sign(&pk, &next()).0 == 200 {
            resumed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(resumed, "signing resumes after the database returns");
    for _ in 0..20 {
        assert_eq!(server.sign(&pk, &next()).0, 200);
    }
    assert_eq!(server.get("/healthcheck").0, 200);

    // no slashable pair in the record
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(palisade::protection::open(&db.url, 1)).unwrap();
    let history = rt
        .block_on(store.history(&hex::decode(&pk[2..]).unwrap().try_into().unwrap()))
        .unwrap();
    assert!(history.attestations.len() >= 41);
    for (i, a) in history.attestations.iter().enumerate() {
        let others: Vec<_> = history
            .attestations
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, x)| *x)
            .collect();
        let r = rules::check_attestation(
            &others,
            &Default::default(),
            a.source_epoch,
            a.target_epoch,
            a.signing_root.unwrap(),
        );
        assert!(
            r.is_ok(),
            "recorded attestation {a:?} conflicts with another: {r:?}"
        );
    }
}

#[test]
fn operator_commands_work_while_servers_run() {
    let dir = tempfile::tempdir().unwrap();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let sub = dir.path().join(format!("{backend:?}"));
        std::fs::create_dir_all(&sub).unwrap();
        let Some(db) = fresh_db(backend, &sub) else {
            continue;
        };
        let keys = keys_dir(&sub, 2);
        let server = serve(&sub, "a", &keys, &db.url);
        let pk0 = common::test_pubkey(200);
        let pk1 = common::test_pubkey(201);
        assert_eq!(server.sign(&pk0, &attestation(GVR, 1, 2, 1)).0, 200);
        assert_eq!(server.sign(&pk0, &block(GVR, 64, 1)).0, 200);

        let cli = |args: &[&str]| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
                .args(args)
                .args(["--slashing-protection-db-url", &db.url])
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };

        // export while the server runs
        let file = sub.join("export.json");
        let (ok, out) = cli(&[
            "slashing-protection",
            "export",
            "--to",
            file.to_str().unwrap(),
            "--pubkeys",
            &pk0,
        ]);
        assert!(ok, "{out}");
        let exported: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(exported["metadata"]["interchange_format_version"], "5");
        assert_eq!(
            exported["data"][0]["signed_attestations"][0]["target_epoch"],
            "2"
        );
        assert_eq!(exported["data"][0]["signed_blocks"][0]["slot"], "64");

        // import history for pk1 while the server runs: the server refuses what conflicts
        let import = sub.join("import.json");
        std::fs::write(
            &import,
            serde_json::json!({
                "metadata": {"interchange_format_version": "5", "genesis_validators_root": format!("0x{}", hex::encode([GVR; 32]))},
                "data": [{"pubkey": pk1, "signed_blocks": [{"slot": "100"}], "signed_attestations": [{"source_epoch": "10", "target_epoch": "11"}]}]
            })
            .to_string(),
        )
        .unwrap();
        let (ok, out) = cli(&[
            "slashing-protection",
            "import",
            "--from",
            import.to_str().unwrap(),
        ]);
        assert!(ok, "{out}");
        assert_eq!(
            server.sign(&pk1, &block(GVR, 100, 1)).0,
            412,
            "imported block without root blocks slot 100"
        );
        assert_eq!(
            server.sign(&pk1, &block(GVR, 99, 1)).0,
            412,
            "below the imported minimum slot"
        );
        assert_eq!(
            server.sign(&pk1, &attestation(GVR, 9, 12, 1)).0,
            412,
            "surrounds the imported vote"
        );
        assert_eq!(server.sign(&pk1, &attestation(GVR, 11, 12, 1)).0, 200);

        // a malformed import fails and changes nothing
        let before = common::count_records_any(&db.url);
        std::fs::write(
            &import,
            "{\"metadata\": {\"interchange_format_version\": \"4\"}}",
        )
        .unwrap();
        let (ok, out) = cli(&[
            "slashing-protection",
            "import",
            "--from",
            import.to_str().unwrap(),
        ]);
        assert!(!ok, "{out}");
        assert_eq!(common::count_records_any(&db.url), before);

        // high watermark
        assert_eq!(
            server.get("/api/v1/eth2/highWatermark"),
            (200, "{}".to_string())
        );
        let (ok, out) = cli(&[
            "slashing-protection",
            "high-watermark",
            "--epoch",
            "20",
            "--slot",
            "640",
        ]);
        assert!(ok, "{out}");
        let (status, body) = server.get("/api/v1/eth2/highWatermark");
        assert_eq!(status, 200);
        let hw: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (hw["epoch"].as_str(), hw["slot"].as_str()),
            (Some("20"), Some("640"))
        );
        assert_eq!(
            server.sign(&pk0, &attestation(GVR, 19, 20, 1)).0,
            412,
            "at the high watermark"
        );
        assert_eq!(server.sign(&pk0, &block(GVR, 640, 1)).0, 412);
        assert_eq!(server.sign(&pk0, &attestation(GVR, 18, 19, 1)).0, 200);
        let (ok, out) = cli(&["slashing-protection", "high-watermark", "--remove"]);
        assert!(ok, "{out}");
        assert_eq!(server.sign(&pk0, &attestation(GVR, 19, 20, 1)).0, 200);
    }
}
