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
//! Staking pseudo-operations (`stake`, `unstake`, `finalize_unstake`,
//! `set_delegate_parameters`) are not operations of their own in Tezos: they are
//! transactions (tag 108) to an implicit account with that entrypoint, and the
//! protocol applies them as staking only on the conditions of octez's
//! `apply_manager_operation` (`Transaction { destination = Implicit pkh; … }`):
//! `stake`, `unstake` and `set_delegate_parameters` fail unless the destination
//! is the source (`Invalid_self_transaction_destination`), `stake` fails with a
//! zero amount, `finalize_unstake` with a non-zero one, and the first three need
//! a `Unit` parameter. Here a transaction is a staking kind only when all of
//! these hold *and* its source is the signing key's own account
//! ([`Transaction::staking_kind`]): a call named `stake` to a KT1 contract, to
//! another account, or by another account is a plain
//! [`OperationKind::Transaction`], with its amount and destination. (octez lets
//! anyone finalize another account's unstaked funds; palisade is stricter and
//! counts only the key's own `finalize_unstake` as staking.)
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
/// Staking pseudo-operations are transactions (tag 108) by the signing key's own
/// account to itself with the entrypoint `stake`, `unstake`, `finalize_unstake`
/// or `set_delegate_parameters` (see the module docs for the exact conditions);
/// they get their own kind so that policy can allow them separately. Any other
/// transaction, whatever its entrypoint is called, is [`OperationKind::Transaction`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationKind {
    /// `transaction` (tag 108) that is not one of the staking kinds below.
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
    /// `stake`: the key's own account calls itself at entrypoint `stake` with
    /// `Unit` and a non-zero amount (mutez moved from its spendable to its staked
    /// balance).
    Stake,
    /// `unstake`: the key's own account calls itself at entrypoint `unstake` with
    /// `Unit` (the amount is the stake to withdraw, not a transfer).
    Unstake,
    /// `finalize_unstake`: the key's own account calls itself at entrypoint
    /// `finalize_unstake` with `Unit` and amount 0.
    FinalizeUnstake,
    /// `set_delegate_parameters`: the key's own account calls itself at entrypoint
    /// `set_delegate_parameters` with amount 0 (the parameter, `Pair int int
    /// Unit`, is type-checked by the protocol, not here).
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

/// The Michelson `Unit` in the binary (Micheline) encoding: a primitive without
/// arguments or annotations (node tag 3) whose primitive is `Unit` (11).
pub const MICHELSON_UNIT: [u8; 2] = [0x03, 0x0b];

/// A contract id: where a transaction goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contract {
    /// An implicit account (`tz1…`–`tz4…`): its 21-byte public key hash, tag
    /// byte (0 ed25519, 1 secp256k1, 2 p256, 3 bls) then the 20-byte hash.
    Implicit([u8; 21]),
    /// An originated contract (`KT1…`): its 20-byte hash.
    Originated([u8; 20]),
}

/// A transaction's entrypoint: one of the ten with a tag of their own (0..=9),
/// or another name (tag 255). A name spelled out with tag 255 that equals one of
/// the ten is that entrypoint, as in octez (`Entrypoint_repr`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entrypoint {
    /// `default` (tag 0; also a transaction without parameters).
    Default,
    /// `root` (tag 1).
    Root,
    /// `do` (tag 2).
    Do,
    /// `set_delegate` (tag 3).
    SetDelegate,
    /// `remove_delegate` (tag 4).
    RemoveDelegate,
    /// `deposit` (tag 5).
    Deposit,
    /// `stake` (tag 6).
    Stake,
    /// `unstake` (tag 7).
    Unstake,
    /// `finalize_unstake` (tag 8).
    FinalizeUnstake,
    /// `set_delegate_parameters` (tag 9).
    SetDelegateParameters,
    /// Any other name (tag 255): its bytes as given (at most 255).
    Named(Vec<u8>),
}

impl Entrypoint {
    /// The entrypoint a tag-255 name designates.
    pub fn from_name(name: &[u8]) -> Entrypoint {
        match name {
            b"default" => Entrypoint::Default,
            b"root" => Entrypoint::Root,
            b"do" => Entrypoint::Do,
            b"set_delegate" => Entrypoint::SetDelegate,
            b"remove_delegate" => Entrypoint::RemoveDelegate,
            b"deposit" => Entrypoint::Deposit,
            b"stake" => Entrypoint::Stake,
            b"unstake" => Entrypoint::Unstake,
            b"finalize_unstake" => Entrypoint::FinalizeUnstake,
            b"set_delegate_parameters" => Entrypoint::SetDelegateParameters,
            other => Entrypoint::Named(other.to_vec()),
        }
    }
}

/// The fields of a `transaction` (tag 108) that decide its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transaction {
    /// The manager operation's source: a 21-byte public key hash.
    pub source: [u8; 21],
    /// The amount, in mutez (a zarith natural of at most 70 bits).
    pub amount: u128,
    /// The destination.
    pub destination: Contract,
    /// The entrypoint ([`Entrypoint::Default`] when there are no parameters).
    pub entrypoint: Entrypoint,
    /// Whether the parameter is exactly [`MICHELSON_UNIT`] (true without parameters).
    pub unit_parameter: bool,
}

impl Transaction {
    /// The staking kind this transaction is when `signer` (the 21-byte public key
    /// hash of the key asked to sign it) signs it, or `None` when it is a plain
    /// transaction.
    ///
    /// It is staking only when the source is `signer`, the destination is the
    /// source's own implicit account, and the entrypoint's own conditions of the
    /// protocol hold (see the module docs): `stake` with `Unit` and a non-zero
    /// amount, `unstake` with `Unit`, `finalize_unstake` with `Unit` and amount 0,
    /// `set_delegate_parameters` with amount 0.
    pub fn staking_kind(&self, signer: &[u8; 21]) -> Option<OperationKind> {
        if self.source != *signer || self.destination != Contract::Implicit(self.source) {
            return None;
        }
        match self.entrypoint {
            Entrypoint::Stake if self.unit_parameter && self.amount > 0 => {
                Some(OperationKind::Stake)
            }
            Entrypoint::Unstake if self.unit_parameter => Some(OperationKind::Unstake),
            Entrypoint::FinalizeUnstake if self.unit_parameter && self.amount == 0 => {
                Some(OperationKind::FinalizeUnstake)
            }
            Entrypoint::SetDelegateParameters if self.amount == 0 => {
                Some(OperationKind::SetDelegateParameters)
            }
            _ => None,
        }
    }
}

/// One decoded operation of a generic request: its tag, and for transactions
/// the fields that decide whether it is a staking pseudo-operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `reveal` (tag 107).
    Reveal,
    /// `transaction` (tag 108).
    Transaction(Transaction),
    /// `origination` (tag 109).
    Origination,
    /// `delegation` (tag 110).
    Delegation,
    /// `ballot` (tag 6).
    Ballot,
    /// `proposals` (tag 5).
    Proposals,
}

impl Operation {
    /// The kind policy sees when the key whose 21-byte public key hash is `signer`
    /// signs this operation; with `None` (signer unknown) no transaction is a
    /// staking kind.
    pub fn kind(&self, signer: Option<&[u8; 21]>) -> OperationKind {
        match self {
            Operation::Reveal => OperationKind::Reveal,
            Operation::Transaction(t) => signer
                .and_then(|s| t.staking_kind(s))
                .unwrap_or(OperationKind::Transaction),
            Operation::Origination => OperationKind::Origination,
            Operation::Delegation => OperationKind::Delegation,
            Operation::Ballot => OperationKind::Ballot,
            Operation::Proposals => OperationKind::Proposals,
        }
    }
}

/// Decodes `contents` (everything after the 32-byte branch of a `0x03` request)
/// just far enough to find each operation's length, and returns each operation,
/// in order (transactions with their source, amount, destination, entrypoint and
/// whether the parameter is `Unit`).
///
/// Decoded operations (octez "Operation encodings"): manager operations
/// `reveal` (107), `transaction` (108), `origination` (109), `delegation` (110),
/// each `tag(1) source pkh(21) fee N counter N gas_limit N storage_limit N`
/// followed by their own fields (a transaction: `amount N destination
/// contract_id(22) parameters option(entrypoint, u32-length-prefixed value)`);
/// `ballot` (6): `source pkh(21) period int32 proposal(32) ballot int8`;
/// `proposals` (5): `source pkh(21) period int32` then a 4-byte length
/// (multiple of 32) and that many bytes.
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
pub fn decode_operations(contents: &[u8]) -> Result<Vec<Operation>, OperationError> {
    if contents.is_empty() {
        return Err(OperationError::Empty);
    }
    let mut r = Reader::new(contents);
    let mut ops = Vec::new();
    while !r.at_end() {
        ops.push(one_operation(&mut r)?);
    }
    Ok(ops)
}

/// The kind of each operation of `contents` when the key whose 21-byte public
/// key hash is `signer` signs it ([`Operation::kind`]), in order.
///
/// # Errors
///
/// As [`decode_operations`].
pub fn operation_kinds_for(
    contents: &[u8],
    signer: &[u8; 21],
) -> Result<Vec<OperationKind>, OperationError> {
    Ok(decode_operations(contents)?
        .iter()
        .map(|op| op.kind(Some(signer)))
        .collect())
}

/// The kind of each operation of `contents` for a signer that is none of the
/// operations' sources: every transaction is [`OperationKind::Transaction`]
/// (fail closed: without the signer, nothing is staking). Policy uses
/// [`operation_kinds_for`].
///
/// # Errors
///
/// As [`decode_operations`].
pub fn operation_kinds(contents: &[u8]) -> Result<Vec<OperationKind>, OperationError> {
    Ok(decode_operations(contents)?
        .iter()
        .map(|op| op.kind(None))
        .collect())
}

/// Reads one operation starting at its tag; leaves the reader on the next one.
fn one_operation(r: &mut Reader<'_>) -> Result<Operation, OperationError> {
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
            Ok(Operation::Reveal)
        }
        TAG_TRANSACTION => {
            let source = manager_header(r)?;
            let amount = r.zarith_n("transaction amount")?;
            let destination = r.contract_id("transaction destination")?;
            let (entrypoint, unit_parameter) = if r.bool("transaction parameters presence")? {
                let entrypoint = r.entrypoint()?;
                let value = r.u32_length_prefixed("transaction parameters value")?;
                (entrypoint, value == MICHELSON_UNIT)
            } else {
                (Entrypoint::Default, true)
            };
            Ok(Operation::Transaction(Transaction {
                source,
                amount,
                destination,
                entrypoint,
                unit_parameter,
            }))
        }
        TAG_ORIGINATION => {
            manager_header(r)?;
            r.zarith_n("origination balance")?;
            if r.bool("origination delegate presence")? {
                r.public_key_hash("origination delegate")?;
            }
            r.u32_length_prefixed("origination script code")?;
            r.u32_length_prefixed("origination script storage")?;
            Ok(Operation::Origination)
        }
        TAG_DELEGATION => {
            manager_header(r)?;
            if r.bool("delegation delegate presence")? {
                r.public_key_hash("delegation delegate")?;
            }
            Ok(Operation::Delegation)
        }
        TAG_BALLOT => {
            r.public_key_hash("ballot source")?;
            r.skip(4, "ballot period")?;
            r.skip(32, "ballot proposal")?;
            r.skip(1, "ballot vote")?;
            Ok(Operation::Ballot)
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
            Ok(Operation::Proposals)
        }
        other => Err(OperationError::UnknownTag {
            tag: other,
            offset: tag_offset,
        }),
    }
}

/// `source pkh(21) fee N counter N gas_limit N storage_limit N`, common to
/// every manager operation (after its tag); returns the source.
fn manager_header(r: &mut Reader<'_>) -> Result<[u8; 21], OperationError> {
    let source = r.public_key_hash("manager operation source")?;
    r.zarith_n("manager operation fee")?;
    r.zarith_n("manager operation counter")?;
    r.zarith_n("manager operation gas limit")?;
    r.zarith_n("manager operation storage limit")?;
    Ok(source)
}

/// A `u32` length as `usize`, saturating on (hypothetical) 16-bit targets so the
/// following bounds check fails instead of wrapping.
fn len_to_usize(len: u32) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
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

    /// A 4-byte big-endian length, then that many bytes (returned).
    fn u32_length_prefixed(&mut self, what: &'static str) -> Result<&'a [u8], OperationError> {
        let len = self.u32_be(what)?;
        self.take(len_to_usize(len), what)
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, OperationError> {
        let offset = self.pos;
        match self.u8(what)? {
            0x00 => Ok(false),
            0xff => Ok(true),
            byte => Err(OperationError::BadBool { what, byte, offset }),
        }
    }

    /// Reads one zarith natural (`N`): at most [`MAX_ZARITH_BYTES`] bytes, so at
    /// most 70 bits.
    fn zarith_n(&mut self, what: &'static str) -> Result<u128, OperationError> {
        let offset = self.pos;
        let mut value: u128 = 0;
        for i in 0..MAX_ZARITH_BYTES {
            let b = self.u8(what)?;
            value |= u128::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(OperationError::ZarithTrailingZero { what, offset });
                }
                return Ok(value);
            }
        }
        Err(OperationError::ZarithTooLong { what, offset })
    }

    /// Reads a 21-byte public key hash, checking its tag.
    fn public_key_hash(&mut self, what: &'static str) -> Result<[u8; 21], OperationError> {
        let offset = self.pos;
        let tag = self.u8(what)?;
        if tag > 3 {
            return Err(OperationError::BadPublicKeyHashTag { what, tag, offset });
        }
        let mut pkh = [0u8; 21];
        pkh[0] = tag;
        pkh[1..].copy_from_slice(self.take(20, what)?);
        Ok(pkh)
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

    /// Reads a 22-byte contract id, checking its tag (an originated contract's
    /// padding byte is not checked).
    fn contract_id(&mut self, what: &'static str) -> Result<Contract, OperationError> {
        let offset = self.pos;
        match self.u8(what)? {
            0 => self.public_key_hash(what).map(Contract::Implicit),
            1 => {
                let mut hash = [0u8; 20];
                hash.copy_from_slice(self.take(20, what)?);
                self.skip(1, what)?;
                Ok(Contract::Originated(hash))
            }
            tag => Err(OperationError::BadContractTag { what, tag, offset }),
        }
    }

    /// Reads a transaction entrypoint.
    fn entrypoint(&mut self) -> Result<Entrypoint, OperationError> {
        let offset = self.pos;
        match self.u8("transaction entrypoint")? {
            0 => Ok(Entrypoint::Default),
            1 => Ok(Entrypoint::Root),
            2 => Ok(Entrypoint::Do),
            3 => Ok(Entrypoint::SetDelegate),
            4 => Ok(Entrypoint::RemoveDelegate),
            5 => Ok(Entrypoint::Deposit),
            6 => Ok(Entrypoint::Stake),
            7 => Ok(Entrypoint::Unstake),
            8 => Ok(Entrypoint::FinalizeUnstake),
            9 => Ok(Entrypoint::SetDelegateParameters),
            255 => {
                let len = self.u8("transaction entrypoint name length")?;
                let name = self.take(usize::from(len), "transaction entrypoint name")?;
                Ok(Entrypoint::from_name(name))
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
        /// A transaction from `source` (a 21-byte pkh) of `amount` to `dest` (a
        /// 22-byte contract id) calling `entrypoint` (its encoded bytes) with `value`.
        fn tx(
            self,
            source: &[u8; 21],
            amount: u64,
            dest: &[u8],
            entrypoint: &[u8],
            value: &[u8],
        ) -> Self {
            self.u8(TAG_TRANSACTION)
                .bytes(source)
                .n(1_420)
                .n(7_654_321)
                .n(10_600)
                .n(257)
                .n(amount)
                .bytes(dest)
                .u8(0xff)
                .bytes(entrypoint)
                .u32(value.len() as u32)
                .bytes(value)
        }
        fn done(self) -> Vec<u8> {
            self.0
        }
    }

    /// The source and destination the builder uses: tag 0 (ed25519), hash 0xab….
    const ME: [u8; 21] = {
        let mut pkh = [0xab; 21];
        pkh[0] = 0;
        pkh
    };

    /// Kinds as the key [`ME`] (the builder's source) sees them.
    fn kinds(b: B) -> Result<Vec<OperationKind>, OperationError> {
        operation_kinds_for(&b.done(), &ME)
    }

    /// `ME`'s implicit account as a contract id.
    fn implicit_of(pkh: &[u8; 21]) -> Vec<u8> {
        let mut c = vec![0u8];
        c.extend_from_slice(pkh);
        c
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

    /// `Pair 0 (Pair 0 Unit)`-like parameter of `set_delegate_parameters` (not `Unit`).
    const PAIR: &[u8] = &[0x07, 0x07, 0x00, 0x00, 0x07, 0x07, 0x00, 0x00, 0x03, 0x0b];

    #[test]
    fn staking_entrypoints_of_the_keys_own_account() {
        let me = implicit_of(&ME);
        // (entrypoint tag, amount, parameter, kind)
        let cases: [(u8, u64, &[u8], OperationKind); 4] = [
            (6, 1_000_000, UNIT, OperationKind::Stake),
            (7, 1_000_000, UNIT, OperationKind::Unstake),
            (8, 0, UNIT, OperationKind::FinalizeUnstake),
            (9, 0, PAIR, OperationKind::SetDelegateParameters),
        ];
        for (tag, amount, value, kind) in cases {
            let call = |ep: &[u8]| B::new().tx(&ME, amount, &me, ep, value);
            assert_eq!(kinds(call(&[tag])), Ok(vec![kind]), "{kind}");
            // The same entrypoint spelled as a named entrypoint.
            let name = kind.as_str().as_bytes();
            let ep = B::new().u8(255).u8(name.len() as u8).bytes(name).done();
            assert_eq!(kinds(call(&ep)), Ok(vec![kind]), "named {kind}");
            // Without knowing the signer, or for another signer, it is a transaction.
            assert_eq!(
                operation_kinds(&call(&[tag]).done()),
                Ok(vec![OperationKind::Transaction]),
                "{kind} without a signer"
            );
            let mut other = ME;
            other[20] ^= 1;
            assert_eq!(
                operation_kinds_for(&call(&[tag]).done(), &other),
                Ok(vec![OperationKind::Transaction]),
                "{kind} signed by another key"
            );
        }
        assert!(matches!(
            kinds(B::new().call(&[10], UNIT)),
            Err(OperationError::BadEntrypointTag { tag: 10, .. })
        ));
    }

    #[test]
    fn staking_names_elsewhere_are_transactions() {
        let me = implicit_of(&ME);
        let mut other = ME;
        other[5] ^= 0x40;
        let other_account = implicit_of(&other);
        // The same hash under another curve's tag is another account.
        let mut other_curve = ME;
        other_curve[0] = 1;
        let kt1 = B::new().u8(1).fill(20, 0x11).u8(0).done();
        let tez = 1_000_000_000_000u64;
        for tag in 6u8..=9 {
            for (what, b) in [
                ("to a KT1", B::new().tx(&ME, tez, &kt1, &[tag], UNIT)),
                (
                    "to another tz1",
                    B::new().tx(&ME, tez, &other_account, &[tag], UNIT),
                ),
                (
                    "to the same hash under another curve",
                    B::new().tx(&ME, tez, &implicit_of(&other_curve), &[tag], UNIT),
                ),
                (
                    "another account's self-call",
                    B::new().tx(&other, tez, &other_account, &[tag], UNIT),
                ),
                (
                    "to a KT1, zero amount",
                    B::new().tx(&ME, 0, &kt1, &[tag], UNIT),
                ),
            ] {
                assert_eq!(
                    kinds(b),
                    Ok(vec![OperationKind::Transaction]),
                    "entrypoint {tag} {what}"
                );
            }
        }
        let named_stake = b"\xff\x05stake";
        for (what, b) in [
            ("stake of zero", B::new().tx(&ME, 0, &me, &[6], UNIT)),
            (
                "stake with a non-Unit parameter",
                B::new().tx(&ME, 5, &me, &[6], PAIR),
            ),
            (
                "named stake to a KT1",
                B::new().tx(&ME, tez, &kt1, named_stake, UNIT),
            ),
            (
                "unstake with a non-Unit parameter",
                B::new().tx(&ME, 5, &me, &[7], PAIR),
            ),
            (
                "finalize_unstake with an amount",
                B::new().tx(&ME, 1, &me, &[8], UNIT),
            ),
            (
                "finalize_unstake, non-Unit",
                B::new().tx(&ME, 0, &me, &[8], PAIR),
            ),
            (
                "set_delegate_parameters with an amount",
                B::new().tx(&ME, 1, &me, &[9], PAIR),
            ),
            ("a self-transfer", B::new().tx(&ME, tez, &me, &[0], UNIT)),
            (
                "a self-call at another name",
                B::new().tx(&ME, tez, &me, b"\xff\x06stake_", UNIT),
            ),
        ] {
            assert_eq!(kinds(b), Ok(vec![OperationKind::Transaction]), "{what}");
        }
    }

    #[test]
    fn transaction_fields_are_decoded() {
        let me = implicit_of(&ME);
        let kt1 = B::new().u8(1).fill(20, 0x11).u8(0).done();
        let max = (1u64 << 63) - 1; // the largest mutez amount (int64)
        let ops = decode_operations(
            &B::new()
                .tx(&ME, max, &kt1, b"\xff\x04mint", UNIT)
                .tx(&ME, 1, &me, &[7], PAIR)
                .manager(TAG_TRANSACTION)
                .n(3)
                .implicit()
                .u8(0x00)
                .done(),
        )
        .unwrap();
        assert_eq!(
            ops,
            vec![
                Operation::Transaction(Transaction {
                    source: ME,
                    amount: u128::from(max),
                    destination: Contract::Originated([0x11; 20]),
                    entrypoint: Entrypoint::Named(b"mint".to_vec()),
                    unit_parameter: true,
                }),
                Operation::Transaction(Transaction {
                    source: ME,
                    amount: 1,
                    destination: Contract::Implicit(ME),
                    entrypoint: Entrypoint::Unstake,
                    unit_parameter: false,
                }),
                Operation::Transaction(Transaction {
                    source: ME,
                    amount: 3,
                    destination: Contract::Implicit(ME),
                    entrypoint: Entrypoint::Default,
                    unit_parameter: true,
                }),
            ]
        );
        // Ten zarith bytes: 70 bits.
        let v = B::new()
            .manager(TAG_TRANSACTION)
            .fill(9, 0xff)
            .u8(0x7f)
            .implicit()
            .u8(0x00)
            .done();
        match decode_operations(&v).unwrap().as_slice() {
            [Operation::Transaction(t)] => assert_eq!(t.amount, (1u128 << 70) - 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(Entrypoint::from_name(b"default"), Entrypoint::Default);
        assert_eq!(Entrypoint::from_name(b"stake"), Entrypoint::Stake);
    }

    #[test]
    fn named_entrypoint_stake() {
        let me = implicit_of(&ME);
        assert_eq!(
            kinds(B::new().tx(&ME, 10, &me, b"\xff\x05stake", UNIT)),
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
            kinds(
                B::new()
                    .reveal(0)
                    .u8(0x00)
                    .tx(&ME, 7, &implicit_of(&ME), &[6], UNIT)
            ),
            Ok(vec![OperationKind::Reveal, OperationKind::Stake])
        );
        // A staking call to itself batched with a transfer dressed as staking.
        assert_eq!(
            kinds(
                B::new()
                    .tx(&ME, 7, &implicit_of(&ME), &[6], UNIT)
                    .call(&[6], UNIT)
            ),
            Ok(vec![OperationKind::Stake, OperationKind::Transaction])
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
            let _ = operation_kinds_for(&v, &ME);
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
