//! Tezos signing requests, read by fixed offsets.
//!
//! A baker (octez-client / octez-baker, octez-signer HTTP API) sends the bytes
//! to sign with a leading magic byte (Tezos calls it the "watermark") that says
//! what follows. For consensus messages only the chain id, level and round are
//! read, at fixed offsets, and nothing else is decoded, so that a protocol
//! upgrade that changes the rest of a block header or consensus operation does
//! not stop baking. Generic operations (`0x03`) keep their contents for
//! [`super::operations::operation_kinds`].
//!
//! Layouts follow the octez docs ("Operation encodings", block header
//! `shell_header` + Tenderbake `fitness`, and the signer watermarks). All
//! integers are big-endian; offsets count from the magic byte (offset 0).
//!
//! | magic | what | read here |
//! |-------|------|-----------|
//! | `0x01` | legacy Emmy block header | chain id `1..5`, level int32 `5..9`, round 0 |
//! | `0x02` | legacy Emmy endorsement | chain id `1..5`, branch `5..37`, operation tag `37` = 0, level int32 `38..42`, round 0 |
//! | `0x03` | generic operation | branch `1..33`, contents `33..` (at least 1 byte) |
//! | `0x05` | Michelson packed data | everything after the magic byte |
//! | `0x11` | Tenderbake block header | chain id `1..5`, level int32 `5..9`, fitness length `83..87`, round = last 4 bytes of the fitness |
//! | `0x12` | Tenderbake preattestation | chain id `1..5`, branch `5..37`, operation tag `37`, level and round (see [`parse`]) |
//! | `0x13` | Tenderbake attestation | same layout as `0x12` |

use std::fmt;
use std::str::FromStr;

use super::operations::OperationError;

/// Magic byte of a legacy (Emmy) block header.
pub const MAGIC_EMMY_BLOCK: u8 = 0x01;
/// Magic byte of a legacy (Emmy) endorsement.
pub const MAGIC_EMMY_ENDORSEMENT: u8 = 0x02;
/// Magic byte of a generic operation (transactions, reveals, votes, ...).
pub const MAGIC_GENERIC: u8 = 0x03;
/// Magic byte of packed Michelson data.
pub const MAGIC_MICHELSON_DATA: u8 = 0x05;
/// Magic byte of a Tenderbake block header.
pub const MAGIC_BLOCK: u8 = 0x11;
/// Magic byte of a Tenderbake preattestation (formerly preendorsement).
pub const MAGIC_PREATTESTATION: u8 = 0x12;
/// Magic byte of a Tenderbake attestation (formerly endorsement).
pub const MAGIC_ATTESTATION: u8 = 0x13;

/// Every magic byte [`parse`] accepts, in ascending order.
pub const KNOWN_MAGIC_BYTES: [u8; 7] = [
    MAGIC_EMMY_BLOCK,
    MAGIC_EMMY_ENDORSEMENT,
    MAGIC_GENERIC,
    MAGIC_MICHELSON_DATA,
    MAGIC_BLOCK,
    MAGIC_PREATTESTATION,
    MAGIC_ATTESTATION,
];

/// Operation tag of a preattestation (with slot), at offset 37 under `0x12`/`0x13`.
pub const TAG_PREATTESTATION: u8 = 20;
/// Operation tag of an attestation (with slot).
pub const TAG_ATTESTATION: u8 = 21;
/// Operation tag of an attestation with DAL content (with slot).
pub const TAG_ATTESTATION_WITH_DAL: u8 = 23;
/// Operation tag of a BLS-mode (tz4) preattestation: no slot.
pub const TAG_PREATTESTATION_BLS: u8 = 40;
/// Operation tag of a BLS-mode (tz4) attestation: no slot.
pub const TAG_ATTESTATION_BLS: u8 = 41;
/// Operation tag of a legacy (Emmy) endorsement, at offset 37 under `0x02`.
pub const TAG_EMMY_ENDORSEMENT: u8 = 0;

/// Length of a chain id.
pub const CHAIN_ID_LEN: usize = 4;
/// Length of a branch (block hash).
pub const BRANCH_LEN: usize = 32;

/// Human name of a magic byte, or `None` if [`parse`] does not accept it.
pub fn magic_byte_name(b: u8) -> Option<&'static str> {
    match b {
        MAGIC_EMMY_BLOCK => Some("legacy Emmy block"),
        MAGIC_EMMY_ENDORSEMENT => Some("legacy Emmy endorsement"),
        MAGIC_GENERIC => Some("generic operation"),
        MAGIC_MICHELSON_DATA => Some("Michelson packed data"),
        MAGIC_BLOCK => Some("Tenderbake block"),
        MAGIC_PREATTESTATION => Some("Tenderbake preattestation"),
        MAGIC_ATTESTATION => Some("Tenderbake attestation"),
        _ => None,
    }
}

/// Kind of consensus message, for high watermarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsensusKind {
    /// A block header (magic byte `0x11`, or legacy `0x01`).
    Block,
    /// A preattestation (magic byte `0x12`).
    Preattestation,
    /// An attestation (magic byte `0x13`, or legacy endorsement `0x02`).
    Attestation,
}

impl ConsensusKind {
    /// Every kind, in declaration order.
    pub const ALL: [ConsensusKind; 3] = [
        ConsensusKind::Block,
        ConsensusKind::Preattestation,
        ConsensusKind::Attestation,
    ];

    /// `"block"`, `"preattestation"` or `"attestation"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsensusKind::Block => "block",
            ConsensusKind::Preattestation => "preattestation",
            ConsensusKind::Attestation => "attestation",
        }
    }
}

impl fmt::Display for ConsensusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request is, as far as policy and watermarks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// Block header (`0x11`, legacy `0x01`).
    Block,
    /// Preattestation (`0x12`).
    Preattestation,
    /// Attestation (`0x13`, legacy `0x02`).
    Attestation,
    /// Generic operation (`0x03`).
    Generic,
    /// Packed Michelson data (`0x05`).
    MichelsonData,
}

impl RequestKind {
    /// Every kind, in declaration order.
    pub const ALL: [RequestKind; 5] = [
        RequestKind::Block,
        RequestKind::Preattestation,
        RequestKind::Attestation,
        RequestKind::Generic,
        RequestKind::MichelsonData,
    ];

    /// `"block"`, `"preattestation"`, `"attestation"`, `"generic"` or `"michelson_data"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Block => "block",
            RequestKind::Preattestation => "preattestation",
            RequestKind::Attestation => "attestation",
            RequestKind::Generic => "generic",
            RequestKind::MichelsonData => "michelson_data",
        }
    }

    /// The consensus kind, for the three kinds that have high watermarks.
    pub fn consensus_kind(self) -> Option<ConsensusKind> {
        match self {
            RequestKind::Block => Some(ConsensusKind::Block),
            RequestKind::Preattestation => Some(ConsensusKind::Preattestation),
            RequestKind::Attestation => Some(ConsensusKind::Attestation),
            RequestKind::Generic | RequestKind::MichelsonData => None,
        }
    }
}

impl From<ConsensusKind> for RequestKind {
    fn from(k: ConsensusKind) -> Self {
        match k {
            ConsensusKind::Block => RequestKind::Block,
            ConsensusKind::Preattestation => RequestKind::Preattestation,
            ConsensusKind::Attestation => RequestKind::Attestation,
        }
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`RequestKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown request kind {0:?}; expected one of block, preattestation, attestation, generic, \
     michelson_data (or michelson)"
)]
pub struct UnknownRequestKind(pub String);

impl FromStr for RequestKind {
    type Err = UnknownRequestKind;

    /// Accepts the names of [`RequestKind::as_str`], plus `"michelson"` for
    /// [`RequestKind::MichelsonData`]. Exact, lowercase.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "michelson" {
            return Ok(RequestKind::MichelsonData);
        }
        RequestKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownRequestKind(s.to_string()))
    }
}

/// The watermark-relevant fields of a consensus message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Consensus {
    /// Block, preattestation or attestation (from the magic byte).
    pub kind: ConsensusKind,
    /// Chain id, bytes `1..5` of the request.
    pub chain_id: [u8; 4],
    /// Level (int32 on the wire, refused when negative).
    pub level: u32,
    /// Round (int32 on the wire, refused when negative; 0 for legacy Emmy requests).
    pub round: u32,
}

/// A parsed signing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Block, preattestation or attestation (magic `0x01`, `0x02`, `0x11`, `0x12`, `0x13`).
    Consensus(Consensus),
    /// Generic operation (magic `0x03`).
    Generic {
        /// Branch (block hash the operation is anchored to), bytes `1..33`.
        branch: [u8; 32],
        /// The operations, bytes `33..` (never empty); see
        /// [`super::operations::operation_kinds`].
        contents: &'a [u8],
    },
    /// Packed Michelson data (magic `0x05`): the bytes after the magic byte
    /// (possibly empty).
    MichelsonData(&'a [u8]),
}

impl Payload<'_> {
    /// The request kind used by policy.
    pub fn request_kind(&self) -> RequestKind {
        match self {
            Payload::Consensus(c) => c.kind.into(),
            Payload::Generic { .. } => RequestKind::Generic,
            Payload::MichelsonData(_) => RequestKind::MichelsonData,
        }
    }

    /// The chain id, for consensus messages (generic operations and Michelson
    /// data carry none).
    pub fn chain_id(&self) -> Option<[u8; 4]> {
        self.consensus().map(|c| c.chain_id)
    }

    /// The consensus fields, for consensus messages.
    pub fn consensus(&self) -> Option<&Consensus> {
        match self {
            Payload::Consensus(c) => Some(c),
            _ => None,
        }
    }
}

/// Why a signing request could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    /// Zero bytes: not even a magic byte.
    #[error("empty signing request: no magic byte")]
    Empty,
    /// A first byte that is not a known magic byte.
    #[error("unknown magic byte 0x{0:02x}; known magic bytes: {known}", known = known_magic_bytes_text())]
    UnknownMagicByte(u8),
    /// The request ends before a field that must be read.
    #[error("signing request too short for {what}: need at least {need} bytes, got {got}")]
    TooShort {
        /// The field that is missing.
        what: &'static str,
        /// Total request length that field needs.
        need: usize,
        /// Actual request length.
        got: usize,
    },
    /// An operation tag (offset 37) that is not a consensus operation.
    #[error("{}", unknown_consensus_tag_text(*magic, *tag))]
    UnknownConsensusTag {
        /// The request's magic byte.
        magic: u8,
        /// The operation tag found at offset 37.
        tag: u8,
    },
    /// Level field with the sign bit set.
    #[error("level is negative (int32 < 0); refused")]
    NegativeLevel,
    /// Round field with the sign bit set.
    #[error("round is negative (int32 < 0); refused")]
    NegativeRound,
    /// A block fitness that cannot hold a round.
    #[error("bad block fitness: {0}")]
    BadFitness(String),
    /// The contents of a generic operation were refused (see [`OperationError`]).
    #[error("generic operation refused: {0}")]
    Operation(String),
}

impl From<OperationError> for PayloadError {
    fn from(e: OperationError) -> Self {
        PayloadError::Operation(e.to_string())
    }
}

fn known_magic_bytes_text() -> String {
    KNOWN_MAGIC_BYTES
        .iter()
        .map(|&b| format!("0x{b:02x} ({})", magic_byte_name(b).unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_consensus_tag_text(magic: u8, tag: u8) -> String {
    let known = if magic == MAGIC_EMMY_ENDORSEMENT {
        "known: 0 (endorsement)"
    } else {
        "known: 20 (preattestation), 21 (attestation), 23 (attestation with DAL), \
         40 (BLS-mode preattestation), 41 (BLS-mode attestation)"
    };
    format!(
        "operation tag {tag} (0x{tag:02x}) at offset 37 under magic byte 0x{magic:02x} is not a \
         consensus operation; {known}"
    )
}

/// Reads the signing request `bytes` (magic byte first).
///
/// Only the fields named in the module table are read; everything after them
/// is ignored. Tenderbake details:
///
/// - `0x11` block: `magic(1) chain_id(4) level(4) proto(1) predecessor(32)
///   timestamp(8) validation_pass(1) operations_hash(32)` then the fitness as a
///   4-byte length at `83..87` and that many bytes; the fitness must be fully
///   present and at least 4 bytes long, and its last 4 bytes are the round.
///   Anything may follow (context, protocol data).
/// - `0x12` / `0x13`: `magic(1) chain_id(4) branch(32) tag(1)`; tags 20, 21, 23
///   carry `slot uint16 @38..40, level @40..44, round @44..48`; BLS-mode tags
///   40, 41 carry `level @38..42, round @42..46`. Any of these tags is accepted
///   under either magic byte: the kind comes from the magic byte. Trailing
///   bytes (block payload hash, DAL content) are allowed.
///
/// Never panics.
///
/// # Errors
///
/// [`PayloadError::Empty`] for no bytes, [`PayloadError::UnknownMagicByte`] for
/// a first byte outside [`KNOWN_MAGIC_BYTES`], [`PayloadError::TooShort`] when a
/// field to read lies past the end, [`PayloadError::UnknownConsensusTag`] for
/// an operation tag at offset 37 that is not a consensus operation,
/// [`PayloadError::NegativeLevel`] / [`PayloadError::NegativeRound`] for an
/// int32 below zero, and [`PayloadError::BadFitness`] for a block fitness
/// shorter than 4 bytes.
pub fn parse(bytes: &[u8]) -> Result<Payload<'_>, PayloadError> {
    let magic = *bytes.first().ok_or(PayloadError::Empty)?;
    match magic {
        MAGIC_BLOCK => parse_tenderbake_block(bytes),
        MAGIC_PREATTESTATION => parse_tenderbake_consensus(bytes, ConsensusKind::Preattestation),
        MAGIC_ATTESTATION => parse_tenderbake_consensus(bytes, ConsensusKind::Attestation),
        MAGIC_EMMY_BLOCK => Ok(Payload::Consensus(Consensus {
            kind: ConsensusKind::Block,
            chain_id: chain_id(bytes)?,
            level: level_at(bytes, 5, "legacy block level")?,
            round: 0,
        })),
        MAGIC_EMMY_ENDORSEMENT => {
            let chain_id = chain_id(bytes)?;
            let tag = byte_at(bytes, 37, "legacy endorsement operation tag")?;
            if tag != TAG_EMMY_ENDORSEMENT {
                return Err(PayloadError::UnknownConsensusTag { magic, tag });
            }
            Ok(Payload::Consensus(Consensus {
                kind: ConsensusKind::Attestation,
                chain_id,
                level: level_at(bytes, 38, "legacy endorsement level")?,
                round: 0,
            }))
        }
        MAGIC_GENERIC => {
            let branch: [u8; BRANCH_LEN] = array_at(bytes, 1, "generic operation branch")?;
            let contents = bytes.get(1 + BRANCH_LEN..).unwrap_or_default();
            if contents.is_empty() {
                return Err(PayloadError::TooShort {
                    what: "generic operation contents (at least one byte after the branch)",
                    need: 1 + BRANCH_LEN + 1,
                    got: bytes.len(),
                });
            }
            Ok(Payload::Generic { branch, contents })
        }
        MAGIC_MICHELSON_DATA => Ok(Payload::MichelsonData(bytes.get(1..).unwrap_or_default())),
        other => Err(PayloadError::UnknownMagicByte(other)),
    }
}

/// Offset of the fitness length in a Tenderbake block request.
const BLOCK_FITNESS_LEN_OFFSET: usize = 83;

fn parse_tenderbake_block(bytes: &[u8]) -> Result<Payload<'_>, PayloadError> {
    let chain_id = chain_id(bytes)?;
    let level = level_at(bytes, 5, "block level")?;
    let fitness_len: [u8; 4] = array_at(bytes, BLOCK_FITNESS_LEN_OFFSET, "block fitness length")?;
    let fitness_len = u32::from_be_bytes(fitness_len);
    if fitness_len < 4 {
        return Err(PayloadError::BadFitness(format!(
            "fitness is {fitness_len} byte(s) long; at least 4 are needed to hold the round"
        )));
    }
    let fitness_start = BLOCK_FITNESS_LEN_OFFSET + 4;
    let fitness_end = usize::try_from(fitness_len)
        .ok()
        .and_then(|len| fitness_start.checked_add(len))
        .unwrap_or(usize::MAX);
    if bytes.len() < fitness_end {
        return Err(PayloadError::TooShort {
            what: "block fitness (as declared by its length)",
            need: fitness_end,
            got: bytes.len(),
        });
    }
    // fitness_end >= fitness_start + 4, so this cannot underflow.
    let round = int32_at(bytes, fitness_end - 4, "block fitness round")?;
    let round = u32::try_from(round).map_err(|_| PayloadError::NegativeRound)?;
    Ok(Payload::Consensus(Consensus {
        kind: ConsensusKind::Block,
        chain_id,
        level,
        round,
    }))
}

fn parse_tenderbake_consensus(
    bytes: &[u8],
    kind: ConsensusKind,
) -> Result<Payload<'_>, PayloadError> {
    let chain_id = chain_id(bytes)?;
    let tag = byte_at(bytes, 37, "consensus operation tag")?;
    let level_offset = match tag {
        TAG_PREATTESTATION | TAG_ATTESTATION | TAG_ATTESTATION_WITH_DAL => 40,
        TAG_PREATTESTATION_BLS | TAG_ATTESTATION_BLS => 38,
        _ => {
            return Err(PayloadError::UnknownConsensusTag {
                magic: bytes.first().copied().unwrap_or_default(),
                tag,
            });
        }
    };
    let level = level_at(bytes, level_offset, "consensus operation level")?;
    let round = int32_at(bytes, level_offset + 4, "consensus operation round")?;
    let round = u32::try_from(round).map_err(|_| PayloadError::NegativeRound)?;
    Ok(Payload::Consensus(Consensus {
        kind,
        chain_id,
        level,
        round,
    }))
}

/// `N` bytes at `offset`, or `TooShort` naming `what`.
fn array_at<const N: usize>(
    bytes: &[u8],
    offset: usize,
    what: &'static str,
) -> Result<[u8; N], PayloadError> {
    let need = offset.saturating_add(N);
    bytes
        .get(offset..need)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(PayloadError::TooShort {
            what,
            need,
            got: bytes.len(),
        })
}

fn byte_at(bytes: &[u8], offset: usize, what: &'static str) -> Result<u8, PayloadError> {
    array_at::<1>(bytes, offset, what).map(|[b]| b)
}

fn chain_id(bytes: &[u8]) -> Result<[u8; CHAIN_ID_LEN], PayloadError> {
    array_at(bytes, 1, "chain id")
}

fn int32_at(bytes: &[u8], offset: usize, what: &'static str) -> Result<i32, PayloadError> {
    array_at(bytes, offset, what).map(i32::from_be_bytes)
}

/// An int32 level, refused when negative.
fn level_at(bytes: &[u8], offset: usize, what: &'static str) -> Result<u32, PayloadError> {
    let level = int32_at(bytes, offset, what)?;
    u32::try_from(level).map_err(|_| PayloadError::NegativeLevel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS_PATH: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/tezos/tenderbake_payloads.json"
    );

    fn vectors() -> Value {
        let text = std::fs::read_to_string(VECTORS_PATH)
            .unwrap_or_else(|e| panic!("cannot read {VECTORS_PATH}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {VECTORS_PATH}: {e}"))
    }

    /// Base58 decoding (no checksum check), for chain ids written in base58check.
    fn base58_decode(s: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        let mut out: Vec<u8> = Vec::new(); // big-endian magnitude
        for c in s.bytes() {
            let digit = ALPHABET
                .iter()
                .position(|&a| a == c)
                .unwrap_or_else(|| panic!("bad base58 char {c}")) as u32;
            let mut carry = digit;
            for byte in out.iter_mut().rev() {
                let v = u32::from(*byte) * 58 + carry;
                *byte = (v & 0xff) as u8;
                carry = v >> 8;
            }
            while carry > 0 {
                out.insert(0, (carry & 0xff) as u8);
                carry >>= 8;
            }
        }
        let zeros = s.bytes().take_while(|&c| c == b'1').count();
        let mut v = vec![0u8; zeros];
        v.extend(out);
        v
    }

    /// Chain id bytes from a `Net...` base58check name (prefix 0x57 0x52 0x00).
    fn chain_id_from_b58(name: &str) -> [u8; 4] {
        let raw = base58_decode(name);
        assert_eq!(raw.len(), 3 + 4 + 4, "chain id {name}");
        assert_eq!(&raw[..3], &[0x57, 0x52, 0x00], "chain id prefix of {name}");
        raw[3..7].try_into().unwrap()
    }

    fn kind_from_expected(name: &str) -> ConsensusKind {
        match name {
            "Baking" => ConsensusKind::Block,
            "Preendorsement" => ConsensusKind::Preattestation,
            "Endorsement" => ConsensusKind::Attestation,
            other => panic!("unknown expected kind {other}"),
        }
    }

    fn as_u32(v: &Value, what: &str) -> u32 {
        u32::try_from(v.as_u64().unwrap_or_else(|| panic!("{what} not a number")))
            .expect("fits u32")
    }

    fn check_decoded_here(c: &Consensus, d: &Value, ctx: &str) {
        assert_eq!(c.kind.as_str(), d["kind"].as_str().unwrap(), "{ctx}");
        assert_eq!(
            hex::encode(c.chain_id),
            d["chain_id_hex"].as_str().unwrap(),
            "{ctx}"
        );
        if let Some(name) = d["chain_id"].as_str() {
            assert_eq!(c.chain_id, chain_id_from_b58(name), "{ctx}");
        }
        assert_eq!(c.level, as_u32(&d["level"], "level"), "{ctx}");
        assert_eq!(c.round, as_u32(&d["round"], "round"), "{ctx}");
    }

    fn check_expected(c: &Consensus, e: &Value, ctx: &str) {
        assert_eq!(
            c.kind,
            kind_from_expected(e["kind"].as_str().unwrap()),
            "{ctx}"
        );
        assert_eq!(
            c.chain_id,
            chain_id_from_b58(e["chain_id"].as_str().unwrap()),
            "{ctx}"
        );
        assert_eq!(c.level, as_u32(&e["level"], "level"), "{ctx}");
        assert_eq!(c.round, as_u32(&e["round"], "round"), "{ctx}");
    }

    fn parse_consensus_hex(h: &str, ctx: &str) -> Consensus {
        let bytes = hex::decode(h).unwrap_or_else(|e| panic!("{ctx}: bad hex {e}"));
        match parse(&bytes) {
            Ok(Payload::Consensus(c)) => c,
            other => panic!("{ctx}: expected a consensus payload, got {other:?}"),
        }
    }

    #[test]
    fn shared_vectors_cases() {
        let v = vectors();
        let cases = v["cases"].as_array().unwrap();
        assert!(!cases.is_empty());
        for (i, case) in cases.iter().enumerate() {
            let ctx = format!("case {i}");
            let c = parse_consensus_hex(case["payload_hex"].as_str().unwrap(), &ctx);
            let decoded = &case["decoded_here"];
            let expected = &case["expected"];
            assert!(
                decoded.is_object() || expected.is_object(),
                "{ctx}: nothing to check"
            );
            if decoded.is_object() {
                check_decoded_here(&c, decoded, &ctx);
            }
            let matches = case["matches"].as_bool().unwrap_or(true);
            if expected.is_object() && (matches || !decoded.is_object()) {
                check_expected(&c, expected, &ctx);
            }
        }
    }

    #[test]
    fn shared_vectors_watermark_steps() {
        let v = vectors();
        let steps = v["watermark_sequence"]["steps"].as_array().unwrap();
        assert!(!steps.is_empty());
        for (i, step) in steps.iter().enumerate() {
            let ctx = format!("step {i}");
            let c = parse_consensus_hex(step["payload_hex"].as_str().unwrap(), &ctx);
            if step["decoded_here"].is_object() {
                check_decoded_here(&c, &step["decoded_here"], &ctx);
            } else {
                check_expected(&c, step, &ctx);
            }
        }
    }

    // ---- builders ----

    const CHAIN: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

    /// A Tenderbake block request with the given fitness bytes and a tail.
    fn block(level: i32, fitness: &[u8], tail: &[u8]) -> Vec<u8> {
        let mut v = vec![MAGIC_BLOCK];
        v.extend_from_slice(&CHAIN);
        v.extend_from_slice(&level.to_be_bytes());
        v.push(2); // proto
        v.extend_from_slice(&[0x11; 32]); // predecessor
        v.extend_from_slice(&1_700_000_000i64.to_be_bytes()); // timestamp
        v.push(4); // validation passes
        v.extend_from_slice(&[0x22; 32]); // operations hash
        assert_eq!(v.len(), BLOCK_FITNESS_LEN_OFFSET);
        v.extend_from_slice(&(fitness.len() as u32).to_be_bytes());
        v.extend_from_slice(fitness);
        v.extend_from_slice(tail);
        v
    }

    /// A Tenderbake fitness: version, level, locked round (empty), predecessor round, round.
    fn fitness(level: i32, round: i32) -> Vec<u8> {
        let mut f = Vec::new();
        for item in [
            vec![2u8],
            level.to_be_bytes().to_vec(),
            vec![],
            (-1i32).to_be_bytes().to_vec(),
            round.to_be_bytes().to_vec(),
        ] {
            f.extend_from_slice(&(item.len() as u32).to_be_bytes());
            f.extend_from_slice(&item);
        }
        f
    }

    /// A consensus operation request; `slot` is written only when given.
    fn consensus_op(magic: u8, tag: u8, slot: Option<u16>, level: i32, round: i32) -> Vec<u8> {
        let mut v = vec![magic];
        v.extend_from_slice(&CHAIN);
        v.extend_from_slice(&[0x33; 32]); // branch
        v.push(tag);
        if let Some(s) = slot {
            v.extend_from_slice(&s.to_be_bytes());
        }
        v.extend_from_slice(&level.to_be_bytes());
        v.extend_from_slice(&round.to_be_bytes());
        v.extend_from_slice(&[0x44; 32]); // block payload hash
        v
    }

    fn consensus(kind: ConsensusKind, level: u32, round: u32) -> Payload<'static> {
        Payload::Consensus(Consensus {
            kind,
            chain_id: CHAIN,
            level,
            round,
        })
    }

    #[test]
    fn block_round_is_last_fitness_bytes() {
        let b = block(77, &fitness(77, 3), &[0x55; 40]);
        assert_eq!(parse(&b), Ok(consensus(ConsensusKind::Block, 77, 3)));
        // Minimal fitness of exactly 4 bytes, nothing after it.
        let b = block(1, &9i32.to_be_bytes(), &[]);
        assert_eq!(parse(&b), Ok(consensus(ConsensusKind::Block, 1, 9)));
    }

    #[test]
    fn block_every_truncation_is_refused() {
        let f = fitness(5, 2);
        let full = block(5, &f, &[]);
        let need = BLOCK_FITNESS_LEN_OFFSET + 4 + f.len();
        assert_eq!(full.len(), need);
        for len in 0..need {
            assert!(parse(&full[..len]).is_err(), "prefix of {len} bytes");
        }
        assert!(parse(&full).is_ok());
    }

    #[test]
    fn block_fitness_length_past_the_end() {
        let mut b = block(5, &fitness(5, 2), &[0; 8]);
        b[BLOCK_FITNESS_LEN_OFFSET..BLOCK_FITNESS_LEN_OFFSET + 4]
            .copy_from_slice(&1000u32.to_be_bytes());
        let err = parse(&b).unwrap_err();
        assert!(
            matches!(err, PayloadError::TooShort { need: 1087, .. }),
            "{err:?}"
        );
        b[BLOCK_FITNESS_LEN_OFFSET..BLOCK_FITNESS_LEN_OFFSET + 4]
            .copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(parse(&b), Err(PayloadError::TooShort { .. })));
    }

    #[test]
    fn block_fitness_too_short_for_round() {
        for len in 0..4 {
            let b = block(5, &vec![0u8; len], &[0; 40]);
            let err = parse(&b).unwrap_err();
            assert!(matches!(err, PayloadError::BadFitness(_)), "{err:?}");
            assert!(err.to_string().contains("fitness"), "{err}");
        }
    }

    #[test]
    fn negative_level_and_round_are_refused() {
        let b = block(-1, &fitness(-1, 0), &[]);
        assert_eq!(parse(&b), Err(PayloadError::NegativeLevel));
        let b = block(i32::MIN, &fitness(1, 0), &[]);
        assert_eq!(parse(&b), Err(PayloadError::NegativeLevel));
        let b = block(5, &fitness(5, -2), &[]);
        assert_eq!(parse(&b), Err(PayloadError::NegativeRound));
        for (tag, slot) in [(21u8, Some(3u16)), (41, None)] {
            let op = consensus_op(MAGIC_ATTESTATION, tag, slot, -7, 0);
            assert_eq!(parse(&op), Err(PayloadError::NegativeLevel));
            let op = consensus_op(MAGIC_ATTESTATION, tag, slot, 7, -1);
            assert_eq!(parse(&op), Err(PayloadError::NegativeRound));
        }
        let mut legacy = vec![MAGIC_EMMY_BLOCK];
        legacy.extend_from_slice(&CHAIN);
        legacy.extend_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(parse(&legacy), Err(PayloadError::NegativeLevel));
    }

    #[test]
    fn attestation_tags_with_slot() {
        for tag in [
            TAG_PREATTESTATION,
            TAG_ATTESTATION,
            TAG_ATTESTATION_WITH_DAL,
        ] {
            for (magic, kind) in [
                (MAGIC_PREATTESTATION, ConsensusKind::Preattestation),
                (MAGIC_ATTESTATION, ConsensusKind::Attestation),
            ] {
                let op = consensus_op(magic, tag, Some(0xbeef), 123_456, 2);
                assert_eq!(parse(&op), Ok(consensus(kind, 123_456, 2)), "tag {tag}");
            }
        }
    }

    #[test]
    fn bls_mode_tags_40_41_have_no_slot() {
        for tag in [TAG_PREATTESTATION_BLS, TAG_ATTESTATION_BLS] {
            for (magic, kind) in [
                (MAGIC_PREATTESTATION, ConsensusKind::Preattestation),
                (MAGIC_ATTESTATION, ConsensusKind::Attestation),
            ] {
                let op = consensus_op(magic, tag, None, 10_512_318, 4);
                assert_eq!(op[37], tag);
                assert_eq!(&op[38..42], &10_512_318i32.to_be_bytes());
                assert_eq!(&op[42..46], &4i32.to_be_bytes());
                assert_eq!(parse(&op), Ok(consensus(kind, 10_512_318, 4)));
                // Exactly 46 bytes is enough; 45 is not.
                assert!(parse(&op[..46]).is_ok());
                assert!(matches!(
                    parse(&op[..45]),
                    Err(PayloadError::TooShort { need: 46, .. })
                ));
            }
        }
    }

    #[test]
    fn attestation_every_truncation_is_refused() {
        for (tag, slot, need) in [
            (21u8, Some(1u16), 48usize),
            (20, Some(1), 48),
            (41, None, 46),
        ] {
            let op = consensus_op(MAGIC_ATTESTATION, tag, slot, 9, 1);
            for len in 0..need {
                assert!(parse(&op[..len]).is_err(), "tag {tag}, prefix {len}");
            }
            for len in need..=op.len() {
                assert!(parse(&op[..len]).is_ok(), "tag {tag}, prefix {len}");
            }
        }
    }

    #[test]
    fn unknown_consensus_tag() {
        for tag in [0u8, 1, 19, 22, 24, 39, 42, 107, 255] {
            for magic in [MAGIC_PREATTESTATION, MAGIC_ATTESTATION] {
                let op = consensus_op(magic, tag, Some(0), 1, 0);
                let err = parse(&op).unwrap_err();
                assert_eq!(err, PayloadError::UnknownConsensusTag { magic, tag });
                assert!(err.to_string().contains(&format!("0x{tag:02x}")), "{err}");
            }
        }
    }

    #[test]
    fn legacy_emmy_block_and_endorsement() {
        let mut b = vec![MAGIC_EMMY_BLOCK];
        b.extend_from_slice(&CHAIN);
        b.extend_from_slice(&500_000i32.to_be_bytes());
        b.extend_from_slice(&[0; 60]);
        assert_eq!(parse(&b), Ok(consensus(ConsensusKind::Block, 500_000, 0)));
        assert!(matches!(
            parse(&b[..8]),
            Err(PayloadError::TooShort { need: 9, .. })
        ));

        let mut e = vec![MAGIC_EMMY_ENDORSEMENT];
        e.extend_from_slice(&CHAIN);
        e.extend_from_slice(&[0x66; 32]);
        e.push(TAG_EMMY_ENDORSEMENT);
        e.extend_from_slice(&500_001i32.to_be_bytes());
        assert_eq!(
            parse(&e),
            Ok(consensus(ConsensusKind::Attestation, 500_001, 0))
        );
        for len in 0..e.len() {
            assert!(parse(&e[..len]).is_err(), "prefix {len}");
        }
        e[37] = 10;
        assert_eq!(
            parse(&e),
            Err(PayloadError::UnknownConsensusTag {
                magic: MAGIC_EMMY_ENDORSEMENT,
                tag: 10
            })
        );
    }

    #[test]
    fn generic_and_michelson() {
        let mut g = vec![MAGIC_GENERIC];
        g.extend_from_slice(&[0x77; 32]);
        assert!(matches!(
            parse(&g),
            Err(PayloadError::TooShort { need: 34, .. })
        ));
        assert!(matches!(
            parse(&g[..10]),
            Err(PayloadError::TooShort { need: 33, .. })
        ));
        g.extend_from_slice(&[108, 1, 2]);
        let p = parse(&g).unwrap();
        assert_eq!(
            p,
            Payload::Generic {
                branch: [0x77; 32],
                contents: &[108, 1, 2]
            }
        );
        assert_eq!(p.request_kind(), RequestKind::Generic);
        assert_eq!(p.chain_id(), None);

        assert_eq!(
            parse(&[MAGIC_MICHELSON_DATA]),
            Ok(Payload::MichelsonData(&[]))
        );
        let p = parse(&[MAGIC_MICHELSON_DATA, 0x00, 0x01]).unwrap();
        assert_eq!(p, Payload::MichelsonData(&[0x00, 0x01]));
        assert_eq!(p.request_kind(), RequestKind::MichelsonData);
        assert_eq!(p.chain_id(), None);
    }

    #[test]
    fn empty_and_unknown_magic_bytes() {
        assert_eq!(parse(&[]), Err(PayloadError::Empty));
        for b in 0..=255u8 {
            if KNOWN_MAGIC_BYTES.contains(&b) {
                assert!(magic_byte_name(b).is_some());
                continue;
            }
            assert_eq!(magic_byte_name(b), None);
            let req = [b, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            let err = parse(&req).unwrap_err();
            assert_eq!(err, PayloadError::UnknownMagicByte(b));
            let msg = err.to_string();
            assert!(msg.contains(&format!("0x{b:02x}")), "{msg}");
            for known in ["0x01", "0x02", "0x03", "0x05", "0x11", "0x12", "0x13"] {
                assert!(msg.contains(known), "{msg}");
            }
        }
    }

    #[test]
    fn payload_accessors() {
        let op = consensus_op(MAGIC_PREATTESTATION, 20, Some(0), 3, 1);
        let p = parse(&op).unwrap();
        assert_eq!(p.request_kind(), RequestKind::Preattestation);
        assert_eq!(p.chain_id(), Some(CHAIN));
        assert_eq!(p.consensus().map(|c| c.level), Some(3));
    }

    #[test]
    fn kind_names() {
        for k in RequestKind::ALL {
            assert_eq!(k.as_str().parse::<RequestKind>(), Ok(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        assert_eq!("michelson".parse(), Ok(RequestKind::MichelsonData));
        assert!("Block".parse::<RequestKind>().is_err());
        assert!("endorsement".parse::<RequestKind>().is_err());
        for k in ConsensusKind::ALL {
            let r = RequestKind::from(k);
            assert_eq!(r.as_str(), k.as_str());
            assert_eq!(r.consensus_kind(), Some(k));
        }
        assert_eq!(RequestKind::Generic.consensus_kind(), None);
    }

    #[test]
    fn operation_error_converts() {
        let e = super::super::operations::operation_kinds(&[0x42]).unwrap_err();
        let p = PayloadError::from(e);
        assert!(matches!(&p, PayloadError::Operation(m) if m.contains("0x42")));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..30_000u32 {
            let len = (next() % 200) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if i % 4 != 0 {
                if let Some(first) = v.first_mut() {
                    *first = KNOWN_MAGIC_BYTES[(next() % 7) as usize];
                }
                // Often put a known consensus tag at offset 37.
                if i % 3 == 0
                    && let Some(tag) = v.get_mut(37)
                {
                    *tag = [0u8, 20, 21, 23, 40, 41][(next() % 6) as usize];
                }
                // Often make the block fitness length small.
                if i % 5 == 0
                    && let Some(l) =
                        v.get_mut(BLOCK_FITNESS_LEN_OFFSET..BLOCK_FITNESS_LEN_OFFSET + 4)
                {
                    l.copy_from_slice(&((next() % 120) as u32).to_be_bytes());
                }
            }
            if let Ok(Payload::Generic { contents, .. }) = parse(&v) {
                let _ = super::super::operations::operation_kinds(contents);
            }
            let _ = super::super::operations::operation_kinds(&v);
        }
    }
}
