//! Tezos base58check encoding.
//!
//! A Tezos base58check string encodes `prefix || raw || checksum`, where the
//! checksum is the first four bytes of SHA-256(SHA-256(prefix || raw)). The
//! byte prefix is chosen so that the encoded text starts with a readable tag
//! (`tz1`, `edpk`, `BLsig`, …) and, together with the raw length, determines
//! the kind of value.
//!
//! Buffers that may hold secret key material are zeroized before they are
//! released. Errors never carry any part of the input string or payload.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// Length of the base58check checksum.
const CHECKSUM_LEN: usize = 4;

/// The kinds of Tezos base58check values this crate reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prefix {
    /// `tz1…`: Ed25519 public key hash (20 bytes).
    Ed25519PublicKeyHash,
    /// `tz2…`: secp256k1 public key hash (20 bytes).
    Secp256k1PublicKeyHash,
    /// `tz3…`: P-256 public key hash (20 bytes).
    P256PublicKeyHash,
    /// `tz4…`: BLS12-381 public key hash (20 bytes).
    Bls12381PublicKeyHash,
    /// `tz5…`: ML-DSA-44 public key hash (20 bytes).
    Mldsa44PublicKeyHash,
    /// `edpk…`: Ed25519 public key (32 bytes).
    Ed25519PublicKey,
    /// `sppk…`: secp256k1 compressed public key (33 bytes).
    Secp256k1PublicKey,
    /// `p2pk…`: P-256 compressed public key (33 bytes).
    P256PublicKey,
    /// `BLpk…`: BLS12-381 compressed G1 public key (48 bytes).
    Bls12381PublicKey,
    /// `mdpk…`: ML-DSA-44 public key, FIPS 204 `pkEncode` (1312 bytes).
    Mldsa44PublicKey,
    /// `edsk…` (98 characters): Ed25519 seed followed by its public key (64 bytes).
    Ed25519SecretKey,
    /// `edsk…` (54 characters): Ed25519 seed (32 bytes).
    Ed25519Seed,
    /// `spsk…`: secp256k1 secret scalar, big-endian (32 bytes).
    Secp256k1SecretKey,
    /// `p2sk…`: P-256 secret scalar, big-endian (32 bytes).
    P256SecretKey,
    /// `BLsk…`: BLS12-381 secret scalar, little-endian (32 bytes).
    Bls12381SecretKey,
    /// `mdsk…`: ML-DSA-44 secret key as octez stores it: the FIPS 204 `skEncode` expanded
    /// key (2560 bytes) followed by the public key (1312 bytes), 3872 bytes.
    Mldsa44SecretKey,
    /// `edesk…`: encrypted Ed25519 seed (salt 8 + secretbox 48 = 56 bytes).
    Ed25519EncryptedSeed,
    /// `spesk…`: encrypted secp256k1 secret key (56 bytes).
    Secp256k1EncryptedSecretKey,
    /// `p2esk…`: encrypted P-256 secret key (56 bytes).
    P256EncryptedSecretKey,
    /// `BLesk…`: encrypted BLS12-381 secret key (56 bytes).
    Bls12381EncryptedSecretKey,
    /// `mdesk…`: encrypted ML-DSA-44 secret key (salt 8 + secretbox 16 + 3872 = 3896 bytes).
    Mldsa44EncryptedSecretKey,
    /// `edsig…`: Ed25519 signature (64 bytes).
    Ed25519Signature,
    /// `spsig1…`: secp256k1 signature r‖s (64 bytes).
    Secp256k1Signature,
    /// `p2sig…`: P-256 signature r‖s (64 bytes).
    P256Signature,
    /// `BLsig…`: BLS12-381 compressed G2 signature (96 bytes).
    Bls12381Signature,
    /// `mdsig…`: ML-DSA-44 signature (2420 bytes).
    Mldsa44Signature,
    /// `sig…`: scheme-less 64-byte signature.
    GenericSignature,
    /// `Net…`: chain id (4 bytes).
    ChainId,
    /// `B…`: block hash (32 bytes).
    BlockHash,
}

impl Prefix {
    /// Every prefix, in declaration order.
    pub const ALL: [Prefix; 29] = [
        Prefix::Ed25519PublicKeyHash,
        Prefix::Secp256k1PublicKeyHash,
        Prefix::P256PublicKeyHash,
        Prefix::Bls12381PublicKeyHash,
        Prefix::Mldsa44PublicKeyHash,
        Prefix::Ed25519PublicKey,
        Prefix::Secp256k1PublicKey,
        Prefix::P256PublicKey,
        Prefix::Bls12381PublicKey,
        Prefix::Mldsa44PublicKey,
        Prefix::Ed25519SecretKey,
        Prefix::Ed25519Seed,
        Prefix::Secp256k1SecretKey,
        Prefix::P256SecretKey,
        Prefix::Bls12381SecretKey,
        Prefix::Mldsa44SecretKey,
        Prefix::Ed25519EncryptedSeed,
        Prefix::Secp256k1EncryptedSecretKey,
        Prefix::P256EncryptedSecretKey,
        Prefix::Bls12381EncryptedSecretKey,
        Prefix::Mldsa44EncryptedSecretKey,
        Prefix::Ed25519Signature,
        Prefix::Secp256k1Signature,
        Prefix::P256Signature,
        Prefix::Bls12381Signature,
        Prefix::Mldsa44Signature,
        Prefix::GenericSignature,
        Prefix::ChainId,
        Prefix::BlockHash,
    ];

    /// The bytes placed before the raw value.
    pub const fn bytes(self) -> &'static [u8] {
        match self {
            Prefix::Ed25519PublicKeyHash => &[0x06, 0xa1, 0x9f],
            Prefix::Secp256k1PublicKeyHash => &[0x06, 0xa1, 0xa1],
            Prefix::P256PublicKeyHash => &[0x06, 0xa1, 0xa4],
            Prefix::Bls12381PublicKeyHash => &[0x06, 0xa1, 0xa6],
            Prefix::Mldsa44PublicKeyHash => &[0x06, 0xa1, 0xa9],
            Prefix::Ed25519PublicKey => &[0x0d, 0x0f, 0x25, 0xd9],
            Prefix::Secp256k1PublicKey => &[0x03, 0xfe, 0xe2, 0x56],
            Prefix::P256PublicKey => &[0x03, 0xb2, 0x8b, 0x7f],
            Prefix::Bls12381PublicKey => &[0x06, 0x95, 0x87, 0xcc],
            Prefix::Mldsa44PublicKey => &[0x0d, 0x07, 0xed, 0x43],
            Prefix::Ed25519SecretKey => &[0x2b, 0xf6, 0x4e, 0x07],
            Prefix::Ed25519Seed => &[0x0d, 0x0f, 0x3a, 0x07],
            Prefix::Secp256k1SecretKey => &[0x11, 0xa2, 0xe0, 0xc9],
            Prefix::P256SecretKey => &[0x10, 0x51, 0xee, 0xbd],
            Prefix::Bls12381SecretKey => &[0x03, 0x96, 0xc0, 0x28],
            Prefix::Mldsa44SecretKey => &[0x09, 0x39, 0x74, 0x39],
            Prefix::Ed25519EncryptedSeed => &[0x07, 0x5a, 0x3c, 0xb3, 0x29],
            Prefix::Secp256k1EncryptedSecretKey => &[0x09, 0xed, 0xf1, 0xae, 0x96],
            Prefix::P256EncryptedSecretKey => &[0x09, 0x30, 0x39, 0x73, 0xab],
            Prefix::Bls12381EncryptedSecretKey => &[0x02, 0x05, 0x1e, 0x35, 0x19],
            Prefix::Mldsa44EncryptedSecretKey => &[0x05, 0x31, 0x85, 0x27, 0xac],
            Prefix::Ed25519Signature => &[0x09, 0xf5, 0xcd, 0x86, 0x12],
            Prefix::Secp256k1Signature => &[0x0d, 0x73, 0x65, 0x13, 0x3f],
            Prefix::P256Signature => &[0x36, 0xf0, 0x2c, 0x34],
            Prefix::Bls12381Signature => &[0x28, 0xab, 0x40, 0xcf],
            Prefix::Mldsa44Signature => &[0x01, 0x9c, 0x2d, 0xd2, 0x03],
            Prefix::GenericSignature => &[0x04, 0x82, 0x2b],
            Prefix::ChainId => &[0x57, 0x52, 0x00],
            Prefix::BlockHash => &[0x01, 0x34],
        }
    }

    /// Length in bytes of the raw value that follows the prefix.
    pub const fn raw_len(self) -> usize {
        match self {
            Prefix::Ed25519PublicKeyHash
            | Prefix::Secp256k1PublicKeyHash
            | Prefix::P256PublicKeyHash
            | Prefix::Bls12381PublicKeyHash => 20,
            Prefix::Ed25519PublicKey => 32,
            Prefix::Secp256k1PublicKey | Prefix::P256PublicKey => 33,
            Prefix::Bls12381PublicKey => 48,
            Prefix::Ed25519SecretKey => 64,
            Prefix::Ed25519Seed
            | Prefix::Secp256k1SecretKey
            | Prefix::P256SecretKey
            | Prefix::Bls12381SecretKey => 32,
            Prefix::Ed25519EncryptedSeed
            | Prefix::Secp256k1EncryptedSecretKey
            | Prefix::P256EncryptedSecretKey
            | Prefix::Bls12381EncryptedSecretKey => 56,
            Prefix::Ed25519Signature
            | Prefix::Secp256k1Signature
            | Prefix::P256Signature
            | Prefix::GenericSignature => 64,
            Prefix::Bls12381Signature => 96,
            Prefix::Mldsa44PublicKeyHash => 20,
            Prefix::Mldsa44PublicKey => 1312,
            Prefix::Mldsa44SecretKey => 3872,
            Prefix::Mldsa44EncryptedSecretKey => 3896,
            Prefix::Mldsa44Signature => 2420,
            Prefix::ChainId => 4,
            Prefix::BlockHash => 32,
        }
    }

    /// The text every encoded value of this kind starts with.
    pub const fn text(self) -> &'static str {
        match self {
            Prefix::Ed25519PublicKeyHash => "tz1",
            Prefix::Secp256k1PublicKeyHash => "tz2",
            Prefix::P256PublicKeyHash => "tz3",
            Prefix::Bls12381PublicKeyHash => "tz4",
            Prefix::Mldsa44PublicKeyHash => "tz5",
            Prefix::Ed25519PublicKey => "edpk",
            Prefix::Secp256k1PublicKey => "sppk",
            Prefix::P256PublicKey => "p2pk",
            Prefix::Bls12381PublicKey => "BLpk",
            Prefix::Mldsa44PublicKey => "mdpk",
            Prefix::Ed25519SecretKey | Prefix::Ed25519Seed => "edsk",
            Prefix::Secp256k1SecretKey => "spsk",
            Prefix::P256SecretKey => "p2sk",
            Prefix::Bls12381SecretKey => "BLsk",
            Prefix::Mldsa44SecretKey => "mdsk",
            Prefix::Ed25519EncryptedSeed => "edesk",
            Prefix::Secp256k1EncryptedSecretKey => "spesk",
            Prefix::P256EncryptedSecretKey => "p2esk",
            Prefix::Bls12381EncryptedSecretKey => "BLesk",
            Prefix::Mldsa44EncryptedSecretKey => "mdesk",
            Prefix::Ed25519Signature => "edsig",
            Prefix::Secp256k1Signature => "spsig1",
            Prefix::P256Signature => "p2sig",
            Prefix::Bls12381Signature => "BLsig",
            Prefix::Mldsa44Signature => "mdsig",
            Prefix::GenericSignature => "sig",
            Prefix::ChainId => "Net",
            Prefix::BlockHash => "B",
        }
    }

    /// Whether the raw value is secret key material (plain, not encrypted).
    pub const fn is_secret(self) -> bool {
        matches!(
            self,
            Prefix::Ed25519SecretKey
                | Prefix::Ed25519Seed
                | Prefix::Secp256k1SecretKey
                | Prefix::P256SecretKey
                | Prefix::Bls12381SecretKey
                | Prefix::Mldsa44SecretKey
        )
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// Why a base58check string was refused. Never contains any part of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base58Error {
    /// The string holds a character outside the base58 alphabet.
    #[error("invalid base58: character outside the base58 alphabet")]
    InvalidCharacter,
    /// The decoded data is too short to hold a checksum.
    #[error("invalid base58check: too short to hold a checksum")]
    TooShort,
    /// The checksum does not match the payload.
    #[error("invalid base58check: checksum mismatch")]
    BadChecksum,
    /// The payload does not start with any of the expected prefixes.
    #[error("unexpected base58check prefix: expected {expected}")]
    WrongPrefix {
        /// The expected textual prefix(es), separated by `|`.
        expected: String,
    },
    /// The prefix matched but the raw value has the wrong length.
    #[error("wrong length for a {prefix} value: expected {expected} bytes, got {actual}")]
    WrongLength {
        /// Textual prefix that matched.
        prefix: &'static str,
        /// Expected raw length.
        expected: usize,
        /// Actual raw length.
        actual: usize,
    },
}

/// Encode `raw` with `prefix` as a base58check string.
///
/// # Panics
/// If `raw.len() != prefix.raw_len()` (a programming error; the message names
/// only the lengths).
pub fn encode(prefix: Prefix, raw: &[u8]) -> String {
    assert_eq!(
        raw.len(),
        prefix.raw_len(),
        "base58 encode: wrong raw length for a {} value",
        prefix.text()
    );
    let mut payload = Zeroizing::new(Vec::with_capacity(prefix.bytes().len() + raw.len()));
    payload.extend_from_slice(prefix.bytes());
    payload.extend_from_slice(raw);
    // base58 text is at most 138/100 of the byte length (+ checksum); 2x is ample.
    let mut out = Zeroizing::new(vec![0u8; (payload.len() + CHECKSUM_LEN) * 2]);
    let n = bs58::encode(payload.as_slice())
        .with_check()
        .onto(out.as_mut_slice())
        .expect("base58 output buffer is large enough");
    // The base58 alphabet is ASCII, so every byte is one char.
    out[..n].iter().map(|&b| b as char).collect()
}

/// Decode the base58check payload (prefix included) of `s` into a buffer
/// that is zeroized on drop.
fn decode_payload(s: &str) -> Result<Zeroizing<Vec<u8>>, Base58Error> {
    let mut buf = Zeroizing::new(vec![0u8; s.len()]);
    let n = bs58::decode(s)
        .with_check(None)
        .onto(buf.as_mut_slice())
        .map_err(|e| match e {
            bs58::decode::Error::InvalidChecksum { .. } => Base58Error::BadChecksum,
            bs58::decode::Error::NoChecksum => Base58Error::TooShort,
            _ => Base58Error::InvalidCharacter,
        })?;
    buf.truncate(n);
    Ok(buf)
}

/// Split a checked payload if it starts with `prefix`; `None` when the prefix
/// does not match, `Err` when it matches with the wrong length.
fn strip(prefix: Prefix, payload: &[u8]) -> Option<Result<Vec<u8>, Base58Error>> {
    let raw = payload.strip_prefix(prefix.bytes())?;
    if raw.len() != prefix.raw_len() {
        return Some(Err(Base58Error::WrongLength {
            prefix: prefix.text(),
            expected: prefix.raw_len(),
            actual: raw.len(),
        }));
    }
    Some(Ok(raw.to_vec()))
}

/// Decode `s`, which must be a base58check string of kind `prefix`; returns the
/// raw value (without prefix). Callers that decode secret keys should wrap the
/// result in [`Zeroizing`].
pub fn decode(prefix: Prefix, s: &str) -> Result<Vec<u8>, Base58Error> {
    let payload = decode_payload(s)?;
    strip(prefix, &payload).unwrap_or_else(|| {
        Err(Base58Error::WrongPrefix {
            expected: prefix.text().to_owned(),
        })
    })
}

/// Decode `s` as whichever of `candidates` it is. A candidate matches when its
/// prefix bytes start the payload and the raw length is right; if a prefix
/// matches only with the wrong length, that length error is returned.
pub fn decode_any(s: &str, candidates: &[Prefix]) -> Result<(Prefix, Vec<u8>), Base58Error> {
    let payload = decode_payload(s)?;
    let mut length_error = None;
    for &prefix in candidates {
        match strip(prefix, &payload) {
            Some(Ok(raw)) => return Ok((prefix, raw)),
            Some(Err(e)) => {
                length_error.get_or_insert(e);
            }
            None => {}
        }
    }
    Err(length_error.unwrap_or_else(|| {
        let mut texts: Vec<&str> = candidates.iter().map(|p| p.text()).collect();
        texts.dedup();
        Base58Error::WrongPrefix {
            expected: texts.join("|"),
        }
    }))
}

/// Encode a 4-byte chain id as `Net…`.
pub fn encode_chain_id(chain_id: [u8; 4]) -> String {
    encode(Prefix::ChainId, &chain_id)
}

/// Decode a `Net…` chain id.
pub fn decode_chain_id(s: &str) -> Result<[u8; 4], Base58Error> {
    let mut raw = decode(Prefix::ChainId, s)?;
    let mut out = [0u8; 4];
    out.copy_from_slice(&raw);
    raw.zeroize();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOADS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/tezos/tenderbake_payloads.json"
    );

    /// Build a base58check string from arbitrary payload bytes (for malformed cases).
    fn raw_check(payload: &[u8]) -> String {
        bs58::encode(payload).with_check().into_string()
    }

    #[test]
    fn every_prefix_yields_its_text_at_both_extremes() {
        for p in Prefix::ALL {
            let lo = encode(p, &vec![0x00; p.raw_len()]);
            let hi = encode(p, &vec![0xff; p.raw_len()]);
            assert!(lo.starts_with(p.text()), "{p:?}: {lo}");
            assert!(hi.starts_with(p.text()), "{p:?}: {hi}");
            // The length of the text is fixed by the prefix as well.
            assert_eq!(lo.len(), hi.len(), "{p:?}");
        }
    }

    #[test]
    fn prefixes_are_unambiguous() {
        // No two prefixes with the same text can decode the same string.
        for a in Prefix::ALL {
            for b in Prefix::ALL {
                if a != b {
                    let s = encode(a, &vec![0x5a; a.raw_len()]);
                    assert!(decode(b, &s).is_err(), "{a:?} decodes as {b:?}");
                }
            }
        }
    }

    #[test]
    fn round_trip_every_prefix() {
        for p in Prefix::ALL {
            let raw: Vec<u8> = (0..p.raw_len()).map(|i| (i * 7 + 3) as u8).collect();
            let s = encode(p, &raw);
            assert_eq!(decode(p, &s).unwrap(), raw, "{p:?}");
            assert_eq!(decode_any(&s, &Prefix::ALL).unwrap(), (p, raw), "{p:?}");
        }
    }

    #[test]
    fn checksum_error() {
        let s = encode(Prefix::Ed25519PublicKey, &[7u8; 32]);
        // Change one character (in the body, not the leading prefix text) to another alphabet char.
        let mut chars: Vec<char> = s.chars().collect();
        let i = 20;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let bad: String = chars.into_iter().collect();
        assert_eq!(
            decode(Prefix::Ed25519PublicKey, &bad),
            Err(Base58Error::BadChecksum)
        );
        assert_eq!(
            decode_any(&bad, &[Prefix::Ed25519PublicKey]),
            Err(Base58Error::BadChecksum)
        );
    }

    #[test]
    fn invalid_character_and_too_short() {
        assert_eq!(
            decode(Prefix::Ed25519PublicKey, "edpk0OIl"),
            Err(Base58Error::InvalidCharacter)
        );
        assert_eq!(
            decode(Prefix::Ed25519PublicKey, "1"),
            Err(Base58Error::TooShort)
        );
        assert_eq!(
            decode(Prefix::Ed25519PublicKey, ""),
            Err(Base58Error::TooShort)
        );
    }

    #[test]
    fn wrong_prefix_error() {
        let s = encode(Prefix::Ed25519PublicKey, &[1u8; 32]);
        let err = decode(Prefix::Ed25519PublicKeyHash, &s).unwrap_err();
        assert_eq!(
            err,
            Base58Error::WrongPrefix {
                expected: "tz1".into()
            }
        );
        assert!(err.to_string().contains("tz1"));
        let err = decode_any(&s, &[Prefix::Secp256k1PublicKey, Prefix::P256PublicKey]).unwrap_err();
        assert_eq!(
            err,
            Base58Error::WrongPrefix {
                expected: "sppk|p2pk".into()
            }
        );
        // Error text names no part of the input.
        assert!(!err.to_string().contains(&s[4..10]));
    }

    #[test]
    fn wrong_length_error() {
        let mut payload = Prefix::Ed25519PublicKey.bytes().to_vec();
        payload.extend_from_slice(&[9u8; 31]);
        let s = raw_check(&payload);
        assert_eq!(
            decode(Prefix::Ed25519PublicKey, &s),
            Err(Base58Error::WrongLength {
                prefix: "edpk",
                expected: 32,
                actual: 31
            })
        );
        assert!(matches!(
            decode_any(&s, &[Prefix::Ed25519PublicKey, Prefix::Secp256k1PublicKey]),
            Err(Base58Error::WrongLength { actual: 31, .. })
        ));
    }

    #[test]
    fn decode_any_picks_the_edsk_form_by_length() {
        let seed = encode(Prefix::Ed25519Seed, &[3u8; 32]);
        let full = encode(Prefix::Ed25519SecretKey, &[3u8; 64]);
        let cands = [Prefix::Ed25519SecretKey, Prefix::Ed25519Seed];
        assert_eq!(decode_any(&seed, &cands).unwrap().0, Prefix::Ed25519Seed);
        assert_eq!(
            decode_any(&full, &cands).unwrap().0,
            Prefix::Ed25519SecretKey
        );
    }

    #[test]
    #[should_panic(expected = "wrong raw length")]
    fn encode_refuses_wrong_length() {
        let _ = encode(Prefix::Ed25519PublicKey, &[0u8; 31]);
    }

    #[test]
    fn chain_ids_from_vectors_file() {
        let text = std::fs::read_to_string(PAYLOADS).expect("read tenderbake_payloads.json");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut seen = 0;
        for case in v["cases"].as_array().unwrap() {
            let d = &case["decoded_here"];
            let (Some(hex_id), Some(b58)) = (d["chain_id_hex"].as_str(), d["chain_id"].as_str())
            else {
                continue;
            };
            let bytes: [u8; 4] = hex::decode(hex_id).unwrap().try_into().unwrap();
            assert_eq!(encode_chain_id(bytes), b58);
            assert_eq!(decode_chain_id(b58).unwrap(), bytes);
            seen += 1;
        }
        assert!(seen >= 2, "expected chain id cases in the vectors file");
        let not_chain = encode(Prefix::Ed25519PublicKeyHash, &[0u8; 20]);
        assert!(matches!(
            decode_chain_id(&not_chain),
            Err(Base58Error::WrongPrefix { .. })
        ));
    }
}
