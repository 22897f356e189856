//! The Azure Key Vault stand-in (`tests/vaults/azure_standin.py`: keys, signing with
//! ES256/ES256K answering high-S about half the time, secrets, the Entra token endpoint,
//! HTTPS under its own test CA), started per test. `tests/vaults/azure_sdk_check.py` proves
//! it faithful with Microsoft's own Python SDKs. Fails, never skips, when the venv is missing.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The client secret the stand-in accepts.
pub const CLIENT_SECRET: &str = "azure-standin-client-secret-not-for-logs";

/// A running stand-in; killed on drop.
pub struct AzureStandIn {
    child: Child,
    _dir: tempfile::TempDir,
    /// `https://127.0.0.1:PORT`: vault URL and authority host.
    pub url: String,
    /// The stand-in's CA certificate.
    pub ca: PathBuf,
    /// Tenant and client id it accepts.
    pub tenant: String,
    pub client_id: String,
    /// A file holding [`CLIENT_SECRET`].
    pub secret_file: PathBuf,
    /// The client certificate the stand-in registered (PKCS#12) and a file with its password.
    pub cert_pfx: PathBuf,
    pub cert_password_file: PathBuf,
    http: reqwest::blocking::Client,
}

impl AzureStandIn {
    /// Starts the stand-in and waits for its ready line.
    pub fn start() -> AzureStandIn {
        let python = super::repo_dir().join("tests/vaults/.venv/bin/python");
        assert!(
            python.exists(),
            "the vault venv is missing ({}): scripts/test.sh installs tests/vaults/requirements.txt",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("client-secret");
        std::fs::write(&secret_file, CLIENT_SECRET).unwrap();
        let (tenant, client_id) = ("palisade-tenant", "palisade-client");
        let mut child = Command::new(python)
            .arg(super::repo_dir().join("tests/vaults/azure_standin.py"))
            .arg("--dir")
            .arg(dir.path())
            .args(["--port", "0", "--tenant", tenant, "--client-id", client_id])
            .arg("--client-secret-file")
            .arg(&secret_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start azure_standin.py");
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
            &rx.recv_timeout(Duration::from_secs(60))
                .expect("azure_standin.py printed its ready line"),
        )
        .unwrap();
        let ca = PathBuf::from(ready["ca"].as_str().unwrap());
        let pem = std::fs::read(&ca).unwrap();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        let cert_password_file = dir.path().join("pfx-password");
        std::fs::write(
            &cert_password_file,
            ready["client_cert_password"]
                .as_str()
                .expect("client_cert_password"),
        )
        .unwrap();
        AzureStandIn {
            cert_pfx: PathBuf::from(ready["client_cert_pfx"].as_str().expect("client_cert_pfx")),
            cert_password_file,
            child,
            _dir: dir,
            url: ready["vault_url"].as_str().unwrap().to_string(),
            ca,
            tenant: tenant.into(),
            client_id: client_id.into(),
            secret_file,
            http,
        }
    }

    fn token(&self) -> String {
        let r = self
            .http
            .post(format!("{}/{}/oauth2/v2.0/token", self.url, self.tenant))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", CLIENT_SECRET),
                ("scope", "https://vault.azure.net/.default"),
            ])
            .send()
            .unwrap();
        let v: Value = r.json().unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    /// Creates an EC key `name` on `crv` (`P-256`, `P-256K`); returns its key bundle.
    pub fn create_key(&self, name: &str, crv: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/keys/{name}/create?api-version=7.5", self.url))
            .bearer_auth(self.token())
            .json(&json!({"kty": "EC", "crv": crv}))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "create key {name}: {}", r.status());
        r.json().unwrap()
    }

    /// Creates secrets `names[i]` = `values[i]` with `tags`.
    pub fn bulk_secrets(&self, names: &[String], values: &[String], tags: Value) {
        let r = self
            .http
            .post(format!("{}/_standin/bulk-secrets", self.url))
            .json(&json!({"names": names, "values": values, "tags": tags, "prefix": ""}))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap_or_default());
    }

    /// Starts (`503`, `hang`) or ends (`None`) an outage.
    pub fn outage(&self, mode: Option<&str>) {
        let body = match mode {
            Some(m) => json!({"on": true, "mode": m}),
            None => json!({"on": false}),
        };
        let r = self
            .http
            .post(format!("{}/_standin/outage", self.url))
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }

    /// The stand-in's counters (`routes`, `max_inflight`, …).
    pub fn stats(&self) -> Value {
        self.http
            .get(format!("{}/_standin/stats", self.url))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// Resets the counters.
    pub fn reset_stats(&self) {
        self.http
            .post(format!("{}/_standin/stats/reset", self.url))
            .send()
            .unwrap();
    }

    /// The fields of a key config: vault URL, authority host, CA, client secret from a file.
    pub fn config_fields(&self) -> String {
        format!(
            "vaultUrl: {url}\nauthorityHost: {url}\ntlsCaFile: {}\ntenantId: {}\nclientId: {}\n\
             clientSecretFile: {}\n",
            self.ca.display(),
            self.tenant,
            self.client_id,
            self.secret_file.display(),
            url = self.url
        )
    }
}

impl AzureStandIn {
    /// As [`AzureStandIn::config_fields`], authenticating with the client certificate.
    pub fn certificate_fields(&self) -> String {
        format!(
            "vaultUrl: {url}\nauthorityHost: {url}\ntlsCaFile: {}\ntenantId: {}\nclientId: {}\n\
             authenticationMode: CLIENT_CERTIFICATE\nclientCertificateFile: {}\n\
             clientCertificatePasswordFile: {}\n",
            self.ca.display(),
            self.tenant,
            self.client_id,
            self.cert_pfx.display(),
            self.cert_password_file.display(),
            url = self.url
        )
    }

    /// The fields of a key config using the system-assigned managed identity (App Service
    /// flavour: the server needs `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, [`Self::identity_env`]).
    pub fn managed_identity_fields(&self) -> String {
        format!(
            "vaultUrl: {}\ntlsCaFile: {}\nauthenticationMode: SYSTEM_ASSIGNED_MANAGED_IDENTITY\n",
            self.url,
            self.ca.display()
        )
    }

    /// The environment of App Service's managed identity endpoint, pointed at the stand-in.
    pub fn identity_env(&self) -> [(String, String); 2] {
        [
            (
                "IDENTITY_ENDPOINT".into(),
                format!("{}/msi/token", self.url),
            ),
            ("IDENTITY_HEADER".into(), "standin".into()),
        ]
    }
}

impl Drop for AzureStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
