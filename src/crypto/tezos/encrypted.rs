//! Octez encrypted secret keys (`edesk…`, `spesk…`, `p2esk…`, `BLesk…`, `mdesk…`): an 8-byte
//! salt and a NaCl secretbox (XSalsa20-Poly1305, all-zero nonce; 16-byte tag then the
//! ciphertext) of the raw secret bytes (32, or 3872 for tz5), under a PBKDF2-HMAC-SHA512 key
//! (`src/lib_signer_backends/encrypted.ml`).

use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use zeroize::Zeroizing;

use crate::chain::tezos::base58;

use super::{Curve, KeyError, SecretKey};

/// PBKDF2-HMAC-SHA512 iterations of octez's encrypted secret keys.
pub const ENCRYPTION_PBKDF2_ROUNDS: u32 = 32768;
/// Salt length of octez's encrypted secret keys.
pub const ENCRYPTION_SALT_LEN: usize = 8;
const SECRETBOX_TAG_LEN: usize = 16;

impl SecretKey {
    /// Decrypt an octez encrypted key (`edesk…`, `spesk…`, `p2esk…`, `BLesk…`, `mdesk…`).
    ///
    /// Layout: `salt (8) || secretbox (16 + n)`; the key is
    /// PBKDF2-HMAC-SHA512(password, salt, 32768 rounds, 32 bytes); XSalsa20-Poly1305
    /// with an all-zero nonce; the plaintext is the n raw secret bytes (32, or 3872 for tz5).
    ///
    /// # Errors
    /// [`KeyError`]: bad base58 or prefix, [`KeyError::BadPassword`], or the decrypted key's
    /// own errors (see [`SecretKey::from_raw`]).
    pub fn from_encrypted_b58(s: &str, password: &[u8]) -> Result<Self, KeyError> {
        let candidates = Curve::ALL.map(Curve::encrypted_secret_key_prefix);
        let (prefix, raw) = base58::decode_any(s, &candidates)?;
        let curve = Curve::from_encrypted_prefix(prefix).expect("candidate is an esk prefix");
        let (salt, boxed) = raw.split_at(ENCRYPTION_SALT_LEN);
        // NaCl secretbox layout: tag (16) || ciphertext. Decrypt in place in a buffer that is
        // wiped on drop. base58 checked the prefix's length, so both splits are in range.
        let (tag, ciphertext) = boxed.split_at(SECRETBOX_TAG_LEN);
        let mut plain = Zeroizing::new(ciphertext.to_vec());
        secretbox(password, salt)
            .decrypt_in_place_detached(&Default::default(), &[], plain.as_mut_slice(), tag.into())
            .map_err(|_| KeyError::BadPassword)?;
        Self::from_raw(curve, plain.as_slice())
    }

    /// Encrypt in octez's format (inverse of [`SecretKey::from_encrypted_b58`]).
    /// `salt` must be fresh random bytes for real keys.
    pub fn to_encrypted_b58(&self, password: &[u8], salt: [u8; 8]) -> String {
        let mut buf = self.raw_secret();
        let tag = secretbox(password, &salt)
            .encrypt_in_place_detached(&Default::default(), &[], buf.as_mut_slice())
            .expect("secretbox encryption without associated data cannot fail");
        let mut payload = Vec::with_capacity(self.curve().encrypted_secret_key_prefix().raw_len());
        payload.extend_from_slice(&salt);
        payload.extend_from_slice(&tag);
        payload.extend_from_slice(buf.as_slice());
        base58::encode(self.curve().encrypted_secret_key_prefix(), &payload)
    }
}

fn secretbox(password: &[u8], salt: &[u8]) -> XSalsa20Poly1305 {
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(
        password,
        salt,
        ENCRYPTION_PBKDF2_ROUNDS,
        key.as_mut_slice(),
    );
    XSalsa20Poly1305::new(key.as_slice().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tezos::test_vectors::{s, vectors};

    #[test]
    fn encrypted_round_trip_all_curves() {
        for (i, v) in vectors().iter().enumerate() {
            let sk = SecretKey::from_b58(s(v, "secret_key")).unwrap();
            let salt = [i as u8, 1, 2, 3, 4, 5, 6, 7];
            let enc = sk.to_encrypted_b58(b"correct horse", salt);
            assert!(enc.starts_with(sk.curve().encrypted_secret_key_prefix().text()));
            let dec = SecretKey::from_encrypted_b58(&enc, b"correct horse").unwrap();
            assert_eq!(dec.public_key(), sk.public_key());
            assert_eq!(dec.to_b58(), sk.to_b58());
            // Wrong password is refused without leaking anything.
            let err = SecretKey::from_encrypted_b58(&enc, b"correct horsf").unwrap_err();
            assert_eq!(err, KeyError::BadPassword);
            let msg = format!("{err} {err:?}");
            assert!(!msg.contains(&sk.to_b58()[4..12]));
            // A plain key is not an encrypted one.
            assert!(SecretKey::from_encrypted_b58(s(v, "secret_key"), b"x").is_err());
        }
    }

    #[test]
    fn encrypted_known_answer_from_taquito() {
        // Published by Taquito's signer tests (taquito-signer.spec.ts, "Tz3 Encrypted"):
        // a p2esk encrypted with password "test1234".
        let sk = SecretKey::from_encrypted_b58(
            "p2esk2TFqgNcoT4u99ut5doGTUFNwo9x4nNvkpM6YMLqXrt4SbFdQnqLM3hoAXLMB2uZYazj6LZGvcoYzk16H6Et",
            b"test1234",
        )
        .unwrap();
        assert_eq!(
            sk.to_b58().as_str(),
            "p2sk2mJNRYqs3UXJzzF44Ym6jk38RVDPVSuLCfNd5ShE5zyVdu8Au9"
        );
        assert_eq!(
            sk.public_key().to_b58(),
            "p2pk65zwHGP9MdvANKkp267F4VzoKqL8DMNpPfTHUNKbm8S9DUqqdpw"
        );
        assert_eq!(
            sk.public_key().pkh_b58(),
            "tz3hFR7NZtjT2QtzgMQnWb4xMuD6yt2YzXUt"
        );
    }
}
