//! Shared harness of the integration tests: starts the real `palisade` binary on an
//! ephemeral port with its own data directory and talks HTTP to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod model;

use serde_json::Value;

/// The test vectors inside the repository (`tests/vectors/`, provenance in its README).
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Reads a JSON file under `tests/vectors/`.
pub fn vector(rel: &str) -> Value {
    let p = vectors_dir().join(rel);
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("cannot read vector {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// The Python interpreter of the pinned test clients' venv (`tests/clients/python/.venv`,
/// made by `scripts/test.sh`), or `PALISADE_TEST_PYTHON`.
pub fn python() -> PathBuf {
    std::env::var_os("PALISADE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("tests/clients/python/.venv/bin/python"))
}

/// Serves the real actix app in this process (its own thread and actix system, 2 workers,
/// an ephemeral port on 127.0.0.1), for tests that must reach into it (a failing store, the
/// same SoftHSM instance). `make` runs inside that system, so it can open stores, and returns
/// the app's configuration. Returns `http://127.0.0.1:PORT` once it listens.
pub fn serve_in_process<F, Fut, C>(make: F) -> String
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = C>,
    C: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
{
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let configure = make().await;
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new().configure(configure.clone())
            })
            .workers(2)
            .bind("127.0.0.1:0")
            .unwrap();
            addr_tx.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        })
    });
    format!("http://{}", addr_rx.recv().unwrap())
}

/// The repository root.
pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes a Web3Signer `file-raw` key config for a hex secret key into `dir`.
pub fn write_raw_key(dir: &Path, name: &str, secret_hex: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.yaml")),
        format!("type: file-raw\nkeyType: BLS\nprivateKey: \"{secret_hex}\"\n"),
    )
    .unwrap();
}

/// Writes `baker.yaml`, a `tezos-secret` key config for the Tezos vector key 1, into `dir`,
/// with a policy line (`allow: [...]`) if given; returns its pkh.
pub fn write_tezos_baker(dir: &Path, allow: Option<&str>) -> String {
    let baker = &vector("tezos/vectors.json")["vectors"][1];
    let mut yaml = format!(
        "type: tezos-secret\nsecretKey: \"unencrypted:{}\"\n",
        baker["secret_key"].as_str().unwrap()
    );
    if let Some(allow) = allow {
        yaml.push_str(&format!("policy:\n  allow: [{allow}]\n"));
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("baker.yaml"), yaml).unwrap();
    baker["public_key_hash"].as_str().unwrap().to_string()
}

/// A deterministic valid BLS secret key (hex, 32 bytes) for index `i`.
pub fn test_secret(i: u32) -> String {
    let mut b = [0u8; 32];
    b[0] = 0x10;
    b[28..].copy_from_slice(&(i + 1).to_be_bytes());
    format!("0x{}", hex::encode(b))
}

/// The public key of [`test_secret`] `i`, `0x`-hex.
pub fn test_pubkey(i: u32) -> String {
    let s = hex::decode(&test_secret(i)[2..]).unwrap();
    let sk = palisade::crypto::bls::SecretKey::from_bytes(&s).unwrap();
    format!("0x{}", hex::encode(sk.public_key()))
}

/// A running `palisade serve`; killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// Data directory (SQLite database lives here unless overridden).
    pub data_dir: PathBuf,
    stderr: mpsc::Receiver<String>,
    tezos_rx: std::sync::Mutex<mpsc::Receiver<String>>,
    tezos_url: std::sync::OnceLock<String>,
    metrics_rx: std::sync::Mutex<mpsc::Receiver<String>>,
    metrics_url: std::sync::OnceLock<String>,
    sockets_rx: std::sync::Mutex<mpsc::Receiver<String>>,
    sockets: std::sync::Mutex<Vec<String>>,
}

impl Server {
    /// Starts `palisade serve` with `args` plus `--http-listen-port 0 --data-dir DATA_DIR`,
    /// and waits until it listens.
    pub fn start(data_dir: &Path, args: &[&str]) -> Server {
        Self::start_with_env(data_dir, args, &[])
    }

    /// As [`Server::start`], with extra environment variables (an empty value removes the
    /// variable).
    pub fn start_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
        cmd.arg("serve")
            .arg("--http-listen-port")
            .arg("0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("PALISADE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let mut child = cmd.spawn().expect("start palisade");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (url_tx, url_rx) = mpsc::channel();
        let (tezos_tx, tezos_rx) = mpsc::channel();
        let (metrics_tx, metrics_rx) = mpsc::channel();
        let (sockets_tx, sockets_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let tx = if line.contains("tezos socket") {
                        &sockets_tx
                    } else if line.contains("tezos API") {
                        &tezos_tx
                    } else if line.contains("metrics") {
                        &metrics_tx
                    } else {
                        &url_tx
                    };
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[palisade] {line}");
                let _ = err_tx.send(line);
            }
        });
        let url = match url_rx.recv_timeout(Duration::from_secs(120)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!("palisade did not start listening (exit: {status:?})");
            }
        };
        Server {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
            stderr: err_rx,
            tezos_rx: std::sync::Mutex::new(tezos_rx),
            tezos_url: std::sync::OnceLock::new(),
            metrics_rx: std::sync::Mutex::new(metrics_rx),
            metrics_url: std::sync::OnceLock::new(),
            sockets_rx: std::sync::Mutex::new(sockets_rx),
            sockets: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The octez binary-protocol listener announced with `scheme` (`tcp` gives `HOST:PORT`,
    /// `unix` the socket path); waits for it to be announced.
    pub fn tezos_socket(&self, scheme: &str) -> String {
        let prefix = format!("{scheme}://");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(found) = self
                .sockets
                .lock()
                .unwrap()
                .iter()
                .find_map(|s| s.strip_prefix(&prefix))
            {
                return found.to_string();
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .sockets_rx
                .lock()
                .unwrap()
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("palisade did not announce a {scheme} socket"));
            self.sockets.lock().unwrap().push(line);
        }
    }

    /// The metrics listener's `http://127.0.0.1:PORT` (waits for it to be announced).
    pub fn metrics_url(&self) -> String {
        self.metrics_url
            .get_or_init(|| {
                self.metrics_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(60))
                    .expect("palisade did not announce its metrics listener")
            })
            .clone()
    }

    /// The Tezos listener's `http://127.0.0.1:PORT` (waits for it to be announced).
    pub fn tezos_url(&self) -> String {
        self.tezos_url
            .get_or_init(|| {
                self.tezos_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(60))
                    .expect("palisade did not announce its tezos listener")
            })
            .clone()
    }

    /// POSTs hex bytes (as a JSON string) to the Tezos `/keys/{pkh}` with a query string
    /// (may be empty); returns status and body text.
    pub fn tezos_sign(&self, pkh: &str, bytes_hex: &str, query: &str) -> (u16, String) {
        let r = client()
            .post(format!("{}/keys/{pkh}{query}", self.tezos_url()))
            .header("Content-Type", "application/json")
            .body(serde_json::to_string(bytes_hex).unwrap())
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// GET a path on the Tezos listener; returns status and body text.
    pub fn tezos_get(&self, path: &str) -> (u16, String) {
        let r = client()
            .get(format!("{}{path}", self.tezos_url()))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// All stderr lines seen so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// The SQLite URL of this server's default database.
    pub fn db_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.data_dir.join("slashing-protection.sqlite").display()
        )
    }

    /// POSTs a JSON value to `/api/v1/eth2/sign/{pubkey}`; returns status and body text.
    pub fn sign(&self, pubkey: &str, body: &Value) -> (u16, String) {
        let r = client()
            .post(format!("{}/api/v1/eth2/sign/{pubkey}", self.url))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// GET a path; returns status and body text.
    pub fn get(&self, path: &str) -> (u16, String) {
        let r = client().get(format!("{}{path}", self.url)).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server (SIGKILL: nothing after the last commit is assumed).
    pub fn stop(mut self) {
        self.kill();
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP client with a generous timeout.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The signature hex from a `{"signature": …}` body.
pub fn signature_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    v["signature"]
        .as_str()
        .unwrap_or_else(|| panic!("no signature: {body}"))
        .to_string()
}

/// Counts the records (blocks, attestations) in a SQLite database file.
pub fn count_records(db_url: &str) -> (i64, i64) {
    count_records_any(db_url)
}

/// A mainnet-style `fork_info` with one version and a genesis validators root of `gvr_byte` repeated.
pub fn fork_info(gvr_byte: u8) -> Value {
    serde_json::json!({
        "fork": {"previous_version": "0x00000000", "current_version": "0x00000000", "epoch": "0"},
        "genesis_validators_root": format!("0x{}", hex::encode([gvr_byte; 32]))
    })
}

/// An ATTESTATION request body.
pub fn attestation(gvr_byte: u8, source: u64, target: u64, block_root_byte: u8) -> Value {
    let root = |b: u8| format!("0x{}", hex::encode([b; 32]));
    serde_json::json!({
        "type": "ATTESTATION",
        "fork_info": fork_info(gvr_byte),
        "attestation": {
            "slot": (target * 32).to_string(), "index": "0",
            "beacon_block_root": root(block_root_byte),
            "source": {"epoch": source.to_string(), "root": root(1)},
            "target": {"epoch": target.to_string(), "root": root(2)}
        }
    })
}

/// A BLOCK_V2 (header, DENEB) request body.
pub fn block(gvr_byte: u8, slot: u64, body_root_byte: u8) -> Value {
    let root = |b: u8| format!("0x{}", hex::encode([b; 32]));
    serde_json::json!({
        "type": "BLOCK_V2",
        "fork_info": fork_info(gvr_byte),
        "beacon_block": {"version": "DENEB", "block_header": {
            "slot": slot.to_string(), "proposer_index": "7",
            "parent_root": root(3), "state_root": root(4), "body_root": root(body_root_byte)
        }}
    })
}

/// Which slashing-protection store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The URL schemes of `palisade::protection::open`'s registry that this backend's
    /// databases are opened with.
    pub fn schemes(self) -> &'static [&'static str] {
        match self {
            Backend::Sqlite => &["sqlite"],
            Backend::Postgres => &["postgres", "postgresql"],
        }
    }
}

/// Instantiates each named test function (`fn name(backend: Backend)`, in scope where the
/// macro is called) once per store, as `#[test] fn <store>::<name>()`, and adds one test,
/// `suite_covers_every_registered_store`, which fails when `palisade::protection::open` can
/// open a URL scheme that no store below runs the suite on.
///
/// The stores are listed once, in the first rule: a new store (a [`Backend`] variant with
/// its [`fresh_db`] arm) gets the whole suite of every file that calls this macro by one
/// line there. A test that cannot run on a store returns early (see [`fresh_db`]: without
/// `DATABASE_URL` the PostgreSQL variants are skipped, and fail under `CI=true`).
#[allow(unused_macros)]
macro_rules! store_suite {
    ($($test:ident),+ $(,)?) => {
        $crate::common::store_suite!(@stores [
            sqlite: Sqlite,
            postgres: Postgres,
        ] [$($test),+]);
    };
    (@stores [$($store:ident: $backend:ident),+ $(,)?] $tests:tt) => {
        $( $crate::common::store_suite!(@store $store $backend $tests); )+

        /// Every scheme `palisade::protection::open` accepts belongs to a store the suite
        /// runs on.
        #[test]
        fn suite_covers_every_registered_store() {
            let covered: Vec<&str> = [$($crate::common::Backend::$backend),+]
                .iter()
                .flat_map(|b| b.schemes().iter().copied())
                .collect();
            for scheme in palisade::protection::store_schemes() {
                assert!(
                    covered.contains(&scheme),
                    "the store for `{scheme}:` URLs does not run the protection suite: add it to store_suite!"
                );
            }
        }
    };
    (@store $store:ident $backend:ident [$($test:ident),+]) => {
        mod $store {
            $(
                #[test]
                fn $test() {
                    super::$test($crate::common::Backend::$backend);
                }
            )+
        }
    };
}
#[allow(unused_imports)]
pub(crate) use store_suite;

/// A fresh, empty database for one test; a PostgreSQL one is dropped at the end.
pub struct TestDb {
    /// The URL to give palisade.
    pub url: String,
    admin: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.admin.take() {
            let _ = pg_admin(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// `DATABASE_URL` (an admin connection to PostgreSQL). Without it the PostgreSQL variant of a
/// test cannot run: under `CI=true` that is a failure, elsewhere it is reported and skipped.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "DATABASE_URL is not set under CI=true: the PostgreSQL tests must run"
            );
            eprintln!("DATABASE_URL not set: PostgreSQL variant NOT run");
            None
        }
    }
}

/// Runs `sql` on a connection to `admin_url` (one statement or a script).
pub fn pg_admin(admin_url: &str, sql: &str) -> Result<(), sqlx::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await?;
        Ok(())
    })
}

/// A fresh database on `backend` (SQLite file under `dir`, or a new PostgreSQL database
/// next to `DATABASE_URL`); `None` when PostgreSQL is not configured outside CI.
pub fn fresh_db(backend: Backend, dir: &Path) -> Option<TestDb> {
    match backend {
        Backend::Sqlite => Some(TestDb {
            url: format!(
                "sqlite://{}",
                dir.join("slashing-protection.sqlite").display()
            ),
            admin: None,
        }),
        Backend::Postgres => {
            let admin = postgres_admin_url()?;
            let name = format!(
                "palisade_t_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            );
            pg_admin(&admin, &format!("CREATE DATABASE {name}")).expect("create test database");
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap_or(admin.clone());
            Some(TestDb {
                url: format!("{base}/{name}"),
                admin: Some((admin, name)),
            })
        }
    }
}

/// Counts the records (blocks, attestations) of every validator in any palisade database
/// URL, read through the store itself.
pub fn count_records_any(url: &str) -> (i64, i64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = palisade::protection::open(url, 1).await.unwrap();
        let (mut blocks, mut attestations) = (0, 0);
        for key in store.validators().await.unwrap() {
            let h = store.history(&key).await.unwrap();
            blocks += h.blocks.len() as i64;
            attestations += h.attestations.len() as i64;
        }
        (blocks, attestations)
    })
}

/// `tests/clients/tezos_client.mjs`, checking Taquito is installed (`npm ci`).
pub fn taquito_script() -> PathBuf {
    let dir = repo_dir().join("tests/clients");
    assert!(
        dir.join("node_modules/@taquito/remote-signer").exists(),
        "Taquito is not installed: run `npm ci` in tests/clients (scripts/test.sh does)"
    );
    dir.join("tezos_client.mjs")
}

/// Runs `node tezos_client.mjs <mode> <arg>`; returns its JSON line, failing on any error.
pub fn taquito(mode: &str, arg: &Value) -> Value {
    let out = Command::new("node")
        .arg(taquito_script())
        .arg(mode)
        .arg(arg.to_string())
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "tezos_client {mode} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "tezos_client {mode}: not JSON: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A generic operation (magic 0x03): one transaction of `amount` mutez (below 128) from `source`
/// (a 21-byte binary pkh) to itself, on branch `44…44`.
pub fn tezos_transfer(source: &[u8; 21], amount: u8) -> Vec<u8> {
    let mut b = vec![0x03];
    b.extend_from_slice(&[0x44; 32]); // branch
    b.push(108); // transaction
    b.extend_from_slice(source);
    b.extend_from_slice(&[0xe8, 0x07, 0x01, 0xa0, 0x1f, 0x00]); // fee, counter, gas, storage
    b.push(amount & 0x7f);
    b.push(0x00); // implicit destination
    b.extend_from_slice(source);
    b.push(0x00); // no parameters
    b
}

/// A Tenderbake block header (magic 0x11) at `level`/`round`.
pub fn tezos_block(chain: [u8; 4], level: u32, round: u32, fill: u8) -> String {
    let mut b = vec![0x11];
    b.extend_from_slice(&chain);
    b.extend_from_slice(&level.to_be_bytes());
    b.push(1); // proto
    b.extend_from_slice(&[fill; 32]); // predecessor
    b.extend_from_slice(&1_700_000_000u64.to_be_bytes());
    b.push(4); // validation passes
    b.extend_from_slice(&[fill; 32]); // operations hash
    let mut fitness = Vec::new();
    for item in [
        vec![2u8],
        level.to_be_bytes().to_vec(),
        vec![],
        (-1i32).to_be_bytes().to_vec(),
        round.to_be_bytes().to_vec(),
    ] {
        fitness.extend_from_slice(&(item.len() as u32).to_be_bytes());
        fitness.extend_from_slice(&item);
    }
    b.extend_from_slice(&(fitness.len() as u32).to_be_bytes());
    b.extend_from_slice(&fitness);
    b.extend_from_slice(&[fill; 32]); // context
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // protocol data
    hex::encode(b)
}

/// An attestation (magic 0x13, tag 21) at `level`/`round` on `chain`; `fill` varies the bytes.
pub fn tezos_attestation(chain: [u8; 4], level: u32, round: u32, fill: u8) -> String {
    let mut b = vec![0x13];
    b.extend_from_slice(&chain);
    b.extend_from_slice(&[fill; 32]);
    b.push(21);
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&level.to_be_bytes());
    b.extend_from_slice(&round.to_be_bytes());
    b.extend_from_slice(&[fill ^ 0x5a; 32]);
    hex::encode(b)
}

pub mod azure;
pub mod moto;
pub mod octez;
pub mod openbao;
pub mod softhsm;

/// Signs `total` Tezos attestations for `pkh` with `concurrency` client threads, each on its
/// own chain id (so their watermarks are independent) at rising levels, every one expected
/// to answer 200; returns the latencies' p50 and p99 in milliseconds.
pub fn tezos_latency(server: &Server, pkh: &str, total: u32, concurrency: u32) -> (f64, f64) {
    let url = format!("{}/keys/{pkh}", server.tezos_url());
    let per = total.div_ceil(concurrency);
    // Each call starts above every level an earlier call signed.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let base = 1_000_000 + 100_000 * CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut all: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..concurrency)
            .map(|t| {
                let url = url.clone();
                s.spawn(move || {
                    let client = client();
                    let chain = [0x5a, 0x11, 0x7e, t as u8];
                    (0..per)
                        .map(|i| {
                            let body =
                                serde_json::to_string(&tezos_attestation(chain, base + i, 0, 3))
                                    .unwrap();
                            let started = std::time::Instant::now();
                            let r = client
                                .post(&url)
                                .header("Content-Type", "application/json")
                                .body(body)
                                .send()
                                .unwrap();
                            let status = r.status().as_u16();
                            let text = r.text().unwrap_or_default();
                            assert_eq!(status, 200, "{text}");
                            started.elapsed().as_secs_f64() * 1000.0
                        })
                        .collect::<Vec<f64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    all.sort_by(f64::total_cmp);
    let at = |q: f64| all[((all.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

/// The chain id of the outage checks' attestations.
const OUTAGE_CHAIN: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

/// A network backend that stops answering (`hang` starts it, `recover` ends it): a request
/// for its key `pkh` ends at the key config's `timeoutMs` of 1500 ms with 503, while five for
/// the in-memory key `memory_pkh` answer 200 within 500 ms each; afterwards another
/// attestation at the same level signs, so the timed-out request moved no watermark.
pub fn hanging_backend_fails_alone(
    server: &Server,
    pkh: &str,
    memory_pkh: &str,
    hang: impl FnOnce(),
    recover: impl FnOnce(),
) {
    let level = 5_000;
    hang();
    let started = std::time::Instant::now();
    let url = format!("{}/keys/{pkh}", server.tezos_url());
    let blocked = std::thread::scope(|s| {
        let h = s.spawn(move || {
            let body = tezos_attestation(OUTAGE_CHAIN, level, 0, 1);
            let r = client()
                .post(url)
                .header("Content-Type", "application/json")
                .body(serde_json::to_string(&body).unwrap())
                .send()
                .unwrap();
            (r.status().as_u16(), r.text().unwrap())
        });
        std::thread::sleep(Duration::from_millis(100));
        for i in 0..5 {
            let t = std::time::Instant::now();
            let (status, body) = server.tezos_sign(
                memory_pkh,
                &tezos_attestation(OUTAGE_CHAIN, 10 + i, 0, 1),
                "",
            );
            assert_eq!(status, 200, "{body}");
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "{:?}",
                t.elapsed()
            );
        }
        h.join().unwrap()
    });
    let waited = started.elapsed();
    recover();
    assert_eq!(blocked.0, 503, "{}", blocked.1);
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    let (status, body) = server.tezos_sign(pkh, &tezos_attestation(OUTAGE_CHAIN, level, 0, 2), "");
    assert_eq!(
        status, 200,
        "the timed-out request moved the watermark: {body}"
    );
}

/// A network backend that answers with failures (`fail` starts it, `recover` ends it): its
/// key's request is answered 503 at once while the in-memory key signs, and after recovery
/// another attestation at that level signs. Returns the 503's body.
pub fn failing_backend_fails_alone(
    server: &Server,
    pkh: &str,
    memory_pkh: &str,
    fail: impl FnOnce(),
    recover: impl FnOnce(),
) -> String {
    let level = 5_001;
    fail();
    let t = std::time::Instant::now();
    let (status, refused) =
        server.tezos_sign(pkh, &tezos_attestation(OUTAGE_CHAIN, level, 0, 1), "");
    assert_eq!(status, 503, "{refused}");
    assert!(
        t.elapsed() < Duration::from_millis(1400),
        "{:?}",
        t.elapsed()
    );
    let (status, _) = server.tezos_sign(memory_pkh, &tezos_attestation(OUTAGE_CHAIN, 20, 0, 1), "");
    assert_eq!(status, 200);
    recover();
    let (status, body) = server.tezos_sign(pkh, &tezos_attestation(OUTAGE_CHAIN, level, 0, 2), "");
    assert_eq!(status, 200, "{body}");
    refused
}

/// Prints the Tezos signing latency of `pkh` (labelled `label`) and of the in-memory key at
/// concurrency 1 and 8, 400 requests each ([`tezos_latency`]).
pub fn print_tezos_latency(server: &Server, label: &str, pkh: &str, memory_pkh: &str) {
    for (label, pkh) in [(label, pkh), ("memory tz1", memory_pkh)] {
        for concurrency in [1, 8] {
            let (p50, p99) = tezos_latency(server, pkh, 400, concurrency);
            println!("latency {label} c={concurrency}: p50 {p50:.2} ms, p99 {p99:.2} ms");
        }
    }
}

/// The metrics listener's exposition text.
pub fn metrics_text(server: &Server) -> String {
    client()
        .get(format!("{}/metrics", server.metrics_url()))
        .send()
        .unwrap()
        .text()
        .unwrap()
}
