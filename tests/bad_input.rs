//! Bad input through the real binary: every malformed request gets a 4xx with a JSON
//! `{"error": …}` body naming the problem, never a signature, and the database is unchanged.

mod common;

use common::{Server, attestation, count_records, write_raw_key};
use serde_json::json;

struct Case {
    name: &'static str,
    body: Vec<u8>,
    content_type: &'static str,
    status: u16,
    mentions: &'static str,
}

fn json_case(
    name: &'static str,
    body: serde_json::Value,
    status: u16,
    mentions: &'static str,
) -> Case {
    Case {
        name,
        body: body.to_string().into_bytes(),
        content_type: "application/json",
        status,
        mentions,
    }
}

#[test]
fn malformed_requests_get_json_errors_and_leave_the_database_alone() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    write_raw_key(&keys, "k", &common::test_secret(20));
    let server = Server::start(
        &dir.path().join("data"),
        &["--key-config-path", keys.to_str().unwrap()],
    );
    let pk = common::test_pubkey(20);
    // a first record so that "unchanged" is not trivially "empty"
    assert_eq!(server.sign(&pk, &attestation(7, 1, 2, 1)).0, 200);
    let before = count_records(&server.db_url());

    let mut short_root = attestation(7, 2, 3, 1);
    short_root["attestation"]["beacon_block_root"] = json!("0x1234");
    let mut long_gvr = attestation(7, 2, 3, 1);
    long_gvr["fork_info"]["genesis_validators_root"] = json!(format!("0x{}", "ab".repeat(33)));
    let mut bad_version = attestation(7, 2, 3, 1);
    bad_version["fork_info"]["fork"]["current_version"] = json!("0x000000");
    let mut not_number = attestation(7, 2, 3, 1);
    not_number["attestation"]["target"]["epoch"] = json!("three");
    let mut no_fork_info = attestation(7, 2, 3, 1);
    no_fork_info.as_object_mut().unwrap().remove("fork_info");
    let mut wrong_root = attestation(7, 2, 3, 1);
    wrong_root["signingRoot"] = json!(format!("0x{}", "00".repeat(32)));

    let cases = vec![
        Case {
            name: "non-JSON",
            body: b"this is not json".to_vec(),
            content_type: "application/json",
            status: 400,
            mentions: "JSON",
        },
        Case {
            name: "empty body",
            body: Vec::new(),
            content_type: "application/json",
            status: 400,
            mentions: "JSON",
        },
        json_case(
            "unknown type",
            json!({"type": "BLOCK_V9", "fork_info": common::fork_info(7)}),
            400,
            "BLOCK_V9",
        ),
        json_case(
            "missing type",
            json!({"fork_info": common::fork_info(7)}),
            400,
            "type",
        ),
        json_case("missing fork_info", no_fork_info, 400, "fork_info"),
        json_case(
            "short beacon_block_root",
            short_root,
            400,
            "attestation.beacon_block_root",
        ),
        json_case(
            "33-byte genesis_validators_root",
            long_gvr,
            400,
            "genesis_validators_root",
        ),
        json_case("3-byte fork version", bad_version, 400, "current_version"),
        json_case(
            "epoch not a number",
            not_number,
            400,
            "attestation.target.epoch",
        ),
        json_case(
            "missing attestation",
            json!({"type": "ATTESTATION", "fork_info": common::fork_info(7)}),
            400,
            "attestation",
        ),
        json_case("signingRoot mismatch", wrong_root, 400, "signingRoot"),
        Case {
            name: "2 MiB body",
            body: {
                let mut v = attestation(7, 2, 3, 1);
                v["padding"] = json!("x".repeat(2 << 20));
                v.to_string().into_bytes()
            },
            content_type: "application/json",
            status: 413,
            mentions: "larger",
        },
    ];
    for case in cases {
        let r = common::client()
            .post(format!("{}/api/v1/eth2/sign/{pk}", server.url))
            .header("Content-Type", case.content_type)
            .body(case.body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let text = r.text().unwrap();
        assert_eq!(status, case.status, "{}: {text}", case.name);
        assert!(
            ct.as_deref()
                .is_some_and(|c| c.starts_with("application/json")),
            "{}: content type {ct:?}",
            case.name
        );
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{}: not JSON: {text}", case.name));
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no error field: {text}", case.name));
        assert!(
            msg.contains(case.mentions),
            "{}: `{msg}` should mention {}",
            case.name,
            case.mentions
        );
        assert!(v.get("signature").is_none());
    }

    // unknown key and malformed identifier
    let other = common::test_pubkey(21);
    let (status, text) = server.sign(&other, &attestation(7, 2, 3, 1));
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("error"));
    let (status, text) = server.sign("0x1234", &attestation(7, 2, 3, 1));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("identifier"));

    assert_eq!(
        count_records(&server.db_url()),
        before,
        "no bad request wrote anything"
    );
    // and the server still signs
    assert_eq!(server.sign(&pk, &attestation(7, 2, 3, 1)).0, 200);
}
