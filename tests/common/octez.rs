//! A client of octez's remote-signer binary protocol written in the test tree from
//! `src/lib_signer_services/signer_messages.ml` and the error monad's `result_encoding`
//! (layouts in `tests/vectors/octez-signer/LAYOUT.md`), independent of palisade's own codec:
//! it builds request frames and reads answers (including the BSON of an error) itself.

use std::io::{Read, Write};
use std::time::Duration;

/// A connection to a palisade binary-protocol listener (TCP or Unix socket).
pub enum Conn {
    /// `tcp://HOST:PORT`.
    Tcp(std::net::TcpStream),
    /// `unix://PATH`.
    Unix(std::os::unix::net::UnixStream),
}

/// One answer: `Ok` with the value's bytes (after the `00` tag), or octez's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `00` and the value.
    Ok(Vec<u8>),
    /// `01` and a trace of one error, its `kind`, `id` and `msg`.
    Error {
        /// `temporary`.
        kind: String,
        /// `failure`.
        id: String,
        /// The message.
        msg: String,
    },
}

impl Reply {
    /// The value of an `Ok` answer; panics on an error.
    pub fn ok(self) -> Vec<u8> {
        match self {
            Reply::Ok(v) => v,
            Reply::Error { msg, .. } => panic!("error answer: {msg}"),
        }
    }

    /// The message of an error answer; panics on `Ok`.
    pub fn error(self) -> String {
        match self {
            Reply::Error { kind, id, msg } => {
                assert_eq!((kind.as_str(), id.as_str()), ("temporary", "failure"));
                msg
            }
            Reply::Ok(v) => panic!("expected an error, got Ok {}", hex::encode(v)),
        }
    }
}

impl Conn {
    /// Connects to `tcp` (`HOST:PORT`) or `unix` (a path).
    pub fn open(scheme: &str, address: &str) -> Conn {
        let conn = match scheme {
            "tcp" => Conn::Tcp(std::net::TcpStream::connect(address).unwrap()),
            "unix" => Conn::Unix(std::os::unix::net::UnixStream::connect(address).unwrap()),
            other => panic!("no scheme {other}"),
        };
        let t = Some(Duration::from_secs(30));
        match &conn {
            Conn::Tcp(s) => {
                s.set_read_timeout(t).unwrap();
                s.set_nodelay(true).unwrap();
            }
            Conn::Unix(s) => s.set_read_timeout(t).unwrap(),
        }
        conn
    }

    fn stream(&mut self) -> &mut dyn ReadWrite {
        match self {
            Conn::Tcp(s) => s,
            Conn::Unix(s) => s,
        }
    }

    /// Sends raw bytes (a whole frame, or a part of one).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream().write_all(bytes).unwrap();
    }

    /// Reads one answer frame; returns its payload, or `None` if the server closed the
    /// connection.
    pub fn read_frame(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 2];
        self.stream().read_exact(&mut len).ok()?;
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream().read_exact(&mut payload).ok()?;
        Some(payload)
    }

    /// Sends a request payload framed, reads the answer payload.
    pub fn call_raw(&mut self, payload: &[u8]) -> Vec<u8> {
        self.send_raw(&frame(payload));
        self.read_frame().expect("the server closed the connection")
    }

    /// Sends a request payload, decodes the answer.
    pub fn call(&mut self, payload: &[u8]) -> Reply {
        parse_reply(&self.call_raw(payload))
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// `u16 BE length ‖ payload` (`Tezos_base_unix.Socket.send`).
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// The 21-byte binary pkh (tag 0 tz1, 1 tz2, 2 tz3, 3 tz4 + 20-byte hash) of a `tz…`.
pub fn pkh21(b58: &str) -> [u8; 21] {
    palisade::crypto::tezos::decode_pkh_bytes(b58).unwrap()
}

fn bytes_field(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&u32::try_from(b.len()).unwrap().to_be_bytes());
    out.extend_from_slice(b);
}

/// Sign (tag 0): `pkh_encoding` (tz4: `03 03 <20> <version>`), `data` with a 4-byte length,
/// the optional authentication signature as raw bytes to the end.
pub fn sign(pkh: &[u8; 21], version: u8, data: &[u8], auth: Option<&[u8]>) -> Vec<u8> {
    let mut p = vec![0];
    if pkh[0] == 3 {
        p.push(3);
        p.extend_from_slice(pkh);
        p.push(version);
    } else {
        p.extend_from_slice(pkh);
    }
    bytes_field(&mut p, data);
    if let Some(a) = auth {
        p.extend_from_slice(a);
    }
    p
}

/// Public_key (tag 1).
pub fn public_key(pkh: &[u8; 21]) -> Vec<u8> {
    let mut p = vec![1];
    p.extend_from_slice(pkh);
    p
}

/// Authorized_keys (tag 2).
pub fn authorized_keys() -> Vec<u8> {
    vec![2]
}

/// Deterministic_nonce (tag 3) or, with `hash`, Deterministic_nonce_hash (tag 4).
pub fn nonce(hash: bool, pkh: &[u8; 21], data: &[u8], auth: Option<&[u8]>) -> Vec<u8> {
    let mut p = vec![if hash { 4 } else { 3 }];
    p.extend_from_slice(pkh);
    bytes_field(&mut p, data);
    if let Some(a) = auth {
        p.extend_from_slice(a);
    }
    p
}

/// Supports_deterministic_nonces (tag 5).
pub fn supports_nonces(pkh: &[u8; 21]) -> Vec<u8> {
    let mut p = vec![5];
    p.extend_from_slice(pkh);
    p
}

/// Known_keys (tag 6).
pub fn known_keys() -> Vec<u8> {
    vec![6]
}

/// Bls_prove_possession (tag 7): pkh, then `00` or `ff` + the 48-byte override key.
pub fn prove_possession(pkh: &[u8; 21], override_pk: Option<&[u8; 48]>) -> Vec<u8> {
    let mut p = vec![7];
    p.extend_from_slice(pkh);
    match override_pk {
        None => p.push(0),
        Some(pk) => {
            p.push(0xff);
            p.extend_from_slice(pk);
        }
    }
    p
}

/// The bytes an authentication signature covers: `0x04 0x01 ‖ pkh21 ‖ data`
/// (`Sign.Request.to_sign`, used by octez for every authenticated request).
pub fn to_sign(pkh: &[u8; 21], data: &[u8]) -> Vec<u8> {
    let mut m = vec![4, 1];
    m.extend_from_slice(pkh);
    m.extend_from_slice(data);
    m
}

/// Decodes an answer payload: `00 ‖ value` or `01 ‖ u32 list length ‖ (u32 length ‖ BSON)…`.
pub fn parse_reply(payload: &[u8]) -> Reply {
    match payload.first() {
        Some(0) => Reply::Ok(payload[1..].to_vec()),
        Some(1) => {
            let list = be32(&payload[1..5]);
            assert_eq!(list + 5, payload.len(), "trace length");
            let first = be32(&payload[5..9]);
            assert_eq!(first + 4, list, "one error in the trace");
            let doc = &payload[9..9 + first];
            let fields = bson_strings(doc);
            let get = |k: &str| {
                fields
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| panic!("error without `{k}`: {fields:?}"))
            };
            Reply::Error {
                kind: get("kind"),
                id: get("id"),
                msg: get("msg"),
            }
        }
        other => panic!("answer tag {other:?}"),
    }
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes(b.try_into().unwrap()) as usize
}

/// The string fields of a BSON document (bsonspec.org), checking its framing.
fn bson_strings(doc: &[u8]) -> Vec<(String, String)> {
    let total = i32::from_le_bytes(doc[0..4].try_into().unwrap()) as usize;
    assert_eq!(total, doc.len(), "BSON size");
    assert_eq!(doc[total - 1], 0, "BSON terminator");
    let mut i = 4;
    let mut out = Vec::new();
    while i < total - 1 {
        assert_eq!(doc[i], 0x02, "only string elements expected");
        i += 1;
        let name_end = i + doc[i..].iter().position(|b| *b == 0).unwrap();
        let name = String::from_utf8(doc[i..name_end].to_vec()).unwrap();
        i = name_end + 1;
        let len = i32::from_le_bytes(doc[i..i + 4].try_into().unwrap()) as usize;
        i += 4;
        assert_eq!(doc[i + len - 1], 0, "string terminator");
        out.push((
            name,
            String::from_utf8(doc[i..i + len - 1].to_vec()).unwrap(),
        ));
        i += len;
    }
    out
}
