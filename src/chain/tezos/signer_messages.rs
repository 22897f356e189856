//! The octez remote-signer binary protocol (the `tcp://` and `unix:` signer schemes): the
//! request union and the answers of `src/lib_signer_services/signer_messages.ml`, wrapped in
//! the error monad's `result_encoding` (`src/lib_error_monad/monad_maker.ml`), in
//! `Data_encoding`'s binary form. Pure: no I/O. The layouts are recorded, with the octez source
//! path each comes from, in `tests/vectors/octez-signer/LAYOUT.md`.
//!
//! Framing (`src/lib_base/unix/socket.ml`, `send`/`recv`): each message is a 2-byte big-endian
//! length (not counting itself, at most [`MAX_PAYLOAD`]) then the payload. The transport reads
//! frames; this module decodes one request payload ([`decode_request`]) and encodes one answer
//! payload ([`Answer::encode`]).
//!
//! Request payloads (one tag byte, then the fields; integers big-endian):
//!
//! | tag | request | fields |
//! |---|---|---|
//! | 0 | Sign | signer pkh (21 bytes; tz4: `03 03 <20> <version>`, 23 bytes), data (4-byte length + bytes), authentication signature (optional: raw bytes to the end, 64, 96 or 2420) |
//! | 1 | Public_key | pkh (21) |
//! | 2 | Authorized_keys | — |
//! | 3 | Deterministic_nonce | pkh (21), data (4-byte length + bytes), authentication (optional, as Sign) |
//! | 4 | Deterministic_nonce_hash | as 3 |
//! | 5 | Supports_deterministic_nonces | pkh (21) |
//! | 6 | Known_keys | — |
//! | 7 | Bls_prove_possession | pkh (21), override public key (`00`, or `ff` + 48 bytes) |
//!
//! A pkh is a tag (0 tz1, 1 tz2, 2 tz3, 3 tz4, 4 tz5) and a 20-byte hash. Every answer is `00`
//! and the value, or `01` and an error trace: a 4-byte byte length, then per error a 4-byte
//! length and the BSON document of its JSON (`data-encoding/src/json.ml`); palisade sends one
//! error of octez's generic shape `{"kind": "temporary", "id": "failure", "msg": "…"}`, which
//! octez-client prints as `Error: <msg>`.

/// Largest frame payload: 65,535 bytes (the 2-byte length).
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// Request tag of `Sign`.
pub const TAG_SIGN: u8 = 0;
/// Request tag of `Public_key`.
pub const TAG_PUBLIC_KEY: u8 = 1;
/// Request tag of `Authorized_keys`.
pub const TAG_AUTHORIZED_KEYS: u8 = 2;
/// Request tag of `Deterministic_nonce`.
pub const TAG_DETERMINISTIC_NONCE: u8 = 3;
/// Request tag of `Deterministic_nonce_hash`.
pub const TAG_DETERMINISTIC_NONCE_HASH: u8 = 4;
/// Request tag of `Supports_deterministic_nonces`.
pub const TAG_SUPPORTS_DETERMINISTIC_NONCES: u8 = 5;
/// Request tag of `Known_keys`.
pub const TAG_KNOWN_KEYS: u8 = 6;
/// Request tag of `Bls_prove_possession`.
pub const TAG_BLS_PROVE_POSSESSION: u8 = 7;

/// A binary public key hash: tag byte (0 tz1, 1 tz2, 2 tz3, 3 tz4, 4 tz5) and the 20-byte hash.
pub type PkhBytes = [u8; 21];

/// The fields of a Sign or Deterministic_nonce(_hash) request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The key's binary pkh.
    pub pkh: PkhBytes,
    /// The signature version a tz4 Sign request names (octez ≥ 23: 1 AUG, 2 and 3 proof of
    /// possession); `None` for the other curves and for nonce requests.
    pub version: Option<u8>,
    /// The bytes to sign (magic byte first) or to derive a nonce from.
    pub data: Vec<u8>,
    /// The caller's authentication signature over `0x04 0x01 || pkh || data`, raw (64 bytes,
    /// or 96 for a BLS authorized key).
    pub authentication: Option<Vec<u8>>,
}

/// One decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Tag 0.
    Sign(Authenticated),
    /// Tag 1.
    PublicKey(PkhBytes),
    /// Tag 2.
    AuthorizedKeys,
    /// Tag 3.
    DeterministicNonce(Authenticated),
    /// Tag 4.
    DeterministicNonceHash(Authenticated),
    /// Tag 5.
    SupportsDeterministicNonces(PkhBytes),
    /// Tag 6.
    KnownKeys,
    /// Tag 7: the tz4 key, and the 48-byte BLS public key to prove possession of instead.
    BlsProvePossession(PkhBytes, Option<[u8; 48]>),
}

impl Request {
    /// The request's name, for metrics and logs (`sign`, `public_key`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Sign(_) => "sign",
            Request::PublicKey(_) => "public_key",
            Request::AuthorizedKeys => "authorized_keys",
            Request::DeterministicNonce(_) => "deterministic_nonce",
            Request::DeterministicNonceHash(_) => "deterministic_nonce_hash",
            Request::SupportsDeterministicNonces(_) => "supports_deterministic_nonces",
            Request::KnownKeys => "known_keys",
            Request::BlsProvePossession(..) => "bls_prove_possession",
        }
    }
}

/// Why a request payload does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The payload is empty: no tag.
    #[error("empty signer request")]
    Empty,
    /// A tag outside 0..=7.
    #[error("unknown signer request tag {0}")]
    UnknownTag(u8),
    /// A field runs past the end of the payload.
    #[error("signer request truncated: {0} needs more bytes than the message holds")]
    Truncated(&'static str),
    /// A pkh tag outside 0..=4, a tz4 Sign pkh whose inner tag is not 3, or a Sign pkh with
    /// tag 4 (tz5), which `signer_messages.ml`'s `pkh_encoding` has no case for.
    #[error("{what}: unknown public key hash tag {tag}")]
    BadPkhTag {
        /// The field.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A presence byte other than `0x00`/`0xff` (palisade does not read octez's "any non-zero
    /// is true").
    #[error("{0}: presence byte must be 0x00 or 0xff")]
    BadPresence(&'static str),
    /// An authentication signature that is not 64, 96 or 2420 bytes long.
    #[error("authentication signature of {0} bytes (64, 96 or 2420 expected)")]
    BadSignatureLength(usize),
    /// Bytes after a request that has no variable-length last field.
    #[error("{0} bytes after the end of the signer request")]
    Trailing(usize),
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MessageError> {
        if self.bytes.len() < n {
            return Err(MessageError::Truncated(what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, MessageError> {
        Ok(self.take(1, what)?[0])
    }

    fn pkh(&mut self, what: &'static str) -> Result<PkhBytes, MessageError> {
        let tag = self.u8(what)?;
        if tag > 4 {
            return Err(MessageError::BadPkhTag { what, tag });
        }
        let mut out = [0u8; 21];
        out[0] = tag;
        out[1..].copy_from_slice(self.take(20, what)?);
        Ok(out)
    }

    /// `signer_messages.ml`'s `pkh_encoding` (Sign only): tz4 carries its inner tag again and a
    /// version byte.
    fn sign_pkh(&mut self) -> Result<(PkhBytes, Option<u8>), MessageError> {
        let what = "sign pkh";
        let tag = self.u8(what)?;
        match tag {
            0..=2 => {
                let mut out = [0u8; 21];
                out[0] = tag;
                out[1..].copy_from_slice(self.take(20, what)?);
                Ok((out, None))
            }
            3 => {
                let inner = self.u8(what)?;
                if inner != 3 {
                    return Err(MessageError::BadPkhTag { what, tag: inner });
                }
                let mut out = [0u8; 21];
                out[0] = 3;
                out[1..].copy_from_slice(self.take(20, what)?);
                let version = self.u8("sign signature version")?;
                Ok((out, Some(version)))
            }
            tag => Err(MessageError::BadPkhTag { what, tag }),
        }
    }

    fn bytes(&mut self, what: &'static str) -> Result<Vec<u8>, MessageError> {
        let len = self.take(4, what)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        let len = usize::try_from(len).map_err(|_| MessageError::Truncated(what))?;
        Ok(self.take(len, what)?.to_vec())
    }

    /// An optional signature in octez's `Variable` form: absent, or raw bytes to the end.
    fn rest_signature(&mut self) -> Result<Option<Vec<u8>>, MessageError> {
        let rest = std::mem::take(&mut self.bytes);
        match rest.len() {
            0 => Ok(None),
            // 64: Ed25519 or ECDSA; 96: BLS; 2420: ML-DSA-44 (`signature_v3.ml`, `of_bytes_opt`).
            64 | 96 | 2420 => Ok(Some(rest.to_vec())),
            n => Err(MessageError::BadSignatureLength(n)),
        }
    }

    fn end(&self) -> Result<(), MessageError> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(MessageError::Trailing(n)),
        }
    }
}

/// Decodes one request payload (a frame's bytes after the 2-byte length).
///
/// # Errors
/// [`MessageError`] for an empty payload, an unknown tag, a truncated or malformed field, an
/// authentication signature of another length than 64, 96 or 2420, or trailing bytes.
pub fn decode_request(payload: &[u8]) -> Result<Request, MessageError> {
    let (&tag, rest) = payload.split_first().ok_or(MessageError::Empty)?;
    let mut r = Reader { bytes: rest };
    let authenticated = |r: &mut Reader<'_>, sign: bool| -> Result<Authenticated, MessageError> {
        let (pkh, version) = if sign {
            r.sign_pkh()?
        } else {
            (r.pkh("pkh")?, None)
        };
        let data = r.bytes("data")?;
        let authentication = r.rest_signature()?;
        Ok(Authenticated {
            pkh,
            version,
            data,
            authentication,
        })
    };
    let request = match tag {
        TAG_SIGN => Request::Sign(authenticated(&mut r, true)?),
        TAG_PUBLIC_KEY => Request::PublicKey(r.pkh("pkh")?),
        TAG_AUTHORIZED_KEYS => Request::AuthorizedKeys,
        TAG_DETERMINISTIC_NONCE => Request::DeterministicNonce(authenticated(&mut r, false)?),
        TAG_DETERMINISTIC_NONCE_HASH => {
            Request::DeterministicNonceHash(authenticated(&mut r, false)?)
        }
        TAG_SUPPORTS_DETERMINISTIC_NONCES => Request::SupportsDeterministicNonces(r.pkh("pkh")?),
        TAG_KNOWN_KEYS => Request::KnownKeys,
        TAG_BLS_PROVE_POSSESSION => {
            let pkh = r.pkh("pkh")?;
            let override_pk = match r.u8("override public key presence")? {
                0x00 => None,
                0xff => {
                    let mut pk = [0u8; 48];
                    pk.copy_from_slice(r.take(48, "override public key")?);
                    Some(pk)
                }
                _ => return Err(MessageError::BadPresence("override public key")),
            };
            Request::BlsProvePossession(pkh, override_pk)
        }
        other => return Err(MessageError::UnknownTag(other)),
    };
    r.end()?;
    Ok(request)
}

/// One answer, before encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Sign: the raw signature (64 bytes r‖s or Ed25519, 96 BLS, 2420 ML-DSA-44), no tag, no
    /// length.
    Signature(Vec<u8>),
    /// Public_key: the key's tag (as its pkh's) and raw bytes (32, 33, 33, 48 or 1312).
    PublicKey(u8, Vec<u8>),
    /// Authorized_keys: `None` when no authentication is required, else the authorized pkhs.
    AuthorizedKeys(Option<Vec<PkhBytes>>),
    /// Deterministic_nonce and Deterministic_nonce_hash: the 32 bytes (sent with a 4-byte
    /// length).
    Bytes(Vec<u8>),
    /// Supports_deterministic_nonces.
    Bool(bool),
    /// Known_keys: every pkh served.
    KnownKeys(Vec<PkhBytes>),
    /// Bls_prove_possession: the 96-byte proof.
    Proof(Vec<u8>),
    /// Any refusal or failure: octez's generic `failure` error with this message.
    Error(String),
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    // Every length here is bounded by the frame (64 KiB) or a key list; saturate rather than
    // wrap, so an impossible size cannot alias a small one.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

impl Answer {
    /// The answer payload: `00` and the value, or `01` and a one-error trace.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Answer::Error(msg) => {
                out.push(1);
                let doc = bson_document(&[("kind", "temporary"), ("id", "failure"), ("msg", msg)]);
                push_len(&mut out, doc.len() + 4);
                push_len(&mut out, doc.len());
                out.extend_from_slice(&doc);
            }
            ok => {
                out.push(0);
                match ok {
                    Answer::Signature(b) | Answer::Proof(b) => out.extend_from_slice(b),
                    Answer::PublicKey(tag, b) => {
                        out.push(*tag);
                        out.extend_from_slice(b);
                    }
                    Answer::AuthorizedKeys(None) => out.push(0),
                    Answer::AuthorizedKeys(Some(pkhs)) => {
                        out.push(1);
                        push_len(&mut out, pkhs.len() * 21);
                        pkhs.iter().for_each(|p| out.extend_from_slice(p));
                    }
                    Answer::Bytes(b) => {
                        push_len(&mut out, b.len());
                        out.extend_from_slice(b);
                    }
                    Answer::Bool(b) => out.push(if *b { 0xff } else { 0x00 }),
                    Answer::KnownKeys(pkhs) => {
                        push_len(&mut out, pkhs.len() * 21);
                        pkhs.iter().for_each(|p| out.extend_from_slice(p));
                    }
                    Answer::Error(_) => unreachable!("handled above"),
                }
            }
        }
        out
    }
}

/// A BSON document of string fields (bsonspec.org: `int32` total size little-endian, per field
/// `0x02 name 0x00 int32(len+1) bytes 0x00`, then `0x00`), as octez's `Json_repr_bson` writes a
/// JSON object of strings.
fn bson_document(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.push(0x02);
        // A NUL inside a name or value would end it early: drop it (our messages have none).
        body.extend(name.bytes().filter(|b| *b != 0));
        body.push(0);
        let value: Vec<u8> = value.bytes().filter(|b| *b != 0).collect();
        body.extend_from_slice(
            &i32::try_from(value.len() + 1)
                .unwrap_or(i32::MAX)
                .to_le_bytes(),
        );
        body.extend_from_slice(&value);
        body.push(0);
    }
    let total = body.len() + 5;
    let mut doc = Vec::with_capacity(total);
    doc.extend_from_slice(&i32::try_from(total).unwrap_or(i32::MAX).to_le_bytes());
    doc.extend_from_slice(&body);
    doc.push(0);
    doc
}

/// Frames a payload: its 2-byte big-endian length, then the payload. `None` when it is longer
/// than [`MAX_PAYLOAD`].
pub fn frame(payload: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(payload.len()).ok()?;
    let mut out = Vec::with_capacity(payload.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_request_forms() {
        let mut p = vec![TAG_SIGN, 0];
        p.extend_from_slice(&[7; 20]);
        p.extend_from_slice(&[0, 0, 0, 2, 0x11, 0x22]);
        let r = decode_request(&p).unwrap();
        let Request::Sign(a) = &r else { panic!() };
        assert_eq!(
            (a.version, a.data.as_slice(), &a.authentication),
            (None, &[0x11, 0x22][..], &None)
        );
        p.extend_from_slice(&[9; 64]);
        let Request::Sign(a) = decode_request(&p).unwrap() else {
            panic!()
        };
        assert_eq!(a.authentication, Some(vec![9; 64]));
        p.push(1);
        assert_eq!(
            decode_request(&p),
            Err(MessageError::BadSignatureLength(65))
        );
        // tz4: the inner tag again and a version byte.
        let mut p = vec![TAG_SIGN, 3, 3];
        p.extend_from_slice(&[7; 20]);
        p.push(3);
        p.extend_from_slice(&[0, 0, 0, 0]);
        let Request::Sign(a) = decode_request(&p).unwrap() else {
            panic!()
        };
        assert_eq!((a.pkh[0], a.version), (3, Some(3)));
        p[2] = 2;
        assert!(matches!(
            decode_request(&p),
            Err(MessageError::BadPkhTag { .. })
        ));
    }

    #[test]
    fn malformed_requests_are_errors() {
        assert_eq!(decode_request(&[]), Err(MessageError::Empty));
        assert_eq!(decode_request(&[8]), Err(MessageError::UnknownTag(8)));
        assert_eq!(decode_request(&[2, 0]), Err(MessageError::Trailing(1)));
        assert!(matches!(
            decode_request(&[1, 5]),
            Err(MessageError::BadPkhTag { .. })
        ));
        assert!(matches!(
            decode_request(&[1, 0, 1]),
            Err(MessageError::Truncated(_))
        ));
        let mut p = vec![TAG_SIGN, 0];
        p.extend_from_slice(&[7; 20]);
        p.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            decode_request(&p),
            Err(MessageError::Truncated(_))
        ));
        let mut p = vec![TAG_BLS_PROVE_POSSESSION, 3];
        p.extend_from_slice(&[7; 20]);
        p.push(1);
        assert!(matches!(
            decode_request(&p),
            Err(MessageError::BadPresence(_))
        ));
    }

    #[test]
    fn error_answer_is_a_bson_failure() {
        let e = Answer::Error("no".into()).encode();
        // 01, list length, element length, BSON.
        assert_eq!(e[0], 1);
        let list = u32::from_be_bytes(e[1..5].try_into().unwrap()) as usize;
        let elem = u32::from_be_bytes(e[5..9].try_into().unwrap()) as usize;
        assert_eq!((list, e.len()), (elem + 4, 9 + elem));
        let doc = &e[9..];
        assert_eq!(
            i32::from_le_bytes(doc[0..4].try_into().unwrap()) as usize,
            doc.len()
        );
        assert_eq!(doc.last(), Some(&0));
        let text = String::from_utf8_lossy(doc);
        for s in ["kind", "temporary", "id", "failure", "msg"] {
            assert!(text.contains(s), "{text}");
        }
    }

    #[test]
    fn frames_are_bounded() {
        assert_eq!(frame(&[2]).unwrap(), vec![0, 1, 2]);
        assert!(frame(&vec![0; MAX_PAYLOAD]).is_some());
        assert!(frame(&vec![0; MAX_PAYLOAD + 1]).is_none());
    }
}
