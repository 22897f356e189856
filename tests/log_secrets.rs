//! No secret in any log line of a whole test run.
//!
//! `scripts/test.sh` sets `PALISADE_LOG_FILE` for the test run, so that every `palisade`
//! process the tests start (servers, CLI commands, ceremonies) appends its log lines to one
//! file, and then runs this file's ignored test, which looks in that file for every secret the
//! suite uses: the BLS secret keys of `file-raw` test keys, the development keystores' secrets
//! and passwords, the EIP-2335 vector secret and password, the Tezos vector secret keys, the
//! SoftHSM PINs, the ceremony passwords and mnemonic.

mod common;

use std::collections::HashSet;

/// Every 64-hex-character window of every hex run in `text`, lower case.
fn hex_windows(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let lower = text.to_ascii_lowercase();
    for run in lower.split(|c: char| !c.is_ascii_hexdigit()) {
        if run.len() >= 64 {
            for i in 0..=run.len() - 64 {
                out.insert(run[i..i + 64].to_string());
            }
        }
    }
    out
}

/// Whether `needle` occurs in `text` not adjacent to another digit (for numeric PINs).
fn contains_number(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// The 32-byte secrets (hex) the suite uses.
fn hex_secrets() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..1000 {
        out.push((
            format!("test_secret({i})"),
            common::test_secret(i)[2..].to_string(),
        ));
    }
    let dev = common::repo_dir().join("keystores");
    for entry in std::fs::read_dir(&dev).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let json = std::fs::read_to_string(&path).unwrap();
            let password = std::fs::read_to_string(path.with_extension("txt")).unwrap();
            let d = palisade::keys::eip2335::decrypt(&json, password.trim_end()).unwrap();
            out.push((path.display().to_string(), hex::encode(&*d.secret)));
        }
    }
    let expected = common::vector("eip2335/expected.json");
    out.push((
        "EIP-2335 vector secret".into(),
        expected["secret_hex"].as_str().unwrap().to_string(),
    ));
    out
}

/// Secrets matched as plain substrings.
fn text_secrets() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in common::vector("tezos/vectors.json")["vectors"]
        .as_array()
        .unwrap()
    {
        out.push((
            format!("tezos vector {}", v["name"]),
            v["secret_key"].as_str().unwrap().to_string(),
        ));
    }
    let dev = common::repo_dir().join("keystores");
    for entry in std::fs::read_dir(&dev).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt") {
            let pw = std::fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), pw.trim_end().to_string()));
        }
    }
    let expected = common::vector("eip2335/expected.json");
    out.push((
        "EIP-2335 vector password".into(),
        expected["password"].as_str().unwrap().to_string(),
    ));
    out.push(("ceremony password".into(), "ceremony password".into()));
    out.push((
        "ceremony password (no-log test)".into(),
        "never-log-this-password".into(),
    ));
    let mnemonic = palisade::crypto::eip2333::entropy_to_mnemonic(&[0x5a; 32]);
    let words: Vec<&str> = mnemonic.split_whitespace().collect();
    out.push(("ceremony mnemonic".into(), words[..4].join(" ")));
    out
}

#[test]
#[ignore = "run by scripts/test.sh after the suite, with PALISADE_LOG_FILE"]
fn no_secret_in_any_log_line() {
    let path = std::env::var("PALISADE_LOG_FILE")
        .expect("PALISADE_LOG_FILE names the log file of the test run");
    let log = std::fs::read_to_string(&path).expect("read the test run's log file");
    let lines = log.lines().count();
    assert!(
        lines > 500,
        "{path} has only {lines} lines: the suite's palisade processes did not log to it"
    );
    let windows = hex_windows(&log);
    let mut found = Vec::new();
    for (name, secret) in hex_secrets() {
        if windows.contains(&secret.to_ascii_lowercase()) {
            found.push(name);
        }
    }
    for (name, secret) in text_secrets() {
        if log.contains(&secret) {
            found.push(name);
        }
    }
    for (name, pin) in [
        ("SoftHSM user PIN", common::softhsm::PIN),
        ("SoftHSM SO PIN", "12345678"),
    ] {
        if contains_number(&log, pin) {
            found.push(name.to_string());
        }
    }
    assert!(found.is_empty(), "secrets in {path}: {found:?}");
    eprintln!("checked {lines} log lines of the test run: no secret found");
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    let secret = common::test_secret(3)[2..].to_string();
    let log = format!("x=1 leaked=0x{}Z\n", secret.to_ascii_uppercase());
    assert!(hex_windows(&log).contains(&secret));
    assert!(!hex_windows("0xabc").contains(&secret));
    assert!(contains_number("pin=87654321 ok", "87654321"));
    assert!(!contains_number("t=1876543210", "87654321"));
}
