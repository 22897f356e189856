//! BLAKE2b digests (32-byte signing prehash, 20-byte key hash) and public key
//! hashes in base58 (`tz1…` … `tz5…`, 20-byte payload).

use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::{U20, U32};

use crate::chain::tezos::base58;

use super::{Curve, KeyError};

/// BLAKE2b with a 32-byte output.
pub fn blake2b_256(data: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(data).into()
}

/// BLAKE2b with a 20-byte output (public key hashes).
pub fn blake2b_160(data: &[u8]) -> [u8; 20] {
    Blake2b::<U20>::digest(data).into()
}

/// Encode a public key hash as `tz1…`/`tz2…`/`tz3…`/`tz4…`/`tz5…`.
pub fn encode_pkh(curve: Curve, hash: &[u8; 20]) -> String {
    base58::encode(curve.pkh_prefix(), hash)
}

/// Decode a `tz1…`/`tz2…`/`tz3…`/`tz4…`/`tz5…` address.
pub fn decode_pkh(s: &str) -> Result<(Curve, [u8; 20]), KeyError> {
    let candidates = Curve::ALL.map(Curve::pkh_prefix);
    let (prefix, raw) = base58::decode_any(s, &candidates)?;
    let curve = Curve::from_pkh_prefix(prefix).expect("candidate is a pkh prefix");
    let hash: [u8; 20] = raw.try_into().expect("length checked by base58");
    Ok((curve, hash))
}

/// Decode a `tz1…`–`tz5…` address into its 21-byte binary form: the tag of
/// [`Curve::pkh_tag`] (0 tz1, 1 tz2, 2 tz3, 3 tz4, 4 tz5) then the 20-byte hash, as octez's
/// `Signature.Public_key_hash` binary encoding writes it.
///
/// # Errors
/// As [`decode_pkh`].
pub fn decode_pkh_bytes(s: &str) -> Result<[u8; 21], KeyError> {
    let (curve, hash) = decode_pkh(s)?;
    let mut out = [0u8; 21];
    out[0] = curve.pkh_tag();
    out[1..].copy_from_slice(&hash);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tezos::test_vectors::{s, vectors};

    #[test]
    fn blake2b_lengths_and_known_digest_from_file() {
        for v in vectors() {
            if let Some(d) = v["blake2b_256_digest_hex"].as_str() {
                let data = hex::decode(s(&v, "signed_bytes_hex")).unwrap();
                assert_eq!(hex::encode(blake2b_256(&data)), d);
            }
        }
        assert_eq!(blake2b_160(b"").len(), 20);
    }
}
