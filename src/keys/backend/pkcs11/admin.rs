//! Operator tools behind `palisade hsm …`: list a token's keys, generate Tezos key pairs
//! inside the HSM, import ceremony-made Tezos secrets as non-extractable keys, create the AES
//! key for wrapped BLS keystores, and wrap an EIP-2335 keystore.
//!
//! Every key palisade creates is a token object with `CKA_PRIVATE`, `CKA_SENSITIVE` true and
//! `CKA_EXTRACTABLE` false: the HSM never hands its bytes out again. Labels must be unique
//! on the token; a label in use is refused rather than shadowed.

use std::path::{Path, PathBuf};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use serde::Serialize;
use zeroize::Zeroizing;

use super::wrapped::{self, WrappedKeystore};
use super::{HsmError, KeySelector, Token, ec_params_of, read_public_key, wrap_ec_point};
use crate::crypto::tezos::{Curve, PublicKey, SecretKey};

/// Token information and its keys, as `palisade hsm list` prints it.
#[derive(Debug, Serialize)]
pub struct TokenListing {
    /// Token label.
    pub label: String,
    /// Slot id.
    pub slot_id: u64,
    /// `CK_TOKEN_INFO.manufacturerID`.
    pub manufacturer: String,
    /// `CK_TOKEN_INFO.model`.
    pub model: String,
    /// `CK_TOKEN_INFO.serialNumber`.
    pub serial_number: String,
    /// Keys found.
    pub keys: Vec<ListedKey>,
}

/// One key on the token.
#[derive(Debug, Serialize)]
pub struct ListedKey {
    /// `tezos` (a key pair), `aes` (a wrapping key) or `other`.
    pub kind: &'static str,
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`, hex.
    pub id: String,
    /// For Tezos keys: the curve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    /// For Tezos keys: `tz1…`/`tz2…`/`tz3…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkh: Option<String>,
    /// For Tezos keys: `edpk…`/`sppk…`/`p2pk…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// For AES keys: the Ethereum public keys (0x-hex, 48 bytes) of the wrapped keystores given
    /// to `list` that this key opens.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub eth2_public_keys: Vec<String>,
    /// `CKA_EXTRACTABLE`.
    pub extractable: Option<bool>,
    /// `CKA_SENSITIVE`.
    pub sensitive: Option<bool>,
    /// Why the key is not usable by palisade, if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unusable: Option<String>,
}

fn label_and_id(
    token: &Token,
    s: &Session,
    h: ObjectHandle,
) -> Result<(String, Vec<u8>), HsmError> {
    let attrs = s
        .get_attributes(h, &[AttributeType::Label, AttributeType::Id])
        .map_err(|e| HsmError::call(token.label(), &e))?;
    let (mut label, mut id) = (String::new(), Vec::new());
    for a in attrs {
        match a {
            Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
            Attribute::Id(i) => id = i,
            _ => {}
        }
    }
    Ok((label, id))
}

fn flags(s: &Session, h: ObjectHandle) -> (Option<bool>, Option<bool>) {
    let mut out = (None, None);
    if let Ok(attrs) = s.get_attributes(h, &[AttributeType::Extractable, AttributeType::Sensitive])
    {
        for a in attrs {
            match a {
                Attribute::Extractable(b) => out.0 = Some(b),
                Attribute::Sensitive(b) => out.1 = Some(b),
                _ => {}
            }
        }
    }
    out
}

/// Lists the token and every private key and AES key on it; Tezos key pairs with their pkh,
/// AES keys with the Ethereum public keys of the `wrapped` keystores they open.
///
/// # Errors
/// [`HsmError`] for a failed PKCS#11 call.
pub fn list(token: &Token, wrapped_files: &[PathBuf]) -> Result<TokenListing, HsmError> {
    let info = token
        .context()
        .get_token_info(
            cryptoki::slot::Slot::try_from(token.slot_id())
                .map_err(|e| HsmError::Config(e.to_string()))?,
        )
        .map_err(|e| HsmError::call(token.label(), &e))?;
    let wrapped: Vec<(PathBuf, WrappedKeystore)> = wrapped_files
        .iter()
        .filter_map(|f| {
            let json = std::fs::read_to_string(f).ok()?;
            WrappedKeystore::parse(&json).ok().map(|w| (f.clone(), w))
        })
        .collect();
    let mut keys = token.with_session(|s, _| {
        let mut keys = Vec::new();
        let privates = s
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .map_err(|e| HsmError::call(token.label(), &e))?;
        for h in privates {
            let (label, id) = label_and_id(token, s, h)?;
            let (extractable, sensitive) = flags(s, h);
            let selector = KeySelector {
                label: (!label.is_empty()).then(|| label.clone()),
                id: (!id.is_empty()).then(|| id.clone()),
            };
            let public = super::find_one(token, s, ObjectClass::PUBLIC_KEY, &selector)
                .and_then(|p| read_public_key(token, s, p));
            let (curve, pkh, public_key, unusable) = match public {
                Ok(pk) => (
                    Some(pk.curve().to_string()),
                    Some(pk.pkh_b58()),
                    Some(pk.to_b58()),
                    None,
                ),
                Err(e) => (None, None, None, Some(e.to_string())),
            };
            keys.push(ListedKey {
                kind: if unusable.is_none() { "tezos" } else { "other" },
                label,
                id: hex::encode(&id),
                curve,
                pkh,
                public_key,
                eth2_public_keys: vec![],
                extractable,
                sensitive,
                unusable,
            });
        }
        let secrets = s
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
            ])
            .map_err(|e| HsmError::call(token.label(), &e))?;
        for h in secrets {
            let (label, id) = label_and_id(token, s, h)?;
            let (extractable, sensitive) = flags(s, h);
            keys.push(ListedKey {
                kind: "aes",
                label,
                id: hex::encode(&id),
                curve: None,
                pkh: None,
                public_key: None,
                eth2_public_keys: vec![],
                extractable,
                sensitive,
                unusable: None,
            });
        }
        Ok(keys)
    })?;
    for key in keys.iter_mut().filter(|k| k.kind == "aes") {
        for (file, w) in &wrapped {
            match wrapped::unwrap(token, w, Some(&key.label)) {
                Ok(sk) => key
                    .eth2_public_keys
                    .push(format!("0x{}", hex::encode(sk.public_key()))),
                Err(_) if w.aes_key_label != key.label => {}
                Err(e) => {
                    key.unusable = Some(format!("{}: {e}", file.display()));
                }
            }
        }
    }
    keys.sort_by(|a, b| (a.kind, &a.label).cmp(&(b.kind, &b.label)));
    Ok(TokenListing {
        label: token.label().to_string(),
        slot_id: token.slot_id(),
        manufacturer: info.manufacturer_id().trim_end().to_string(),
        model: info.model().trim_end().to_string(),
        serial_number: info.serial_number().trim_end().to_string(),
        keys,
    })
}

/// A key pair palisade created or imported.
#[derive(Debug, Serialize)]
pub struct CreatedKey {
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`, hex (8 random bytes from the HSM).
    pub id: String,
    /// `edpk…`/`sppk…`/`p2pk…`.
    pub public_key: String,
    /// `tz1…`/`tz2…`/`tz3…`.
    pub pkh: String,
}

fn refuse_label_in_use(token: &Token, s: &Session, label: &str) -> Result<(), HsmError> {
    let found = s
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .map_err(|e| HsmError::call(token.label(), &e))?;
    if found.is_empty() {
        Ok(())
    } else {
        Err(HsmError::Key(format!(
            "label `{label}` is already used by {} object(s) on token `{}`; pick another",
            found.len(),
            token.label()
        )))
    }
}

fn random_id(token: &Token, s: &Session) -> Result<Vec<u8>, HsmError> {
    let mut id = vec![0u8; 8];
    s.generate_random_slice(&mut id)
        .map_err(|e| HsmError::call(token.label(), &e))?;
    Ok(id)
}

fn private_template(label: &str, id: &[u8], curve: Curve) -> Result<Vec<Attribute>, HsmError> {
    Ok(vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
        Attribute::KeyType(key_type(curve)?),
    ])
}

fn public_template(label: &str, id: &[u8], curve: Curve) -> Result<Vec<Attribute>, HsmError> {
    Ok(vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
        Attribute::KeyType(key_type(curve)?),
        Attribute::EcParams(ec_params_of(curve)?.to_vec()),
    ])
}

fn key_type(curve: Curve) -> Result<KeyType, HsmError> {
    Ok(match curve {
        Curve::Ed25519 => KeyType::EC_EDWARDS,
        Curve::Secp256k1 | Curve::P256 => KeyType::EC,
        Curve::Bls | Curve::Mldsa44 => {
            ec_params_of(curve)?;
            unreachable!("ec_params_of refuses BLS and ML-DSA-44")
        }
    })
}

/// Generates a Tezos key pair inside the HSM (`CKM_EC_EDWARDS_KEY_PAIR_GEN` for Ed25519,
/// `CKM_EC_KEY_PAIR_GEN` for secp256k1 and P-256); the private key is non-extractable.
///
/// # Errors
/// [`HsmError`]: BLS asked for, label in use, the HSM lacks the mechanism or curve.
pub fn generate(token: &Token, curve: Curve, label: &str) -> Result<CreatedKey, HsmError> {
    ec_params_of(curve)?;
    token.with_session(|s, _| {
        refuse_label_in_use(token, s, label)?;
        let id = random_id(token, s)?;
        let mechanism = match curve {
            Curve::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
            _ => Mechanism::EccKeyPairGen,
        };
        let (public, _private) = s
            .generate_key_pair(
                &mechanism,
                &public_template(label, &id, curve)?,
                &private_template(label, &id, curve)?,
            )
            .map_err(|e| HsmError::call(token.label(), &e))?;
        let pk = read_public_key(token, s, public)?;
        Ok(CreatedKey {
            label: label.to_string(),
            id: hex::encode(&id),
            public_key: pk.to_b58(),
            pkh: pk.pkh_b58(),
        })
    })
}

/// Imports a Tezos secret key (e.g. one made in a key ceremony) as a non-extractable
/// private key plus its public key object, then reads the public key back and checks it is
/// the secret's.
///
/// # Errors
/// [`HsmError`]: BLS secret, label in use, the HSM refused the object.
pub fn import_tezos(
    token: &Token,
    secret: &SecretKey,
    label: &str,
) -> Result<CreatedKey, HsmError> {
    let curve = secret.curve();
    ec_params_of(curve)?;
    let expected: PublicKey = secret.public_key();
    let raw = secret.raw_secret();
    token.with_session(|s, _| {
        refuse_label_in_use(token, s, label)?;
        let id = random_id(token, s)?;
        let mut private = private_template(label, &id, curve)?;
        private.push(Attribute::Class(ObjectClass::PRIVATE_KEY));
        private.push(Attribute::EcParams(ec_params_of(curve)?.to_vec()));
        // `Attribute::Value` copies the bytes into a Vec we zeroize after the call.
        let value = Zeroizing::new(raw.to_vec());
        private.push(Attribute::Value(value.to_vec()));
        let created = s.create_object(&private);
        for a in private.iter_mut() {
            if let Attribute::Value(v) = a {
                zeroize::Zeroize::zeroize(v);
            }
        }
        let private_handle = created.map_err(|e| HsmError::call(token.label(), &e))?;
        let mut public = public_template(label, &id, curve)?;
        public.push(Attribute::Class(ObjectClass::PUBLIC_KEY));
        public.push(Attribute::EcPoint(wrap_ec_point(
            &expected.to_sec1_uncompressed(),
        )));
        let public_handle = match s.create_object(&public) {
            Ok(h) => h,
            Err(e) => {
                let _ = s.destroy_object(private_handle);
                return Err(HsmError::call(token.label(), &e));
            }
        };
        let pk = read_public_key(token, s, public_handle)?;
        if pk != expected {
            let _ = s.destroy_object(private_handle);
            let _ = s.destroy_object(public_handle);
            return Err(HsmError::Key(
                "the HSM's copy of the public key does not match the secret; import undone".into(),
            ));
        }
        Ok(CreatedKey {
            label: label.to_string(),
            id: hex::encode(&id),
            public_key: pk.to_b58(),
            pkh: pk.pkh_b58(),
        })
    })
}

/// Creates a non-extractable AES-256 key (`CKM_AES_KEY_GEN`) for wrapping BLS keystores;
/// returns its `CKA_ID`, hex.
///
/// # Errors
/// [`HsmError`]: label in use, mechanism missing.
pub fn create_aes_key(token: &Token, label: &str) -> Result<String, HsmError> {
    token.with_session(|s, _| {
        refuse_label_in_use(token, s, label)?;
        let id = random_id(token, s)?;
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.clone()),
            ],
        )
        .map_err(|e| HsmError::call(token.label(), &e))?;
        Ok(hex::encode(&id))
    })
}

/// Decrypts an EIP-2335 keystore with `password` and writes it wrapped under the AES key
/// `aes_key_label` to `out` (mode 0600, never overwriting). The written file is unwrapped
/// once to check it before this returns.
///
/// # Errors
/// A message for operators: wrong password, missing AES key, `out` exists.
pub fn wrap_keystore(
    token: &Token,
    keystore: &Path,
    password: &str,
    aes_key_label: &str,
    out: &Path,
) -> Result<WrappedKeystore, String> {
    let json = std::fs::read_to_string(keystore)
        .map_err(|e| format!("cannot read keystore {}: {e}", keystore.display()))?;
    let decrypted = crate::keys::eip2335::decrypt(&json, password)
        .map_err(|e| format!("keystore {}: {e}", keystore.display()))?;
    let sk = crate::crypto::bls::SecretKey::from_bytes(&decrypted.secret)
        .map_err(|e| format!("keystore {}: {e}", keystore.display()))?;
    if let Some(declared) = &decrypted.declared_pubkey
        && declared.as_slice() != sk.public_key().as_slice()
    {
        return Err(format!(
            "keystore {}: the secret does not match its pubkey",
            keystore.display()
        ));
    }
    let meta: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let field = |k: &str| meta[k].as_str().unwrap_or_default().to_string();
    let wrapped = wrapped::wrap(
        token,
        aes_key_label,
        &sk,
        &decrypted.secret,
        &field("path"),
        &field("uuid"),
    )
    .map_err(|e| e.to_string())?;
    let check = wrapped::unwrap(token, &wrapped, None)?;
    if check.public_key() != sk.public_key() {
        return Err("the wrapped keystore did not unwrap to the same key; nothing written".into());
    }
    let text = serde_json::to_string_pretty(&wrapped).map_err(|e| e.to_string())?;
    write_new_private(out, text.as_bytes())?;
    Ok(wrapped)
}

/// Creates `path` with mode 0600 and writes `bytes`; refuses an existing file.
///
/// # Errors
/// A message naming the file.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
