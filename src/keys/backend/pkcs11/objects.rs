//! Objects on a token: finding a key by `CKA_LABEL`/`CKA_ID` ([`KeySelector`], [`find_one`]),
//! reading a Tezos public key, and the DER of `CKA_EC_PARAMS` and `CKA_EC_POINT`.

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::error::HsmError;
use super::token::Token;
use crate::crypto::tezos::{Curve, PublicKey};

/// DER of the `CKA_EC_PARAMS` OID for Ed25519 (1.3.101.112).
pub const EC_PARAMS_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER of the `CKA_EC_PARAMS` OID for secp256k1 (1.3.132.0.10).
pub const EC_PARAMS_SECP256K1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
/// DER of the `CKA_EC_PARAMS` OID for P-256 / prime256v1 (1.2.840.10045.3.1.7).
pub const EC_PARAMS_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `CKA_EC_PARAMS` as a PrintableString curve name, as PKCS#11 3.0 allows for Edwards curves.
const EC_PARAMS_ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

/// Unwraps `CKA_EC_POINT`: a DER OCTET STRING (`04 len …`, short or long length form)
/// around the point; a bare point (some HSMs) is returned as it is.
pub fn unwrap_ec_point(der: &[u8]) -> &[u8] {
    if der.len() >= 2 && der[0] == 0x04 {
        let (len, header) = match der[1] {
            n if n < 0x80 => (n as usize, 2),
            0x81 if der.len() >= 3 => (der[2] as usize, 3),
            _ => return der,
        };
        if der.len() == header + len {
            return &der[header..];
        }
    }
    der
}

/// Wraps a point as the DER OCTET STRING `CKA_EC_POINT` holds (points are < 128 bytes).
pub fn wrap_ec_point(point: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04, point.len() as u8];
    out.extend_from_slice(point);
    out
}

/// The Tezos curve of a `CKA_EC_PARAMS` value (`None` for curves Tezos does not use).
pub fn curve_of_ec_params(params: &[u8]) -> Option<Curve> {
    match params {
        EC_PARAMS_ED25519 | EC_PARAMS_ED25519_NAME => Some(Curve::Ed25519),
        EC_PARAMS_SECP256K1 => Some(Curve::Secp256k1),
        EC_PARAMS_P256 => Some(Curve::P256),
        _ => None,
    }
}

/// The `CKA_EC_PARAMS` value palisade writes for a curve.
///
/// # Errors
/// A message for BLS and ML-DSA-44, which palisade's HSM backend does not hold.
pub fn ec_params_of(curve: Curve) -> Result<&'static [u8], HsmError> {
    match curve {
        Curve::Ed25519 => Ok(EC_PARAMS_ED25519),
        Curve::Secp256k1 => Ok(EC_PARAMS_SECP256K1),
        Curve::P256 => Ok(EC_PARAMS_P256),
        Curve::Bls => Err(HsmError::Config(
            "BLS (tz4) keys cannot be held in a PKCS#11 HSM; keep them in a keystore".into(),
        )),
        Curve::Mldsa44 => Err(HsmError::Config(
            "ML-DSA-44 (tz5) keys cannot be held in a PKCS#11 HSM (PKCS#11 3.2's CKM_ML_DSA is \
             not supported here); keep them in a tezos-secret key config"
                .into(),
        )),
    }
}

/// Which object: by `CKA_LABEL` and/or `CKA_ID`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySelector {
    /// `CKA_LABEL`.
    pub label: Option<String>,
    /// `CKA_ID` bytes.
    pub id: Option<Vec<u8>>,
}

impl KeySelector {
    fn template(&self, class: ObjectClass) -> Vec<Attribute> {
        let mut t = vec![Attribute::Class(class)];
        if let Some(l) = &self.label {
            t.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        if let Some(id) = &self.id {
            t.push(Attribute::Id(id.clone()));
        }
        t
    }
}

impl std::fmt::Display for KeySelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.label, &self.id) {
            (Some(l), Some(id)) => write!(f, "label `{l}` id {}", hex::encode(id)),
            (Some(l), None) => write!(f, "label `{l}`"),
            (None, Some(id)) => write!(f, "id {}", hex::encode(id)),
            (None, None) => write!(f, "(no label or id)"),
        }
    }
}

/// Finds exactly one object of `class` matching `selector`.
///
/// # Errors
/// [`HsmError::Key`] for none or several; [`HsmError::Call`] for a failed search.
pub fn find_one(
    token: &Token,
    session: &Session,
    class: ObjectClass,
    selector: &KeySelector,
) -> Result<ObjectHandle, HsmError> {
    let found = session
        .find_objects(&selector.template(class))
        .map_err(|e| HsmError::call(token.label(), &e))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(HsmError::Key(format!(
            "no {} with {selector} on token `{}`",
            class_name(class),
            token.label()
        ))),
        many => Err(HsmError::Key(format!(
            "{} objects of class {} match {selector} on token `{}`; add keyId to pick one",
            many.len(),
            class_name(class),
            token.label()
        ))),
    }
}

fn class_name(class: ObjectClass) -> &'static str {
    if class == ObjectClass::PRIVATE_KEY {
        "private key"
    } else if class == ObjectClass::PUBLIC_KEY {
        "public key"
    } else if class == ObjectClass::SECRET_KEY {
        "secret (AES) key"
    } else {
        "object"
    }
}

/// Reads the Tezos public key of a key pair: the curve from `CKA_EC_PARAMS`, the point from
/// the public key object's `CKA_EC_POINT`.
///
/// # Errors
/// [`HsmError::Key`] for a curve Tezos does not use or a bad point.
pub fn read_public_key(
    token: &Token,
    session: &Session,
    public: ObjectHandle,
) -> Result<PublicKey, HsmError> {
    let attrs = session
        .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
        .map_err(|e| HsmError::call(token.label(), &e))?;
    let (mut params, mut point) = (None, None);
    for a in attrs {
        match a {
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    let params = params.ok_or_else(|| HsmError::Key("public key has no CKA_EC_PARAMS".into()))?;
    let point = point.ok_or_else(|| HsmError::Key("public key has no CKA_EC_POINT".into()))?;
    let curve = curve_of_ec_params(&params).ok_or_else(|| {
        HsmError::Key(format!(
            "CKA_EC_PARAMS {} is not Ed25519, secp256k1 or P-256",
            hex::encode(&params)
        ))
    })?;
    PublicKey::from_sec1_point(curve, unwrap_ec_point(&point))
        .map_err(|e| HsmError::Key(format!("CKA_EC_POINT: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_unwrapping() {
        let point = [7u8; 65];
        assert_eq!(unwrap_ec_point(&wrap_ec_point(&point)), &point[..]);
        let mut long = vec![0x04, 0x81, 65];
        long.extend_from_slice(&point);
        assert_eq!(unwrap_ec_point(&long), &point[..]);
        // A bare uncompressed point stays as it is.
        let mut bare = vec![0x04];
        bare.extend_from_slice(&[9u8; 64]);
        assert_eq!(unwrap_ec_point(&bare), &bare[..]);
        assert_eq!(unwrap_ec_point(&[0x04, 0x05, 1]), &[0x04, 0x05, 1]);
    }

    #[test]
    fn ec_params_round_trip() {
        for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
            assert_eq!(
                curve_of_ec_params(ec_params_of(curve).unwrap()),
                Some(curve)
            );
        }
        assert!(ec_params_of(Curve::Bls).is_err());
        assert!(ec_params_of(Curve::Mldsa44).is_err());
        assert_eq!(
            curve_of_ec_params(EC_PARAMS_ED25519_NAME),
            Some(Curve::Ed25519)
        );
        assert_eq!(curve_of_ec_params(&[0x06, 0x01, 0x00]), None);
    }
}
