//! Fuzz target: the Tezos signing-request parser (`chain::tezos::payload::parse`).
//!
//! Invariants, for any byte string:
//! - `parse` is deterministic and never panics;
//! - the magic-byte classification is consistent: `Empty` exactly for no bytes,
//!   `UnknownMagicByte(b)` exactly when `b` is not in `KNOWN_MAGIC_BYTES` (and then
//!   `magic_byte_name(b)` is `None`), and the request kind follows the magic byte;
//! - a reference reader written here from the module's offset table (not from the
//!   parser's code) accepts exactly the consensus requests the parser accepts, and reads
//!   the same chain id, level and round at the documented offsets;
//! - a generic request's branch and contents, and a Michelson request's data, are the
//!   input bytes at offsets `1..33`, `33..` and `1..`;
//! - a consensus request is read by fixed offsets only: bytes after the last field read
//!   change nothing, and cutting the request one byte short of that field is `TooShort`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade::chain::tezos::payload::{
    self, ConsensusKind, KNOWN_MAGIC_BYTES, Payload, PayloadError, RequestKind,
};

/// What the offset table says a consensus request holds, and how many bytes it needs.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    kind: ConsensusKind,
    chain_id: [u8; 4],
    level: u32,
    round: u32,
    /// Bytes needed: one past the last byte read.
    needed: usize,
}

fn be32(b: &[u8], at: usize) -> Option<i32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn nonneg(v: i32) -> Option<u32> {
    u32::try_from(v).ok()
}

/// The reference reader: `Some` exactly when the table's fields are all present and valid.
fn reference(b: &[u8]) -> Option<Expected> {
    let magic = *b.first()?;
    let chain_id: [u8; 4] = b.get(1..5)?.try_into().ok()?;
    match magic {
        0x01 => Some(Expected {
            kind: ConsensusKind::Block,
            chain_id,
            level: nonneg(be32(b, 5)?)?,
            round: 0,
            needed: 9,
        }),
        0x02 => {
            if *b.get(37)? != 0 {
                return None;
            }
            Some(Expected {
                kind: ConsensusKind::Attestation,
                chain_id,
                level: nonneg(be32(b, 38)?)?,
                round: 0,
                needed: 42,
            })
        }
        0x11 => {
            let level = nonneg(be32(b, 5)?)?;
            let fitness_len = u32::from_be_bytes(b.get(83..87)?.try_into().ok()?);
            if fitness_len < 4 {
                return None;
            }
            let end = 87usize.checked_add(usize::try_from(fitness_len).ok()?)?;
            if b.len() < end {
                return None;
            }
            Some(Expected {
                kind: ConsensusKind::Block,
                chain_id,
                level,
                round: nonneg(be32(b, end - 4)?)?,
                needed: end,
            })
        }
        0x12 | 0x13 => {
            let level_at = match *b.get(37)? {
                20 | 21 | 23 => 40,
                40 | 41 => 38,
                _ => return None,
            };
            Some(Expected {
                kind: if magic == 0x12 {
                    ConsensusKind::Preattestation
                } else {
                    ConsensusKind::Attestation
                },
                chain_id,
                level: nonneg(be32(b, level_at)?)?,
                round: nonneg(be32(b, level_at + 4)?)?,
                needed: level_at + 8,
            })
        }
        _ => None,
    }
}

fn expected_kind(magic: u8) -> RequestKind {
    match magic {
        0x01 | 0x11 => RequestKind::Block,
        0x12 => RequestKind::Preattestation,
        0x02 | 0x13 => RequestKind::Attestation,
        0x03 => RequestKind::Generic,
        0x05 => RequestKind::MichelsonData,
        other => panic!("no request kind for magic 0x{other:02x}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let parsed = payload::parse(data);
    assert_eq!(parsed, payload::parse(data), "parse is not deterministic");

    let Some(&magic) = data.first() else {
        assert_eq!(parsed, Err(PayloadError::Empty));
        return;
    };
    let known = KNOWN_MAGIC_BYTES.contains(&magic);
    assert_eq!(payload::magic_byte_name(magic).is_some(), known);
    if !known {
        assert_eq!(parsed, Err(PayloadError::UnknownMagicByte(magic)));
        return;
    }
    assert!(!matches!(parsed, Err(PayloadError::UnknownMagicByte(_))));

    let reference = reference(data);
    match (&parsed, magic) {
        (Ok(Payload::Generic { branch, contents }), 0x03) => {
            assert_eq!(&branch[..], &data[1..33]);
            assert_eq!(*contents, &data[33..]);
            assert!(!contents.is_empty());
        }
        (Err(_), 0x03) => assert!(data.len() <= 33, "generic request refused: {parsed:?}"),
        (Ok(Payload::MichelsonData(d)), 0x05) => assert_eq!(*d, &data[1..]),
        (Err(e), 0x05) => panic!("Michelson data refused: {e:?}"),
        (Ok(p), _) if p.consensus().is_some() => {
            let c = p.consensus().expect("consensus");
            let want = reference
                .as_ref()
                .unwrap_or_else(|| panic!("parser accepted {c:?}, the offset table refuses"));
            assert_eq!(
                (c.kind, c.chain_id, c.level, c.round),
                (want.kind, want.chain_id, want.level, want.round)
            );
            assert_eq!(p.chain_id(), Some(c.chain_id));
            // Bytes after the last field read change nothing.
            let mut longer = data.to_vec();
            longer.extend_from_slice(&[0xff; 7]);
            assert_eq!(payload::parse(&longer).as_ref(), Ok(p));
            assert_eq!(payload::parse(&data[..want.needed]).as_ref(), Ok(p));
            // One byte short of the last field read is too short.
            assert!(
                matches!(
                    payload::parse(&data[..want.needed - 1]),
                    Err(PayloadError::TooShort { .. })
                ),
                "cut at {} still parses",
                want.needed - 1
            );
        }
        (Ok(p), _) => panic!("magic 0x{magic:02x} parsed as {p:?}"),
        (Err(e), _) => assert!(
            reference.is_none(),
            "parser refused ({e:?}) what the offset table reads as {reference:?}"
        ),
    }
    if let Ok(p) = &parsed {
        assert_eq!(p.request_kind(), expected_kind(magic));
        if let Some(c) = p.consensus() {
            assert_eq!(RequestKind::from(c.kind), p.request_kind());
        }
    }
});
