//! Log output through the real binary: `--logging-format json` gives one JSON object per line,
//! `--access-log` one line per request without its query string, `--log-file` the same lines
//! in a 0600 file; the default `plain` format is text.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Server, client};
use serde_json::Value;

/// Waits until `pred` holds for the lines seen so far (the server logs asynchronously).
fn wait_for(server: &Server, seen: &mut Vec<String>, pred: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        seen.extend(server.stderr_lines());
        if pred(seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "log lines never matched: {seen:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn json_lines_access_log_and_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("palisade.log");
    let server = Server::start_with_env(
        dir.path(),
        &[
            "--logging-format",
            "json",
            "--access-log",
            "--log-file",
            log_file.to_str().unwrap(),
        ],
        &[("PALISADE_LOG_FILE", "")],
    );
    let r = client()
        .get(format!("{}/upcheck?token=do-not-log-me", server.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, _) = server.get("/no/such/route");
    assert_eq!(s, 404);

    let mut seen = Vec::new();
    wait_for(&server, &mut seen, |lines| {
        lines
            .iter()
            .filter(|l| l.contains("palisade::access"))
            .count()
            >= 2
    });
    for line in &seen {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{v}");
        assert!(
            !line.contains("do-not-log-me"),
            "query string logged: {line}"
        );
    }
    let access: Vec<Value> = seen
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["target"] == "palisade::access")
        .collect();
    assert_eq!(access[0]["fields"]["path"], "/upcheck");
    assert_eq!(access[0]["fields"]["method"], "GET");
    assert_eq!(access[0]["fields"]["status"], 200);
    assert_eq!(access[0]["fields"]["peer"], "127.0.0.1");
    assert!(access[0]["fields"]["elapsed_us"].is_u64());
    assert_eq!(access[1]["fields"]["status"], 404);

    let file_text = std::fs::read_to_string(&log_file).unwrap();
    let mode = std::fs::metadata(&log_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "log file mode {mode:o}");
    // The file holds the same lines (compared from the level on).
    for line in seen.iter().take(3) {
        let rest = &line[line.find("\"level\"").unwrap()..];
        assert!(file_text.contains(rest), "{line} not in the log file");
    }
    server.stop();
}

#[test]
fn plain_is_the_default_and_access_log_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(dir.path(), &[], &[("PALISADE_LOG_FILE", "")]);
    let (s, _) = server.get("/upcheck");
    assert_eq!(s, 200);
    let mut seen = Vec::new();
    wait_for(&server, &mut seen, |lines| {
        lines.iter().any(|l| l.contains("eth2 API listening"))
    });
    std::thread::sleep(Duration::from_millis(300));
    seen.extend(server.stderr_lines());
    for line in &seen {
        assert!(
            serde_json::from_str::<Value>(line).is_err(),
            "JSON in plain mode: {line}"
        );
        assert!(!line.contains('\u{1b}'), "ANSI colours on a pipe: {line:?}");
        assert!(
            !line.contains("palisade::access"),
            "access log while off: {line}"
        );
    }
    assert!(seen.iter().any(|l| l.contains(" INFO ")), "{seen:#?}");
    server.stop();
}
