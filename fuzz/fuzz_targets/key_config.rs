//! Fuzz target: the YAML key-config parser (`keys::key_config`, reached through
//! `KeyRegistry::load` with a key-config directory; the parser itself is private).
//!
//! Each run writes the input as the only `*.yaml` file of a scratch directory and loads it.
//! The loader follows paths named in the config (keystore, password and PIN files, PKCS#11
//! modules); so that a run never reads a device, a large file or a real keystore, nor loads
//! a library, an input is skipped unless every path field names nothing that exists (after
//! resolving relative paths against the scratch directory) and the YAML has no tags, and the
//! vault types (which call their service at load) are left to `remote_key_config`.
//!
//! Invariants: no panic; one file gives exactly one outcome (one key, or one failure naming
//! the file); the outcome is the same on a second load; a `file-raw` key loads to the public
//! key of its `privateKey`, a `tezos-secret` key to the pkh of its `secretKey`; a failure's
//! reason quotes neither `privateKey` nor `secretKey`.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use palisade::keys::backend::is_remote;
use palisade::keys::tezos::decode_secret_key;
use palisade::keys::{KeyRegistry, KeySources};
use serde_norway::Value;

static SCRATCH: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    dir.expect("scratch directory")
});

/// Config fields that name files or libraries.
const PATH_FIELDS: [&str; 6] = [
    "keystoreFile",
    "keystorePasswordFile",
    "passwordFile",
    "pinFile",
    "module",
    "wrappedKeystoreFile",
];

fn has_tags(v: &Value) -> bool {
    match v {
        Value::Tagged(_) => true,
        Value::Sequence(s) => s.iter().any(has_tags),
        Value::Mapping(m) => m.iter().any(|(k, v)| has_tags(k) || has_tags(v)),
        _ => false,
    }
}

/// Whether loading this config can only touch paths that do not exist.
fn safe(doc: &Value, dir: &Path) -> bool {
    if has_tags(doc) {
        return false;
    }
    let Value::Mapping(map) = doc else {
        return true;
    };
    // The vault backends call their service at load: `remote_key_config` fuzzes their
    // configs without loading.
    if map
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| is_remote(t.trim()))
    {
        return false;
    }
    for (k, v) in map {
        let Some(name) = k.as_str() else { continue };
        // Keys are matched exactly by the parser; anything close to a path field is
        // checked too.
        let lowered = name.to_ascii_lowercase();
        let pathlike = PATH_FIELDS
            .iter()
            .any(|f| f.to_ascii_lowercase() == lowered)
            || lowered.contains("file")
            || lowered.contains("module");
        if !pathlike {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            _ => continue,
        };
        if text.contains('\0') || text.is_empty() {
            continue;
        }
        // `module` is used as given (dlopen searches the library path for bare names).
        if lowered == "module" && !text.contains('/') {
            return false;
        }
        if dir.join(&text).exists() || Path::new(&text).exists() || text.contains("..") {
            return false;
        }
    }
    true
}

fn outcome(registry: &KeyRegistry) -> (Vec<String>, Vec<String>) {
    let keys: Vec<String> = registry.inventory().into_iter().map(|k| k.key).collect();
    let failed: Vec<String> = registry
        .failed()
        .iter()
        .map(|f| f.error.reason.clone())
        .collect();
    (keys, failed)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = SCRATCH.path();
    let doc: Option<Value> = serde_norway::from_str(text).ok();
    if let Some(doc) = &doc
        && !safe(doc, dir)
    {
        return;
    }
    if doc.is_none() && (text.contains("file") || text.contains("module")) {
        // Not one YAML document for the check above: skip anything that may name a path.
        return;
    }
    let file = dir.join("key.yaml");
    std::fs::write(&file, text).expect("write config");
    let sources = KeySources {
        keystores_path: None,
        keystores_passwords_path: None,
        keystores_password_file: None,
        key_config_path: Some(dir.to_path_buf()),
    };
    let registry = KeyRegistry::load(&sources);
    let (keys, failed) = outcome(&registry);
    assert_eq!(
        keys.len() + failed.len(),
        1,
        "one file, one outcome: {keys:?} {failed:?}"
    );
    assert_eq!(
        (keys.clone(), failed.clone()),
        outcome(&KeyRegistry::load(&sources)),
        "not deterministic"
    );

    let field = |name: &str| {
        doc.as_ref()
            .and_then(|d| d.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let kind = field("type");
    let secrets: Vec<String> = [field("privateKey"), field("secretKey")]
        .into_iter()
        .flatten()
        .map(|s| s.trim().trim_start_matches("unencrypted:").to_string())
        // Key-like strings only (base58 or hex: letters and digits, both): a word that
        // happens to be part of a message's fixed text is no leak.
        .filter(|s| {
            s.len() >= 12
                && s.chars().all(|c| c.is_ascii_alphanumeric())
                && s.chars().any(|c| c.is_ascii_digit())
                && s.chars().any(|c| c.is_ascii_alphabetic())
        })
        .collect();
    for f in registry.failed() {
        assert_eq!(f.error.file, file, "failure names another file");
        for s in &secrets {
            assert!(
                !f.error.reason.contains(s.as_str()),
                "the error quotes the key: {}",
                f.error.reason
            );
        }
    }
    let Some(key) = keys.first() else {
        return;
    };
    match kind.as_deref() {
        Some("file-raw") => {
            let hex_key = field("privateKey").expect("a loaded file-raw has privateKey");
            let bytes = hex::decode(hex_key.trim().trim_start_matches("0x"));
            if let Ok(bytes) = bytes
                && let Ok(sk) = palisade::crypto::bls::SecretKey::from_bytes(&bytes)
            {
                assert_eq!(key, &format!("0x{}", hex::encode(sk.public_key())));
            }
        }
        Some("tezos-secret") => {
            let uri = field("secretKey").expect("a loaded tezos-secret has secretKey");
            if let Ok(sk) = decode_secret_key(&uri, None) {
                assert_eq!(key, &sk.public_key().pkh_b58());
            }
        }
        _ => {}
    }
});
