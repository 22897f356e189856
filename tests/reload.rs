//! Reloading keys without a restart, through the real binary: `POST /reload` (202, 409 while
//! one runs), `GET /reload`, and SIGHUP load added key files and drop removed ones while the
//! other keys keep signing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    Server, attestation, block, client, repo_dir, test_pubkey, test_secret, write_raw_key,
};
use serde_json::Value;

fn public_keys(server: &Server) -> Vec<String> {
    let (s, body) = server.get("/api/v1/eth2/publicKeys");
    assert_eq!(s, 200);
    serde_json::from_str(&body).unwrap()
}

fn wait_reload(server: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (s, body) = server.get("/reload");
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["status"] != "running" {
            return v;
        }
        assert!(Instant::now() < deadline, "reload never finished: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn reload_adds_and_removes_keys_while_others_sign() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    write_raw_key(&keys, "k0", &test_secret(0));
    // Many copies of the development keystores, so that a reload takes a while (each is
    // decrypted again; duplicates are served once).
    let ks = dir.path().join("keystores");
    std::fs::create_dir_all(&ks).unwrap();
    let dev = repo_dir().join("keystores");
    for copy in 0..3 {
        for e in std::fs::read_dir(&dev).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if name.ends_with(".json") || name.ends_with(".txt") {
                std::fs::copy(&p, ks.join(format!("c{copy}-{name}"))).unwrap();
            }
        }
    }
    let server = Server::start(
        dir.path(),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--keystores-path",
            ks.to_str().unwrap(),
        ],
    );
    let idle: Value = serde_json::from_str(&server.get("/reload").1).unwrap();
    assert_eq!(idle["status"], "idle", "{idle}");
    let before = public_keys(&server);
    assert!(before.contains(&test_pubkey(0)));
    let steady = before
        .iter()
        .find(|k| **k != test_pubkey(0))
        .unwrap()
        .clone();
    assert_eq!(server.sign(&test_pubkey(0), &block(1, 5, 1)).0, 200);

    // key 1 added, key 0 removed on disk.
    write_raw_key(&keys, "k1", &test_secret(1));
    std::fs::remove_file(keys.join("k0.yaml")).unwrap();
    // And a vault key whose server accepts connections but never answers, so that the reload
    // lasts at least its timeout whatever the machine's speed (the keystores alone are not
    // decrypted again, their bytes being unchanged, and a fast reload could end before the
    // second POST below).
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_addr = hanging.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hanging.incoming().flatten() {
            held.push(s);
        }
    });
    std::fs::write(dir.path().join("vault-token"), "s.test-token\n").unwrap();
    std::fs::write(
        keys.join("slow.yaml"),
        format!(
            "type: vault-transit\naddress: http://{hanging_addr}\ntokenFile: {}\nkeyName: slow\ntimeoutMs: 1500\n",
            dir.path().join("vault-token").display()
        ),
    )
    .unwrap();

    // A keystore key signs throughout the reload.
    let stop = Arc::new(AtomicBool::new(false));
    let url = server.url.clone();
    let signer = {
        let (stop, steady) = (stop.clone(), steady.clone());
        std::thread::spawn(move || {
            let mut statuses = Vec::new();
            let mut epoch = 1;
            while !stop.load(Ordering::SeqCst) {
                let r = client()
                    .post(format!("{url}/api/v1/eth2/sign/{steady}"))
                    .json(&attestation(1, epoch, epoch + 1, 3))
                    .send()
                    .unwrap();
                statuses.push(r.status().as_u16());
                epoch += 1;
            }
            statuses
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let r = client()
        .post(format!("{}/reload", server.url))
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let again = client()
        .post(format!("{}/reload", server.url))
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(
        again.status().as_u16(),
        409,
        "a second reload while one runs"
    );
    let status = wait_reload(&server);
    std::fs::remove_file(keys.join("slow.yaml")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let statuses = signer.join().unwrap();
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        status["added"],
        serde_json::json!([test_pubkey(1)]),
        "{status}"
    );
    assert_eq!(
        status["removed"],
        serde_json::json!([test_pubkey(0)]),
        "{status}"
    );
    assert!(
        statuses.len() >= 5,
        "only {} signatures during the reload",
        statuses.len()
    );
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let after = public_keys(&server);
    assert!(after.contains(&test_pubkey(1)) && !after.contains(&test_pubkey(0)));
    assert_eq!(server.sign(&test_pubkey(1), &block(1, 6, 1)).0, 200);
    assert_eq!(server.sign(&test_pubkey(0), &block(1, 7, 1)).0, 404);

    // SIGHUP does the same.
    write_raw_key(&keys, "k2", &test_secret(2));
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) }, 0);
    let deadline = Instant::now() + Duration::from_secs(180);
    while !public_keys(&server).contains(&test_pubkey(2)) {
        assert!(Instant::now() < deadline, "SIGHUP did not load the new key");
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = wait_reload(&server);
    assert_eq!(
        status["added"],
        serde_json::json!([test_pubkey(2)]),
        "{status}"
    );
    assert_eq!(server.sign(&test_pubkey(2), &block(1, 8, 1)).0, 200);
    server.stop();
}
