//! Prometheus metrics through the real binary: counters and histograms move with signed and
//! refused requests on both chains; the exposition passes `promtool check metrics`; the alert
//! rules pass `promtool check rules`; every metric the rules and the Grafana dashboard use is
//! exported.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use common::{Server, attestation, block, repo_dir};

const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

/// `(name, labels)` → value, from the text exposition.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn parse(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((n, rest)) => {
                let body = rest.trim_end_matches('}');
                let labels = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once("=\"").unwrap();
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (n.to_string(), labels)
            }
        };
        out.insert((name, labels), value.parse().unwrap());
    }
    out
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    *samples
        .get(&(name.to_string(), want.clone()))
        .unwrap_or_else(|| panic!("no sample {name}{want:?}"))
}

fn promtool() -> Command {
    let found = Command::new("promtool").arg("--version").output().is_ok();
    assert!(
        found,
        "promtool is missing: scripts/test.sh installs Debian's `prometheus` package"
    );
    Command::new("promtool")
}

/// Metric names used in PromQL text: identifiers followed by `{` or `[` or `)`, minus
/// functions and keywords.
fn metric_names(promql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut word = String::new();
    let chars: Vec<char> = promql.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() || *c == '_' || *c == ':' {
            word.push(*c);
            continue;
        }
        if !word.is_empty() {
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let is_call = next == Some(&'(');
            if !is_call && (word.contains('_')) && !word.starts_with('$') {
                out.insert(word.clone());
            }
            word.clear();
        }
    }
    out
}

#[test]
fn metrics_follow_requests_and_artifacts_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    common::write_raw_key(&keys, "validator", &common::test_secret(0));
    let pkh = common::write_tezos_baker(&keys, Some("block, preattestation, attestation"));
    let pkh = pkh.as_str();
    let server = Server::start(
        dir.path(),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--tezos-http-listen-port",
            "0",
            "--metrics-enabled",
            "--metrics-port",
            "0",
        ],
    );
    let validator = common::test_pubkey(0);
    assert_eq!(server.sign(&validator, &block(4, 10, 1)).0, 200);
    assert_eq!(server.sign(&validator, &block(4, 10, 2)).0, 412);
    assert_eq!(server.sign(&validator, &attestation(4, 1, 2, 3)).0, 200);
    // A body refused after its type is known counts under that type, one of unknown type
    // under `unknown`.
    let mut bad = attestation(4, 2, 3, 3);
    bad["attestation"]["beacon_block_root"] = "0x00".into();
    assert_eq!(server.sign(&validator, &bad).0, 400);
    assert_eq!(
        server
            .sign(&validator, &serde_json::json!({"type": "NOPE"}))
            .0,
        400
    );
    let high = common::tezos_attestation(MAINNET, 20, 0, 1);
    assert_eq!(server.tezos_sign(pkh, &high, "").0, 200);
    let low = common::tezos_attestation(MAINNET, 19, 0, 2);
    assert_eq!(server.tezos_sign(pkh, &low, "").0, 409);
    let generic = format!("03{}", "11".repeat(40));
    assert_eq!(server.tezos_sign(pkh, &generic, "").0, 403);

    let response = common::client()
        .get(format!("{}/metrics", server.metrics_url()))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().unwrap();
    let s = parse(&text);
    let permitted = "eth2_slashingprotection_permitted_signings_total";
    let prevented = "eth2_slashingprotection_prevented_signings_total";
    assert_eq!(value(&s, permitted, &[("kind", "BLOCK_V2")]), 1.0);
    assert_eq!(value(&s, permitted, &[("kind", "ATTESTATION")]), 1.0);
    assert_eq!(
        value(
            &s,
            prevented,
            &[("kind", "BLOCK_V2"), ("reason", "double_block")]
        ),
        1.0
    );
    let requests = "palisade_signing_requests_total";
    for (chain, kind, status) in [
        ("eth2", "BLOCK_V2", "200"),
        ("eth2", "BLOCK_V2", "412"),
        ("eth2", "ATTESTATION", "200"),
        ("eth2", "ATTESTATION", "400"),
        ("eth2", "unknown", "400"),
        ("tezos", "attestation", "200"),
        ("tezos", "attestation", "409"),
        ("tezos", "generic_operation", "403"),
    ] {
        let labels = [("chain", chain), ("kind", kind), ("status", status)];
        assert_eq!(value(&s, requests, &labels), 1.0, "{labels:?}");
    }
    assert_eq!(
        value(
            &s,
            "palisade_signing_request_duration_seconds_count",
            &[("chain", "eth2"), ("kind", "BLOCK_V2")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "palisade_tezos_watermark_rejections_total",
            &[("kind", "attestation")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "palisade_policy_rejections_total",
            &[("chain", "tezos")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "palisade_protection_db_duration_seconds_count",
            &[("operation", "eth2_check_and_record")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            "palisade_protection_db_duration_seconds_count",
            &[("operation", "tezos_check_and_record")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "palisade_keys_loaded",
            &[("chain", "eth2"), ("backend", "file-raw")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "palisade_keys_loaded",
            &[("chain", "tezos"), ("backend", "memory")]
        ),
        1.0
    );
    assert_eq!(value(&s, "palisade_key_load_errors", &[]), 0.0);
    assert_eq!(
        value(
            &s,
            "palisade_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // No key material or key identity in any label.
    assert!(!text.contains(&validator[2..]) && !text.contains(pkh));

    // The metrics listener is separate: the signing listener does not serve /metrics.
    assert_eq!(server.get("/metrics").0, 404);

    // promtool lints the exposition and checks the rules.
    let mut lint = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = repo_dir().join("alerts/palisade.rules.yml");
    let out = promtool()
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Every metric the rules and the dashboard use is exported.
    let exported: BTreeSet<String> = s.keys().map(|(n, _)| n.clone()).collect();
    let rules_text = std::fs::read_to_string(&rules).unwrap();
    let rules_yaml: serde_json::Value = serde_norway::from_str(&rules_text).unwrap();
    let mut exprs: Vec<String> = rules_yaml["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_dir().join("dashboards/palisade.json")).unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    let labels_and_keywords = ["__rate_interval", "rate_interval"];
    for expr in &exprs {
        for name in metric_names(expr) {
            if labels_and_keywords.contains(&name.as_str()) || name == "up" {
                continue;
            }
            assert!(
                exported.contains(&name),
                "`{name}` (in `{expr}`) is not exported; exported: {exported:?}"
            );
        }
    }
    server.stop();
}
