//! tz5 (ML-DSA-44) tests:
//! - octez's own key (`src/lib_crypto/signature_v3.ml`, `hardcoded_sk`, in
//!   `tests/vectors/tz5/octez_hardcoded_mdsk.txt`) read, re-encoded, hashed and used to sign,
//!   each signature checked by `libcrux-ml-dsa` 0.0.5, the crate and version octez signs and
//!   verifies with (`src/rust_libcrux/Cargo.toml`), and octez's own signatures (hedged, made
//!   by that crate) verified by palisade;
//! - the crate palisade signs with (`ml-dsa`) against NIST's FIPS 204 ACVP known answers
//!   (`tests/vectors/fips204/mldsa44_acvp.json`): key generation, signature generation
//!   (internal and external interface, deterministic and hedged) and verification;
//! - malformed secret keys refused without a panic.

use libcrux_ml_dsa::ml_dsa_44 as octez_mldsa;
use ml_dsa::{ExpandedSigningKey, MlDsa44, VerifyingKey};
use serde_json::Value;

use super::secret_key::MLDSA44_EXPANDED_LEN;
use super::{Curve, KeyError, MLDSA44_CONTEXT, PublicKey, SecretKey, Signature, blake2b_256};
use crate::chain::tezos::base58::{self, Prefix};

const OCTEZ_MDSK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/tz5/octez_hardcoded_mdsk.txt"
);
const ACVP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/fips204/mldsa44_acvp.json"
);

/// `hardcoded_msg` of `signature_v3.ml`, the message octez signs with `hardcoded_sk`.
const OCTEZ_HARDCODED_MSG: &[u8] = b"Cheers";

fn octez_mdsk() -> String {
    std::fs::read_to_string(OCTEZ_MDSK)
        .unwrap()
        .trim()
        .to_string()
}

fn acvp() -> Value {
    serde_json::from_str(&std::fs::read_to_string(ACVP).unwrap()).unwrap()
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("no {key}"))).unwrap()
}

fn octez_key_pair(
    raw: &[u8],
) -> (
    octez_mldsa::MLDSA44SigningKey,
    octez_mldsa::MLDSA44VerificationKey,
) {
    let sk: [u8; MLDSA44_EXPANDED_LEN] = raw[..MLDSA44_EXPANDED_LEN].try_into().unwrap();
    let pk: [u8; 1312] = raw[MLDSA44_EXPANDED_LEN..].try_into().unwrap();
    (
        octez_mldsa::MLDSA44SigningKey::new(sk),
        octez_mldsa::MLDSA44VerificationKey::new(pk),
    )
}

fn octez_verifies(pk: &PublicKey, data: &[u8], sig: &Signature) -> bool {
    let vk = octez_mldsa::MLDSA44VerificationKey::new(pk.as_bytes().try_into().unwrap());
    let sig = octez_mldsa::MLDSA44Signature::new(sig.as_bytes().try_into().unwrap());
    octez_mldsa::verify(&vk, &blake2b_256(data), MLDSA44_CONTEXT, &sig).is_ok()
}

#[test]
fn octez_hardcoded_key_reads_and_re_encodes() {
    let text = octez_mdsk();
    let raw = base58::decode(Prefix::Mldsa44SecretKey, &text).unwrap();
    assert_eq!(raw.len(), 3872);
    let sk = SecretKey::from_b58(&text).unwrap();
    assert_eq!(sk.curve(), Curve::Mldsa44);
    assert_eq!(sk.to_b58().as_str(), text, "mdsk round trip");
    assert_eq!(sk.raw_secret().as_slice(), raw.as_slice());
    // octez's `Secret_key.to_public_key` is the stored half; palisade derives the same one.
    let pk = sk.public_key();
    assert_eq!(pk.as_bytes(), &raw[MLDSA44_EXPANDED_LEN..]);
    let mdpk = pk.to_b58();
    assert!(
        mdpk.starts_with("mdpk") && mdpk.len() == 1802,
        "{}",
        mdpk.len()
    );
    assert_eq!(PublicKey::from_b58(&mdpk).unwrap(), pk);
    // tz5 = base58check(06 a1 a9 ‖ blake2b-160(pk)), `Blake2B.Make (size 20)` in mldsa44.ml.
    let pkh = pk.pkh_b58();
    assert!(pkh.starts_with("tz5") && pkh.len() == 36, "{pkh}");
    assert_eq!(
        base58::decode(Prefix::Mldsa44PublicKeyHash, &pkh).unwrap(),
        super::blake2b_160(&raw[MLDSA44_EXPANDED_LEN..])
    );
    assert_eq!(
        super::decode_pkh(&pkh).unwrap(),
        (Curve::Mldsa44, pk.hash())
    );
    assert_eq!(pk.pkh_bytes()[0], 4, "binary tag of signature_v3.ml");
}

#[test]
fn octez_hardcoded_key_signs_what_octez_verifies() {
    let sk = SecretKey::from_b58(&octez_mdsk()).unwrap();
    let pk = sk.public_key();
    let raw = sk.raw_secret();
    let (octez_sk, octez_pk) = octez_key_pair(&raw);
    for data in [
        OCTEZ_HARDCODED_MSG.to_vec(),
        [&[0x03u8][..], OCTEZ_HARDCODED_MSG].concat(),
        vec![0x03; 5000],
    ] {
        let sig = sk.sign(&data, 3).unwrap();
        assert_eq!(sig.as_bytes().len(), 2420);
        assert!(sig.to_b58().starts_with("mdsig") && sig.to_b58().len() == 3316);
        assert_eq!(Signature::from_b58(&sig.to_b58()).unwrap(), sig);
        assert!(pk.verify(&data, &sig, 3));
        assert!(
            octez_verifies(&pk, &data, &sig),
            "libcrux 0.0.5 verifies it"
        );
        // Deterministic: the same bytes as octez's code with rnd = 0, on every call.
        let digest = blake2b_256(&data);
        let theirs = octez_mldsa::sign(&octez_sk, &digest, MLDSA44_CONTEXT, [0; 32]).unwrap();
        assert_eq!(sig.as_bytes(), theirs.as_slice(), "byte for byte");
        assert_eq!(sk.sign(&data, 4).unwrap(), sig);
        // octez signs hedged (32 fresh random bytes); those verify here.
        for rnd in [[1u8; 32], [0xa5; 32]] {
            let hedged = octez_mldsa::sign(&octez_sk, &digest, MLDSA44_CONTEXT, rnd).unwrap();
            let hedged = Signature::from_raw(Curve::Mldsa44, hedged.as_slice()).unwrap();
            assert_ne!(hedged, sig);
            assert!(pk.verify(&data, &hedged, 3));
        }
        // Over other bytes, with a context, or without the blake2b pre-hash: refused.
        let mut other = data.clone();
        other[0] ^= 1;
        assert!(!pk.verify(&other, &sig, 3));
        assert!(!octez_verifies(&pk, &other, &sig));
        let with_ctx = octez_mldsa::sign(&octez_sk, &digest, b"tezos", [0; 32]).unwrap();
        let with_ctx = Signature::from_raw(Curve::Mldsa44, with_ctx.as_slice()).unwrap();
        assert!(!pk.verify(&data, &with_ctx, 3));
        let unhashed = octez_mldsa::sign(&octez_sk, &data, MLDSA44_CONTEXT, [0; 32]).unwrap();
        let unhashed = Signature::from_raw(Curve::Mldsa44, unhashed.as_slice()).unwrap();
        assert!(!pk.verify(&data, &unhashed, 3));
        assert!(
            octez_mldsa::verify(
                &octez_pk,
                &digest,
                MLDSA44_CONTEXT,
                &octez_mldsa::MLDSA44Signature::new(sig.as_bytes().try_into().unwrap())
            )
            .is_ok()
        );
    }
}

#[test]
fn octez_generated_keys_load_and_palisade_keys_verify_in_octez() {
    for seed in [[0u8; 32], [0xff; 32], core::array::from_fn(|i| i as u8)] {
        let pair = octez_mldsa::generate_key_pair(seed);
        let mut raw = pair.signing_key.as_slice().to_vec();
        raw.extend_from_slice(pair.verification_key.as_slice());
        let sk = SecretKey::from_raw(Curve::Mldsa44, &raw).unwrap();
        assert_eq!(sk.public_key().as_bytes(), pair.verification_key.as_slice());
        let sig = sk.sign(b"\x03transfer", 3).unwrap();
        assert!(octez_verifies(&sk.public_key(), b"\x03transfer", &sig));
    }
    // And a key palisade generates is one octez signs with.
    let sk = SecretKey::generate(Curve::Mldsa44);
    let raw = sk.raw_secret();
    let (octez_sk, _) = octez_key_pair(&raw);
    let digest = blake2b_256(b"\x03x");
    let theirs = octez_mldsa::sign(&octez_sk, &digest, MLDSA44_CONTEXT, [7; 32]).unwrap();
    let theirs = Signature::from_raw(Curve::Mldsa44, theirs.as_slice()).unwrap();
    assert!(sk.public_key().verify(b"\x03x", &theirs, 3));
    let back = SecretKey::from_b58(&sk.to_b58()).unwrap();
    assert_eq!(back.public_key(), sk.public_key());
}

#[test]
fn deterministic_nonce_is_keyed_with_the_3872_octez_bytes() {
    use hmac::{KeyInit, Mac};
    let sk = SecretKey::from_b58(&octez_mdsk()).unwrap();
    let raw = base58::decode(Prefix::Mldsa44SecretKey, &octez_mdsk()).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&raw).unwrap();
    mac.update(&[0, 0, 0, 42]);
    let expected: [u8; 32] = mac.finalize().into_bytes().into();
    assert_eq!(*sk.deterministic_nonce(&[0, 0, 0, 42]), expected);
    assert_eq!(
        sk.deterministic_nonce_hash(&[0, 0, 0, 42]),
        blake2b_256(&expected)
    );
}

#[test]
fn encrypted_mdesk_round_trips() {
    let sk = SecretKey::from_b58(&octez_mdsk()).unwrap();
    let enc = sk.to_encrypted_b58(b"pass phrase", [9; 8]);
    assert!(enc.starts_with("mdesk"), "{}", &enc[..8]);
    // salt 8 + secretbox tag 16 + 3872 (encrypted.ml `Raw.encrypt`).
    assert_eq!(
        base58::decode(Prefix::Mldsa44EncryptedSecretKey, &enc)
            .unwrap()
            .len(),
        3896
    );
    let back = SecretKey::from_encrypted_b58(&enc, b"pass phrase").unwrap();
    assert_eq!(back.to_b58(), sk.to_b58());
    assert_eq!(
        SecretKey::from_encrypted_b58(&enc, b"pass phrasf").unwrap_err(),
        KeyError::BadPassword
    );
}

#[test]
fn malformed_secret_keys_are_refused_without_panicking() {
    let good = base58::decode(Prefix::Mldsa44SecretKey, &octez_mdsk()).unwrap();
    // Wrong lengths.
    for len in [0, 32, 2560, 3871, 3873] {
        assert!(matches!(
            SecretKey::from_raw(Curve::Mldsa44, &vec![0u8; len]),
            Err(KeyError::InvalidLength { .. })
        ));
    }
    // Each s1/s2 coefficient byte region set to 3-bit values 5, 6, 7 (out of [0, 4]).
    for (offset, byte) in [(128, 0x05), (500, 0xff), (895, 0xe0)] {
        let mut bad = good.clone();
        bad[offset] = byte;
        assert_eq!(
            SecretKey::from_raw(Curve::Mldsa44, &bad).unwrap_err(),
            KeyError::InvalidSecretKey(Curve::Mldsa44),
            "byte {offset}"
        );
    }
    // Another public key half.
    let other = SecretKey::generate(Curve::Mldsa44);
    let mut mixed = good[..MLDSA44_EXPANDED_LEN].to_vec();
    mixed.extend_from_slice(other.public_key().as_bytes());
    assert_eq!(
        SecretKey::from_raw(Curve::Mldsa44, &mixed).unwrap_err(),
        KeyError::PublicKeyMismatch
    );
    // tr (bytes 64..128, the public key's hash) changed: the public key derived from s1 and s2
    // is unchanged, but the key no longer makes signatures its public key verifies.
    for offset in [64, 127] {
        let mut bad = good.clone();
        bad[offset] ^= 0x01;
        assert!(
            SecretKey::from_raw(Curve::Mldsa44, &bad).is_err(),
            "byte {offset} changed"
        );
    }
    // Random s1 and s2 within range, with the public key they derive: they pass every check
    // before the probe signature, which tr (the old key's public key hash) then fails. No panic.
    let mut state = blake2b_256(b"tz5 random keys");
    for _ in 0..16 {
        let mut bad = good.clone();
        for chunk in bad[128..896].chunks_exact_mut(3) {
            state = blake2b_256(&state);
            let word = (0..8).fold(0u32, |w, i| w | (u32::from(state[i]) % 5) << (3 * i));
            chunk.copy_from_slice(&word.to_le_bytes()[..3]);
        }
        #[allow(deprecated)]
        let derived = ExpandedSigningKey::<MlDsa44>::from_expanded(
            bad[..MLDSA44_EXPANDED_LEN].try_into().unwrap(),
        )
        .verifying_key()
        .encode();
        bad[MLDSA44_EXPANDED_LEN..].copy_from_slice(&derived);
        assert_eq!(
            SecretKey::from_raw(Curve::Mldsa44, &bad).unwrap_err(),
            KeyError::InvalidSecretKey(Curve::Mldsa44)
        );
    }
    // Errors name no key bytes.
    let err = SecretKey::from_raw(Curve::Mldsa44, &mixed).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(&hex::encode(&good[..8])));
}

#[test]
fn fips204_acvp_key_generation() {
    let cases = acvp()["keyGen"].as_array().unwrap().clone();
    assert!(cases.len() >= 20);
    for c in &cases {
        let seed: [u8; 32] = hex_field(c, "seed").try_into().unwrap();
        let key = ExpandedSigningKey::<MlDsa44>::from_seed(&seed.into());
        assert_eq!(
            key.verifying_key().encode().as_slice(),
            hex_field(c, "pk"),
            "tcId {}",
            c["tcId"]
        );
        #[allow(deprecated)]
        let expanded = key.to_expanded();
        assert_eq!(
            expanded.as_slice(),
            hex_field(c, "sk"),
            "tcId {}",
            c["tcId"]
        );
        // palisade reads NIST's key in octez's form and signs with it.
        let mut raw = hex_field(c, "sk");
        raw.extend_from_slice(&hex_field(c, "pk"));
        let sk = SecretKey::from_raw(Curve::Mldsa44, &raw).unwrap();
        assert_eq!(sk.public_key().as_bytes(), hex_field(c, "pk"));
    }
}

/// M′ of FIPS 204 Algorithm 2 (pure, external interface): 0 ‖ |ctx| ‖ ctx ‖ M.
fn external_prefix(ctx: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8, u8::try_from(ctx.len()).unwrap()];
    p.extend_from_slice(ctx);
    p
}

#[test]
fn fips204_acvp_signature_generation() {
    let cases = acvp()["sigGen"].as_array().unwrap().clone();
    let mut kinds = std::collections::BTreeSet::new();
    for c in &cases {
        let id = &c["tcId"];
        let sk_bytes = hex_field(c, "sk");
        let mut raw = sk_bytes.clone();
        #[allow(deprecated)]
        let key =
            ExpandedSigningKey::<MlDsa44>::from_expanded(sk_bytes.as_slice().try_into().unwrap());
        raw.extend_from_slice(&key.verifying_key().encode());
        // The validation palisade applies accepts every NIST key.
        SecretKey::from_raw(Curve::Mldsa44, &raw).unwrap();
        let message = hex_field(c, "message");
        let rnd: [u8; 32] = match c["rnd"].as_str() {
            Some(h) => hex::decode(h).unwrap().try_into().unwrap(),
            None => [0; 32],
        };
        assert_eq!(c["deterministic"].as_bool().unwrap(), c["rnd"].is_null());
        let interface = c["interface"].as_str().unwrap();
        let sig = match interface {
            "internal" => key.sign_internal(&[&message], &rnd.into()),
            "external" => {
                let ctx = hex_field(c, "context");
                if c["rnd"].is_null() {
                    key.sign_deterministic(&message, &ctx).unwrap()
                } else {
                    key.sign_internal(&[&external_prefix(&ctx), &message], &rnd.into())
                }
            }
            other => panic!("interface {other}"),
        };
        assert_eq!(
            sig.encode().as_slice(),
            hex_field(c, "signature"),
            "tcId {id}"
        );
        kinds.insert((interface.to_string(), c["rnd"].is_null()));
    }
    assert_eq!(kinds.len(), 4, "internal/external × deterministic/hedged");
}

#[test]
fn fips204_acvp_signature_verification() {
    let cases = acvp()["sigVer"].as_array().unwrap().clone();
    let (mut valid, mut invalid) = (0, 0);
    for c in &cases {
        let id = &c["tcId"];
        let vk = VerifyingKey::<MlDsa44>::decode(hex_field(c, "pk").as_slice().try_into().unwrap());
        let message = hex_field(c, "message");
        let sig_bytes = hex_field(c, "signature");
        let ok = match ml_dsa::Signature::<MlDsa44>::try_from(sig_bytes.as_slice()) {
            Err(_) => false,
            Ok(sig) => match c["interface"].as_str().unwrap() {
                "internal" => vk.verify_internal(&message, &sig),
                _ => vk.verify_with_context(&message, &hex_field(c, "context"), &sig),
            },
        };
        let expected = c["testPassed"].as_bool().unwrap();
        assert_eq!(ok, expected, "tcId {id}: {}", c["reason"]);
        if expected { valid += 1 } else { invalid += 1 }
    }
    assert!(
        valid >= 2 && invalid >= 5,
        "{valid} valid, {invalid} invalid"
    );
}

/// The fuzzer's find (`fuzz/regressions/tezos_secret_key/`): octez's key with corrupted t0
/// bytes. t0 is the low part of A·s1 + s2, which only the seed's expansion gives, so no load
/// check sees it and the key loads; but some of its signatures do not verify, and those are
/// refused, never returned.
#[test]
fn a_key_with_a_corrupted_t0_never_releases_a_bad_signature() {
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/regressions/tezos_secret_key/t0_corrupted_key_signs_some_messages"
    ))
    .unwrap();
    // The fuzz target's plain tz5 mode: the mode byte, then the 3872-byte key.
    assert_eq!(input[0], 8);
    let sk = SecretKey::from_raw(Curve::Mldsa44, &input[1..]).unwrap();
    let pk = sk.public_key();
    assert_eq!(
        sk.sign(b"\x03fuzz", 3).unwrap_err(),
        super::SigningError::Backend(Curve::Mldsa44)
    );
    let (mut signed, mut refused) = (0, 0);
    for i in 0u8..60 {
        let data = [0x03, i];
        match sk.sign(&data, 3) {
            Ok(sig) => {
                assert!(octez_verifies(&pk, &data, &sig), "message {i}");
                signed += 1;
            }
            Err(_) => refused += 1,
        }
    }
    println!("t0-corrupted key: {signed} of 60 signed, {refused} refused");
    assert!(signed > 0, "the key still signs most messages");
}
