//! Fuzz target: reading the key configs of the backends that call a network service
//! (`hashicorp`, `vault-kv-bulk`, `vault-transit`, and the AWS and Azure types when the
//! `cloud-vaults` feature is built), through `Backend::prepare` only: prepare reads the config
//! and builds the HTTP client without a network call, so the key-config target (which loads
//! keys) skips these types.
//!
//! As in `key_config`, an input is skipped unless every path field names nothing that exists
//! and the YAML has no tags, so that a run never reads a device or a real file.
//!
//! Invariants: no panic; the same outcome twice; a refusal quotes no credential of the config
//! (`token`, `secretId`, `roleId`, `clientSecret`, `secretAccessKey`, `sessionToken`, inline or
//! under `appRole`).
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use palisade::keys::backend::{backend, remote_kinds};
use serde_norway::Value;

static SCRATCH: LazyLock<tempfile::TempDir> =
    LazyLock::new(|| tempfile::tempdir().expect("scratch directory"));

/// Config fields that carry a credential inline.
const CREDENTIAL_FIELDS: [&str; 6] = [
    "token",
    "secretId",
    "roleId",
    "clientSecret",
    "secretAccessKey",
    "sessionToken",
];

fn has_tags(v: &Value) -> bool {
    match v {
        Value::Tagged(_) => true,
        Value::Sequence(s) => s.iter().any(has_tags),
        Value::Mapping(m) => m.iter().any(|(k, v)| has_tags(k) || has_tags(v)),
        _ => false,
    }
}

/// Whether every string under a field whose name mentions a file names nothing that exists.
fn safe(v: &Value, dir: &Path) -> bool {
    let Value::Mapping(map) = v else {
        return true;
    };
    map.iter().all(|(k, v)| {
        let name = k.as_str().unwrap_or_default().to_ascii_lowercase();
        if let Value::Mapping(_) = v {
            return safe(v, dir);
        }
        if !name.contains("file") && !name.contains("path") {
            return true;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return true,
        };
        text.is_empty()
            || text.contains('\0')
            || !(dir.join(&text).exists() || Path::new(&text).exists() || text.contains(".."))
    })
}

/// The credentials written inline in the config (at the top level or one mapping down).
fn credentials(v: &Value, out: &mut Vec<String>) {
    let Value::Mapping(map) = v else { return };
    for (k, v) in map {
        match v {
            Value::Mapping(_) => credentials(v, out),
            Value::String(s) if CREDENTIAL_FIELDS.contains(&k.as_str().unwrap_or_default()) => {
                // Credential-like strings only: a short word may be part of a fixed message.
                if s.trim().len() >= 12 {
                    out.push(s.trim().to_string());
                }
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = serde_norway::from_str::<Value>(text) else {
        return;
    };
    let dir = SCRATCH.path();
    if has_tags(&doc) || !safe(&doc, dir) {
        return;
    }
    let mut secrets = Vec::new();
    credentials(&doc, &mut secrets);
    let file = dir.join("key.yaml");
    for kind in remote_kinds() {
        let b = backend(kind).expect("a listed kind has a backend");
        let first = b.prepare(text, &file).err();
        let second = b.prepare(text, &file).err();
        assert_eq!(first, second, "{kind}: not deterministic");
        if let Some(reason) = first {
            for s in &secrets {
                assert!(
                    !reason.contains(s.as_str()),
                    "{kind}: the error quotes a credential: {reason}"
                );
            }
        }
    }
});
