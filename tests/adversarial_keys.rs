//! Hostile keys and secrets through the real binary: keystores whose KDF parameters would
//! allocate a petabyte (scrypt `n` = 2^40) or stall (huge scrypt `p`, huge PBKDF2 `c`) are
//! load errors like a wrong password, at start-up, through `--key-config-path` and through the
//! Keymanager API; a reload of many scrypt keystores does not stall signing with other keys; a
//! reload where nothing changed decrypts nothing; a group/world-readable Keymanager token file
//! is refused at start.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Server, attestation, client, repo_dir, test_pubkey, test_secret, write_raw_key};
use palisade::keys::keystore_writer::{Kdf, encrypt_keystore};
use serde_json::{Value, json};

/// The development keystore `i` (0–3 PBKDF2, 4 scrypt), its password and `0x` public key.
fn dev_keystore(i: u32) -> (Value, String, String) {
    let base = repo_dir().join(format!("keystores/keystore-m_12381_3600_{i}_0_0.json"));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    let password = std::fs::read_to_string(base.with_extension("txt"))
        .unwrap()
        .trim_end()
        .to_string();
    let pk = format!(
        "0x{}",
        json["pubkey"].as_str().unwrap().trim_start_matches("0x")
    );
    (json, password, pk)
}

/// The scrypt development keystore with its KDF parameters overridden.
fn hostile_scrypt(n: u64, r: u64, p: u64) -> Value {
    let (mut ks, _, _) = dev_keystore(4);
    let params = &mut ks["crypto"]["kdf"]["params"];
    params["n"] = json!(n);
    params["r"] = json!(r);
    params["p"] = json!(p);
    ks
}

/// A PBKDF2 development keystore with `c` overridden.
fn hostile_pbkdf2(c: u64) -> Value {
    let (mut ks, _, _) = dev_keystore(0);
    ks["crypto"]["kdf"]["params"]["c"] = json!(c);
    ks
}

fn write_keystore(dir: &Path, stem: &str, ks: &Value, password: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{stem}.json")), ks.to_string()).unwrap();
    std::fs::write(dir.join(format!("{stem}.txt")), password).unwrap();
}

fn public_keys(server: &Server) -> Vec<String> {
    let (s, body) = server.get("/api/v1/eth2/publicKeys");
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn failed_entries(server: &Server) -> Vec<Value> {
    let (s, body) = server.get("/api/v1/keys");
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["status"] == "failed")
        .cloned()
        .collect()
}

fn wait_reload(server: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (s, body) = server.get("/reload");
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["status"] != "running" {
            return v;
        }
        assert!(Instant::now() < deadline, "reload never finished: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hostile_kdf_parameters_on_disk_are_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("keystores");
    let (good, good_pw, good_pk) = dev_keystore(0);
    write_keystore(&ks, "good", &good, &good_pw);
    let (_, scrypt_pw, _) = dev_keystore(4);
    write_keystore(&ks, "petabyte", &hostile_scrypt(1 << 40, 8, 1), &scrypt_pw);
    write_keystore(
        &ks,
        "wide",
        &hostile_scrypt(1 << 18, 8, 1 << 20),
        &scrypt_pw,
    );
    write_keystore(&ks, "slow", &hostile_pbkdf2(1 << 31), &good_pw);
    // The same through a `file-keystore` key config.
    let keys = dir.path().join("keys");
    let (k1, k1_pw, k1_pk) = dev_keystore(1);
    write_keystore(&keys.join("ks"), "k1", &k1, &k1_pw);
    write_keystore(
        &keys.join("ks"),
        "hostile",
        &hostile_scrypt(1 << 40, 8, 1),
        &scrypt_pw,
    );
    std::fs::write(
        keys.join("hostile.yaml"),
        "type: file-keystore\nkeyType: BLS\nkeystoreFile: ks/hostile.json\nkeystorePasswordFile: ks/hostile.txt\n",
    )
    .unwrap();
    std::fs::write(
        keys.join("k1.yaml"),
        "type: file-keystore\nkeyType: BLS\nkeystoreFile: ks/k1.json\nkeystorePasswordFile: ks/k1.txt\n",
    )
    .unwrap();

    let started = Instant::now();
    let server = Server::start(
        dir.path(),
        &[
            "--keystores-path",
            ks.to_str().unwrap(),
            "--key-config-path",
            keys.to_str().unwrap(),
        ],
    );
    println!(
        "start-up with 4 hostile keystores: listening after {:?}",
        started.elapsed()
    );
    let pks = public_keys(&server);
    assert!(pks.contains(&good_pk), "{pks:?}");
    assert!(pks.contains(&k1_pk), "{pks:?}");
    let (s, body) = server.get("/healthcheck");
    assert_eq!(s, 503, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        health["checks"][0]["checks"][0]["data"]["error-count"], 4,
        "{health}"
    );
    let failed = failed_entries(&server);
    assert_eq!(failed.len(), 4, "{failed:?}");
    for name in ["petabyte.json", "wide.json", "slow.json", "hostile.yaml"] {
        let f = failed
            .iter()
            .find(|f| f["source"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported: {failed:?}"));
        let reason = f["reason"].as_str().unwrap();
        assert!(reason.contains("ceiling"), "{name}: {reason}");
    }
    // Still signing.
    assert_eq!(server.sign(&good_pk, &attestation(1, 1, 2, 1)).0, 200);
    assert_eq!(server.get("/upcheck").0, 200);
    server.stop();
}

#[test]
fn hostile_kdf_parameters_posted_to_keymanager_are_refused_fast() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--key-manager-api-enabled",
        ],
    );
    let token = std::fs::read_to_string(dir.path().join("api-token.txt")).unwrap();
    let (_, scrypt_pw, _) = dev_keystore(4);
    let (_, pbkdf2_pw, _) = dev_keystore(0);
    let cases = [
        (
            "scrypt n=2^40",
            hostile_scrypt(1 << 40, 8, 1),
            scrypt_pw.clone(),
        ),
        (
            "scrypt p=2^20",
            hostile_scrypt(1 << 18, 8, 1 << 20),
            scrypt_pw.clone(),
        ),
        (
            "scrypt r=2^24",
            hostile_scrypt(1 << 18, 1 << 24, 1),
            scrypt_pw.clone(),
        ),
        ("pbkdf2 c=2^31", hostile_pbkdf2(1 << 31), pbkdf2_pw.clone()),
    ];
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for (what, ks, pw) in cases {
        let started = Instant::now();
        let r = http
            .post(format!("{}/eth/v1/keystores", server.url))
            .bearer_auth(token.trim())
            .json(&json!({"keystores": [ks.to_string()], "passwords": [pw]}))
            .send();
        let took = started.elapsed();
        println!("Keymanager import of a keystore with {what}: answered in {took:?}");
        let r = r.unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        assert_eq!(r.status().as_u16(), 200, "{what}");
        let v: Value = r.json().unwrap();
        assert_eq!(v["data"][0]["status"], "error", "{what}: {v}");
        let msg = v["data"][0]["message"].as_str().unwrap();
        assert!(msg.contains("ceiling"), "{what}: {msg}");
        assert!(took < Duration::from_secs(1), "{what}: took {took:?}");
        assert_eq!(server.get("/upcheck").0, 200, "{what}");
    }
    // A normal keystore still imports.
    let (ks, pw, pk) = dev_keystore(2);
    let r = http
        .post(format!("{}/eth/v1/keystores", server.url))
        .bearer_auth(token.trim())
        .json(&json!({"keystores": [ks.to_string()], "passwords": [pw]}))
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    assert_eq!(v["data"][0]["status"], "imported", "{v}");
    assert!(public_keys(&server).contains(&pk));
    server.stop();
}

/// Latency percentiles of a sorted sample.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn reload_of_scrypt_keystores_does_not_stall_signing_and_unchanged_files_are_not_decrypted() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    write_raw_key(&keys, "k0", &test_secret(0));
    let ks = dir.path().join("keystores");
    std::fs::create_dir_all(&ks).unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--keystores-path",
            ks.to_str().unwrap(),
        ],
    );
    let steady = test_pubkey(0);
    // Twelve scrypt keystores with ethstaker-deposit's parameters (n = 2^18, r = 8, p = 1).
    for i in 0..12u8 {
        let mut secret = [0u8; 32];
        secret[31] = 100 + i;
        let v = encrypt_keystore(&secret, "hostile neighbours", Kdf::Scrypt, "", "").unwrap();
        write_keystore(&ks, &format!("s{i}"), &v, "hostile neighbours");
    }

    let reload_with_signing = |label: &str, epoch0: u64| -> (Duration, Vec<Duration>) {
        let stop = Arc::new(AtomicBool::new(false));
        let url = server.url.clone();
        let signer = {
            let (stop, steady) = (stop.clone(), steady.clone());
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut epoch = epoch0;
                let http = client();
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let r = http
                        .post(format!("{url}/api/v1/eth2/sign/{steady}"))
                        .json(&attestation(1, epoch, epoch + 1, 3))
                        .send()
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                    latencies.push(started.elapsed());
                    epoch += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                latencies
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        let r = client()
            .post(format!("{}/reload", server.url))
            .json(&json!({}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let status = wait_reload(&server);
        let took = started.elapsed();
        stop.store(true, Ordering::SeqCst);
        let mut latencies = signer.join().unwrap();
        assert_eq!(status["status"], "completed", "{label}: {status}");
        latencies.sort();
        println!(
            "{label}: reload took {took:?}; {} attestations signed with another key meanwhile: \
             p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().unwrap()
        );
        (took, latencies)
    };

    let (_, latencies) = reload_with_signing("reload decrypting 12 scrypt keystores", 1);
    assert_eq!(public_keys(&server).len(), 13);
    let max = *latencies.last().unwrap();
    assert!(
        max < Duration::from_secs(1),
        "an attestation waited {max:?} behind the reload's key decryption"
    );
    let _ = server.stderr_lines();

    // Nothing changed: nothing is decrypted again.
    let (took, _) = reload_with_signing("reload with nothing changed", 10_000);
    std::thread::sleep(Duration::from_millis(200));
    let lines = server.stderr_lines();
    let line = lines
        .iter()
        .find(|l| l.contains("keys reloaded"))
        .unwrap_or_else(|| panic!("no reload log line: {lines:?}"));
    assert!(line.contains("decrypted=0"), "{line}");
    assert!(line.contains("reused=12"), "{line}");
    assert!(
        took < Duration::from_secs(2),
        "an unchanged reload took {took:?}"
    );

    // One file changed (rewritten with another password): only it is decrypted.
    let mut secret = [0u8; 32];
    secret[31] = 100;
    let v = encrypt_keystore(&secret, "another", Kdf::Scrypt, "", "").unwrap();
    write_keystore(&ks, "s0", &v, "another");
    reload_with_signing("reload with one keystore changed", 20_000);
    std::thread::sleep(Duration::from_millis(200));
    let lines = server.stderr_lines();
    let line = lines
        .iter()
        .find(|l| l.contains("keys reloaded"))
        .unwrap_or_else(|| panic!("no reload log line: {lines:?}"));
    assert!(line.contains("decrypted=1"), "{line}");
    assert!(line.contains("reused=11"), "{line}");
    assert_eq!(public_keys(&server).len(), 13);
    server.stop();
}

/// Runs `palisade serve` expecting it to exit before listening; returns its stderr.
fn start_expecting_refusal(data_dir: &Path, args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("serve")
        .arg("--http-listen-port")
        .arg("0")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "palisade exited 0");
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("palisade started with a world-readable token file");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn group_or_world_readable_token_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let token = dir.path().join("token.txt");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef").unwrap();
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = start_expecting_refusal(
            dir.path(),
            &[
                "--key-config-path",
                keys.to_str().unwrap(),
                "--key-manager-api-enabled",
                "--key-manager-api-token-file",
                token.to_str().unwrap(),
            ],
        );
        assert!(
            err.contains("token.txt") && err.contains("chmod 600"),
            "mode {mode:o}: {err}"
        );
        assert!(!err.contains("0123456789abcdef"), "the token leaked: {err}");
    }
    // 0600 starts.
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--key-manager-api-enabled",
            "--key-manager-api-token-file",
            token.to_str().unwrap(),
        ],
    );
    let r = client()
        .get(format!("{}/eth/v1/keystores", server.url))
        .bearer_auth("0123456789abcdef0123456789abcdef")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    server.stop();
}
