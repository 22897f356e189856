//! Known-answer tests from `tests/vectors/` that need no server: EIP-2335 keystores and
//! password normalisation, consensus-spec BLS `sign` cases, `compute_domain` cases, and the
//! signing roots of the Web3Signer OpenAPI examples and deposit known answers.

mod common;

use common::vector;
use palisade::chain::eth2::containers::{Root, Version};
use palisade::chain::eth2::network::NetworkConfig;
use palisade::chain::eth2::request;
use palisade::chain::eth2::signing::compute_domain;
use palisade::crypto::bls::SecretKey;
use palisade::keys::eip2335::{self, KeystoreError};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim_start_matches("0x")).unwrap()
}

fn codepoints(v: &serde_json::Value) -> String {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            char::from_u32(
                u32::from_str_radix(c.as_str().unwrap().trim_start_matches("0x"), 16).unwrap(),
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn eip2335_keystores_decrypt_to_the_expected_key() {
    let expected = vector("eip2335/expected.json");
    let password = expected["password"].as_str().unwrap();
    assert_eq!(password, codepoints(&expected["password_codepoints"]));
    for name in expected["keystores"].as_array().unwrap() {
        let path = common::vectors_dir()
            .join("eip2335")
            .join(name.as_str().unwrap());
        let json = std::fs::read_to_string(&path).unwrap();
        let d =
            eip2335::decrypt(&json, password).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            hex::encode(&*d.secret),
            expected["secret_hex"].as_str().unwrap(),
            "{name}"
        );
        let sk = eip2335::decrypt_bls(&json, password).unwrap();
        assert_eq!(
            hex::encode(sk.public_key()),
            expected["pubkey_hex"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            eip2335::decrypt(&json, "wrong password").err(),
            Some(KeystoreError::ChecksumMismatch),
            "{name}: wrong password must fail the checksum"
        );
    }
}

#[test]
fn eip2335_password_normalisation() {
    let expected = vector("eip2335/expected.json");
    assert_eq!(
        hex::encode(&*eip2335::normalize_password(
            expected["password"].as_str().unwrap()
        )),
        expected["encoded_password_hex"].as_str().unwrap()
    );
    let cases = expected["password_normalisation_cases"].as_array().unwrap();
    assert!(cases.len() >= 2);
    for case in cases {
        let input = codepoints(&case["input_codepoints"]);
        assert_eq!(
            hex::encode(&*eip2335::normalize_password(&input)),
            case["expected_utf8_hex"].as_str().unwrap(),
            "{}",
            case["source"]
        );
    }
}

/// A malformed keystore file, how its error must look, and a word its message must contain.
type Refusal = (&'static str, fn(&KeystoreError) -> bool, &'static str);

#[test]
fn web3signer_keystores_valid_load_and_malformed_are_refused_with_reason() {
    let dir = common::vectors_dir().join("eip2335/web3signer-bls-keystore");
    let password = vector("eip2335/expected.json")["password"]
        .as_str()
        .unwrap()
        .to_string();
    let pubkey = vector("eip2335/expected.json")["pubkey_hex"]
        .as_str()
        .unwrap()
        .to_string();
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    for valid in [
        "pbkdf2TestVector.json",
        "scryptTestVector.json",
        "scryptExtraFieldTestVector.json",
    ] {
        let sk = eip2335::decrypt_bls(&read(valid), &password)
            .unwrap_or_else(|e| panic!("{valid}: {e}"));
        assert_eq!(hex::encode(sk.public_key()), pubkey, "{valid}");
    }
    let cases: [Refusal; 9] = [
        (
            "missingCrypto.json",
            |e| matches!(e, KeystoreError::Malformed(m) if m.contains("crypto")),
            "crypto",
        ),
        (
            "missingKdfSectionTestVector.json",
            |e| matches!(e, KeystoreError::Malformed(m) if m.contains("kdf")),
            "kdf",
        ),
        (
            "missingVersion.json",
            |e| *e == KeystoreError::MissingVersion,
            "version",
        ),
        (
            "unsupportedChecksumFunction.json",
            |e| matches!(e, KeystoreError::UnsupportedChecksum(_)),
            "checksum",
        ),
        (
            "unsupportedCipherFunction.json",
            |e| matches!(e, KeystoreError::UnsupportedCipher(_)),
            "cipher",
        ),
        (
            "unsupportedDkLen.json",
            |e| matches!(e, KeystoreError::UnsupportedDkLen(31)),
            "dklen",
        ),
        (
            "unsupportedKdfFunction.json",
            |e| matches!(e, KeystoreError::UnsupportedKdf(_)),
            "KDF",
        ),
        (
            "unsupportedPBKDF2Prf.json",
            |e| matches!(e, KeystoreError::UnsupportedPrf(_)),
            "PRF",
        ),
        (
            "v3TestVector.json",
            |e| *e == KeystoreError::UnsupportedVersion(3),
            "version",
        ),
    ];
    for (file, is_expected, word) in cases {
        let err = match eip2335::decrypt(&read(file), &password) {
            Ok(_) => panic!("{file} must be refused"),
            Err(e) => e,
        };
        assert!(is_expected(&err), "{file}: unexpected error {err:?}");
        assert!(
            err.to_string().contains(word),
            "{file}: message `{err}` should name {word}"
        );
    }
}

#[test]
fn consensus_bls_sign_cases_are_byte_exact() {
    let v = vector("eth2-signing/bls_sign_cases.json");
    let mut signed = 0;
    let mut refused = 0;
    for case in v["cases"].as_array().unwrap() {
        let sk_bytes = unhex(case["input"]["privkey"].as_str().unwrap());
        let msg = unhex(case["input"]["message"].as_str().unwrap());
        match case["output"].as_str() {
            Some(expected) => {
                let sk = SecretKey::from_bytes(&sk_bytes).unwrap();
                assert_eq!(
                    format!("0x{}", hex::encode(sk.sign(&msg))),
                    expected,
                    "{}",
                    case["name"]
                );
                if let Some(pk) = case["pubkey_derived"].as_str() {
                    assert_eq!(format!("0x{}", hex::encode(sk.public_key())), pk);
                }
                signed += 1;
            }
            None => {
                assert!(
                    SecretKey::from_bytes(&sk_bytes).is_err(),
                    "{} must be refused",
                    case["name"]
                );
                refused += 1;
            }
        }
    }
    assert!(
        signed >= 3 && refused >= 1,
        "signed {signed}, refused {refused}"
    );
}

#[test]
fn compute_domain_cases() {
    let v = vector("eth2-signing/domains.json");
    let cases = v["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let dt: [u8; 4] = unhex(case["domain_type"].as_str().unwrap())
            .try_into()
            .unwrap();
        let fv: [u8; 4] = unhex(case["fork_version"].as_str().unwrap())
            .try_into()
            .unwrap();
        let gvr: [u8; 32] = unhex(case["genesis_validators_root"].as_str().unwrap())
            .try_into()
            .unwrap();
        let d = compute_domain(dt.into(), Version::from(fv), Root::from(gvr));
        assert_eq!(
            format!("0x{}", hex::encode(d)),
            case["expected_domain"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn domain_cases_fork_schedule_matches_built_in_mainnet() {
    let v = vector("eth2-signing/domains.json");
    let mainnet = NetworkConfig::from_name_or_path("mainnet").unwrap();
    let sched = v["mainnet_fork_schedule"].as_object().unwrap();
    assert_eq!(
        format!("{}", mainnet.genesis_fork_version),
        sched["GENESIS_FORK_VERSION"].as_str().unwrap()
    );
    for (name, fork) in sched.iter().filter(|(k, _)| *k != "GENESIS_FORK_VERSION") {
        let f = palisade::chain::eth2::network::ForkName::parse(name).unwrap();
        let (_, version, epoch) = mainnet.forks.iter().find(|(n, _, _)| *n == f).unwrap();
        assert_eq!(format!("{version}"), fork[0].as_str().unwrap(), "{name}");
        assert_eq!(*epoch, fork[1].as_u64().unwrap(), "{name}");
    }
}

#[test]
fn openapi_examples_and_deposits_have_the_published_signing_roots() {
    let minimal = NetworkConfig::from_name_or_path("minimal").unwrap();
    let mainnet = NetworkConfig::from_name_or_path("mainnet").unwrap();
    let examples = vector("eth2-signing/web3signer_openapi_examples.json");
    for case in examples["cases"].as_array().unwrap() {
        let plan = request::plan(&case["request_body"], &minimal)
            .unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
        assert_eq!(
            format!("{}", plan.signing_root),
            case["expected_signing_root"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
    for case in vector("eth2-signing/deposit_kats.json")["cases"]
        .as_array()
        .unwrap()
    {
        let plan = request::plan(&case["request_body"], &mainnet).unwrap();
        assert_eq!(
            format!("{}", plan.signing_root),
            case["expected_signing_root"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
}
