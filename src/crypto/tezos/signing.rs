//! Signing and verification per curve, following octez (see the parent module):
//! Ed25519, ECDSA and ML-DSA-44 over `blake2b-256(data)`, ECDSA always low-S; BLS min-pk over
//! `data` with the ciphersuite chosen by the signature version; BLS proofs of
//! possession.

use ed25519_dalek::Signer as _;
use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};

use super::secret_key::Secret;
use super::{Curve, PublicKey, SecretKey, Signature, SigningError, blake2b_256};

/// DST of the BLS proof-of-possession ciphersuite's signatures (version ≥ 2).
pub const BLS_DST_POP_SIG: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// DST of the BLS message-augmentation ciphersuite's signatures (version 1).
pub const BLS_DST_AUG_SIG: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_AUG_";
/// DST of BLS proofs of possession.
pub const BLS_DST_POP_PROOF: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

impl PublicKey {
    /// Verify `sig` over `data` with the rules of signature `version` (see the
    /// module docs). Returns `false` for a signature of another curve, for BLS
    /// with version 0, and for anything malformed. ECDSA signatures are
    /// accepted whether their `s` is low or high.
    pub fn verify(&self, data: &[u8], sig: &Signature, version: u8) -> bool {
        if sig.curve != self.curve {
            return false;
        }
        match self.curve {
            Curve::Ed25519 => {
                let Ok(vk) = ed25519_dalek::VerifyingKey::try_from(self.bytes.as_slice()) else {
                    return false;
                };
                let Ok(s) = ed25519_dalek::Signature::from_slice(&sig.bytes) else {
                    return false;
                };
                vk.verify_strict(&blake2b_256(data), &s).is_ok()
            }
            Curve::Secp256k1 => {
                let Ok(vk) = k256::ecdsa::VerifyingKey::from_sec1_bytes(&self.bytes) else {
                    return false;
                };
                let Ok(s) = k256::ecdsa::Signature::from_slice(&sig.bytes) else {
                    return false;
                };
                // k256 refuses high-S outright; normalize so any valid signature verifies.
                vk.verify_prehash(&blake2b_256(data), &s.normalize_s())
                    .is_ok()
            }
            Curve::P256 => {
                let Ok(vk) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.bytes) else {
                    return false;
                };
                let Ok(s) = p256::ecdsa::Signature::from_slice(&sig.bytes) else {
                    return false;
                };
                vk.verify_prehash(&blake2b_256(data), &s).is_ok()
            }
            Curve::Bls => {
                let (dst, aug): (&[u8], &[u8]) = match version {
                    0 => return false,
                    1 => (BLS_DST_AUG_SIG, &self.bytes),
                    _ => (BLS_DST_POP_SIG, &[]),
                };
                bls_verify(&self.bytes, &sig.bytes, data, dst, aug)
            }
            Curve::Mldsa44 => {
                let Ok(encoded) = <&ml_dsa::EncodedVerifyingKey<ml_dsa::MlDsa44>>::try_from(
                    self.bytes.as_slice(),
                ) else {
                    return false;
                };
                let Ok(s) = ml_dsa::Signature::<ml_dsa::MlDsa44>::try_from(sig.bytes.as_slice())
                else {
                    return false;
                };
                ml_dsa::VerifyingKey::<ml_dsa::MlDsa44>::decode(encoded).verify_with_context(
                    &blake2b_256(data),
                    MLDSA44_CONTEXT,
                    &s,
                )
            }
        }
    }

    /// Verify a BLS proof of possession of this key (over its 48 compressed
    /// bytes). `false` for non-BLS keys.
    pub fn verify_proof_of_possession(&self, proof: &Signature) -> bool {
        self.curve == Curve::Bls
            && proof.curve == Curve::Bls
            && bls_verify(
                &self.bytes,
                &proof.bytes,
                &self.bytes,
                BLS_DST_POP_PROOF,
                &[],
            )
    }
}

fn bls_verify(pk: &[u8], sig: &[u8], msg: &[u8], dst: &[u8], aug: &[u8]) -> bool {
    let Ok(pk) = blst::min_pk::PublicKey::from_bytes(pk) else {
        return false;
    };
    let Ok(sig) = blst::min_pk::Signature::from_bytes(sig) else {
        return false;
    };
    sig.verify(true, msg, dst, aug, &pk, true) == blst::BLST_ERROR::BLST_SUCCESS
}

/// The FIPS 204 context string of tz5 signatures: empty (`src/lib_ml_dsa/ml_dsa_44.ml`).
pub const MLDSA44_CONTEXT: &[u8] = b"";

impl SecretKey {
    /// Sign `data` (see the module docs). `version` matters for BLS (0 is refused, 1 is the
    /// augmented scheme, 2+ the proof-of-possession scheme) and for ML-DSA-44 (below 3 is
    /// refused: tz5 exists only in octez's `Signature.V3`).
    ///
    /// tz5 signs with ML-DSA.Sign (FIPS 204 Algorithm 2, pure, empty context) in its
    /// deterministic variant (rnd = 32 zero bytes) over `blake2b-256(data)`: octez signs hedged,
    /// and a verifier cannot tell the two apart; the deterministic one gives the same signature
    /// for the same bytes on every transport and instance.
    ///
    /// # Errors
    /// [`SigningError::BlsNeedsVersion`] for BLS with version 0;
    /// [`SigningError::Mldsa44NeedsVersion`] for tz5 below version 3; [`SigningError::Backend`]
    /// when a library refuses (not expected for valid keys), or for tz5 when the signature does
    /// not verify under the key's public key (a corrupted imported key).
    pub fn sign(&self, data: &[u8], version: u8) -> Result<Signature, SigningError> {
        let bytes = match &self.secret {
            Secret::Mldsa44(_) if version < 3 => {
                return Err(SigningError::Mldsa44NeedsVersion(version));
            }
            Secret::Mldsa44(sk) => {
                let digest = blake2b_256(data);
                let sig = sk
                    .key
                    .sign_deterministic(&digest, MLDSA44_CONTEXT)
                    .map_err(|_| SigningError::Backend(Curve::Mldsa44))?;
                // octez checks no more than the length of an imported key, and palisade's load
                // checks cannot cover t0 (the low part of A·s1 + s2: a corrupted t0 makes only
                // some signatures invalid, and no crate here recomputes it without the seed):
                // every signature is verified under the public key before it leaves.
                let vk = ml_dsa::VerifyingKey::<ml_dsa::MlDsa44>::decode(
                    self.public
                        .bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| SigningError::Backend(Curve::Mldsa44))?,
                );
                if !vk.verify_with_context(&digest, MLDSA44_CONTEXT, &sig) {
                    return Err(SigningError::Backend(Curve::Mldsa44));
                }
                sig.encode().to_vec()
            }
            Secret::Ed25519(sk) => sk.sign(&blake2b_256(data)).to_bytes().to_vec(),
            Secret::Secp256k1(sk) => {
                let sig: k256::ecdsa::Signature = sk
                    .sign_prehash(&blake2b_256(data))
                    .map_err(|_| SigningError::Backend(Curve::Secp256k1))?;
                sig.normalize_s().to_bytes().to_vec()
            }
            Secret::P256(sk) => {
                let sig: p256::ecdsa::Signature = sk
                    .sign_prehash(&blake2b_256(data))
                    .map_err(|_| SigningError::Backend(Curve::P256))?;
                sig.normalize_s().to_bytes().to_vec()
            }
            Secret::Bls(sk) => match version {
                0 => return Err(SigningError::BlsNeedsVersion(version)),
                1 => sk
                    .sign(data, BLS_DST_AUG_SIG, &self.public.bytes)
                    .compress()
                    .to_vec(),
                _ => sk.sign(data, BLS_DST_POP_SIG, &[]).compress().to_vec(),
            },
        };
        Ok(Signature {
            curve: self.curve(),
            bytes,
        })
    }

    /// BLS proof of possession: a signature with the PoP DST over the 48-byte
    /// compressed public key (this key's, or `override_pk`'s when given).
    pub fn prove_possession(
        &self,
        override_pk: Option<&PublicKey>,
    ) -> Result<Signature, SigningError> {
        let Secret::Bls(sk) = &self.secret else {
            return Err(SigningError::NotBls(self.curve()));
        };
        let pk = match override_pk {
            Some(pk) if pk.curve != Curve::Bls => {
                return Err(SigningError::OverrideNotBls(pk.curve));
            }
            Some(pk) => pk,
            None => &self.public,
        };
        Ok(Signature {
            curve: Curve::Bls,
            bytes: sk
                .sign(&pk.bytes, BLS_DST_POP_PROOF, &[])
                .compress()
                .to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tezos::test_vectors::{PAYLOADS, load, s, vectors};
    use crate::crypto::tezos::{KeyError, is_low_s};

    #[test]
    fn vectors_signatures() {
        let mut by_curve = std::collections::HashMap::new();
        for v in vectors() {
            let name = s(&v, "name");
            let sk = SecretKey::from_b58(s(&v, "secret_key")).unwrap();
            let pk = sk.public_key();
            let data = hex::decode(s(&v, "signed_bytes_hex")).unwrap();
            *by_curve.entry(sk.curve()).or_insert(0) += 1;
            match sk.curve() {
                Curve::Ed25519 => {
                    let sig = sk.sign(&data, 2).unwrap();
                    assert_eq!(sig.to_b58(), s(&v, "expected_prefixed_signature"), "{name}");
                    assert_eq!(hex::encode(sig.as_bytes()), s(&v, "raw_signature_hex"));
                    assert_eq!(
                        sig.to_generic_b58().unwrap(),
                        s(&v, "expected_generic_signature")
                    );
                    // version does not change non-BLS signatures
                    assert_eq!(sk.sign(&data, 0).unwrap(), sig);
                    assert!(pk.verify(&data, &sig, 0));
                }
                Curve::Secp256k1 | Curve::P256 => {
                    let sig = sk.sign(&data, 2).unwrap();
                    assert!(pk.verify(&data, &sig, 2), "{name}");
                    assert!(is_low_s(&sig), "{name}");
                    assert_eq!(sk.sign(&data, 0).unwrap(), sig, "deterministic");
                    let theirs = Signature::from_b58(s(&v, "expected_prefixed_signature")).unwrap();
                    // RFC 6979 + low-S reproduces Taquito's signatures exactly.
                    assert_eq!(sig, theirs, "{name}: byte-exact");
                    assert_eq!(theirs.curve(), sk.curve());
                    assert!(pk.verify(&data, &theirs, 2), "{name}: file signature");
                    assert!(is_low_s(&theirs));
                    assert_eq!(hex::encode(theirs.as_bytes()), s(&v, "raw_signature_hex"));
                    assert!(!pk.verify(b"other data", &theirs, 2));
                }
                Curve::Bls => {
                    let pop = sk.sign(&data, 2).unwrap();
                    assert_eq!(
                        pop.to_b58(),
                        s(&v, "derived_signature_pop_scheme"),
                        "{name}"
                    );
                    assert_eq!(
                        hex::encode(pop.as_bytes()),
                        s(&v, "derived_signature_pop_scheme_hex")
                    );
                    assert_eq!(sk.sign(&data, 7).unwrap(), pop, "version > 2 behaves as 2");
                    let aug = sk.sign(&data, 1).unwrap();
                    assert_eq!(
                        aug.to_b58(),
                        s(&v, "derived_signature_aug_scheme"),
                        "{name}"
                    );
                    assert_eq!(
                        hex::encode(aug.as_bytes()),
                        s(&v, "derived_signature_aug_scheme_hex")
                    );
                    assert_eq!(sk.sign(&data, 0), Err(SigningError::BlsNeedsVersion(0)));
                    assert!(pk.verify(&data, &pop, 2));
                    assert!(pk.verify(&data, &aug, 1));
                    assert!(!pk.verify(&data, &pop, 1));
                    assert!(!pk.verify(&data, &aug, 2));
                    assert!(!pk.verify(&data, &pop, 0));
                    assert!(pop.to_generic_b58().is_none());

                    let proof = sk.prove_possession(None).unwrap();
                    assert_eq!(proof.to_b58(), s(&v, "expected_proof_of_possession"));
                    assert!(pk.verify_proof_of_possession(&proof));
                    assert!(!pk.verify_proof_of_possession(&pop));
                    let proof2 = sk.prove_possession(Some(&pk)).unwrap();
                    assert_eq!(proof2, proof);
                }
                // Taquito has no tz5; octez's own tz5 key is tested in `tz5_tests`.
                Curve::Mldsa44 => panic!("{name}: no tz5 vector expected in Taquito's file"),
            }
            // The generic form of the file's signature decodes to the same raw bytes.
            if let (Some(generic), Some(raw_hex)) = (
                v["expected_generic_signature"].as_str(),
                v["raw_signature_hex"].as_str(),
            ) {
                let g = Signature::from_b58_for(sk.curve(), generic).unwrap();
                assert_eq!(hex::encode(g.as_bytes()), raw_hex, "{name}");
                assert!(
                    pk.verify(&data, &g, 2),
                    "{name}: generic signature verifies"
                );
                assert_eq!(
                    Signature::from_b58(generic),
                    Err(KeyError::GenericSignatureNeedsCurve)
                );
            }
        }
        for c in Curve::ALL.into_iter().filter(|c| *c != Curve::Mldsa44) {
            assert!(
                by_curve.get(&c).copied().unwrap_or(0) >= 1,
                "no vector for {c}"
            );
        }
    }

    #[test]
    fn real_mainnet_ed25519_signatures_verify() {
        let mut n = 0;
        for case in load(PAYLOADS)["cases"].as_array().unwrap() {
            let Some(ed) = case.get("ed25519") else {
                continue;
            };
            let pk = PublicKey::from_b58(s(ed, "public_key")).unwrap();
            let sig = Signature::from_b58(s(ed, "signature")).unwrap();
            let data = hex::decode(s(case, "payload_hex")).unwrap();
            assert!(pk.verify(&data, &sig, 0));
            let mut tampered = data.clone();
            *tampered.last_mut().unwrap() ^= 1;
            assert!(!pk.verify(&tampered, &sig, 0));
            n += 1;
        }
        assert!(n >= 3);
    }

    /// Deterministic "random-ish" messages without an RNG dependency.
    fn messages(count: usize) -> impl Iterator<Item = Vec<u8>> {
        (0..count).map(|i| {
            let seed = blake2b_256(&(i as u64).to_le_bytes());
            let len = 1 + (seed[0] as usize % 200);
            let mut out = Vec::with_capacity(len);
            let mut block = seed;
            while out.len() < len {
                out.extend_from_slice(&block);
                block = blake2b_256(&block);
            }
            out.truncate(len);
            out
        })
    }

    #[test]
    fn ecdsa_signatures_are_always_low_s() {
        for curve in [Curve::Secp256k1, Curve::P256] {
            let sk = SecretKey::generate(curve);
            let pk = sk.public_key();
            let mut low = 0;
            for msg in messages(500) {
                let sig = sk.sign(&msg, 2).unwrap();
                if is_low_s(&sig) {
                    low += 1;
                }
                assert!(pk.verify(&msg, &sig, 2));
            }
            assert_eq!(low, 500, "{curve}");
        }
    }

    /// Flip `s` to `n - s` through the library (the high-S twin of a low-S signature).
    fn high_s_twin(sig: &Signature) -> Signature {
        let bytes = match sig.curve() {
            Curve::Secp256k1 => {
                let low = k256::ecdsa::Signature::from_slice(sig.as_bytes()).unwrap();
                let (r, s) = low.split_scalars();
                k256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes())
                    .unwrap()
                    .to_vec()
            }
            Curve::P256 => {
                let low = p256::ecdsa::Signature::from_slice(sig.as_bytes()).unwrap();
                let (r, s) = low.split_scalars();
                p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes())
                    .unwrap()
                    .to_vec()
            }
            _ => unreachable!(),
        };
        Signature::from_raw(sig.curve(), &bytes).unwrap()
    }

    #[test]
    fn verify_accepts_high_s_and_is_low_s_tells() {
        for curve in [Curve::Secp256k1, Curve::P256] {
            let sk = SecretKey::generate(curve);
            let sig = sk.sign(b"payload", 2).unwrap();
            let high = high_s_twin(&sig);
            assert_ne!(high, sig);
            assert!(!is_low_s(&high));
            assert!(sk.public_key().verify(b"payload", &high, 2), "{curve}");
        }
    }

    #[test]
    fn proof_of_possession_rules() {
        let ed = SecretKey::generate(Curve::Ed25519);
        assert_eq!(
            ed.prove_possession(None),
            Err(SigningError::NotBls(Curve::Ed25519))
        );
        let bls = SecretKey::generate(Curve::Bls);
        assert_eq!(
            bls.prove_possession(Some(&ed.public_key())),
            Err(SigningError::OverrideNotBls(Curve::Ed25519))
        );
        let other = SecretKey::generate(Curve::Bls).public_key();
        let proof = bls.prove_possession(Some(&other)).unwrap();
        // Signed by `bls` over `other`'s bytes: not a valid PoP of either key.
        assert!(!other.verify_proof_of_possession(&proof));
        assert!(!bls.public_key().verify_proof_of_possession(&proof));
        assert!(
            bls.public_key()
                .verify_proof_of_possession(&bls.prove_possession(None).unwrap())
        );
    }
}
