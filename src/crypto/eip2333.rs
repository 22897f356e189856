//! EIP-2333 BLS12-381 key derivation (master and child secret keys from a seed), EIP-2334
//! derivation paths (`m/12381/3600/{i}/0/0` for signing keys), and the BIP-39 mnemonic and
//! seed handling (English word list, checksum validated) that feeds them.
//!
//! Secret keys are 32-byte big-endian scalars, non-zero and below the BLS12-381 group order
//! `r`, as [`crate::crypto::bls::SecretKey::from_bytes`] takes them. All secret outputs and
//! intermediates are held in [`Zeroizing`] buffers.
//!
//! `HKDF_mod_r` is blst's `blst_keygen` (the IETF BLS signature draft's `KeyGen` from draft 4
//! on: salt `SHA-256("BLS-SIG-KEYGEN-SALT-")`, re-hashed while the key is zero, empty
//! `key_info`, L = 48), which is exactly EIP-2333's `HKDF_mod_r`; the Lamport steps use
//! `hkdf` and `sha2`. Both are checked against the EIP's test cases.

use blst::min_pk;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// Minimum seed length (bytes) EIP-2333 accepts for [`derive_master_sk`].
pub const MIN_SEED_LEN: usize = 32;

/// EIP-2334 purpose (`12381`, the BLS12-381 curve) and Ethereum coin type (`3600`).
pub const EIP2334_PREFIX: &str = "m/12381/3600";

/// Number of 32-byte Lamport chunks per half (`255`); with K = 32 the HKDF output is
/// `32 × 255 = 8160` bytes, the most HKDF-SHA256 can expand.
const LAMPORT_CHUNKS: usize = 255;

/// Why a key could not be derived, or a mnemonic not read. Never contains key material,
/// seed bytes or mnemonic words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Eip2333Error {
    /// The seed is shorter than [`MIN_SEED_LEN`] (its length).
    #[error("seed must be at least 32 bytes, got {0}")]
    SeedTooShort(usize),
    /// The derivation path does not start with `m`.
    #[error("derivation path must start with `m`")]
    PathPrefix,
    /// A path index (1-based position after `m`) is empty, not decimal, or above `u32::MAX`.
    #[error("derivation path component {0} is not a decimal integer below 2^32")]
    PathComponent(usize),
    /// The mnemonic does not have 12, 15, 18, 21 or 24 words (its word count).
    #[error("mnemonic has {0} words (12, 15, 18, 21 or 24 expected)")]
    MnemonicWordCount(usize),
    /// A word (0-based position) is not in the BIP-39 English list.
    #[error("mnemonic word {0} (counting from 0) is not in the BIP-39 English word list")]
    MnemonicUnknownWord(usize),
    /// The mnemonic's BIP-39 checksum bits do not match its entropy.
    #[error("mnemonic checksum is wrong (mistyped or reordered word?)")]
    MnemonicChecksum,
    /// Any other BIP-39 failure.
    #[error("mnemonic is not valid BIP-39")]
    MnemonicInvalid,
}

/// EIP-2333 `HKDF_mod_r(IKM)` with empty `key_info`: a 32-byte big-endian secret key,
/// non-zero and below `r`. `ikm` must be at least 32 bytes.
fn hkdf_mod_r(ikm: &[u8]) -> Result<Zeroizing<[u8; 32]>, Eip2333Error> {
    // blst zeroizes its SecretKey on drop.
    let sk =
        min_pk::SecretKey::key_gen(ikm, &[]).map_err(|_| Eip2333Error::SeedTooShort(ikm.len()))?;
    Ok(Zeroizing::new(sk.to_bytes()))
}

/// EIP-2333 `IKM_to_lamport_SK(IKM, salt)` hashed chunk by chunk into `acc`: each of the 255
/// 32-byte chunks of `HKDF-SHA256(salt, IKM, info = "", L = 8160)` contributes `SHA-256(chunk)`
/// to the Lamport public key being hashed.
fn hash_lamport_half(ikm: &[u8; 32], salt: &[u8; 4], acc: &mut Sha256) {
    let mut okm = Zeroizing::new([0u8; 32 * LAMPORT_CHUNKS]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(&[], okm.as_mut_slice())
        .expect("8160 bytes is within HKDF-SHA256's 255 × 32 limit");
    for chunk in okm.chunks_exact(32) {
        acc.update(Sha256::digest(chunk));
    }
}

/// EIP-2333 `parent_SK_to_lamport_PK(parent_SK, index)`: the 32-byte compressed Lamport
/// public key, `SHA-256(lamport_PK)`, where `lamport_PK` is the 255 + 255 chunk hashes of the
/// Lamport secret keys derived from `parent` and from its bitwise complement, salted with
/// `index` as 4 big-endian bytes.
fn parent_sk_to_lamport_pk(parent: &[u8; 32], index: u32) -> Zeroizing<[u8; 32]> {
    let salt = index.to_be_bytes();
    let not_ikm = Zeroizing::new(parent.map(|b| !b));
    let mut acc = Sha256::new();
    hash_lamport_half(parent, &salt, &mut acc);
    hash_lamport_half(&not_ikm, &salt, &mut acc);
    Zeroizing::new(acc.finalize().into())
}

/// EIP-2333 `derive_master_SK(seed)`: the 32-byte big-endian master secret key.
///
/// `seed` is usually the 64-byte BIP-39 seed from [`mnemonic_to_seed`].
///
/// # Errors
/// [`Eip2333Error::SeedTooShort`] if `seed` is shorter than 32 bytes.
pub fn derive_master_sk(seed: &[u8]) -> Result<Zeroizing<[u8; 32]>, Eip2333Error> {
    if seed.len() < MIN_SEED_LEN {
        return Err(Eip2333Error::SeedTooShort(seed.len()));
    }
    hkdf_mod_r(seed)
}

/// EIP-2333 `derive_child_SK(parent_SK, index)`: the 32-byte big-endian child secret key of
/// the 32-byte big-endian `parent` at `index` (every `u32` is valid; EIP-2333 has no
/// hardened/non-hardened distinction).
pub fn derive_child_sk(parent: &[u8; 32], index: u32) -> Zeroizing<[u8; 32]> {
    let compressed_lamport_pk = parent_sk_to_lamport_pk(parent, index);
    hkdf_mod_r(compressed_lamport_pk.as_slice())
        .expect("the compressed Lamport public key is 32 bytes, as HKDF_mod_r requires")
}

/// Parses an EIP-2334 derivation path (`m`, then `/`-separated decimal `u32` indices, e.g.
/// `m/12381/3600/0/0/0`) into its indices. `m` alone is the empty path. No spaces, signs or
/// hardened markers (`'`) are accepted.
///
/// # Errors
/// [`Eip2333Error::PathPrefix`] if it does not start with `m`, or
/// [`Eip2333Error::PathComponent`] (1-based position after `m`) for an empty, non-decimal or
/// too large index.
pub fn parse_path(path: &str) -> Result<Vec<u32>, Eip2333Error> {
    let mut parts = path.split('/');
    if parts.next() != Some("m") {
        return Err(Eip2333Error::PathPrefix);
    }
    parts
        .enumerate()
        .map(|(i, p)| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Eip2333Error::PathComponent(i + 1));
            }
            p.parse::<u32>()
                .map_err(|_| Eip2333Error::PathComponent(i + 1))
        })
        .collect()
}

/// The 32-byte big-endian secret key at an EIP-2334 `path` (see [`parse_path`]) below the
/// master key of `seed`: [`derive_master_sk`], then [`derive_child_sk`] for each index.
///
/// # Errors
/// [`Eip2333Error::SeedTooShort`] or a path error from [`parse_path`].
pub fn derive_path(seed: &[u8], path: &str) -> Result<Zeroizing<[u8; 32]>, Eip2333Error> {
    let indices = parse_path(path)?;
    let mut sk = derive_master_sk(seed)?;
    for index in indices {
        sk = derive_child_sk(&sk, index);
    }
    Ok(sk)
}

/// EIP-2334 path of validator `index`'s signing key: `m/12381/3600/{index}/0/0`.
pub fn validator_signing_path(index: u32) -> String {
    format!("{EIP2334_PREFIX}/{index}/0/0")
}

/// EIP-2334 path of validator `index`'s withdrawal key: `m/12381/3600/{index}/0`.
pub fn withdrawal_path(index: u32) -> String {
    format!("{EIP2334_PREFIX}/{index}/0")
}

fn parse_mnemonic(mnemonic: &str) -> Result<bip39::Mnemonic, Eip2333Error> {
    bip39::Mnemonic::parse_in(bip39::Language::English, mnemonic).map_err(|e| match e {
        bip39::Error::BadWordCount(n) => Eip2333Error::MnemonicWordCount(n),
        bip39::Error::UnknownWord(i) => Eip2333Error::MnemonicUnknownWord(i),
        bip39::Error::InvalidChecksum => Eip2333Error::MnemonicChecksum,
        bip39::Error::BadEntropyBitCount(_) | bip39::Error::AmbiguousLanguages(_) => {
            Eip2333Error::MnemonicInvalid
        }
    })
}

/// BIP-39 seed (64 bytes, PBKDF2-HMAC-SHA512, 2048 rounds, salt `"mnemonic" + passphrase`,
/// both NFKD-normalised) of an English `mnemonic` of 12–24 words separated by whitespace,
/// after checking its words and checksum. Use an empty `passphrase` for keys made by the
/// staking deposit tools.
///
/// # Errors
/// [`Eip2333Error::MnemonicWordCount`], [`Eip2333Error::MnemonicUnknownWord`] or
/// [`Eip2333Error::MnemonicChecksum`].
pub fn mnemonic_to_seed(
    mnemonic: &str,
    passphrase: &str,
) -> Result<Zeroizing<[u8; 64]>, Eip2333Error> {
    let m = parse_mnemonic(mnemonic)?;
    let passphrase: Zeroizing<String> = Zeroizing::new(passphrase.nfkd().collect());
    Ok(Zeroizing::new(m.to_seed_normalized(&passphrase)))
}

/// The 24-word English BIP-39 mnemonic (words separated by single spaces) of 32 bytes of
/// entropy.
pub fn entropy_to_mnemonic(entropy: &[u8; 32]) -> Zeroizing<String> {
    let m = bip39::Mnemonic::from_entropy_in(bip39::Language::English, entropy)
        .expect("32 bytes is valid BIP-39 entropy");
    // English words are at most 8 letters: 24 × 8 + 23 spaces fits without reallocating
    // (a reallocation would leave an unzeroized copy behind).
    let mut s = Zeroizing::new(String::with_capacity(24 * 9));
    for (i, w) in m.words().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(w);
    }
    s
}

/// The entropy (16, 20, 24, 28 or 32 bytes for 12–24 words) of an English BIP-39
/// `mnemonic`, after checking its words and checksum.
///
/// # Errors
/// As [`mnemonic_to_seed`].
pub fn mnemonic_to_entropy(mnemonic: &str) -> Result<Zeroizing<Vec<u8>>, Eip2333Error> {
    let m = parse_mnemonic(mnemonic)?;
    let (array, len) = m.to_entropy_array();
    let array = Zeroizing::new(array);
    Ok(Zeroizing::new(array[..len].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Vec<Value> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/eip2333/vectors.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let v: Value = serde_json::from_str(&text).expect("vectors.json is JSON");
        v["cases"].as_array().expect("cases").clone()
    }

    fn field<'a>(case: &'a Value, name: &str) -> &'a str {
        case[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} missing in {}", case["name"]))
    }

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// Big-endian bytes of a decimal integer below 2^256 (the EIP writes keys in decimal).
    fn decimal_to_be32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for d in s.bytes() {
            assert!(d.is_ascii_digit(), "not decimal: {s}");
            let mut carry = u32::from(d - b'0');
            for b in out.iter_mut().rev() {
                let v = u32::from(*b) * 10 + carry;
                *b = v as u8;
                carry = v >> 8;
            }
            assert_eq!(carry, 0, "{s} overflows 256 bits");
        }
        out
    }

    #[test]
    fn eip2333_test_cases() {
        let cases = vectors();
        assert!(cases.len() >= 4);
        let mut lamport_checked = 0;
        for case in &cases {
            let name = field(case, "name");
            let seed = hex::decode(field(case, "seed")).unwrap();
            let master_hex = hex32(field(case, "master_SK_hex"));
            let child_hex = hex32(field(case, "child_SK_hex"));
            // The decimal and hex renderings agree.
            assert_eq!(
                decimal_to_be32(field(case, "master_SK")),
                master_hex,
                "{name}"
            );
            assert_eq!(
                decimal_to_be32(field(case, "child_SK")),
                child_hex,
                "{name}"
            );
            let index = u32::try_from(case["child_index"].as_u64().unwrap()).unwrap();

            let master = derive_master_sk(&seed).unwrap();
            assert_eq!(*master, master_hex, "{name}: master_SK");
            if let Some(lamport) = case["compressed_lamport_PK"].as_str() {
                assert_eq!(
                    *parent_sk_to_lamport_pk(&master, index),
                    hex32(lamport),
                    "{name}: compressed_lamport_PK"
                );
                lamport_checked += 1;
            }
            let child = derive_child_sk(&master, index);
            assert_eq!(*child, child_hex, "{name}: child_SK");
            assert_eq!(
                *derive_path(&seed, &format!("m/{index}")).unwrap(),
                child_hex,
                "{name}: derive_path"
            );
            // Derived keys are valid BLS secret keys.
            crate::crypto::bls::SecretKey::from_bytes(child.as_slice()).unwrap();

            if let Some(mnemonic) = case["mnemonic"].as_str() {
                let passphrase = field(case, "bip39_passphrase");
                assert_eq!(
                    mnemonic_to_seed(mnemonic, passphrase).unwrap().to_vec(),
                    seed,
                    "{name}: BIP-39 seed"
                );
            }
        }
        assert!(lamport_checked >= 1, "no compressed_lamport_PK checked");
    }

    #[test]
    fn seed_too_short_is_refused() {
        assert_eq!(
            derive_master_sk(&[7u8; 31]).unwrap_err(),
            Eip2333Error::SeedTooShort(31)
        );
        assert_eq!(
            derive_path(&[], "m/1").unwrap_err(),
            Eip2333Error::SeedTooShort(0)
        );
        assert!(derive_master_sk(&[7u8; 32]).is_ok());
    }

    #[test]
    fn paths() {
        assert_eq!(validator_signing_path(5), "m/12381/3600/5/0/0");
        assert_eq!(withdrawal_path(5), "m/12381/3600/5/0");
        assert_eq!(
            parse_path("m/12381/3600/0/0/0").unwrap(),
            vec![12381, 3600, 0, 0, 0]
        );
        assert_eq!(parse_path("m").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_path("m/4294967295").unwrap(), vec![u32::MAX]);
        assert_eq!(parse_path("").unwrap_err(), Eip2333Error::PathPrefix);
        assert_eq!(parse_path("M/1").unwrap_err(), Eip2333Error::PathPrefix);
        assert_eq!(parse_path("/1").unwrap_err(), Eip2333Error::PathPrefix);
        for (bad, pos) in [
            ("m/", 1),
            ("m/1/", 2),
            ("m//1", 1),
            ("m/1'", 1),
            ("m/+1", 1),
            ("m/-1", 1),
            ("m/ 1", 1),
            ("m/1/4294967296", 2),
            ("m/1/x", 2),
        ] {
            assert_eq!(
                parse_path(bad).unwrap_err(),
                Eip2333Error::PathComponent(pos),
                "{bad}"
            );
        }
        // The path is applied level by level.
        let seed = [0x42u8; 32];
        let master = derive_master_sk(&seed).unwrap();
        let by_hand = derive_child_sk(&derive_child_sk(&master, 12381), 3600);
        assert_eq!(*derive_path(&seed, "m/12381/3600").unwrap(), *by_hand);
        assert_eq!(*derive_path(&seed, "m").unwrap(), *master);
    }

    #[test]
    fn bip39_entropy_round_trip_and_errors() {
        // BIP-39's first 24-word English case: all-zero entropy is "abandon" × 23, "art".
        let words = entropy_to_mnemonic(&[0u8; 32]);
        let mut expected = vec!["abandon"; 23];
        expected.push("art");
        assert_eq!(words.as_str(), expected.join(" "));

        let entropy: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xa5);
        let m = entropy_to_mnemonic(&entropy);
        assert_eq!(m.split(' ').count(), 24);
        assert_eq!(mnemonic_to_entropy(&m).unwrap().as_slice(), entropy);
        // Extra whitespace is tolerated; the seed does not depend on it.
        let spaced = format!("  {}\n", m.replace(' ', "  "));
        assert_eq!(mnemonic_to_entropy(&spaced).unwrap().as_slice(), entropy);
        assert_eq!(
            *mnemonic_to_seed(&spaced, "x").unwrap(),
            *mnemonic_to_seed(&m, "x").unwrap()
        );
        assert_ne!(
            *mnemonic_to_seed(&m, "x").unwrap(),
            *mnemonic_to_seed(&m, "").unwrap()
        );

        let twelve = "abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                      abandon abandon about";
        assert_eq!(mnemonic_to_entropy(twelve).unwrap().as_slice(), [0u8; 16]);

        let mut wrong_checksum = vec!["abandon"; 24];
        assert_eq!(
            mnemonic_to_seed(&wrong_checksum.join(" "), "").unwrap_err(),
            Eip2333Error::MnemonicChecksum
        );
        wrong_checksum[3] = "notaword";
        assert_eq!(
            mnemonic_to_entropy(&wrong_checksum.join(" ")).unwrap_err(),
            Eip2333Error::MnemonicUnknownWord(3)
        );
        assert_eq!(
            mnemonic_to_seed("abandon abandon abandon", "").unwrap_err(),
            Eip2333Error::MnemonicWordCount(3)
        );
        assert_eq!(
            mnemonic_to_seed("", "").unwrap_err(),
            Eip2333Error::MnemonicWordCount(0)
        );
        // Errors never echo the words.
        let msg = mnemonic_to_entropy(&wrong_checksum.join(" "))
            .unwrap_err()
            .to_string();
        assert!(
            !msg.contains("notaword") && !msg.contains("abandon"),
            "{msg}"
        );
    }

    use crate::test_support::python;

    /// ethstaker-deposit's `mnemonic_and_path_to_key` (the deposit CLI's EIP-2333/2334 code)
    /// agrees with ours for a fresh mnemonic, a passphrase and several paths.
    #[test]
    fn agrees_with_ethstaker_deposit() {
        let entropy: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(91) ^ 0x3c);
        let mnemonic = entropy_to_mnemonic(&entropy);
        let paths = [
            validator_signing_path(0),
            validator_signing_path(7),
            withdrawal_path(7),
            "m/12381/3600/4294967295/0/0".to_string(),
        ];
        let script = "import sys\n\
            from ethstaker_deposit.key_handling.key_derivation.path import mnemonic_and_path_to_key\n\
            for p in sys.argv[3:]:\n    \
                print(mnemonic_and_path_to_key(mnemonic=sys.argv[1], password=sys.argv[2], path=p).to_bytes(32, 'big').hex())\n";
        for passphrase in ["", "TREZOR \u{1d531}"] {
            let out = std::process::Command::new(python())
                .arg("-c")
                .arg(script)
                .arg(mnemonic.as_str())
                .arg(passphrase)
                .args(&paths)
                .output()
                .expect("run python");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let theirs: Vec<String> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            let seed = mnemonic_to_seed(&mnemonic, passphrase).unwrap();
            let ours: Vec<String> = paths
                .iter()
                .map(|p| hex::encode(*derive_path(seed.as_slice(), p).unwrap()))
                .collect();
            assert_eq!(ours, theirs, "passphrase {passphrase:?}");
        }
    }
}
