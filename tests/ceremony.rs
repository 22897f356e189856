//! `palisade ceremony` through the real binary: eth2 keystores and deposit data against
//! `ethstaker-deposit` (PyPI, pinned) for the same mnemonic, Tezos keys that load and sign,
//! combine/verify refusals, and no secret in the transcript or in any log line.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Server, python, repo_dir, signature_of, tezos_attestation};
use palisade::crypto::eip2333;
use palisade::crypto::tezos::{PublicKey, Signature};
use serde_json::Value;

const ADDRESS: &str = "0x00000000219ab540356cBB839Cbe05303d7705Fa";

fn palisade<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .env("PALISADE_LOG", "trace")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run palisade")
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "palisade failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn transcript(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("transcript.json")).unwrap()).unwrap()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn eth2_ceremony_matches_ethstaker_deposit_and_its_keystores_load() {
    let py = python();
    assert!(
        py.exists(),
        "{} is missing: run scripts/test.sh (it creates the venv)",
        py.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mnemonic = eip2333::entropy_to_mnemonic(&[0x5a; 32]);
    std::fs::write(d.join("mnemonic"), mnemonic.as_bytes()).unwrap();
    std::fs::write(d.join("pw"), "ceremony password\n").unwrap();
    for (network, compounding, amount) in [("mainnet", false, "32"), ("hoodi", true, "64")] {
        let out = d.join(format!("out-{network}"));
        let mut args: Vec<String> = [
            "ceremony",
            "eth2",
            "--existing-mnemonic-file",
            s(&d.join("mnemonic")),
            "--start-index",
            "2",
            "--count",
            "2",
            "--network",
            network,
            "--withdrawal-address",
            ADDRESS,
            "--amount-eth",
            amount,
            "--password-file",
            s(&d.join("pw")),
            "--threshold",
            "2",
            "--shares",
            "3",
            "--out",
            s(&out),
        ]
        .map(String::from)
        .to_vec();
        if compounding {
            args.push("--compounding".into());
        }
        ok(palisade(&args));
        let t = transcript(&out);
        let deposit_file = files_in(&out)
            .into_iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("deposit_data-")
            })
            .unwrap();
        let ts = deposit_file
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_start_matches("deposit_data-")
            .trim_end_matches(".json")
            .to_string();
        let py_dir = d.join(format!("py-{network}"));
        std::fs::create_dir_all(&py_dir).unwrap();
        let mut py_args = vec![
            repo_dir()
                .join("tests/clients/python/deposit_ref.py")
                .to_str()
                .unwrap()
                .to_string(),
            "--out".into(),
            s(&py_dir).into(),
            "--mnemonic-file".into(),
            s(&d.join("mnemonic")).into(),
            "--start".into(),
            "2".into(),
            "--count".into(),
            "2".into(),
            "--chain".into(),
            network.into(),
            "--address".into(),
            ADDRESS.into(),
            "--amount-eth".into(),
            amount.into(),
            "--timestamp".into(),
            ts.clone(),
        ];
        if compounding {
            py_args.push("--compounding".into());
        }
        let reference = Command::new(&py).args(&py_args).output().unwrap();
        assert!(
            reference.status.success(),
            "ethstaker-deposit: {}",
            String::from_utf8_lossy(&reference.stderr)
        );
        let reference: Value = serde_json::from_slice(&reference.stdout).unwrap();
        assert_eq!(
            std::fs::read(&deposit_file).unwrap(),
            std::fs::read(reference["path"].as_str().unwrap()).unwrap(),
            "{network}: deposit data must be byte-identical to ethstaker-deposit's"
        );
        let ours: Vec<&Value> = t["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| &k["public_key"])
            .collect();
        let theirs: Vec<&Value> = reference["pubkeys"].as_array().unwrap().iter().collect();
        assert_eq!(ours, theirs, "{network}: public keys");
        assert!(
            t["verifications"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v["ok"] == true),
            "{t}"
        );

        // The keystores load into palisade and are the transcript's keys.
        let data = d.join(format!("data-{network}"));
        std::fs::create_dir_all(&data).unwrap();
        let server = Server::start(
            &data,
            &[
                "--keystores-path",
                s(&out.join("keystores")),
                "--keystores-password-file",
                s(&d.join("pw")),
                "--network",
                network,
            ],
        );
        let (_, body) = server.get("/api/v1/eth2/publicKeys");
        let mut served: Vec<String> = serde_json::from_str(&body).unwrap();
        served.sort();
        let mut expected: Vec<String> = ours.iter().map(|v| v.as_str().unwrap().into()).collect();
        expected.sort();
        assert_eq!(served, expected);
    }
}

#[test]
fn transcript_and_logs_hold_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let password = "never-log-this-password";
    std::fs::write(d.join("pw"), password).unwrap();
    let out = d.join("eth2");
    let run = ok(palisade(&[
        "ceremony",
        "eth2",
        "--count",
        "2",
        "--withdrawal-address",
        ADDRESS,
        "--kdf",
        "pbkdf2",
        "--password-file",
        s(&d.join("pw")),
        "--qr",
        "--out",
        s(&out),
    ]));
    let stdout = String::from_utf8(run.stdout).unwrap();
    let stderr = String::from_utf8(run.stderr).unwrap();
    // The mnemonic is shown once on stdout, for writing down; find it there.
    let mnemonic = stdout
        .lines()
        .find(|l| l.split_whitespace().count() == 24)
        .expect("mnemonic shown")
        .trim()
        .to_string();
    let entropy = eip2333::mnemonic_to_entropy(&mnemonic).unwrap();
    let seed = eip2333::mnemonic_to_seed(&mnemonic, "").unwrap();
    let mut secrets: Vec<String> = vec![
        password.into(),
        mnemonic.clone(),
        hex::encode(entropy.as_slice()),
        hex::encode(seed.as_slice()),
    ];
    for i in 0..2 {
        let sk =
            eip2333::derive_path(seed.as_slice(), &eip2333::validator_signing_path(i)).unwrap();
        secrets.push(hex::encode(sk.as_slice()));
    }
    for share in files_in(&out.join("shares")) {
        if share.extension().is_some_and(|x| x == "txt") {
            let text = std::fs::read_to_string(&share).unwrap();
            let words = text.lines().find(|l| l.starts_with("words:")).unwrap();
            secrets.push(words.trim_start_matches("words:").trim().to_string());
        }
    }
    let tezos_out = d.join("tezos");
    let tz = ok(palisade(&[
        "ceremony",
        "tezos",
        "--curve",
        "ed25519",
        "--password-file",
        s(&d.join("pw")),
        "--out",
        s(&tezos_out),
    ]));
    let tz_stderr = String::from_utf8(tz.stderr).unwrap();
    let tz_stdout = String::from_utf8(tz.stdout).unwrap();
    let encrypted: Value =
        serde_json::from_str(&std::fs::read_to_string(tezos_out.join("secret_keys")).unwrap())
            .unwrap();
    let tz_secret = palisade::keys::tezos::decode_secret_key(
        encrypted[0]["value"].as_str().unwrap(),
        Some(password.as_bytes()),
    )
    .unwrap();
    secrets.push(tz_secret.to_b58().to_string());
    secrets.push(encrypted[0]["value"].as_str().unwrap().to_string());
    for share in files_in(&tezos_out.join("shares")) {
        let text = std::fs::read_to_string(&share).unwrap();
        let words = text.lines().find(|l| l.starts_with("words:")).unwrap();
        secrets.push(words.trim_start_matches("words:").trim().to_string());
    }

    let public = [
        std::fs::read_to_string(out.join("transcript.json")).unwrap(),
        std::fs::read_to_string(out.join("transcript.md")).unwrap(),
        std::fs::read_to_string(tezos_out.join("transcript.json")).unwrap(),
        std::fs::read_to_string(tezos_out.join("transcript.md")).unwrap(),
        stderr,
        tz_stderr,
        tz_stdout,
        stdout.replace(&mnemonic, ""),
    ];
    for secret in &secrets {
        // The whole secret, and every 8-byte (16 hex digit) window of the hex ones.
        let mut needles = vec![secret.clone()];
        if secret.chars().all(|c| c.is_ascii_hexdigit()) {
            needles.extend(
                secret
                    .as_bytes()
                    .windows(16)
                    .map(|w| String::from_utf8(w.to_vec()).unwrap()),
            );
        }
        for text in &public {
            for needle in &needles {
                assert!(
                    !text.contains(needle.as_str()),
                    "a secret ({} chars) appears in a transcript or log",
                    needle.len()
                );
            }
        }
    }
    // The mnemonic's words appear in no transcript or log line as a run of 3.
    let words: Vec<&str> = mnemonic.split_whitespace().collect();
    for run in words.windows(3) {
        let needle = run.join(" ");
        for text in &public {
            assert!(!text.contains(&needle), "mnemonic words leaked: {needle}");
        }
    }
    assert!(
        transcript(&out)["shares"].as_array().unwrap().len() == 5,
        "fingerprints of all 5 shares recorded"
    );
}

#[test]
fn tezos_ceremony_keys_import_and_sign_for_every_curve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pw"), "baker password\n").unwrap();
    let keys = d.join("keys");
    let mut pkhs = Vec::new();
    for curve in ["ed25519", "secp256k1", "p256", "bls"] {
        let out = d.join(curve);
        ok(palisade(&[
            "ceremony",
            "tezos",
            "--curve",
            curve,
            "--alias",
            curve,
            "--threshold",
            "2",
            "--shares",
            "3",
            "--password-file",
            s(&d.join("pw")),
            "--out",
            s(&out),
        ]));
        let t = transcript(&out);
        // octez-compatible: palisade's own import of an octez client's secret_keys file.
        ok(palisade(&[
            "keys",
            "import-octez",
            "--secret-keys",
            s(&out.join("secret_keys")),
            "--out",
            s(&keys),
            "--password-file",
            s(&d.join("pw")),
        ]));
        pkhs.push((
            t["keys"][0]["pkh"].as_str().unwrap().to_string(),
            PublicKey::from_b58(t["keys"][0]["public_key"].as_str().unwrap()).unwrap(),
        ));
    }
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::start(
        &data,
        &[
            "--key-config-path",
            s(&keys),
            "--tezos-http-listen-port",
            "0",
        ],
    );
    for (pkh, pk) in &pkhs {
        let bytes = tezos_attestation([0x7a, 0x06, 0xa7, 0x70], 100, 0, 1);
        let (status, body) = server.tezos_sign(pkh, &bytes, "");
        assert_eq!(status, 200, "{pkh}: {body}");
        let sig = Signature::from_b58_for(pk.curve(), &signature_of(&body)).unwrap();
        let version = if pkh.starts_with("tz4") { 2 } else { 0 };
        assert!(
            pk.verify(&hex::decode(&bytes).unwrap(), &sig, version),
            "{pkh}: signature does not verify"
        );
    }
}

#[test]
fn combine_and_verify_check_everything_against_the_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pw"), "pw one\n").unwrap();
    std::fs::write(d.join("pw2"), "pw two\n").unwrap();
    let out = d.join("eth2");
    ok(palisade(&[
        "ceremony",
        "eth2",
        "--count",
        "2",
        "--withdrawal-address",
        ADDRESS,
        "--kdf",
        "pbkdf2",
        "--password-file",
        s(&d.join("pw")),
        "--no-show-mnemonic",
        "--out",
        s(&out),
    ]));
    let other = d.join("other");
    ok(palisade(&[
        "ceremony",
        "tezos",
        "--curve",
        "ed25519",
        "--password-file",
        s(&d.join("pw")),
        "--out",
        s(&other),
    ]));
    let transcript_file = out.join("transcript.json");
    let share = |dir: &Path, i: u8| dir.join(format!("shares/share-{i}-of-5.txt"));
    let combine = |shares: &[PathBuf], target: &str| {
        let mut args = vec![
            "ceremony".to_string(),
            "combine".into(),
            "--transcript".into(),
            s(&transcript_file).into(),
            "--password-file".into(),
            s(&d.join("pw2")).into(),
            "--kdf".into(),
            "pbkdf2".into(),
            "--out".into(),
            s(&d.join(target)).into(),
        ];
        for f in shares {
            args.push("--share".into());
            args.push(s(f).into());
        }
        palisade(&args)
    };
    // Fewer than K.
    let r = combine(&[share(&out, 1), share(&out, 2)], "few");
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("needs 3 distinct shares"));
    assert!(!d.join("few").exists(), "nothing written");
    // A share from another ceremony.
    let r = combine(
        &[share(&out, 1), share(&other, 2), share(&out, 3)],
        "foreign",
    );
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("belongs to ceremony"));
    // A corrupted share (one word replaced).
    let corrupted = d.join("corrupted.txt");
    let text = std::fs::read_to_string(share(&out, 4)).unwrap();
    let words_line = text.lines().find(|l| l.starts_with("words:")).unwrap();
    let mut words: Vec<&str> = words_line.split_whitespace().collect();
    words[5] = if words[5] == "zoo" { "abandon" } else { "zoo" };
    std::fs::write(&corrupted, text.replace(words_line, &words.join(" "))).unwrap();
    let r = combine(&[share(&out, 1), corrupted.clone(), share(&out, 3)], "bad");
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("corrupted"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(!d.join("bad").exists());
    // Any K good shares: keystores of the transcript's keys, under the new password.
    ok(combine(
        &[share(&out, 5), share(&out, 2), share(&out, 4)],
        "rec",
    ));
    let t = transcript(&out);
    let mut rebuilt = Vec::new();
    for f in files_in(&d.join("rec")) {
        let json = std::fs::read_to_string(&f).unwrap();
        let sk = palisade::keys::eip2335::decrypt_bls(&json, "pw two").unwrap();
        rebuilt.push(format!("0x{}", hex::encode(sk.public_key())));
    }
    let mut expected: Vec<String> = t["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["public_key"].as_str().unwrap().to_string())
        .collect();
    rebuilt.sort();
    expected.sort();
    assert_eq!(rebuilt, expected);

    // verify: keystores + deposit data + shares all match; a tampered deposit file does not.
    let keystore_dir = out.join("keystores");
    let pw = d.join("pw");
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "ceremony",
            "verify",
            "--transcript",
            s(&transcript_file),
            "--keystores",
            s(&keystore_dir),
            "--password-file",
            s(&pw),
        ];
        args.extend_from_slice(extra);
        palisade(&args)
    };
    let s1 = share(&out, 1);
    let s3 = share(&out, 3);
    let s5 = share(&out, 5);
    ok(verify(&["--shares", s(&s1), s(&s3), s(&s5)]));
    let deposit = files_in(&out)
        .into_iter()
        .find(|p| p.to_str().unwrap().contains("deposit_data-"))
        .unwrap();
    let mut perms = std::fs::metadata(&deposit).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&deposit, perms).unwrap();
    let original = std::fs::read_to_string(&deposit).unwrap();
    let amount = "\"amount\": 32000000000";
    assert!(original.contains(amount));
    std::fs::write(
        &deposit,
        original.replacen(amount, "\"amount\": 31000000000", 1),
    )
    .unwrap();
    let r = verify(&[]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stdout).contains("[FAILED] deposit data"));
}

#[test]
fn refused_parameters_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pw"), "pw\n").unwrap();
    let pw = d.join("pw");
    let cases: [(&[&str], &str); 4] = [
        (&["--threshold", "6", "--shares", "5"], "threshold"),
        (&["--threshold", "1", "--shares", "3"], "threshold"),
        (&["--amount-eth", "31"], "32"),
        (&["--network", "atlantis"], "atlantis"),
    ];
    for (i, (extra, expect)) in cases.iter().enumerate() {
        let out = d.join(format!("out-{i}"));
        let mut args = vec![
            "ceremony",
            "eth2",
            "--count",
            "1",
            "--withdrawal-address",
            ADDRESS,
            "--kdf",
            "pbkdf2",
            "--password-file",
            s(&pw),
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        let r = palisade(&args);
        assert!(!r.status.success(), "{extra:?} was accepted");
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(stderr.contains(expect), "{extra:?}: {stderr}");
        assert!(
            !out.exists(),
            "{extra:?}: output written despite the refusal"
        );
    }
    // Tezos: bad K/M, unknown curve, tz5 (which cannot be a baker key).
    for (extra, expect) in [
        (
            ["--curve", "ed25519", "--threshold", "4", "--shares", "3"],
            "threshold",
        ),
        (
            ["--curve", "rsa", "--threshold", "2", "--shares", "3"],
            "expected ed25519",
        ),
        (
            ["--curve", "mldsa44", "--threshold", "2", "--shares", "3"],
            "cannot be a baker",
        ),
    ] {
        let out = d.join("tz");
        let mut args = vec![
            "ceremony",
            "tezos",
            "--password-file",
            s(&pw),
            "--out",
            s(&out),
        ];
        args.extend_from_slice(&extra);
        let r = palisade(&args);
        assert!(!r.status.success());
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(stderr.contains(expect), "{extra:?}: {stderr}");
        assert!(!out.exists());
    }
}
