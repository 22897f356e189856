//! moto (PyPI's AWS emulator, server mode) as AWS KMS and Secrets Manager, started per test
//! by `tests/vaults/moto_server.py` on an ephemeral 127.0.0.1 port. That harness patches
//! moto's KMS `Sign` to honour `MessageType=DIGEST` (stock moto hashes the digest again) so
//! signatures are checked over the real digest; `tests/vaults/moto_check.py` proves the patch
//! with boto3. Fails, never skips, when the venv is missing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// A running moto server; stopped on drop.
pub struct Moto {
    child: Child,
    /// `http(s)://127.0.0.1:PORT`
    pub endpoint: String,
    /// The harness's test CA, when it serves HTTPS.
    pub ca: Option<std::path::PathBuf>,
    _dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

impl Moto {
    /// Starts `moto_server.py` (plain HTTP) and waits for its ready line.
    pub fn start() -> Moto {
        Self::start_with(false)
    }

    /// Starts `moto_server.py`, over HTTPS under a fresh test CA when `tls`.
    pub fn start_with(tls: bool) -> Moto {
        let dir = tempfile::tempdir().unwrap();
        let python = super::repo_dir().join("tests/vaults/.venv/bin/python");
        assert!(
            python.exists(),
            "the vault venv is missing ({}): scripts/test.sh installs tests/vaults/requirements.txt",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(super::repo_dir().join("tests/vaults/moto_server.py"))
            .arg("--port")
            .arg("0")
            .arg("--exit-on-stdin-eof")
            .args(if tls {
                vec!["--tls-dir".to_string(), dir.path().display().to_string()]
            } else {
                vec![]
            })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start moto_server.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("\"ready\"") {
                    let _ = tx.send(line);
                }
            }
        });
        let ready: Value = serde_json::from_str(
            &rx.recv_timeout(Duration::from_secs(120))
                .expect("moto_server.py printed its ready line"),
        )
        .unwrap();
        let ca = ready["ca"].as_str().map(std::path::PathBuf::from);
        let mut http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60));
        if let Some(ca) = &ca {
            let pem = std::fs::read(ca).unwrap();
            http = http
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        Moto {
            child,
            endpoint: ready["endpoint"].as_str().unwrap().to_string(),
            ca,
            _dir: dir,
            http: http.build().unwrap(),
        }
    }

    /// Calls an AWS JSON API action (`TrentService.CreateKey`, `secretsmanager.CreateSecret`)
    /// with dummy credentials in region us-east-1; returns status and JSON.
    pub fn call(&self, target: &str, body: Value) -> (u16, Value) {
        let service = if target.starts_with("TrentService") {
            "kms"
        } else {
            "secretsmanager"
        };
        let r = self
            .http
            .post(&self.endpoint)
            .header("X-Amz-Target", target)
            .header("Content-Type", "application/x-amz-json-1.1")
            .header(
                "Authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/{service}/aws4_request, \
                     SignedHeaders=host, Signature=00"
                ),
            )
            .body(body.to_string())
            .send()
            .expect("moto call");
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_str(&r.text().unwrap()).unwrap_or(Value::Null),
        )
    }

    /// Creates a KMS SIGN_VERIFY key of `spec` (`ECC_SECG_P256K1`, `ECC_NIST_P256`); returns
    /// its key id.
    pub fn create_key(&self, spec: &str) -> String {
        let (s, v) = self.call(
            "TrentService.CreateKey",
            json!({"KeySpec": spec, "KeyUsage": "SIGN_VERIFY"}),
        );
        assert_eq!(s, 200, "{v}");
        v["KeyMetadata"]["KeyId"].as_str().unwrap().to_string()
    }

    /// Creates secrets `names[i]` = `values[i]` with `tags`, straight in moto's backend.
    pub fn bulk_secrets(&self, names: &[String], values: &[String], tags: Value) {
        let r = self
            .http
            .post(format!("{}/_harness/bulk-secrets", self.endpoint))
            .json(&json!({"names": names, "values": values, "tags": tags, "region": "us-east-1", "prefix": ""}))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap_or_default());
    }

    /// Starts (`mode` `503`, `hang`, …) or ends (`None`) an outage of every action.
    pub fn outage(&self, mode: Option<&str>) {
        let body = match mode {
            Some(m) => json!({"on": true, "mode": m}),
            None => json!({"on": false}),
        };
        let r = self
            .http
            .post(format!("{}/_harness/outage", self.endpoint))
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }

    /// The harness's request counters (`requests`, `max_in_flight`, …).
    pub fn stats(&self) -> Value {
        self.http
            .get(format!("{}/_harness/stats", self.endpoint))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// Resets the counters.
    pub fn reset_stats(&self) {
        self.http
            .post(format!("{}/_harness/stats/reset", self.endpoint))
            .send()
            .unwrap();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
