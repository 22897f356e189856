//! Fuzz target: Tezos secret keys from raw bytes (`crypto::tezos::SecretKey::from_raw`), above
//! all tz5 (ML-DSA-44), whose 3872-byte octez form is decoded by a library that does not
//! validate it.
//!
//! The input's first byte picks the curve (and, for tz5, the mode); the rest is the key.
//! - Plain: the rest is the raw key for that curve, as it is.
//! - tz5 mutation (odd mode byte): the rest is XORed into octez's hardcoded tz5 key
//!   (`tests/vectors/tz5/octez_hardcoded_mdsk.txt`) from an offset given by its first two
//!   bytes, so that inputs land near a valid key rather than on the first length check.
//!
//! Invariants: no panic; an accepted key re-encodes to the same bytes and reads back from its
//! base58 form to the same public key; a signature it returns verifies under its public key
//! (and not for other bytes); an error names no part of the input. Only tz5 may refuse to sign
//! with an accepted key: a corrupted t0 (which only the seed determines, and which no load
//! check can see) makes some signatures fail the verification every tz5 signature passes
//! before release, and those are refused (`fuzz/regressions/tezos_secret_key/`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade::chain::tezos::base58::{self, Prefix};
use palisade::crypto::tezos::{Curve, SecretKey};

const OCTEZ_MDSK: &str = include_str!("../../tests/vectors/tz5/octez_hardcoded_mdsk.txt");

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let curve = Curve::ALL[usize::from(mode >> 1) % Curve::ALL.len()];
    if curve == Curve::Mldsa44 && mode & 1 == 1 {
        let mut key = base58::decode(Prefix::Mldsa44SecretKey, OCTEZ_MDSK.trim()).unwrap();
        let Some((offset, delta)) = rest.split_at_checked(2) else {
            return;
        };
        let start = usize::from(u16::from_be_bytes([offset[0], offset[1]])) % key.len();
        for (k, d) in key[start..].iter_mut().zip(delta) {
            *k ^= d;
        }
        check(curve, &key);
    } else {
        check(curve, rest);
    }
});

fn check(curve: Curve, raw: &[u8]) {
    match SecretKey::from_raw(curve, raw) {
        Ok(sk) => {
            assert_eq!(sk.curve(), curve);
            let b58 = sk.to_b58();
            let back = SecretKey::from_b58(&b58).expect("an accepted key reads back");
            assert_eq!(back.public_key(), sk.public_key());
            if curve == Curve::Mldsa44 {
                assert_eq!(base58::decode(Prefix::Mldsa44SecretKey, &b58).unwrap(), raw);
            }
            let version = if curve == Curve::Mldsa44 { 3 } else { 2 };
            match sk.sign(b"\x03fuzz", version) {
                Ok(sig) => {
                    assert!(sk.public_key().verify(b"\x03fuzz", &sig, version));
                    assert!(!sk.public_key().verify(b"\x03fuzy", &sig, version));
                }
                Err(e) => assert_eq!(curve, Curve::Mldsa44, "{curve} key refused to sign: {e}"),
            }
        }
        Err(e) => {
            let text = format!("{e} {e:?}");
            if raw.len() >= 8 {
                assert!(!text.contains(&hex::encode(&raw[..8])), "{text}");
            }
        }
    }
}
