//! octez's binary remote-signer protocol over TCP and a Unix socket, through the real binary,
//! driven by the test tree's own client (`tests/common/octez.rs`, written from
//! `signer_messages.ml`): every request tag, answers compared byte for byte with the frames
//! in `tests/vectors/octez-signer/socket-vectors.json` (encoded from the octez source's
//! layouts), signatures equal to the HTTP listener's, high watermarks shared by the three
//! transports and by two instances on one PostgreSQL database, authentication, malformed
//! input, and the latency of each transport at concurrency 1.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::octez::{self, Conn, pkh21};
use common::{Backend, Server, fresh_db, tezos_attestation, tezos_transfer, vector};
use palisade::crypto::tezos::{Curve, PublicKey, SecretKey, Signature, blake2b_256};
use serde_json::Value;

/// The vector file and the frame of one of its vectors.
fn vectors() -> Value {
    vector("octez-signer/socket-vectors.json")
}

fn frame_of(v: &Value, name: &str) -> Vec<u8> {
    let found = v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"));
    hex::decode(found["frame"].as_str().unwrap()).unwrap()
}

fn payload_of(v: &Value, name: &str) -> Vec<u8> {
    frame_of(v, name)[2..].to_vec()
}

/// The four keys: the vector file's tz1 (octez sandbox bootstrap1), tz2 and tz3, and a fresh
/// tz4 allowed to prove possession. Returns their pkhs.
fn write_keys(dir: &Path, v: &Value) -> [String; 4] {
    std::fs::create_dir_all(dir).unwrap();
    let tz4 = SecretKey::generate(Curve::Bls);
    let secrets = [
        v["keys"]["ed25519"]["sk_b58"].as_str().unwrap().to_string(),
        v["keys"]["secp256k1"]["sk_b58"]
            .as_str()
            .unwrap()
            .to_string(),
        v["keys"]["p256"]["sk_b58"].as_str().unwrap().to_string(),
        tz4.to_b58().to_string(),
    ];
    let mut pkhs = Vec::new();
    for (i, sk) in secrets.iter().enumerate() {
        let pop = if i == 3 {
            "\n  provePossession: true"
        } else {
            ""
        };
        std::fs::write(
            dir.join(format!("k{i}.yaml")),
            format!(
                "type: tezos-secret\nsecretKey: \"unencrypted:{sk}\"\npolicy:\n  allow: [block, preattestation, attestation, generic]{pop}\n"
            ),
        )
        .unwrap();
        pkhs.push(SecretKey::from_b58(sk).unwrap().public_key().pkh_b58());
    }
    pkhs.try_into().unwrap()
}

fn http_signature(server: &Server, pkh: &str, data: &[u8], query: &str) -> (u16, Vec<u8>) {
    let (status, body) = server.tezos_sign(pkh, &hex::encode(data), query);
    if status != 200 {
        return (status, body.into_bytes());
    }
    let b58 = serde_json::from_str::<Value>(&body).unwrap()["signature"]
        .as_str()
        .unwrap()
        .to_string();
    (200, Signature::from_b58(&b58).unwrap().as_bytes().to_vec())
}

fn start(dir: &Path, keys: &Path, extra: &[&str]) -> Server {
    std::fs::create_dir_all(dir).unwrap();
    let socket = dir.join("palisade.sock");
    let mut args = vec![
        "--key-config-path",
        keys.to_str().unwrap(),
        "--tezos-http-listen-port",
        "0",
        "--tezos-tcp-listen-port",
        "0",
        "--tezos-unix-socket",
        socket.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&dir.join("data"), &args);
    server.tezos_url();
    server
}

#[test]
fn every_request_tag_over_tcp_and_unix_matches_the_vectors_and_http() {
    let v = vectors();
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let pkhs = write_keys(&keys, &v);
    let server = start(tmp.path(), &keys, &["--tezos-allow-list-known-keys"]);
    let unix = server.tezos_socket("unix");
    let mode = std::fs::metadata(&unix).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the Unix socket is private to its owner");
    let tcp = server.tezos_socket("tcp");
    let bins: Vec<[u8; 21]> = pkhs.iter().map(|p| pkh21(p)).collect();
    assert_eq!(
        hex::encode(&bins[0][1..]),
        v["keys"]["ed25519"]["pkh"].as_str().unwrap()
    );

    for (scheme, address) in [("tcp", tcp.as_str()), ("unix", unix.as_str())] {
        // One connection for everything: the server serves requests in a loop.
        let mut c = Conn::open(scheme, address);
        let exact = |c: &mut Conn, request: &str, answer: &str| {
            let got = octez::frame(&c.call_raw(&payload_of(&v, request)));
            assert_eq!(
                hex::encode(got),
                hex::encode(frame_of(&v, answer)),
                "{scheme}: {request} -> {answer}"
            );
        };
        exact(&mut c, "req_authorized_keys", "resp_authorized_keys_noauth");
        exact(&mut c, "req_public_key_tz1", "resp_public_key_ed25519");
        exact(&mut c, "req_public_key_tz2", "resp_public_key_secp256k1");
        exact(&mut c, "req_public_key_tz3", "resp_public_key_p256");
        exact(&mut c, "req_supports_dn_tz1", "resp_supports_dn_true");
        exact(&mut c, "req_det_nonce_tz1", "resp_det_nonce");
        exact(&mut c, "req_det_nonce_hash_tz1", "resp_det_nonce_hash");

        // The other curves' nonces against the vector file's HMAC examples.
        for example in v["deterministic_nonce_examples"].as_array().unwrap() {
            let i = match example["curve"].as_str().unwrap() {
                "ed25519" => 0,
                "secp256k1" => 1,
                "p256" => 2,
                other => panic!("{other}"),
            };
            let msg = hex::decode(example["msg"].as_str().unwrap()).unwrap();
            for (hash, field) in [(false, "nonce"), (true, "nonce_hash")] {
                let got = c.call(&octez::nonce(hash, &bins[i], &msg, None)).ok();
                let mut want = 32u32.to_be_bytes().to_vec();
                want.extend(hex::decode(example[field].as_str().unwrap()).unwrap());
                assert_eq!(hex::encode(got), hex::encode(want), "{scheme} {field} {i}");
            }
        }
        // The tz4 key's nonce is HMAC-SHA256 keyed with its little-endian scalar: 32 bytes.
        let tz4_nonce = c
            .call(&octez::nonce(false, &bins[3], &[0, 0, 0, 7], None))
            .ok();
        assert_eq!(tz4_nonce.len(), 36);

        // Public key of the tz4 key: tag 3 and 48 bytes.
        let pk = c.call(&octez::public_key(&bins[3])).ok();
        assert_eq!(pk[0], 3);
        assert_eq!(
            PublicKey::from_raw(Curve::Bls, &pk[1..]).unwrap().pkh_b58(),
            pkhs[3]
        );

        // Known keys: every pkh, 21 bytes each after a 4-byte byte length.
        let known = c.call(&octez::known_keys()).ok();
        assert_eq!(&known[..4], &84u32.to_be_bytes());
        let mut listed: Vec<&[u8]> = known[4..].chunks(21).collect();
        let mut want: Vec<&[u8]> = bins.iter().map(|b| &b[..]).collect();
        listed.sort();
        want.sort();
        assert_eq!(listed, want);

        // Proof of possession: the 96 bytes the HTTP listener gives.
        let proof = c.call(&octez::prove_possession(&bins[3], None)).ok();
        let (status, body) = server.tezos_get(&format!("/bls_prove_possession/{}", pkhs[3]));
        assert_eq!(status, 200, "{body}");
        let http = serde_json::from_str::<Value>(&body).unwrap()["bls_prove_possession"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(proof, Signature::from_b58(&http).unwrap().as_bytes());
        let msg = c.call(&octez::prove_possession(&bins[0], None)).error();
        assert!(msg.contains("not a BLS"), "{msg}");

        // Sign: the same bytes give the HTTP listener's signature, for every curve.
        for (i, pkh) in pkhs.iter().enumerate() {
            let data = tezos_transfer(&bins[i], if scheme == "tcp" { 1 } else { 2 });
            for version in [3u8, 1] {
                if version == 1 && i != 3 {
                    continue;
                }
                let sig = c.call(&octez::sign(&bins[i], version, &data, None)).ok();
                let query = if i == 3 {
                    format!("?version={version}")
                } else {
                    String::new()
                };
                let (status, http) = http_signature(&server, pkh, &data, &query);
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&http));
                assert_eq!(
                    hex::encode(&sig),
                    hex::encode(&http),
                    "{scheme} key {i} v{version}"
                );
                let (_, shown) = server.tezos_get(&format!("/keys/{pkh}"));
                let shown: Value = serde_json::from_str(&shown).unwrap();
                let pk = PublicKey::from_b58(shown["public_key"].as_str().unwrap()).unwrap();
                let parsed = Signature::from_raw(pk.curve(), &sig).unwrap();
                assert!(
                    pk.verify(&data, &parsed, version.max(1)),
                    "{scheme} key {i}"
                );
            }
        }

        // Refusals are octez `failure` errors; the connection goes on after each.
        let unknown = pkh21("tz1burnburnburnburnburnburnburjAYjjX");
        let msg = c
            .call(&octez::sign(
                &unknown,
                3,
                &tezos_transfer(&unknown, 1),
                None,
            ))
            .error();
        assert!(msg.contains("no key for"), "{msg}");
        let msg = c.call(&octez::public_key(&unknown)).error();
        assert!(msg.contains("no key for"), "{msg}");
        let msg = c.call(&[9]).error();
        assert!(msg.contains("malformed"), "{msg}");
        let msg = c.call(&[]).error();
        assert!(msg.contains("malformed"), "{msg}");
        // Tag 4 is tz5 (`Signature.Public_key_hash`, V3): a tz5 nobody configured is unknown.
        let mut tz5 = bins[0];
        tz5[0] = 4;
        let msg = c.call(&octez::public_key(&tz5)).error();
        assert!(msg.contains("no key for tz5"), "{msg}");
        let msg = c
            .call(&octez::sign(
                &bins[0],
                3,
                &[0x05, 0x01, 0x00],
                Some(&[7; 63]),
            ))
            .error();
        assert!(msg.contains("malformed"), "{msg}");
        // A policy refusal: Michelson data (0x05) is not in the keys' `allow`.
        let msg = c
            .call(&octez::sign(&bins[0], 3, &[0x05, 0x01, 0x00], None))
            .error();
        assert!(msg.contains("policy"), "{msg}");
        exact(&mut c, "req_authorized_keys", "resp_authorized_keys_noauth");
    }

    // The high watermark is one record whatever the transport.
    let chain = [0x7a, 0x06, 0xa7, 0x01];
    let attestation =
        |level: u32, fill: u8| hex::decode(tezos_attestation(chain, level, 0, fill)).unwrap();
    let mut t = Conn::open("tcp", &tcp);
    let mut u = Conn::open("unix", &unix);
    let first = t
        .call(&octez::sign(&bins[0], 3, &attestation(100, 1), None))
        .ok();
    let (status, _) = http_signature(&server, &pkhs[0], &attestation(100, 2), "");
    assert_eq!(
        status, 409,
        "HTTP refuses another attestation at the level TCP signed"
    );
    let (status, repeat) = http_signature(&server, &pkhs[0], &attestation(100, 1), "");
    assert_eq!(
        (status, repeat),
        (200, first.clone()),
        "an exact repeat gets the stored signature"
    );
    let msg = u
        .call(&octez::sign(&bins[0], 3, &attestation(100, 3), None))
        .error();
    assert!(msg.contains("high watermark"), "{msg}");
    let (status, _) = http_signature(&server, &pkhs[0], &attestation(101, 4), "");
    assert_eq!(status, 200);
    let msg = t
        .call(&octez::sign(&bins[0], 3, &attestation(101, 5), None))
        .error();
    assert!(msg.contains("high watermark"), "{msg}");
    u.call(&octez::sign(&bins[0], 3, &attestation(102, 6), None))
        .ok();

    // A connection that sends half a frame and stops is closed; others are served.
    let mut half = Conn::open("tcp", &tcp);
    half.send_raw(&[0x00]);
    let mut other = Conn::open("tcp", &tcp);
    other.call(&octez::supports_nonces(&bins[1])).ok();
    assert!(
        half.read_frame().is_none(),
        "a cut frame ends the connection"
    );
}

#[test]
fn authentication_is_required_over_the_socket_when_configured() {
    let v = vectors();
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let pkhs = write_keys(&keys, &v);
    let authorized = SecretKey::generate(Curve::Ed25519);
    let other = SecretKey::generate(Curve::Ed25519);
    let file = tmp.path().join("authorized_keys");
    std::fs::write(&file, format!("{}\n", authorized.public_key().to_b58())).unwrap();
    let server = start(
        tmp.path(),
        &keys,
        &[
            "--tezos-require-authentication",
            "--tezos-authorized-keys",
            file.to_str().unwrap(),
        ],
    );
    let mut c = Conn::open("tcp", &server.tezos_socket("tcp"));
    let tz1 = pkh21(&pkhs[0]);
    let listed = c.call(&octez::authorized_keys()).ok();
    let mut want = vec![1];
    want.extend_from_slice(&21u32.to_be_bytes());
    want.extend_from_slice(&pkh21(&authorized.public_key().pkh_b58()));
    assert_eq!(hex::encode(listed), hex::encode(want));

    let data = tezos_transfer(&tz1, 3);
    let auth = |sk: &SecretKey, data: &[u8]| {
        sk.sign(&octez::to_sign(&tz1, data), 0)
            .unwrap()
            .as_bytes()
            .to_vec()
    };
    let msg = c.call(&octez::sign(&tz1, 3, &data, None)).error();
    assert!(msg.contains("requires an authentication"), "{msg}");
    let msg = c
        .call(&octez::sign(&tz1, 3, &data, Some(&auth(&other, &data))))
        .error();
    assert!(msg.contains("not by an authorized key"), "{msg}");
    let sig = c
        .call(&octez::sign(
            &tz1,
            3,
            &data,
            Some(&auth(&authorized, &data)),
        ))
        .ok();
    assert_eq!(sig.len(), 64);
    // An unknown key answers like a known one until the caller is authenticated.
    let unknown = pkh21("tz1burnburnburnburnburnburnburjAYjjX");
    let msg = c.call(&octez::sign(&unknown, 3, &data, None)).error();
    assert!(msg.contains("requires an authentication"), "{msg}");

    let level = [0, 1, 0xe2, 0x40];
    let msg = c.call(&octez::nonce(false, &tz1, &level, None)).error();
    assert!(msg.contains("requires an authentication"), "{msg}");
    let nonce = c
        .call(&octez::nonce(
            false,
            &tz1,
            &level,
            Some(&auth(&authorized, &level)),
        ))
        .ok();
    let hash = c
        .call(&octez::nonce(
            true,
            &tz1,
            &level,
            Some(&auth(&authorized, &level)),
        ))
        .ok();
    assert_eq!(hash[4..], blake2b_256(&nonce[4..]));
}

/// Two instances on one PostgreSQL database, each with TCP, Unix and HTTP listeners: one high
/// watermark per (chain, key, kind) whichever instance and transport signs.
#[test]
fn two_instances_on_postgres_share_watermarks_across_transports() {
    let v = vectors();
    let tmp = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(Backend::Postgres, tmp.path()) else {
        return;
    };
    let keys = tmp.path().join("keys");
    let pkhs = write_keys(&keys, &v);
    let db_flag = ["--slashing-protection-db-url", db.url.as_str()];
    let a = start(&tmp.path().join("a"), &keys, &db_flag);
    let b = start(&tmp.path().join("b"), &keys, &db_flag);
    let tz2 = pkh21(&pkhs[1]);
    let chain = [0x7a, 0x06, 0xa7, 0x02];
    let attestation =
        |level: u32, fill: u8| hex::decode(tezos_attestation(chain, level, 0, fill)).unwrap();
    let mut a_tcp = Conn::open("tcp", &a.tezos_socket("tcp"));
    let mut b_unix = Conn::open("unix", &b.tezos_socket("unix"));
    let mut b_tcp = Conn::open("tcp", &b.tezos_socket("tcp"));

    let signed = a_tcp
        .call(&octez::sign(&tz2, 3, &attestation(500, 1), None))
        .ok();
    let msg = b_unix
        .call(&octez::sign(&tz2, 3, &attestation(500, 2), None))
        .error();
    assert!(msg.contains("high watermark"), "{msg}");
    // ECDSA here is deterministic (RFC 6979): a repeat through the other instance is the
    // stored signature either way.
    let again = b_tcp
        .call(&octez::sign(&tz2, 3, &attestation(500, 1), None))
        .ok();
    assert_eq!(again, signed);
    let (status, _) = http_signature(&b, &pkhs[1], &attestation(501, 3), "");
    assert_eq!(status, 200);
    let msg = a_tcp
        .call(&octez::sign(&tz2, 3, &attestation(501, 4), None))
        .error();
    assert!(msg.contains("high watermark"), "{msg}");
    let (status, _) = http_signature(&a, &pkhs[1], &attestation(501, 5), "");
    assert_eq!(status, 409);
    b_unix
        .call(&octez::sign(&tz2, 3, &attestation(502, 6), None))
        .ok();
}

/// p50 / p99 (ms) of `n` attestations at rising levels for `pkh`, one at a time, through
/// `send`.
fn latency(n: u32, mut send: impl FnMut(u32)) -> (f64, f64) {
    let mut ms: Vec<f64> = (0..n)
        .map(|i| {
            let t = std::time::Instant::now();
            send(i);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

/// The closing note's figures: TCP, Unix and HTTP latency at concurrency 1 with a durable
/// high watermark, on SQLite and on PostgreSQL (each request is an attestation above the
/// last, so each commits a watermark).
#[test]
fn latency_of_each_transport_at_concurrency_1() {
    let v = vectors();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("data")).unwrap();
        let Some(db) = fresh_db(backend, &tmp.path().join("data")) else {
            continue;
        };
        let keys = tmp.path().join("keys");
        let pkhs = write_keys(&keys, &v);
        let server = start(
            tmp.path(),
            &keys,
            &["--slashing-protection-db-url", db.url.as_str()],
        );
        let tz1 = pkh21(&pkhs[0]);
        let n = 300;
        let mut lines = Vec::new();
        for (t, transport) in ["tcp", "unix", "http"].into_iter().enumerate() {
            let chain = [0x1a, 0x7e, 0x0c, t as u8];
            let data = |i: u32| hex::decode(tezos_attestation(chain, 1_000 + i, 0, 7)).unwrap();
            let (p50, p99) = match transport {
                "http" => {
                    let client = common::client();
                    let url = format!("{}/keys/{}", server.tezos_url(), pkhs[0]);
                    latency(n, |i| {
                        let r = client
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .body(serde_json::to_string(&hex::encode(data(i))).unwrap())
                            .send()
                            .unwrap();
                        assert_eq!(r.status().as_u16(), 200);
                    })
                }
                scheme => {
                    let mut c = Conn::open(scheme, &server.tezos_socket(scheme));
                    latency(n, |i| {
                        c.call(&octez::sign(&tz1, 3, &data(i), None)).ok();
                    })
                }
            };
            lines.push(format!("{transport} p50 {p50:.2} ms, p99 {p99:.2} ms"));
        }
        println!(
            "[octez socket latency] {backend:?}, tz1 in memory, concurrency 1, {n} attestations each (durable watermark): {}",
            lines.join("; ")
        );
    }
}

/// Runs `palisade serve` with a Unix socket at `socket` until it exits (the start is
/// expected to fail); returns its output.
fn serve_until_exit(data: &Path, keys: &Path, socket: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "serve",
            "--http-listen-port",
            "0",
            "--tezos-http-listen-port",
            "0",
        ])
        .arg("--data-dir")
        .arg(data)
        .arg("--key-config-path")
        .arg(keys)
        .arg("--tezos-unix-socket")
        .arg(socket)
        .output()
        .unwrap()
}

/// The Unix socket's path is checked before anything is served: a regular file there is never
/// replaced (the start fails naming it), a stale socket is, and `--tezos-unix-socket-group`
/// gives the group read and write access (mode 0660).
#[test]
fn the_unix_socket_path_is_checked_and_its_group_applied() {
    use std::os::unix::fs::MetadataExt;
    let v = vectors();
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    write_keys(&keys, &v);
    let path = tmp.path().join("palisade.sock");
    std::fs::write(&path, "keep").unwrap();
    let out = serve_until_exit(&tmp.path().join("data"), &keys, &path);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a socket"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "nothing is served before the socket is bound"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep");

    // A stale socket (nobody serving it) is replaced; the group gets 0660.
    std::fs::remove_file(&path).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let gid = std::fs::metadata(tmp.path()).unwrap().gid().to_string();
    let server = Server::start(
        &tmp.path().join("data"),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--tezos-unix-socket",
            path.to_str().unwrap(),
            "--tezos-unix-socket-group",
            &gid,
        ],
    );
    let served = server.tezos_socket("unix");
    let meta = std::fs::metadata(&served).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid().to_string(), gid);
    Conn::open("unix", &served)
        .call(&octez::authorized_keys())
        .ok();
    // A second instance on the same path refuses to take it over.
    let out = serve_until_exit(&tmp.path().join("data2"), &keys, &path);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another process is serving"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SIGTERM: a graceful stop removes the socket file (after a SIGKILL the stale file is
    // replaced at the next start, as above).
    let term = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

/// A key in a PKCS#11 HSM signs over the socket like any other, and answers that it cannot
/// compute deterministic nonces (octez's HMAC needs the raw key, which never leaves the
/// token): `Supports_deterministic_nonces` is false and a nonce request is refused.
#[test]
fn hsm_keys_sign_over_the_socket_and_refuse_deterministic_nonces() {
    let tmp = tempfile::tempdir().unwrap();
    let hsm = common::softhsm::SoftHsm::new("palisade-socket");
    let keys = tmp.path().join("keys");
    let created = hsm.generate("p256", "baker-p256");
    hsm.write_key_config(
        &keys,
        "p256",
        "baker-p256",
        "{ allow: [block, preattestation, attestation, generic] }",
    );
    let pkh = created["pkh"].as_str().unwrap().to_string();
    let server = Server::start_with_env(
        &tmp.path().join("data"),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--tezos-tcp-listen-port",
            "0",
        ],
        &[hsm.env()],
    );
    let mut c = Conn::open("tcp", &server.tezos_socket("tcp"));
    let bin = pkh21(&pkh);
    assert_eq!(c.call(&octez::supports_nonces(&bin)).ok(), vec![0x00]);
    for hash in [false, true] {
        let msg = c
            .call(&octez::nonce(hash, &bin, &[0, 0, 0, 9], None))
            .error();
        assert!(msg.contains("cannot compute deterministic nonces"), "{msg}");
    }
    let data = hex::decode(tezos_attestation([0x7a, 0x06, 0xa7, 0x03], 7, 0, 1)).unwrap();
    let sig = c.call(&octez::sign(&bin, 3, &data, None)).ok();
    let pk = PublicKey::from_b58(created["public_key"].as_str().unwrap()).unwrap();
    assert!(pk.verify(&data, &Signature::from_raw(pk.curve(), &sig).unwrap(), 0));
}
