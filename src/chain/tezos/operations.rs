//! Operation kinds inside a generic (magic byte `0x03`) signing request, for policy.
//!
//! A generic request is `0x03 || branch (32 bytes) || contents`, where `contents`
//! is a sequence of operations in the Tezos protocol binary encoding (octez docs,
//! "Operation encodings" / `operation.unsigned`). This module decodes the
//! operation tags of `contents` only as far as needed to find where each
//! operation ends, so that every operation of a batch is classified. It does not
//! check signatures, counters, balances or scripts.
//!
//! It fails closed: an operation tag it does not know, a length that runs past
//! the end, a malformed field (boolean, zarith natural, key or contract tag) or
//! trailing bytes that do not form an operation give an [`OperationError`].
//!
//! Field encodings used below (all fixed-size integers big-endian):
//! - zarith natural `N`: little-endian base-128, high bit of each byte set when
//!   another byte follows; at most 10 bytes accepted; a last byte of `0x00`
//!   after other bytes (non-canonical) is refused.
//! - public key hash: 21 bytes, tag `0` ed25519, `1` secp256k1, `2` p256,
//!   `3` bls, then a 20-byte hash.
//! - public key: tag `0` ed25519 + 32 bytes, `1` secp256k1 + 33, `2` p256 + 33,
//!   `3` bls + 48.
//! - contract id: 22 bytes, tag `0` implicit + 21-byte public key hash, or tag `1`
//!   originated + 20-byte hash + 1 padding byte.
//! - boolean / option presence: one byte, `0x00` false/absent, `0xff`
//!   true/present; any other byte is refused.

use std::fmt;
use std::str::FromStr;

/// Operation tag of `reveal` (manager operation).
pub const TAG_REVEAL: u8 = 107;
/// Operation tag of `transaction` (manager operation).
pub const TAG_TRANSACTION: u8 = 108;
/// Operation tag of `origination` (manager operation).
pub const TAG_ORIGINATION: u8 = 109;
/// Operation tag of `delegation` (manager operation).
pub const TAG_DELEGATION: u8 = 110;
/// Operation tag of `ballot` (governance).
pub const TAG_BALLOT: u8 = 6;
/// Operation tag of `proposals` (governance).
pub const TAG_PROPOSALS: u8 = 5;

/// Most bytes a zarith natural may take here (70 bits of value).
pub const MAX_ZARITH_BYTES: usize = 10;

/// Length of a BLS proof of possession (a BLS signature) in a reveal.
const BLS_PROOF_LEN: usize = 96;

/// Kind of one operation of a generic (`0x03`) request, as policy sees it.
///
/// Staking pseudo-operations are transactions (tag 108) whose entrypoint is
/// `stake`, `unstake`, `finalize_unstake` or `set_delegate_parameters`; they
/// get their own kind so that policy can allow them separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationKind {
    /// `transaction` (tag 108) to any other entrypoint.
    Transaction,
    /// `reveal` (tag 107).
    Reveal,
    /// `delegation` (tag 110), setting or withdrawing a delegate.
    Delegation,
    /// `origination` (tag 109).
    Origination,
    /// `ballot` (tag 6).
    Ballot,
    /// `proposals` (tag 5).
    Proposals,
    /// `transaction` (tag 108) to the `stake` entrypoint.
    Stake,
    /// `transaction` (tag 108) to the `unstake` entrypoint.
    Unstake,
    /// `transaction` (tag 108) to the `finalize_unstake` entrypoint.
    FinalizeUnstake,
    /// `transaction` (tag 108) to the `set_delegate_parameters` entrypoint.
    SetDelegateParameters,
}

impl OperationKind {
    /// Every kind, in declaration order.
    pub const ALL: [OperationKind; 10] = [
        OperationKind::Transaction,
        OperationKind::Reveal,
        OperationKind::Delegation,
        OperationKind::Origination,
        OperationKind::Ballot,
        OperationKind::Proposals,
        OperationKind::Stake,
        OperationKind::Unstake,
        OperationKind::FinalizeUnstake,
        OperationKind::SetDelegateParameters,
    ];

    /// The `snake_case` name used in configuration and logs (e.g. `"finalize_unstake"`).
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Transaction => "transaction",
            OperationKind::Reveal => "reveal",
            OperationKind::Delegation => "delegation",
            OperationKind::Origination => "origination",
            OperationKind::Ballot => "ballot",
            OperationKind::Proposals => "proposals",
            OperationKind::Stake => "stake",
            OperationKind::Unstake => "unstake",
            OperationKind::FinalizeUnstake => "finalize_unstake",
            OperationKind::SetDelegateParameters => "set_delegate_parameters",
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`OperationKind::as_str`]'s names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown operation kind {0:?}; expected one of transaction, reveal, delegation, \
     origination, ballot, proposals, stake, unstake, finalize_unstake, set_delegate_parameters"
)]
pub struct UnknownOperationKind(pub String);

impl FromStr for OperationKind {
    type Err = UnknownOperationKind;

    /// Parses the exact `snake_case` name returned by [`OperationKind::as_str`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OperationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownOperationKind(s.to_string()))
    }
}

/// Why the contents of a generic operation were refused.
///
/// Every `offset` counts bytes from the start of `contents` (the byte right
/// after the 32-byte branch), so offset 0 is the first operation tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// No operation at all after the branch.
    #[error("generic operation has no contents after the branch; at least one operation is needed")]
    Empty,
    /// A field runs past the end of the contents.
    #[error(
        "operation contents truncated: {what} at byte {offset} needs {need} byte(s), only {got} left"
    )]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Where the field starts.
        offset: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes left from `offset` to the end.
        got: usize,
    },
    /// An operation tag this module does not decode (also what trailing garbage
    /// after the last operation looks like).
    #[error("operation tag 0x{tag:02x} ({tag}) at byte {offset} is not decoded; refused")]
    UnknownTag {
        /// The operation tag byte.
        tag: u8,
        /// Where the tag is.
        offset: usize,
    },
    /// A boolean / option-presence byte other than `0x00` or `0xff`.
    #[error("{what} at byte {offset}: boolean byte must be 0x00 or 0xff, got 0x{byte:02x}")]
    BadBool {
        /// The field being read.
        what: &'static str,
        /// The byte found.
        byte: u8,
        /// Where the byte is.
        offset: usize,
    },
    /// A zarith natural longer than [`MAX_ZARITH_BYTES`] bytes.
    #[error("{what} at byte {offset}: zarith natural is longer than {MAX_ZARITH_BYTES} bytes")]
    ZarithTooLong {
        /// The field being read.
        what: &'static str,
        /// Where the number starts.
        offset: usize,
    },
    /// A zarith natural whose last byte is `0x00` after other bytes.
    #[error("{what} at byte {offset}: zarith natural ends with a zero byte (not canonical)")]
    ZarithTrailingZero {
        /// The field being read.
        what: &'static str,
        /// Where the number starts.
        offset: usize,
    },
    /// A public key hash tag other than 0..=3.
    #[error(
        "{what} at byte {offset}: unknown public key hash tag 0x{tag:02x} \
         (known: 0 ed25519, 1 secp256k1, 2 p256, 3 bls)"
    )]
    BadPublicKeyHashTag {
        /// The field being read.
        what: &'static str,
        /// The tag byte found.
        tag: u8,
        /// Where the tag is.
        offset: usize,
    },
    /// A public key tag other than 0..=3.
    #[error(
        "public key at byte {offset}: unknown public key tag 0x{tag:02x} \
         (known: 0 ed25519, 1 secp256k1, 2 p256, 3 bls)"
    )]
    BadPublicKeyTag {
        /// The tag byte found.
        tag: u8,
        /// Where the tag is.
        offset: usize,
    },
    /// A contract id tag other than 0 (implicit) or 1 (originated).
    #[error(
        "{what} at byte {offset}: unknown contract id tag 0x{tag:02x} (known: 0 implicit, 1 originated)"
    )]
    BadContractTag {
        /// The field being read.
        what: &'static str,
        /// The tag byte found.
        tag: u8,
        /// Where the tag is.
        offset: usize,
    },
    /// An entrypoint tag other than 0..=9 or 255.
    #[error(
        "transaction entrypoint at byte {offset}: unknown entrypoint tag 0x{tag:02x} \
         (known: 0..=9 and 255 named)"
    )]
    BadEntrypointTag {
        /// The tag byte found.
        tag: u8,
        /// Where the tag is.
        offset: usize,
    },
    /// A proposals list whose byte length is not a multiple of 32.
    #[error(
        "proposals list at byte {offset}: length {len} is not a multiple of 32 (protocol hashes)"
    )]
    BadProposalsLength {
        /// The declared byte length.
        len: u32,
        /// Where the 4-byte length is.
        offset: usize,
    },
}

/// Decodes the operation tags of `contents` (everything after the 32-byte
/// branch of a `0x03` request) just far enough to find each operation's length,
/// and returns the kind of each operation, in order.
///
/// Decoded operations (octez "Operation encodings"): manager operations
/// `reveal` (107), `transaction` (108), `origination` (109), `delegation` (110),
/// each `tag(1) source pkh(21) fee N counter N gas_limit N storage_limit N`
/// followed by their own fields; `ballot` (6): `source pkh(21) period int32
/// proposal(32) ballot int8`; `proposals` (5): `source pkh(21) period int32`
/// then a 4-byte length (multiple of 32) and that many bytes.
///
/// A `reveal` may end with the optional BLS proof of newer protocols: a next
/// byte `0xff` is followed by a 96-byte proof, a next byte `0x00` is an absent
/// proof; any other next byte (or none) means the field is not there (older
/// protocols). `0x00` and `0xff` are never operation tags.
///
/// # Errors
///
/// Fails closed: empty contents ([`OperationError::Empty`]), any tag not listed
/// above or trailing bytes that do not start a decoded operation
/// ([`OperationError::UnknownTag`]), any field running past the end
/// ([`OperationError::Truncated`]), and malformed booleans, zarith naturals,
/// key, contract or entrypoint tags and proposals lengths.
pub fn operation_kinds(contents: &[u8]) -> Result<Vec<OperationKind>, OperationError> {
    if contents.is_empty() {
        return Err(OperationError::Empty);
    }
    let mut r = Reader::new(contents);
    let mut kinds = Vec::new();
    while !r.at_end() {
        kinds.push(one_operation(&mut r)?);
    }
    Ok(kinds)
}

/// Reads one operation starting at its tag; leaves the reader on the next one.
fn one_operation(r: &mut Reader<'_>) -> Result<OperationKind, OperationError> {
    let tag_offset = r.pos;
    let tag = r.u8("operation tag")?;
    match tag {
        TAG_REVEAL => {
            manager_header(r)?;
            r.public_key()?;
            match r.peek() {
                Some(0xff) => {
                    r.skip(1, "reveal proof presence")?;
                    r.skip(BLS_PROOF_LEN, "reveal BLS proof")?;
                }
                Some(0x00) => r.skip(1, "reveal proof presence")?,
                _ => {}
            }
            Ok(OperationKind::Reveal)
        }
        TAG_TRANSACTION => {
            manager_header(r)?;
            r.zarith_n("transaction amount")?;
            r.contract_id("transaction destination")?;
            if r.bool("transaction parameters presence")? {
                let kind = r.entrypoint()?;
                r.u32_length_prefixed("transaction parameters value")?;
                Ok(kind)
            } else {
                Ok(OperationKind::Transaction)
            }
        }
        TAG_ORIGINATION => {
            manager_header(r)?;
            r.zarith_n("origination balance")?;
            if r.bool("origination delegate presence")? {
                r.public_key_hash("origination delegate")?;
            }
            r.u32_length_prefixed("origination script code")?;
            r.u32_length_prefixed("origination script storage")?;
            Ok(OperationKind::Origination)
        }
        TAG_DELEGATION => {
            manager_header(r)?;
            if r.bool("delegation delegate presence")? {
                r.public_key_hash("delegation delegate")?;
            }
            Ok(OperationKind::Delegation)
        }
        TAG_BALLOT => {
            r.public_key_hash("ballot source")?;
            r.skip(4, "ballot period")?;
            r.skip(32, "ballot proposal")?;
            r.skip(1, "ballot vote")?;
            Ok(OperationKind::Ballot)
        }
        TAG_PROPOSALS => {
            r.public_key_hash("proposals source")?;
            r.skip(4, "proposals period")?;
            let len_offset = r.pos;
            let len = r.u32_be("proposals list length")?;
            if len % 32 != 0 {
                return Err(OperationError::BadProposalsLength {
                    len,
                    offset: len_offset,
                });
            }
            r.skip(len_to_usize(len), "proposals list")?;
            Ok(OperationKind::Proposals)
        }
        other => Err(OperationError::UnknownTag {
            tag: other,
            offset: tag_offset,
        }),
    }
}

/// `source pkh(21) fee N counter N gas_limit N storage_limit N`, common to
/// every manager operation (after its tag).
fn manager_header(r: &mut Reader<'_>) -> Result<(), OperationError> {
    r.public_key_hash("manager operation source")?;
    r.zarith_n("manager operation fee")?;
    r.zarith_n("manager operation counter")?;
    r.zarith_n("manager operation gas limit")?;
    r.zarith_n("manager operation storage limit")?;
    Ok(())
}

/// A `u32` length as `usize`, saturating on (hypothetical) 16-bit targets so the
/// following bounds check fails instead of wrapping.
fn len_to_usize(len: u32) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

/// Maps an entrypoint name to the staking kind it selects, if any.
fn kind_of_entrypoint_name(name: &[u8]) -> OperationKind {
    match name {
        b"stake" => OperationKind::Stake,
        b"unstake" => OperationKind::Unstake,
        b"finalize_unstake" => OperationKind::FinalizeUnstake,
        b"set_delegate_parameters" => OperationKind::SetDelegateParameters,
        _ => OperationKind::Transaction,
    }
}

/// Bounds-checked cursor over the contents.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], OperationError> {
        let truncated = OperationError::Truncated {
            what,
            offset: self.pos,
            need: n,
            got: self.remaining(),
        };
        let end = self.pos.checked_add(n).ok_or(truncated.clone())?;
        let slice = self.bytes.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), OperationError> {
        self.take(n, what).map(|_| ())
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, OperationError> {
        let b = self.peek().ok_or(OperationError::Truncated {
            what,
            offset: self.pos,
            need: 1,
            got: 0,
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn u32_be(&mut self, what: &'static str) -> Result<u32, OperationError> {
        let s = self.take(4, what)?;
        let mut b = [0u8; 4];
        b.copy_from_slice(s);
        Ok(u32::from_be_bytes(b))
    }

    /// A 4-byte big-endian length, then that many bytes (skipped).
    fn u32_length_prefixed(&mut self, what: &'static str) -> Result<(), OperationError> {
        let len = self.u32_be(what)?;
        self.skip(len_to_usize(len), what)
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, OperationError> {
        let offset = self.pos;
        match self.u8(what)? {
            0x00 => Ok(false),
            0xff => Ok(true),
            byte => Err(OperationError::BadBool { what, byte, offset }),
        }
    }

    /// Skips one zarith natural (`N`).
    fn zarith_n(&mut self, what: &'static str) -> Result<(), OperationError> {
        let offset = self.pos;
        for i in 0..MAX_ZARITH_BYTES {
            let b = self.u8(what)?;
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(OperationError::ZarithTrailingZero { what, offset });
                }
                return Ok(());
            }
        }
        Err(OperationError::ZarithTooLong { what, offset })
    }

    /// Skips a 21-byte public key hash, checking its tag.
    fn public_key_hash(&mut self, what: &'static str) -> Result<(), OperationError> {
        let offset = self.pos;
        let tag = self.u8(what)?;
        if tag > 3 {
            return Err(OperationError::BadPublicKeyHashTag { what, tag, offset });
        }
        self.skip(20, what)
    }

    /// Skips a tagged public key.
    fn public_key(&mut self) -> Result<(), OperationError> {
        let offset = self.pos;
        let tag = self.u8("reveal public key")?;
        let len = match tag {
            0 => 32,
            1 | 2 => 33,
            3 => 48,
            _ => return Err(OperationError::BadPublicKeyTag { tag, offset }),
        };
        self.skip(len, "reveal public key")
    }

    /// Skips a 22-byte contract id, checking its tag.
    fn contract_id(&mut self, what: &'static str) -> Result<(), OperationError> {
        let offset = self.pos;
        match self.u8(what)? {
            0 => self.public_key_hash(what),
            1 => self.skip(21, what),
            tag => Err(OperationError::BadContractTag { what, tag, offset }),
        }
    }

    /// Reads a transaction entrypoint and returns the kind it selects.
    fn entrypoint(&mut self) -> Result<OperationKind, OperationError> {
        let offset = self.pos;
        match self.u8("transaction entrypoint")? {
            0..=5 => Ok(OperationKind::Transaction),
            6 => Ok(OperationKind::Stake),
            7 => Ok(OperationKind::Unstake),
            8 => Ok(OperationKind::FinalizeUnstake),
            9 => Ok(OperationKind::SetDelegateParameters),
            255 => {
                let len = self.u8("transaction entrypoint name length")?;
                let name = self.take(usize::from(len), "transaction entrypoint name")?;
                Ok(kind_of_entrypoint_name(name))
            }
            tag => Err(OperationError::BadEntrypointTag { tag, offset }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small builder for hand-made operations in the binary encoding.
    #[derive(Default, Clone)]
    struct B(Vec<u8>);

    impl B {
        fn new() -> Self {
            B(Vec::new())
        }
        fn u8(mut self, b: u8) -> Self {
            self.0.push(b);
            self
        }
        fn bytes(mut self, b: &[u8]) -> Self {
            self.0.extend_from_slice(b);
            self
        }
        fn fill(self, n: usize, b: u8) -> Self {
            self.bytes(&vec![b; n])
        }
        fn u32(self, v: u32) -> Self {
            self.bytes(&v.to_be_bytes())
        }
        /// Zarith natural.
        fn n(mut self, mut v: u64) -> Self {
            loop {
                let low = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    self.0.push(low);
                    return self;
                }
                self.0.push(low | 0x80);
            }
        }
        fn pkh(self, tag: u8) -> Self {
            self.u8(tag).fill(20, 0xab)
        }
        fn pk(self, tag: u8) -> Self {
            let len = match tag {
                0 => 32,
                1 | 2 => 33,
                _ => 48,
            };
            self.u8(tag).fill(len, 0xcd)
        }
        fn implicit(self) -> Self {
            self.u8(0).pkh(0)
        }
        fn originated(self) -> Self {
            self.u8(1).fill(20, 0x11).u8(0)
        }
        /// Manager operation tag and common header.
        fn manager(self, tag: u8) -> Self {
            self.u8(tag).pkh(0).n(1_420).n(7_654_321).n(10_600).n(257)
        }
        fn reveal(self, pk_tag: u8) -> Self {
            self.manager(TAG_REVEAL).pk(pk_tag)
        }
        fn transfer(self, amount: u64) -> Self {
            self.manager(TAG_TRANSACTION).n(amount).implicit().u8(0x00)
        }
        fn call(self, entrypoint: &[u8], value: &[u8]) -> Self {
            self.manager(TAG_TRANSACTION)
                .n(0)
                .implicit()
                .u8(0xff)
                .bytes(entrypoint)
                .u32(value.len() as u32)
                .bytes(value)
        }
        fn done(self) -> Vec<u8> {
            self.0
        }
    }

    fn kinds(b: B) -> Result<Vec<OperationKind>, OperationError> {
        operation_kinds(&b.done())
    }

    const UNIT: &[u8] = &[0x03, 0x0b]; // Michelson `Unit`

    #[test]
    fn reveal_each_key_type_and_proof_forms() {
        for tag in 0..=3 {
            assert_eq!(kinds(B::new().reveal(tag)), Ok(vec![OperationKind::Reveal]));
        }
        // Absent proof.
        assert_eq!(
            kinds(B::new().reveal(3).u8(0x00)),
            Ok(vec![OperationKind::Reveal])
        );
        // Present 96-byte proof.
        assert_eq!(
            kinds(B::new().reveal(3).u8(0xff).fill(96, 7)),
            Ok(vec![OperationKind::Reveal])
        );
        // Present but short proof.
        assert!(matches!(
            kinds(B::new().reveal(3).u8(0xff).fill(95, 7)),
            Err(OperationError::Truncated { .. })
        ));
        // Bad key tag.
        assert!(matches!(
            kinds(B::new().manager(TAG_REVEAL).u8(4).fill(48, 0)),
            Err(OperationError::BadPublicKeyTag { tag: 4, .. })
        ));
    }

    #[test]
    fn transaction_without_and_with_parameters() {
        assert_eq!(
            kinds(B::new().transfer(1_000_000)),
            Ok(vec![OperationKind::Transaction])
        );
        assert_eq!(
            kinds(B::new().manager(TAG_TRANSACTION).n(5).originated().u8(0x00)),
            Ok(vec![OperationKind::Transaction])
        );
        for ep in 0u8..=5 {
            assert_eq!(
                kinds(B::new().call(&[ep], UNIT)),
                Ok(vec![OperationKind::Transaction]),
                "entrypoint tag {ep}"
            );
        }
        assert_eq!(
            kinds(B::new().call(&[255, 4, b'm', b'i', b'n', b't'], UNIT)),
            Ok(vec![OperationKind::Transaction])
        );
    }

    #[test]
    fn staking_entrypoints() {
        let cases = [
            (6u8, OperationKind::Stake),
            (7, OperationKind::Unstake),
            (8, OperationKind::FinalizeUnstake),
            (9, OperationKind::SetDelegateParameters),
        ];
        for (tag, kind) in cases {
            assert_eq!(kinds(B::new().call(&[tag], UNIT)), Ok(vec![kind]));
            // The same entrypoint spelled as a named entrypoint.
            let name = kind.as_str().as_bytes();
            let ep = B::new().u8(255).u8(name.len() as u8).bytes(name).done();
            assert_eq!(kinds(B::new().call(&ep, UNIT)), Ok(vec![kind]));
        }
        assert!(matches!(
            kinds(B::new().call(&[10], UNIT)),
            Err(OperationError::BadEntrypointTag { tag: 10, .. })
        ));
    }

    #[test]
    fn named_entrypoint_stake() {
        assert_eq!(
            kinds(B::new().call(b"\xff\x05stake", UNIT)),
            Ok(vec![OperationKind::Stake])
        );
        // Name runs past the end.
        assert!(matches!(
            kinds(
                B::new()
                    .manager(TAG_TRANSACTION)
                    .n(0)
                    .implicit()
                    .u8(0xff)
                    .bytes(b"\xff\x09stake")
            ),
            Err(OperationError::Truncated { .. })
        ));
    }

    #[test]
    fn origination_with_and_without_delegate() {
        let code = [0x02, 0, 0, 0, 0];
        let base = |delegate: bool| {
            let b = B::new().manager(TAG_ORIGINATION).n(2_000_000);
            let b = if delegate {
                b.u8(0xff).pkh(1)
            } else {
                b.u8(0x00)
            };
            b.u32(code.len() as u32)
                .bytes(&code)
                .u32(UNIT.len() as u32)
                .bytes(UNIT)
        };
        assert_eq!(kinds(base(false)), Ok(vec![OperationKind::Origination]));
        assert_eq!(kinds(base(true)), Ok(vec![OperationKind::Origination]));
        // Storage length pointing past the end.
        let mut v = base(false).done();
        v.truncate(v.len() - 1);
        assert!(matches!(
            operation_kinds(&v),
            Err(OperationError::Truncated { .. })
        ));
    }

    #[test]
    fn delegation_with_and_without_delegate() {
        assert_eq!(
            kinds(B::new().manager(TAG_DELEGATION).u8(0xff).pkh(0)),
            Ok(vec![OperationKind::Delegation])
        );
        assert_eq!(
            kinds(B::new().manager(TAG_DELEGATION).u8(0x00)),
            Ok(vec![OperationKind::Delegation])
        );
        assert!(matches!(
            kinds(B::new().manager(TAG_DELEGATION).u8(0xff).pkh(9)),
            Err(OperationError::BadPublicKeyHashTag { tag: 9, .. })
        ));
    }

    #[test]
    fn ballot_and_proposals() {
        assert_eq!(
            kinds(B::new().u8(TAG_BALLOT).pkh(0).u32(42).fill(32, 0x77).u8(0)),
            Ok(vec![OperationKind::Ballot])
        );
        assert_eq!(
            kinds(
                B::new()
                    .u8(TAG_PROPOSALS)
                    .pkh(2)
                    .u32(42)
                    .u32(64)
                    .fill(64, 0x55)
            ),
            Ok(vec![OperationKind::Proposals])
        );
        assert_eq!(
            kinds(
                B::new()
                    .u8(TAG_PROPOSALS)
                    .pkh(2)
                    .u32(42)
                    .u32(33)
                    .fill(33, 0x55)
            ),
            Err(OperationError::BadProposalsLength {
                len: 33,
                offset: 26
            })
        );
        assert!(matches!(
            kinds(
                B::new()
                    .u8(TAG_PROPOSALS)
                    .pkh(2)
                    .u32(42)
                    .u32(64)
                    .fill(32, 0x55)
            ),
            Err(OperationError::Truncated { .. })
        ));
        // A huge declared length must not overflow or panic.
        assert!(matches!(
            kinds(B::new().u8(TAG_PROPOSALS).pkh(2).u32(42).u32(0xffff_ffe0)),
            Err(OperationError::Truncated { .. })
        ));
    }

    #[test]
    fn batch_reveal_then_transaction() {
        // Older encoding: no proof option after the public key.
        assert_eq!(
            kinds(B::new().reveal(0).transfer(12)),
            Ok(vec![OperationKind::Reveal, OperationKind::Transaction])
        );
        // Newer encoding: absent proof, then a staking call.
        assert_eq!(
            kinds(B::new().reveal(0).u8(0x00).call(&[6], UNIT)),
            Ok(vec![OperationKind::Reveal, OperationKind::Stake])
        );
        // BLS reveal with proof, then a delegation.
        assert_eq!(
            kinds(
                B::new()
                    .reveal(3)
                    .u8(0xff)
                    .fill(96, 1)
                    .manager(TAG_DELEGATION)
                    .u8(0x00)
            ),
            Ok(vec![OperationKind::Reveal, OperationKind::Delegation])
        );
    }

    #[test]
    fn unknown_tag_is_refused_and_named() {
        for tag in [
            0u8, 1, 2, 3, 4, 7, 17, 20, 21, 111, 112, 113, 114, 158, 230, 255,
        ] {
            let err = operation_kinds(&[tag, 0, 0, 0]).unwrap_err();
            assert_eq!(err, OperationError::UnknownTag { tag, offset: 0 });
            let msg = err.to_string();
            assert!(msg.contains(&format!("0x{tag:02x}")), "{msg}");
            assert!(msg.contains("refused"), "{msg}");
        }
    }

    #[test]
    fn empty_is_refused() {
        assert_eq!(operation_kinds(&[]), Err(OperationError::Empty));
    }

    #[test]
    fn every_truncation_is_refused() {
        let full = B::new()
            .reveal(1)
            .u8(0x00)
            .call(b"\xff\x05stake", UNIT)
            .done();
        assert!(operation_kinds(&full).is_ok());
        for len in 1..full.len() {
            let prefix = full.get(..len).unwrap_or_default();
            // The reveal alone (with or without its proof byte) is a valid batch.
            let reveal_len = 1 + 21 + 2 + 4 + 2 + 2 + 34;
            if len == reveal_len || len == reveal_len + 1 {
                assert!(operation_kinds(prefix).is_ok(), "len {len}");
            } else {
                assert!(operation_kinds(prefix).is_err(), "len {len}");
            }
        }
    }

    #[test]
    fn trailing_garbage_is_refused() {
        let mut v = B::new().transfer(1).done();
        v.push(0x42);
        assert_eq!(
            operation_kinds(&v),
            Err(OperationError::UnknownTag {
                tag: 0x42,
                offset: v.len() - 1
            })
        );
        let mut v = B::new().manager(TAG_DELEGATION).u8(0x00).done();
        v.extend_from_slice(&[TAG_TRANSACTION, 0]);
        assert!(matches!(
            operation_kinds(&v),
            Err(OperationError::Truncated { .. })
        ));
    }

    #[test]
    fn bad_bool_byte_is_refused() {
        let v = B::new()
            .manager(TAG_TRANSACTION)
            .n(1)
            .implicit()
            .u8(0x01)
            .done();
        assert!(matches!(
            operation_kinds(&v),
            Err(OperationError::BadBool { byte: 0x01, .. })
        ));
        let v = B::new().manager(TAG_DELEGATION).u8(0x7f).pkh(0).done();
        let err = operation_kinds(&v).unwrap_err();
        assert!(err.to_string().contains("0x7f"), "{err}");
    }

    #[test]
    fn zarith_limits() {
        // Ten bytes is the maximum accepted.
        let ten = B::new()
            .u8(TAG_DELEGATION)
            .pkh(0)
            .fill(9, 0x80)
            .u8(0x01)
            .n(0)
            .n(0)
            .n(0)
            .u8(0x00)
            .done();
        assert_eq!(operation_kinds(&ten), Ok(vec![OperationKind::Delegation]));
        // Eleven bytes is refused.
        let eleven = B::new()
            .u8(TAG_DELEGATION)
            .pkh(0)
            .fill(10, 0x80)
            .u8(0x01)
            .n(0)
            .n(0)
            .n(0)
            .u8(0x00)
            .done();
        assert_eq!(
            operation_kinds(&eleven),
            Err(OperationError::ZarithTooLong {
                what: "manager operation fee",
                offset: 22
            })
        );
        // Non-canonical trailing zero.
        let tz = B::new().u8(TAG_DELEGATION).pkh(0).u8(0x80).u8(0x00).done();
        assert!(matches!(
            operation_kinds(&tz),
            Err(OperationError::ZarithTrailingZero { .. })
        ));
        // Runs off the end.
        let open = B::new().u8(TAG_DELEGATION).pkh(0).u8(0x80).done();
        assert!(matches!(
            operation_kinds(&open),
            Err(OperationError::Truncated { .. })
        ));
    }

    #[test]
    fn bad_contract_and_pkh_tags() {
        let v = B::new()
            .manager(TAG_TRANSACTION)
            .n(1)
            .u8(2)
            .fill(21, 0)
            .u8(0)
            .done();
        assert!(matches!(
            operation_kinds(&v),
            Err(OperationError::BadContractTag { tag: 2, .. })
        ));
        let v = B::new()
            .u8(TAG_BALLOT)
            .pkh(4)
            .u32(1)
            .fill(32, 0)
            .u8(0)
            .done();
        assert!(matches!(
            operation_kinds(&v),
            Err(OperationError::BadPublicKeyHashTag {
                tag: 4,
                offset: 1,
                ..
            })
        ));
    }

    #[test]
    fn kind_names_round_trip() {
        for k in OperationKind::ALL {
            assert_eq!(k.as_str().parse::<OperationKind>(), Ok(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        assert_eq!(OperationKind::FinalizeUnstake.as_str(), "finalize_unstake");
        let err = "transfer".parse::<OperationKind>().unwrap_err();
        assert!(err.to_string().contains("\"transfer\""));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let tags = [
            TAG_REVEAL,
            TAG_TRANSACTION,
            TAG_ORIGINATION,
            TAG_DELEGATION,
            TAG_BALLOT,
            TAG_PROPOSALS,
        ];
        for i in 0..30_000u32 {
            let len = (next() % 200) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Steer most inputs into a known operation so deeper fields are reached.
            if let Some(first) = v.first_mut()
                && i % 4 != 0
            {
                *first = tags[(next() % tags.len() as u64) as usize];
            }
            let _ = operation_kinds(&v);
        }
    }

    #[test]
    fn mutated_valid_batches_never_panic() {
        let samples: Vec<Vec<u8>> = vec![
            B::new().reveal(3).u8(0xff).fill(96, 1).transfer(5).done(),
            B::new()
                .call(b"\xff\x05stake", UNIT)
                .call(&[7], UNIT)
                .done(),
            B::new()
                .manager(TAG_ORIGINATION)
                .n(1)
                .u8(0xff)
                .pkh(2)
                .u32(1)
                .u8(0)
                .u32(2)
                .bytes(UNIT)
                .manager(TAG_DELEGATION)
                .u8(0x00)
                .done(),
            B::new()
                .u8(TAG_BALLOT)
                .pkh(0)
                .u32(3)
                .fill(32, 9)
                .u8(1)
                .u8(TAG_PROPOSALS)
                .pkh(1)
                .u32(3)
                .u32(32)
                .fill(32, 8)
                .done(),
        ];
        for s in &samples {
            assert!(operation_kinds(s).is_ok());
        }
        let mut x: u64 = 0xdead_beef_cafe_f00d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..30_000 {
            let mut v = samples[(next() % samples.len() as u64) as usize].clone();
            for _ in 0..=(next() % 3) {
                let i = (next() % v.len() as u64) as usize;
                if let Some(b) = v.get_mut(i) {
                    *b = next() as u8;
                }
            }
            let cut = (next() % (v.len() as u64 + 1)) as usize;
            v.truncate(cut);
            let _ = operation_kinds(&v);
        }
    }
}
