//! The OpenAPI documents in `openapi/`: every route the listeners register is in its listener's
//! document, each listener serves its document at `/openapi.json`, the request examples are
//! answered with the status they state (`x-expected-status`), and schemathesis (PyPI, pinned,
//! `tests/clients/schemathesis`) fuzzing the eth2 and Tezos documents gets no 5xx.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, client, repo_dir};
use serde_json::Value;

fn document(name: &str) -> Value {
    let text = std::fs::read_to_string(repo_dir().join("openapi").join(name)).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("openapi/{name}: {e}"))
}

/// `(METHOD, path)` of every `.route("path", web::method()…)` in a source file.
fn routes_in(file: &str) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(repo_dir().join(file)).unwrap();
    let mut out = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let Some(q1) = rest.find('"') else { break };
        let after = &rest[q1 + 1..];
        let Some(q2) = after.find('"') else { break };
        let path = after[..q2].to_string();
        let tail = &after[q2..];
        let Some(w) = tail.find("web::") else { break };
        let method: String = tail[w + 5..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        out.insert((method.to_uppercase(), path));
    }
    out
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_is_documented() {
    let pairs = [
        ("src/api/mod.rs", "eth2.yaml"),
        ("src/api/keymanager.rs", "eth2.yaml"),
        ("src/api/tezos.rs", "tezos.yaml"),
        ("src/metrics.rs", "metrics.yaml"),
    ];
    for (file, doc_name) in pairs {
        let routes = routes_in(file);
        assert!(!routes.is_empty(), "no routes found in {file}");
        let documented = operations(&document(doc_name));
        for r in &routes {
            assert!(
                documented.contains(r),
                "{} {} ({file}) is not in openapi/{doc_name}",
                r.0,
                r.1
            );
        }
        for op in &documented {
            let served = pairs
                .iter()
                .filter(|(_, d)| *d == doc_name)
                .any(|(f, _)| routes_in(f).contains(op));
            assert!(
                served,
                "openapi/{doc_name} documents {} {}, which is not served",
                op.0, op.1
            );
        }
    }
}

/// A server holding test key 0 (eth2) and the Tezos vector key 1, with the Keymanager API on.
fn start(dir: &Path) -> (Server, String) {
    let keys = dir.join("keys");
    common::write_raw_key(&keys, "validator", &common::test_secret(0));
    common::write_tezos_baker(&keys, None);
    let server = Server::start(
        dir,
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--tezos-http-listen-port",
            "0",
            "--key-manager-api-enabled",
        ],
    );
    let token = std::fs::read_to_string(dir.join("api-token.txt")).unwrap();
    (server, token)
}

/// A path with its parameters replaced by their examples (`$ref`s resolved in `doc`).
fn concrete_path(doc: &Value, path: &str, op: &Value, item: &Value) -> String {
    let mut p = path.to_string();
    let params = op["parameters"]
        .as_array()
        .into_iter()
        .chain(item["parameters"].as_array())
        .flatten();
    for param in params {
        let param = match param["$ref"].as_str() {
            Some(r) => doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("unresolved {r}")),
            None => param,
        };
        if param["in"] == "path" {
            let name = param["name"].as_str().unwrap();
            let example = param["example"]
                .as_str()
                .or_else(|| param["schema"]["example"].as_str())
                .unwrap_or_else(|| panic!("path parameter {name} of {path} has no example"));
            p = p.replace(&format!("{{{name}}}"), example);
        }
    }
    p
}

#[test]
fn documents_are_served_and_examples_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = start(dir.path());
    let mut checked = 0;
    for (doc_name, base) in [
        ("eth2.yaml", server.url.clone()),
        ("tezos.yaml", server.tezos_url()),
    ] {
        let doc = document(doc_name);
        let served: Value = client()
            .get(format!("{base}/openapi.json"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(
            served, doc,
            "{base}/openapi.json differs from openapi/{doc_name}"
        );
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Some(examples) =
                    op["requestBody"]["content"]["application/json"]["examples"].as_object()
                else {
                    continue;
                };
                for (name, ex) in examples {
                    let Some(want) = ex["x-expected-status"].as_u64() else {
                        continue;
                    };
                    let url = format!("{base}{}", concrete_path(&doc, path, op, item));
                    let r = client()
                        .request(method.to_uppercase().parse().unwrap(), &url)
                        .bearer_auth(&token)
                        .header("Content-Type", "application/json")
                        .body(ex["value"].to_string())
                        .send()
                        .unwrap();
                    let status = r.status().as_u16();
                    let body = r.text().unwrap();
                    assert_eq!(
                        u64::from(status),
                        want,
                        "{doc_name} {method} {path} example `{name}`: {body}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 5, "only {checked} examples checked");
    server.stop();
}

fn schemathesis() -> PathBuf {
    let bin = repo_dir().join("tests/clients/schemathesis/.venv/bin/schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: scripts/test.sh installs it",
        bin.display()
    );
    bin
}

#[test]
fn schemathesis_finds_no_server_error() {
    let bin = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = start(dir.path());
    for base in [server.url.clone(), server.tezos_url()] {
        let out = Command::new(&bin)
            .args(["run", &format!("{base}/openapi.json"), "--url", &base])
            .args(["--checks", "not_a_server_error", "--max-examples", "25"])
            .args(["--generation-deterministic", "--request-timeout", "20"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .env("SCHEMATHESIS_HOOKS", "")
            .env("NO_COLOR", "1")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "schemathesis against {base}:\n{text}");
        eprintln!(
            "schemathesis {base}: {}",
            text.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
        );
    }
    server.stop();
}
