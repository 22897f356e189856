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
//! Invariants: no panic; an accepted key re-encodes to the same bytes, reads back from its
//! base58 form to the same public key, and signs what its public key verifies (and rejects
//! for other bytes); an error names no part of the input.
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
            let sig = sk.sign(b"\x03fuzz", version).expect("an accepted key signs");
            assert!(sk.public_key().verify(b"\x03fuzz", &sig, version));
            assert!(!sk.public_key().verify(b"\x03fuzy", &sig, version));
        }
        Err(e) => {
            let text = format!("{e} {e:?}");
            if raw.len() >= 8 {
                assert!(!text.contains(&hex::encode(&raw[..8])), "{text}");
            }
        }
    }
}
