//! PKCS#11 keys through the real binary, on a fresh SoftHSM2 token per test: keys generated
//! and imported with `palisade hsm`, signing through the Tezos HTTP API checked by our
//! verifier and by Taquito, wrapped BLS keystores signing through the eth2 API, and the
//! refusals an operator must see (wrong AES key, label in use, BLS in an HSM, wrong PIN).

mod common;

use std::path::Path;

use common::softhsm::SoftHsm;
use common::{Server, signature_of, taquito, tezos_attestation, vector};
use palisade::crypto::tezos::{PublicKey, Signature, is_low_s};
use serde_json::{Value, json};

const CHAIN: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];
const CONSENSUS: &str = "{ allow: [block, preattestation, attestation, generic] }";

fn start(dir: &Path, hsm: &SoftHsm, keys: &Path) -> Server {
    Server::start_with_env(
        dir,
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--tezos-http-listen-port",
            "0",
        ],
        &[hsm.env()],
    )
}

fn public_key(server: &Server, pkh: &str) -> PublicKey {
    let (status, body) = server.tezos_get(&format!("/keys/{pkh}"));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    PublicKey::from_b58(v["public_key"].as_str().unwrap()).unwrap()
}

#[test]
fn generated_keys_sign_through_the_tezos_api_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new("palisade-gen");
    let keys = dir.path().join("keys");
    let mut generated = Vec::new();
    for curve in ["ed25519", "secp256k1", "p256"] {
        let created = hsm.generate(curve, &format!("baker-{curve}"));
        hsm.write_key_config(&keys, curve, &format!("baker-{curve}"), CONSENSUS);
        generated.push((curve, created));
    }
    // `hsm list` shows every key with its pkh, non-extractable and sensitive.
    let listing: Value = serde_json::from_str(&hsm.hsm_ok("list", &["--format", "json"])).unwrap();
    for (curve, created) in &generated {
        let listed = listing["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["pkh"] == created["pkh"])
            .unwrap_or_else(|| panic!("{curve} key not listed: {listing}"));
        assert_eq!(listed["curve"], *curve);
        assert_eq!(listed["extractable"], false, "{listed}");
        assert_eq!(listed["sensitive"], true, "{listed}");
    }

    let server = start(dir.path(), &hsm, &keys);
    for (curve, created) in &generated {
        let pkh = created["pkh"].as_str().unwrap();
        let pk = public_key(&server, pkh);
        assert_eq!(pk.to_b58(), created["public_key"].as_str().unwrap());
        // secp256k1: 500 signatures, every one low-S; the others: 20.
        let count = if *curve == "secp256k1" { 500 } else { 20 };
        let mut low_s = 0;
        for level in 1..=count {
            let bytes = tezos_attestation(CHAIN, level, 0, level as u8);
            let (status, body) = server.tezos_sign(pkh, &bytes, "");
            assert_eq!(status, 200, "{curve} level {level}: {body}");
            let sig = Signature::from_b58_for(pk.curve(), &signature_of(&body)).unwrap();
            assert!(
                pk.verify(&hex::decode(&bytes).unwrap(), &sig, 0),
                "{curve} level {level}: signature does not verify"
            );
            if is_low_s(&sig) {
                low_s += 1;
            }
        }
        if *curve != "ed25519" {
            assert_eq!(low_s, count, "{curve}: every ECDSA signature must be low-S");
        }
        // The high watermark applies to HSM keys as to any other.
        let (status, body) = server.tezos_sign(pkh, &tezos_attestation(CHAIN, 1, 0, 0xee), "");
        assert_eq!(status, 409, "{curve}: {body}");
    }

    // Taquito's RemoteSigner signs through palisade and verifies each signature itself;
    // `@taquito/utils` verifySignature checks them again.
    let out = taquito(
        "remote",
        &json!({
            "url": server.tezos_url(),
            "keys": generated.iter().map(|(_, c)| json!({ "pkh": c["pkh"] })).collect::<Vec<_>>(),
            "count": 20,
            "start_level": 10_000,
            "check_watermark": true,
        }),
    );
    assert_eq!(out["ok"], true, "{out}");
    for (curve, created) in &generated {
        let per_key = &out["per_key"][created["pkh"].as_str().unwrap()];
        assert_eq!(
            per_key["public_key"], created["public_key"],
            "{curve}: {per_key}"
        );
        assert_eq!(per_key["remote_signer"], true, "{curve}: {per_key}");
        assert!(
            per_key["signed"].as_u64().unwrap() >= 20,
            "{curve}: {per_key}"
        );
    }
}

#[test]
fn imported_ed25519_secret_signs_like_the_same_key_in_a_key_config() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new("palisade-import");
    let v = vector("tezos/vectors.json")["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["curve"] == "ed25519")
        .unwrap()
        .clone();
    let secret = v["secret_key"].as_str().unwrap();
    let pkh = v["public_key_hash"].as_str().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("unencrypted:{secret}\n")).unwrap();
    let created: Value = serde_json::from_str(&hsm.hsm_ok(
        "import-tezos",
        &[
            "--secret-key-file",
            secret_file.to_str().unwrap(),
            "--label",
            "ceremony-baker",
        ],
    ))
    .unwrap();
    assert_eq!(created["pkh"], pkh);
    assert_eq!(created["public_key"], v["public_key"]);
    // Non-extractable once imported; a second import under the same label is refused.
    let listing: Value = serde_json::from_str(&hsm.hsm_ok("list", &["--format", "json"])).unwrap();
    let listed = &listing["keys"][0];
    assert_eq!(listed["pkh"], pkh, "{listing}");
    assert_eq!(listed["extractable"], false, "{listing}");
    let again = hsm.hsm(
        "import-tezos",
        &[
            "--secret-key-file",
            secret_file.to_str().unwrap(),
            "--label",
            "ceremony-baker",
        ],
    );
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already used"), "{stderr}");
    assert!(
        !stderr.contains(secret),
        "the secret leaked into an error: {stderr}"
    );

    let hsm_keys = dir.path().join("hsm-keys");
    hsm.write_key_config(&hsm_keys, "baker", "ceremony-baker", CONSENSUS);
    let mem_keys = dir.path().join("mem-keys");
    std::fs::create_dir_all(&mem_keys).unwrap();
    std::fs::write(
        mem_keys.join("baker.yaml"),
        format!("type: tezos-secret\nsecretKey: unencrypted:{secret}\npolicy: {CONSENSUS}\n"),
    )
    .unwrap();
    let hsm_dir = dir.path().join("hsm-data");
    let mem_dir = dir.path().join("mem-data");
    std::fs::create_dir_all(&hsm_dir).unwrap();
    std::fs::create_dir_all(&mem_dir).unwrap();
    let in_hsm = start(&hsm_dir, &hsm, &hsm_keys);
    let in_memory = start(&mem_dir, &hsm, &mem_keys);
    assert_eq!(
        public_key(&in_hsm, pkh).to_b58(),
        v["public_key"].as_str().unwrap()
    );
    for level in 1..=10u32 {
        let bytes = tezos_attestation(CHAIN, level, level % 3, level as u8 * 7);
        let (s1, b1) = in_hsm.tezos_sign(pkh, &bytes, "");
        let (s2, b2) = in_memory.tezos_sign(pkh, &bytes, "");
        assert_eq!((s1, s2), (200, 200), "{b1} {b2}");
        assert_eq!(
            signature_of(&b1),
            signature_of(&b2),
            "level {level}: the HSM and the key config must give the same Ed25519 signature"
        );
    }
}

/// Wraps keystore 0 of `keystores/` under `aes_label`; returns (wrapped file, public key).
fn wrap_keystore(hsm: &SoftHsm, dir: &Path, aes_label: &str) -> (std::path::PathBuf, String) {
    let ks = common::repo_dir().join("keystores/keystore-m_12381_3600_0_0_0");
    let out = dir.join("validator-0.wrapped.json");
    let printed = hsm.hsm_ok(
        "wrap-keystore",
        &[
            "--keystore",
            ks.with_extension("json").to_str().unwrap(),
            "--password-file",
            ks.with_extension("txt").to_str().unwrap(),
            "--aes-key-label",
            aes_label,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let wrapped: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let pubkey = format!("0x{}", wrapped["pubkey"].as_str().unwrap());
    assert!(printed.contains(&pubkey), "{printed}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Nothing secret in the wrapped file: no keystore crypto section, only ciphertext.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("\"crypto\""), "{text}");
    (out, pubkey)
}

fn wrapped_config(hsm: &SoftHsm, keys: &Path, wrapped: &Path, aes_label: Option<&str>) {
    std::fs::create_dir_all(keys).unwrap();
    let label = aes_label
        .map(|l| format!("aesKeyLabel: {l}\n"))
        .unwrap_or_default();
    std::fs::write(
        keys.join("validator-0.yaml"),
        format!(
            "type: pkcs11-wrapped-bls\n{}wrappedKeystoreFile: {}\n{label}",
            hsm.token_yaml(),
            wrapped.display()
        ),
    )
    .unwrap();
}

fn start_eth2(dir: &Path, hsm: &SoftHsm, keys: &Path) -> Server {
    Server::start_with_env(
        dir,
        &["--key-config-path", keys.to_str().unwrap()],
        &[hsm.env()],
    )
}

#[test]
fn wrapped_bls_keystore_signs_through_the_eth2_api() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new("palisade-wrap");
    hsm.hsm_ok("create-aes-key", &["--label", "bls-wrap"]);
    hsm.hsm_ok("create-aes-key", &["--label", "other-aes"]);
    let (wrapped, pubkey) = wrap_keystore(&hsm, dir.path(), "bls-wrap");

    // `hsm list` names the Ethereum key each AES key opens.
    let listing: Value = serde_json::from_str(&hsm.hsm_ok(
        "list",
        &["--format", "json", "--wrapped", wrapped.to_str().unwrap()],
    ))
    .unwrap();
    let aes = listing["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "bls-wrap")
        .unwrap();
    assert_eq!(aes["eth2_public_keys"], json!([pubkey]), "{listing}");
    assert_eq!(aes["extractable"], false);

    let keys = dir.path().join("keys");
    wrapped_config(&hsm, &keys, &wrapped, None);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = start_eth2(&data, &hsm, &keys);
    let (status, body) = server.get("/api/v1/eth2/publicKeys");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!([pubkey])
    );

    // The same request signed by the original keystore (another server) gives the same
    // signature: BLS signatures are deterministic.
    let plain_dir = dir.path().join("plain");
    let plain_keys = plain_dir.join("keystores");
    std::fs::create_dir_all(&plain_keys).unwrap();
    for ext in ["json", "txt"] {
        std::fs::copy(
            common::repo_dir().join(format!("keystores/keystore-m_12381_3600_0_0_0.{ext}")),
            plain_keys.join(format!("keystore-m_12381_3600_0_0_0.{ext}")),
        )
        .unwrap();
    }
    let plain = Server::start(
        &plain_dir,
        &["--keystores-path", plain_keys.to_str().unwrap()],
    );
    for (i, request) in [
        common::block(0x11, 100, 1),
        common::attestation(0x11, 2, 3, 4),
    ]
    .iter()
    .enumerate()
    {
        let (s1, b1) = server.sign(&pubkey, request);
        let (s2, b2) = plain.sign(&pubkey, request);
        assert_eq!((s1, s2), (200, 200), "request {i}: {b1} / {b2}");
        assert_eq!(
            signature_of(&b1),
            signature_of(&b2),
            "request {i}: wrapped and plain keystore must sign alike"
        );
        // And it verifies over the request's signing root under the keystore's public key.
        let plan = palisade::chain::eth2::request::plan(
            request,
            &palisade::chain::eth2::network::NetworkConfig::from_name_or_path("mainnet").unwrap(),
        )
        .unwrap();
        let root = hex::decode(format!("{}", plan.signing_root).trim_start_matches("0x")).unwrap();
        let unhex = |s: &str| hex::decode(s.trim_start_matches("0x")).unwrap();
        assert!(
            palisade::crypto::bls::verify(&unhex(&pubkey), &root, &unhex(&signature_of(&b1)))
                .unwrap(),
            "request {i}: the wrapped key's signature does not verify"
        );
    }
    // Slashing protection applies: a conflicting block at the same slot is refused.
    let (status, body) = server.sign(&pubkey, &common::block(0x11, 100, 2));
    assert_eq!(status, 412, "{body}");
    server.stop();

    // The wrong AES key (another key on the token, or a label that does not exist) refuses
    // to load with a clear error, and the key is not served.
    for (label, expect) in [
        ("other-aes", "does not open this wrapped keystore"),
        (
            "no-such-key",
            "no secret (AES) key with label `no-such-key`",
        ),
    ] {
        let keys = dir.path().join(format!("keys-{label}"));
        wrapped_config(&hsm, &keys, &wrapped, Some(label));
        let data = dir.path().join(format!("data-{label}"));
        std::fs::create_dir_all(&data).unwrap();
        let server = start_eth2(&data, &hsm, &keys);
        let (_, body) = server.get("/api/v1/eth2/publicKeys");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!([]));
        let (status, body) = server.get("/healthcheck");
        assert_eq!(status, 503, "{body}");
        let lines = server.stderr_lines().join("\n");
        assert!(lines.contains(expect), "{label}: {lines}");
        server.stop();
    }

    // Another HSM with an AES key of the same label cannot open the file either.
    let elsewhere = SoftHsm::new("palisade-elsewhere");
    elsewhere.hsm_ok("create-aes-key", &["--label", "bls-wrap"]);
    let keys = dir.path().join("keys-elsewhere");
    wrapped_config(&elsewhere, &keys, &wrapped, None);
    let data = dir.path().join("data-elsewhere");
    std::fs::create_dir_all(&data).unwrap();
    let server = start_eth2(&data, &elsewhere, &keys);
    let (_, body) = server.get("/api/v1/eth2/publicKeys");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!([]));
    let lines = server.stderr_lines().join("\n");
    assert!(
        lines.contains("does not open this wrapped keystore"),
        "{lines}"
    );
}

#[test]
fn operator_mistakes_get_clear_errors() {
    let hsm = SoftHsm::new("palisade-errors");
    hsm.generate("ed25519", "taken");
    let wrong_password = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(wrong_password.path(), "not the keystore password\n").unwrap();
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "generate",
            vec!["--curve", "p256", "--label", "taken"],
            "already used",
        ),
        (
            "generate",
            vec!["--curve", "bls", "--label", "x"],
            "cannot be generated",
        ),
        (
            "generate",
            vec!["--curve", "rsa", "--label", "x"],
            "expected ed25519",
        ),
        (
            "wrap-keystore",
            vec![
                "--keystore",
                "keystores/keystore-m_12381_3600_0_0_0.json",
                "--password-file",
                wrong_password.path().to_str().unwrap(),
                "--aes-key-label",
                "x",
                "--out",
                "/nonexistent/never-written.json",
            ],
            "keystore",
        ),
    ];
    for (sub, args, expect) in cases {
        let out = hsm.hsm(sub, &args);
        assert!(!out.status.success(), "{sub} {args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{sub} {args:?}: {stderr}");
    }
    // A wrong PIN: refused by the token, and the PIN is not echoed.
    let bad_pin = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad_pin.path(), "11112222\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .env("SOFTHSM2_CONF", &hsm.conf)
        .args([
            "hsm",
            "list",
            "--module",
            common::softhsm::MODULE,
            "--token-label",
            &hsm.label,
        ])
        .arg("--pin-file")
        .arg(bad_pin.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CKR_PIN_INCORRECT"), "{stderr}");
    assert!(!stderr.contains("11112222"), "{stderr}");
    // An unknown token names the tokens present.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .env("SOFTHSM2_CONF", &hsm.conf)
        .args([
            "hsm",
            "list",
            "--module",
            common::softhsm::MODULE,
            "--token-label",
            "nope",
        ])
        .arg("--pin-file")
        .arg(&hsm.pin_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("palisade-errors"), "{stderr}");
}

#[test]
fn a_ceremony_key_imports_into_the_hsm_from_its_secret_keys_file() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new("palisade-ceremony");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "ceremony password\n").unwrap();
    let out = dir.path().join("ceremony");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "ceremony",
            "tezos",
            "--curve",
            "p256",
            "--threshold",
            "2",
            "--shares",
            "3",
        ])
        .arg("--password-file")
        .arg(&pw)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let transcript: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("transcript.json")).unwrap())
            .unwrap();
    let created: Value = serde_json::from_str(&hsm.hsm_ok(
        "import-tezos",
        &[
            "--secret-key-file",
            out.join("secret_keys").to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
            "--label",
            "from-ceremony",
        ],
    ))
    .unwrap();
    assert_eq!(created["pkh"], transcript["keys"][0]["pkh"]);
}
