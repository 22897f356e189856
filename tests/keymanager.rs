//! The Keymanager API through the real binary: bearer-token authentication (401 without, 403
//! wrong), list, import with a slashing-protection document (all or nothing), persistence
//! (0600, survives a restart), delete (disabled in the shared database for every instance,
//! export returned), re-import; admin routes take the token.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Server, block, client, repo_dir, test_pubkey, test_secret, write_raw_key};
use serde_json::{Value, json};

const GVR: u8 = 5;

fn dev_keystore(i: u32) -> (String, String, String) {
    let base = repo_dir().join(format!("keystores/keystore-m_12381_3600_{i}_0_0.json"));
    let json = std::fs::read_to_string(&base).unwrap();
    let password = std::fs::read_to_string(base.with_extension("txt"))
        .unwrap()
        .trim_end()
        .to_string();
    let pubkey: Value = serde_json::from_str(&json).unwrap();
    let pk = format!(
        "0x{}",
        pubkey["pubkey"].as_str().unwrap().trim_start_matches("0x")
    );
    (json, password, pk)
}

/// An EIP-3076 document with one signed block at `slot` for `pubkey`.
fn interchange(gvr: u8, pubkey: &str, slot: u64) -> String {
    json!({
        "metadata": {
            "interchange_format_version": "5",
            "genesis_validators_root": format!("0x{}", hex::encode([gvr; 32]))
        },
        "data": [{
            "pubkey": pubkey,
            "signed_blocks": [{"slot": slot.to_string()}],
            "signed_attestations": []
        }]
    })
    .to_string()
}

fn start(dir: &Path, db: &str) -> Server {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    Server::start(
        dir,
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--slashing-protection-db-url",
            db,
            "--key-manager-api-enabled",
        ],
    )
}

struct Api<'a> {
    url: &'a str,
    token: String,
}

impl Api<'_> {
    fn call(&self, method: reqwest::Method, body: Option<Value>) -> (u16, Value) {
        let mut r = client()
            .request(method, format!("{}/eth/v1/keystores", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }
}

#[test]
fn keymanager_import_list_delete_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    write_raw_key(&dir.path().join("keys"), "readonly", &test_secret(0));
    let server = start(dir.path(), &db);

    // The token file: made at first start, 0600, 64 hex characters.
    let token_file = dir.path().join("api-token.txt");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(token.len(), 64);
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let api = Api {
        url: &server.url,
        token: token.clone(),
    };

    // Authentication.
    let r = client()
        .get(format!("{}/eth/v1/keystores", server.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = client()
        .get(format!("{}/eth/v1/keystores", server.url))
        .bearer_auth("0".repeat(64))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Admin routes now take the token too.
    let r = client()
        .get(format!("{}/api/v1/keys", server.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = client()
        .get(format!("{}/api/v1/keys", server.url))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let (s, list) = api.call(reqwest::Method::GET, None);
    assert_eq!(s, 200);
    assert_eq!(
        list["data"],
        json!([{"validating_pubkey": test_pubkey(0), "derivation_path": "", "readonly": true}])
    );

    // A failing slashing-protection document: nothing is activated.
    let (ks0, pw0, pk0) = dev_keystore(0);
    let (ks1, pw1, pk1) = dev_keystore(1);
    let (s, r) = api.call(
        reqwest::Method::POST,
        Some(json!({"keystores": [ks0, ks1], "passwords": [pw0, pw1], "slashing_protection": "{\"not\": \"an interchange\"}"})),
    );
    assert_eq!(s, 200, "{r}");
    for entry in r["data"].as_array().unwrap() {
        assert_eq!(entry["status"], "error", "{r}");
    }
    assert_eq!(server.sign(&pk0, &block(GVR, 50, 1)).0, 404);

    // Import with a document recording a block at slot 100 for key 0; a wrong password fails
    // alone.
    let (s, r) = api.call(
        reqwest::Method::POST,
        Some(json!({
            "keystores": [ks0, ks1],
            "passwords": [pw0, "not-the-password-7f3a"],
            "slashing_protection": interchange(GVR, &pk0, 100)
        })),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["data"][0]["status"], "imported", "{r}");
    assert_eq!(r["data"][1]["status"], "error", "{r}");
    let message = r["data"][1]["message"].as_str().unwrap();
    assert!(
        !message.is_empty() && !message.contains("not-the-password-7f3a"),
        "{message}"
    );
    assert_eq!(
        server.sign(&pk1, &block(GVR, 60, 1)).0,
        404,
        "key 1 not activated"
    );
    let persisted = dir
        .path()
        .join(format!("keys/keymanager/{}.json", &pk0[2..]));
    let mode = std::fs::metadata(&persisted).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The document was imported with the key: slot 100 with another root is refused.
    assert_eq!(server.sign(&pk0, &block(GVR, 100, 9)).0, 412);
    assert_eq!(server.sign(&pk0, &block(GVR, 101, 1)).0, 200);
    let (_, list) = api.call(reqwest::Method::GET, None);
    let imported = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["validating_pubkey"] == pk0)
        .unwrap();
    assert_eq!(imported["readonly"], false);
    assert_eq!(imported["derivation_path"], "m/12381/3600/0/0/0");
    // Importing it again is a duplicate.
    let (_, r) = api.call(
        reqwest::Method::POST,
        Some(json!({"keystores": [dev_keystore(0).0], "passwords": [dev_keystore(0).1]})),
    );
    assert_eq!(r["data"][0]["status"], "duplicate", "{r}");

    // Neither the token nor a keystore password reaches the log.
    let lines = server.stderr_lines();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(!line.contains(&token) && !line.contains(&pw0), "{line}");
    }

    // It survives a restart.
    server.stop();
    let server = start(dir.path(), &db);
    assert_eq!(server.sign(&pk0, &block(GVR, 102, 1)).0, 200);
    let api = Api {
        url: &server.url,
        token: token.clone(),
    };

    // A second instance on the same database with key 0 in its own files.
    let other = tempfile::tempdir().unwrap();
    let other_ks = other.path().join("keystores");
    std::fs::create_dir_all(&other_ks).unwrap();
    std::fs::write(other_ks.join("k0.json"), &ks0).unwrap();
    std::fs::write(other_ks.join("k0.txt"), &pw0).unwrap();
    let second = Server::start(
        other.path(),
        &[
            "--keystores-path",
            other_ks.to_str().unwrap(),
            "--slashing-protection-db-url",
            &db,
        ],
    );
    assert_eq!(second.sign(&pk0, &block(GVR, 103, 1)).0, 200);

    // Delete: deleted, read-only, unknown, malformed; the export has the blocks.
    let (s, r) = api.call(
        reqwest::Method::DELETE,
        Some(json!({"pubkeys": [pk0, test_pubkey(0), test_pubkey(7), "0x1234"]})),
    );
    assert_eq!(s, 200, "{r}");
    let statuses: Vec<&str> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["deleted", "error", "not_found", "error"], "{r}");
    let export: Value = serde_json::from_str(r["slashing_protection"].as_str().unwrap()).unwrap();
    let slots: Vec<&str> = export["data"][0]["signed_blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["slot"].as_str().unwrap())
        .collect();
    assert!(slots.contains(&"103") && slots.contains(&"101"), "{export}");
    assert_eq!(export["data"][0]["pubkey"], pk0);
    assert!(!persisted.exists(), "keystore file not removed");
    // Not served here any more, and refused by the other instance: disabled in the database.
    assert_eq!(server.sign(&pk0, &block(GVR, 110, 1)).0, 404);
    let (s, body) = second.sign(&pk0, &block(GVR, 111, 1));
    assert_eq!(s, 412, "{body}");
    assert!(body.contains("disabled"), "{body}");
    // The other instance's inventory shows the key disabled.
    let (_, inv) = second.get("/api/v1/keys");
    let inv: Value = serde_json::from_str(&inv).unwrap();
    assert_eq!(inv["keys"][0]["key"], pk0);
    assert_eq!(inv["keys"][0]["status"], "disabled", "{inv}");
    // Deleting it again: the database knows it, nothing serves it here.
    let (_, r) = api.call(reqwest::Method::DELETE, Some(json!({"pubkeys": [pk0]})));
    assert_eq!(r["data"][0]["status"], "not_active", "{r}");

    // Re-import enables it again everywhere.
    let (_, r) = api.call(
        reqwest::Method::POST,
        Some(json!({"keystores": [ks0], "passwords": [pw0]})),
    );
    assert_eq!(r["data"][0]["status"], "imported", "{r}");
    assert_eq!(server.sign(&pk0, &block(GVR, 120, 1)).0, 200);
    assert_eq!(second.sign(&pk0, &block(GVR, 121, 1)).0, 200);
    second.stop();
    server.stop();
}

#[test]
fn keymanager_needs_a_key_config_path_and_takes_a_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "serve",
            "--http-listen-port",
            "0",
            "--key-manager-api-enabled",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --key-config-path"));

    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "operator-chosen-token\n").unwrap();
    // A token file palisade did not create must be private (0600), or start-up is refused.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--key-manager-api-enabled",
            "--key-manager-api-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    let r = client()
        .get(format!("{}/eth/v1/keystores", server.url))
        .bearer_auth("operator-chosen-token")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(!dir.path().join("api-token.txt").exists());
    server.stop();
}
