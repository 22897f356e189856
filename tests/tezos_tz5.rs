//! tz5 (ML-DSA-44) keys through the real binary: octez's own hardcoded key
//! (`src/lib_crypto/signature_v3.ml`, `tests/vectors/tz5/octez_hardcoded_mdsk.txt`) loaded
//! from `unencrypted:mdsk…` and a fresh one from `encrypted:mdesk…`, their public keys and
//! signatures over HTTP, every signature verified by `libcrux-ml-dsa` 0.0.5 (the code octez
//! verifies tz5 signatures with), signature versions, a tz5 authorized key (an `mdsig…` in
//! the query string), policy, and the binary protocol's tz5 answers (public key, nonces,
//! known keys) with its refusal of a tz5 Sign request, which octez's `pkh_encoding` cannot
//! express.

mod common;

use std::path::Path;

use common::octez::{self, Conn, pkh21};
use common::{Server, tezos_transfer};
use libcrux_ml_dsa::ml_dsa_44 as octez_mldsa;
use palisade::crypto::tezos::{Curve, PublicKey, SecretKey, Signature, blake2b_256};
use serde_json::Value;

fn octez_mdsk() -> String {
    let path = common::repo_dir().join("tests/vectors/tz5/octez_hardcoded_mdsk.txt");
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

/// Whether octez's ML-DSA code accepts `sig` over `data` (blake2b-256, empty context).
fn octez_verifies(pk: &PublicKey, data: &[u8], sig: &Signature) -> bool {
    let vk = octez_mldsa::MLDSA44VerificationKey::new(pk.as_bytes().try_into().unwrap());
    let Ok(raw) = <[u8; 2420]>::try_from(sig.as_bytes()) else {
        return false;
    };
    octez_mldsa::verify(
        &vk,
        &blake2b_256(data),
        b"",
        &octez_mldsa::MLDSA44Signature::new(raw),
    )
    .is_ok()
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

fn write_key(dir: &Path, name: &str, uri: &str, password_file: Option<&Path>) {
    let mut yaml =
        format!("type: tezos-secret\nsecretKey: \"{uri}\"\npolicy:\n  allow: [generic, block]\n");
    if let Some(p) = password_file {
        yaml.push_str(&format!("passwordFile: {}\n", p.display()));
    }
    std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
}

#[test]
fn tz5_keys_sign_over_http_and_answer_over_the_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let octez_key = SecretKey::from_b58(&octez_mdsk()).unwrap();
    let fresh = SecretKey::generate(Curve::Mldsa44);
    let password = tmp.path().join("password");
    std::fs::write(&password, "tz5 pass phrase\n").unwrap();
    write_key(
        &keys,
        "octez",
        &format!("unencrypted:{}", octez_mdsk()),
        None,
    );
    write_key(
        &keys,
        "fresh",
        &format!(
            "encrypted:{}",
            fresh.to_encrypted_b58(b"tz5 pass phrase", [3; 8])
        ),
        Some(&password),
    );
    // The authorized key is a tz5 key too: its `mdsig…` is 3,316 characters of query string.
    let client = SecretKey::generate(Curve::Mldsa44);
    let authorized = tmp.path().join("authorized_keys");
    std::fs::write(&authorized, format!("{}\n", client.public_key().to_b58())).unwrap();
    let socket = tmp.path().join("palisade.sock");
    let server = Server::start(
        &tmp.path().join("data"),
        &[
            "--key-config-path",
            keys.to_str().unwrap(),
            "--tezos-http-listen-port",
            "0",
            "--tezos-tcp-listen-port",
            "0",
            "--tezos-unix-socket",
            socket.to_str().unwrap(),
            "--tezos-require-authentication",
            "--tezos-authorized-keys",
            authorized.to_str().unwrap(),
            "--tezos-allow-list-known-keys",
        ],
    );

    for key in [&octez_key, &fresh] {
        let pk = key.public_key();
        let pkh = pk.pkh_b58();
        assert!(pkh.starts_with("tz5"), "{pkh}");
        let (status, body) = server.tezos_get(&format!("/keys/{pkh}"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(json(&body)["public_key"], pk.to_b58());

        let data = tezos_transfer(&pkh21(&pkh), 5);
        let auth = client
            .sign(&octez::to_sign(&pkh21(&pkh), &data), 3)
            .unwrap()
            .to_b58();
        assert_eq!(auth.len(), 3316);
        let query = format!("?authentication={auth}");
        let (status, body) = server.tezos_sign(&pkh, &hex::encode(&data), &query);
        assert_eq!(status, 200, "{body}");
        let b58 = json(&body)["signature"].as_str().unwrap().to_string();
        assert!(b58.starts_with("mdsig"), "{b58}");
        let sig = Signature::from_b58(&b58).unwrap();
        assert!(octez_verifies(&pk, &data, &sig), "octez's code verifies it");
        assert!(pk.verify(&data, &sig, 3));
        // Version 3 names what no version means for tz5; V0–V2 have no tz5 (octez refuses).
        let (status, body) =
            server.tezos_sign(&pkh, &hex::encode(&data), &format!("{query}&version=3"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(json(&body)["signature"], b58.as_str(), "deterministic");
        for v in ["0", "1", "2"] {
            let (status, body) =
                server.tezos_sign(&pkh, &hex::encode(&data), &format!("{query}&version={v}"));
            assert_eq!(status, 400, "version {v}: {body}");
            assert!(body.contains("version 3"), "{body}");
        }
        // Without, or with a wrong, authentication.
        let (status, _) = server.tezos_sign(&pkh, &hex::encode(&data), "");
        assert_eq!(status, 401);
        let other = tezos_transfer(&pkh21(&pkh), 6);
        let (status, _) = server.tezos_sign(&pkh, &hex::encode(&other), &query);
        assert_eq!(status, 403);
        // Policy: Michelson data (0x05) is not in `allow`.
        let data05 = [0x05, 0x01, 0x00];
        let auth05 = client
            .sign(&octez::to_sign(&pkh21(&pkh), &data05), 3)
            .unwrap()
            .to_b58();
        let (status, body) = server.tezos_sign(
            &pkh,
            &hex::encode(data05),
            &format!("?authentication={auth05}"),
        );
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("policy"), "{body}");
        // A block, though the policy allows blocks: tz5 cannot be a consensus key.
        let block = hex::decode(common::tezos_block([0x7a, 0x06, 0xa7, 0x70], 10, 0, 1)).unwrap();
        let auth_block = client
            .sign(&octez::to_sign(&pkh21(&pkh), &block), 3)
            .unwrap()
            .to_b58();
        let (status, body) = server.tezos_sign(
            &pkh,
            &hex::encode(&block),
            &format!("?authentication={auth_block}"),
        );
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("consensus key"), "{body}");
    }

    // The binary protocol: `Signature.Public_key_hash` (V3) has tag 4 for tz5, so every
    // request but Sign can name a tz5 key.
    for scheme in ["tcp", "unix"] {
        let mut c = Conn::open(scheme, &server.tezos_socket(scheme));
        let tz5 = pkh21(&octez_key.public_key().pkh_b58());
        assert_eq!(tz5[0], 4);
        let mut want = vec![4];
        want.extend_from_slice(octez_key.public_key().as_bytes());
        assert_eq!(c.call(&octez::public_key(&tz5)).ok(), want);
        assert_eq!(c.call(&octez::supports_nonces(&tz5)).ok(), vec![0xff]);
        let level = 77u32.to_be_bytes();
        let auth = client
            .sign(&octez::to_sign(&tz5, &level), 3)
            .unwrap()
            .as_bytes()
            .to_vec();
        assert_eq!(auth.len(), 2420);
        let nonce = c.call(&octez::nonce(false, &tz5, &level, Some(&auth))).ok();
        assert_eq!(
            &nonce[4..],
            octez_key.deterministic_nonce(&level).as_slice()
        );
        let hash = c.call(&octez::nonce(true, &tz5, &level, Some(&auth))).ok();
        assert_eq!(&hash[4..], blake2b_256(&nonce[4..]).as_slice());
        let known = c.call(&octez::known_keys()).ok();
        assert!(
            known.windows(21).any(|w| w == tz5),
            "known keys list the tz5"
        );
        // Sign's `pkh_encoding` (signer_messages.ml) has no tz5 case: octez cannot send one,
        // and palisade refuses the bytes as malformed.
        let data = tezos_transfer(&tz5, 5);
        let msg = c.call(&octez::sign(&tz5, 3, &data, Some(&auth))).error();
        assert!(msg.contains("malformed"), "{msg}");
    }
    server.stop();
}
