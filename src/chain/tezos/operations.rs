//! Operation kinds inside a generic (magic byte `0x03`) signing request, for policy.
//!
//! A generic request is `0x03 || branch (32 bytes) || contents`, where `contents`
//! is a sequence of operations in the Tezos protocol binary encoding (octez
//! `operation.unsigned`). This module decodes every operation of the current
//! protocol (025 PsUshuai; proto_alpha has the same encoding) that can appear in
//! such a request, completely and length-correctly, so that every operation of a
//! batch is classified, and exposes what policy needs: the kind, and where they
//! exist the source, destination, amount and delegate ([`Operation`]). It does
//! not check signatures, counters, balances or scripts.
//!
//! Layouts are octez's, at commit `d26a8bef82159434e5a6db6a6d329f29dc8172dd` of
//! `tezos/tezos-mirror`, in `src/proto_025_PsUshuai/lib_protocol/`:
//! `operation_repr.ml` (tags and contents encodings) and the `*_repr.ml` files
//! of each field (named at each operation in [`decode_operations`]).
//!
//! It fails closed: an operation tag it does not know ([`OperationError::UnknownTag`]),
//! a consensus operation inside a generic request ([`OperationError::Consensus`]:
//! consensus operations are signed under magic `0x12`/`0x13` and read by offsets
//! in [`super::payload`], never here), a zk-rollup operation
//! ([`OperationError::Unsupported`]), a length that runs past the end, a
//! malformed field (boolean, zarith, key, contract or union tag, list length) or
//! trailing bytes that do not form an operation give an [`OperationError`].
//! [`decode_operations_allowing_unknown`] is the one exception, for a policy that
//! names `unknown`: an unknown tag then ends the decoding as an
//! [`Operation::Unknown`] that stands for everything from that tag to the end.
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
//! - zarith integer `Z` (`increase_paid_storage` amount): as `N`, except that the
//!   first byte carries only 6 bits of value and bit `0x40` is the sign; at most
//!   10 bytes; non-canonical forms (a trailing zero byte, minus zero) are refused.
//! - public key hash: 21 bytes, tag `0` ed25519, `1` secp256k1, `2` p256,
//!   `3` bls, `4` ml-dsa-44 (tz5), then a 20-byte hash.
//! - public key: tag `0` ed25519 + 32 bytes, `1` secp256k1 + 33, `2` p256 + 33,
//!   `3` bls + 48, `4` ml-dsa-44 + 1312.
//! - contract id: 22 bytes, tag `0` implicit + 21-byte public key hash, or tag `1`
//!   originated + 20-byte hash + 1 padding byte.
//! - boolean / option presence: one byte, `0x00` false/absent, `0xff`
//!   true/present; any other byte is refused.
//! - bytes, strings, Michelson expressions, lists and `dynamic_size` fields: a
//!   4-byte length, then that many bytes.

use std::fmt;
use std::str::FromStr;

/// Operation tag of `seed_nonce_revelation` (anonymous).
pub const TAG_SEED_NONCE_REVELATION: u8 = 1;
/// Operation tag of `double_consensus_operation_evidence` (anonymous).
pub const TAG_DOUBLE_CONSENSUS_OPERATION_EVIDENCE: u8 = 2;
/// Operation tag of `double_baking_evidence` (anonymous).
pub const TAG_DOUBLE_BAKING_EVIDENCE: u8 = 3;
/// Operation tag of `activate_account` (anonymous).
pub const TAG_ACTIVATE_ACCOUNT: u8 = 4;
/// Operation tag of `proposals` (governance).
pub const TAG_PROPOSALS: u8 = 5;
/// Operation tag of `ballot` (governance).
pub const TAG_BALLOT: u8 = 6;
/// Operation tag of `vdf_revelation` (anonymous).
pub const TAG_VDF_REVELATION: u8 = 8;
/// Operation tag of `drain_delegate` (anonymous, signed by the consensus key).
pub const TAG_DRAIN_DELEGATE: u8 = 9;
/// Operation tag of `failing_noop` (never valid on chain).
pub const TAG_FAILING_NOOP: u8 = 17;
/// Operation tag of `dal_entrapment_evidence` (anonymous).
pub const TAG_DAL_ENTRAPMENT_EVIDENCE: u8 = 24;
/// Operation tag of `reveal` (manager operation).
pub const TAG_REVEAL: u8 = 107;
/// Operation tag of `transaction` (manager operation).
pub const TAG_TRANSACTION: u8 = 108;
/// Operation tag of `origination` (manager operation).
pub const TAG_ORIGINATION: u8 = 109;
/// Operation tag of `delegation` (manager operation).
pub const TAG_DELEGATION: u8 = 110;
/// Operation tag of `register_global_constant` (manager operation).
pub const TAG_REGISTER_GLOBAL_CONSTANT: u8 = 111;
/// Operation tag of `set_deposits_limit` (manager operation).
pub const TAG_SET_DEPOSITS_LIMIT: u8 = 112;
/// Operation tag of `increase_paid_storage` (manager operation).
pub const TAG_INCREASE_PAID_STORAGE: u8 = 113;
/// Operation tag of `update_consensus_key` (manager operation).
pub const TAG_UPDATE_CONSENSUS_KEY: u8 = 114;
/// Operation tag of `update_companion_key` (manager operation).
pub const TAG_UPDATE_COMPANION_KEY: u8 = 115;
/// Operation tag of `transfer_ticket` (manager operation).
pub const TAG_TRANSFER_TICKET: u8 = 158;
/// Operation tag of `smart_rollup_originate` (manager operation).
pub const TAG_SMART_ROLLUP_ORIGINATE: u8 = 200;
/// Operation tag of `smart_rollup_add_messages` (manager operation).
pub const TAG_SMART_ROLLUP_ADD_MESSAGES: u8 = 201;
/// Operation tag of `smart_rollup_cement` (manager operation).
pub const TAG_SMART_ROLLUP_CEMENT: u8 = 202;
/// Operation tag of `smart_rollup_publish` (manager operation).
pub const TAG_SMART_ROLLUP_PUBLISH: u8 = 203;
/// Operation tag of `smart_rollup_refute` (manager operation).
pub const TAG_SMART_ROLLUP_REFUTE: u8 = 204;
/// Operation tag of `smart_rollup_timeout` (manager operation).
pub const TAG_SMART_ROLLUP_TIMEOUT: u8 = 205;
/// Operation tag of `smart_rollup_execute_outbox_message` (manager operation).
pub const TAG_SMART_ROLLUP_EXECUTE_OUTBOX_MESSAGE: u8 = 206;
/// Operation tag of `smart_rollup_recover_bond` (manager operation).
pub const TAG_SMART_ROLLUP_RECOVER_BOND: u8 = 207;
/// Operation tag of `dal_publish_commitment` (manager operation).
pub const TAG_DAL_PUBLISH_COMMITMENT: u8 = 230;

/// Consensus operation tags (preattestation 20, attestation 21,
/// attestation_with_dal 23, preattestations_aggregate 30, attestations_aggregate
/// 31, bls_mode_preattestation 40, bls_mode_attestation 41): refused inside a
/// generic request ([`OperationError::Consensus`]).
pub const CONSENSUS_TAGS: [u8; 7] = [20, 21, 23, 30, 31, 40, 41];

/// zk-rollup operation tags (zk_rollup_origination 250, zk_rollup_publish 251,
/// zk_rollup_update 252): behind a feature flag that is off on mainnet, not
/// decoded, refused ([`OperationError::Unsupported`]).
pub const ZK_ROLLUP_TAGS: [u8; 3] = [250, 251, 252];

/// Most bytes a zarith number may take here (70 bits of a natural, 69 of an integer).
pub const MAX_ZARITH_BYTES: usize = 10;

/// Length of a BLS proof of possession (a BLS signature, `Bls.encoding`).
const BLS_PROOF_LEN: usize = 96;

/// Length of an ML-DSA-44 public key (`src/lib_ml_dsa/ml_dsa_44.ml`, `verification_key_size`).
const ML_DSA_44_PUBLIC_KEY_LEN: usize = 1312;

/// Most bytes of a smart-rollup reveal raw-data proof (`Constants_repr.sc_rollup_message_size_limit`).
const SC_ROLLUP_MESSAGE_SIZE_LIMIT: usize = 4096;

/// Kind of one operation of a generic (`0x03`) request, as policy sees it: the
/// name is octez's operation kind name ([`OperationKind::as_str`]).
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
    /// `register_global_constant` (tag 111).
    RegisterGlobalConstant,
    /// `set_deposits_limit` (tag 112; always fails on chain since automated staking).
    SetDepositsLimit,
    /// `increase_paid_storage` (tag 113).
    IncreasePaidStorage,
    /// `update_consensus_key` (tag 114).
    UpdateConsensusKey,
    /// `update_companion_key` (tag 115).
    UpdateCompanionKey,
    /// `transfer_ticket` (tag 158).
    TransferTicket,
    /// `smart_rollup_originate` (tag 200).
    SmartRollupOriginate,
    /// `smart_rollup_add_messages` (tag 201).
    SmartRollupAddMessages,
    /// `smart_rollup_cement` (tag 202).
    SmartRollupCement,
    /// `smart_rollup_publish` (tag 203).
    SmartRollupPublish,
    /// `smart_rollup_refute` (tag 204).
    SmartRollupRefute,
    /// `smart_rollup_timeout` (tag 205).
    SmartRollupTimeout,
    /// `smart_rollup_execute_outbox_message` (tag 206).
    SmartRollupExecuteOutboxMessage,
    /// `smart_rollup_recover_bond` (tag 207).
    SmartRollupRecoverBond,
    /// `dal_publish_commitment` (tag 230).
    DalPublishCommitment,
    /// `drain_delegate` (tag 9), signed by the delegate's consensus key.
    DrainDelegate,
    /// `failing_noop` (tag 17): arbitrary bytes, never valid on chain.
    FailingNoop,
    /// `seed_nonce_revelation` (tag 1).
    SeedNonceRevelation,
    /// `vdf_revelation` (tag 8).
    VdfRevelation,
    /// `activate_account` (tag 4).
    ActivateAccount,
    /// `double_consensus_operation_evidence` (tag 2).
    DoubleConsensusOperationEvidence,
    /// `double_baking_evidence` (tag 3).
    DoubleBakingEvidence,
    /// `dal_entrapment_evidence` (tag 24).
    DalEntrapmentEvidence,
    /// An operation tag palisade does not decode, and everything after it
    /// ([`Operation::Unknown`]); only from [`decode_operations_allowing_unknown`].
    Unknown,
}

impl OperationKind {
    /// Every kind, in declaration order.
    pub const ALL: [OperationKind; 34] = [
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
        OperationKind::RegisterGlobalConstant,
        OperationKind::SetDepositsLimit,
        OperationKind::IncreasePaidStorage,
        OperationKind::UpdateConsensusKey,
        OperationKind::UpdateCompanionKey,
        OperationKind::TransferTicket,
        OperationKind::SmartRollupOriginate,
        OperationKind::SmartRollupAddMessages,
        OperationKind::SmartRollupCement,
        OperationKind::SmartRollupPublish,
        OperationKind::SmartRollupRefute,
        OperationKind::SmartRollupTimeout,
        OperationKind::SmartRollupExecuteOutboxMessage,
        OperationKind::SmartRollupRecoverBond,
        OperationKind::DalPublishCommitment,
        OperationKind::DrainDelegate,
        OperationKind::FailingNoop,
        OperationKind::SeedNonceRevelation,
        OperationKind::VdfRevelation,
        OperationKind::ActivateAccount,
        OperationKind::DoubleConsensusOperationEvidence,
        OperationKind::DoubleBakingEvidence,
        OperationKind::DalEntrapmentEvidence,
        OperationKind::Unknown,
    ];

    /// The kinds a key's policy allows when it does not list `operations`: the ten
    /// kinds palisade decoded before it decoded every operation, so that an
    /// upgrade never widens what an existing key config allows. Every other kind
    /// must be named in `policy.operations`.
    pub const DEFAULT: [OperationKind; 10] = [
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

    /// The `snake_case` name used in configuration and logs (e.g. `"finalize_unstake"`):
    /// octez's kind name, or a staking entrypoint's name, or `unknown`.
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
            OperationKind::RegisterGlobalConstant => "register_global_constant",
            OperationKind::SetDepositsLimit => "set_deposits_limit",
            OperationKind::IncreasePaidStorage => "increase_paid_storage",
            OperationKind::UpdateConsensusKey => "update_consensus_key",
            OperationKind::UpdateCompanionKey => "update_companion_key",
            OperationKind::TransferTicket => "transfer_ticket",
            OperationKind::SmartRollupOriginate => "smart_rollup_originate",
            OperationKind::SmartRollupAddMessages => "smart_rollup_add_messages",
            OperationKind::SmartRollupCement => "smart_rollup_cement",
            OperationKind::SmartRollupPublish => "smart_rollup_publish",
            OperationKind::SmartRollupRefute => "smart_rollup_refute",
            OperationKind::SmartRollupTimeout => "smart_rollup_timeout",
            OperationKind::SmartRollupExecuteOutboxMessage => "smart_rollup_execute_outbox_message",
            OperationKind::SmartRollupRecoverBond => "smart_rollup_recover_bond",
            OperationKind::DalPublishCommitment => "dal_publish_commitment",
            OperationKind::DrainDelegate => "drain_delegate",
            OperationKind::FailingNoop => "failing_noop",
            OperationKind::SeedNonceRevelation => "seed_nonce_revelation",
            OperationKind::VdfRevelation => "vdf_revelation",
            OperationKind::ActivateAccount => "activate_account",
            OperationKind::DoubleConsensusOperationEvidence => {
                "double_consensus_operation_evidence"
            }
            OperationKind::DoubleBakingEvidence => "double_baking_evidence",
            OperationKind::DalEntrapmentEvidence => "dal_entrapment_evidence",
            OperationKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`OperationKind::as_str`]'s names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOperationKind(pub String);

impl fmt::Display for UnknownOperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown operation kind {:?}; expected one of ", self.0)?;
        for (i, k) in OperationKind::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(k.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownOperationKind {}

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

/// octez's name of a consensus or zk-rollup operation tag, for refusals.
fn refused_tag_name(tag: u8) -> &'static str {
    match tag {
        20 => "preattestation",
        21 => "attestation",
        23 => "attestation_with_dal",
        30 => "preattestations_aggregate",
        31 => "attestations_aggregate",
        40 => "bls_mode_preattestation",
        41 => "bls_mode_attestation",
        250 => "zk_rollup_origination",
        251 => "zk_rollup_publish",
        252 => "zk_rollup_update",
        _ => "unknown",
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
    /// A consensus operation ([`CONSENSUS_TAGS`]) inside a generic request.
    #[error(
        "operation tag 0x{tag:02x} ({}) at byte {offset} is a consensus operation; consensus \
         operations are signed as preattestations (0x12) or attestations (0x13), not inside a \
         generic (0x03) request; refused",
        refused_tag_name(*tag)
    )]
    Consensus {
        /// The operation tag byte.
        tag: u8,
        /// Where the tag is.
        offset: usize,
    },
    /// A zk-rollup operation ([`ZK_ROLLUP_TAGS`]), not decoded.
    #[error(
        "operation tag 0x{tag:02x} ({}) at byte {offset} is a zk-rollup operation (disabled on \
         mainnet), which palisade does not decode; refused",
        refused_tag_name(*tag)
    )]
    Unsupported {
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
    /// A zarith number longer than [`MAX_ZARITH_BYTES`] bytes.
    #[error("{what} at byte {offset}: zarith number is longer than {MAX_ZARITH_BYTES} bytes")]
    ZarithTooLong {
        /// The field being read.
        what: &'static str,
        /// Where the number starts.
        offset: usize,
    },
    /// A zarith number whose last byte is `0x00` after other bytes, or minus zero.
    #[error("{what} at byte {offset}: zarith number is not canonical (trailing zero byte or -0)")]
    ZarithTrailingZero {
        /// The field being read.
        what: &'static str,
        /// Where the number starts.
        offset: usize,
    },
    /// A public key hash tag other than 0..=4.
    #[error(
        "{what} at byte {offset}: unknown public key hash tag 0x{tag:02x} \
         (known: 0 ed25519, 1 secp256k1, 2 p256, 3 bls, 4 ml-dsa-44)"
    )]
    BadPublicKeyHashTag {
        /// The field being read.
        what: &'static str,
        /// The tag byte found.
        tag: u8,
        /// Where the tag is.
        offset: usize,
    },
    /// A public key tag other than 0..=4.
    #[error(
        "public key at byte {offset}: unknown public key tag 0x{tag:02x} \
         (known: 0 ed25519, 1 secp256k1, 2 p256, 3 bls, 4 ml-dsa-44)"
    )]
    BadPublicKeyTag {
        /// The tag byte found.
        tag: u8,
        /// Where the tag is.
        offset: usize,
    },
    /// A contract id tag other than 0 (implicit) or 1 (originated), or not 1
    /// where only an originated contract may be.
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
    /// Any other malformed field: a union tag out of range, a list whose length
    /// is not a whole number of elements, a zero where octez wants a positive
    /// number, a BLS proof that is not 96 bytes.
    #[error("{what} at byte {offset}: {reason}; refused")]
    Malformed {
        /// The field being read.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
        /// Where the field starts.
        offset: usize,
    },
}

/// The Michelson `Unit` in the binary (Micheline) encoding: a primitive without
/// arguments or annotations (node tag 3) whose primitive is `Unit` (11).
pub const MICHELSON_UNIT: [u8; 2] = [0x03, 0x0b];

/// A contract id: where a transaction goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contract {
    /// An implicit account (`tz1…`–`tz5…`): its 21-byte public key hash, tag
    /// byte (0 ed25519, 1 secp256k1, 2 p256, 3 bls, 4 ml-dsa-44) then the 20-byte hash.
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

/// What policy sees of an operation other than a transaction: its kind and, where
/// the operation has them, its source, destination, amount and delegate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fields {
    /// The kind (never [`OperationKind::Transaction`], a staking kind or
    /// [`OperationKind::Unknown`]).
    pub kind: OperationKind,
    /// Who the operation acts for: a manager operation's source, a ballot's or
    /// proposals' source, a `drain_delegate`'s consensus key (which signs it).
    pub source: Option<[u8; 21]>,
    /// Where value goes: `increase_paid_storage`'s contract, `transfer_ticket`'s
    /// destination, `drain_delegate`'s destination account.
    pub destination: Option<Contract>,
    /// The amount: an origination's balance (mutez), a `set_deposits_limit`'s
    /// limit (mutez; `None` removes it), `increase_paid_storage`'s bytes (a signed
    /// zarith in octez), `transfer_ticket`'s ticket amount.
    pub amount: Option<i128>,
    /// The delegate: a delegation's or origination's (`None` when it has none), a
    /// `drain_delegate`'s delegate.
    pub delegate: Option<[u8; 21]>,
}

impl Fields {
    fn new(kind: OperationKind) -> Self {
        Fields {
            kind,
            source: None,
            destination: None,
            amount: None,
            delegate: None,
        }
    }

    fn source(mut self, source: [u8; 21]) -> Self {
        self.source = Some(source);
        self
    }
}

/// One decoded operation of a generic request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `transaction` (tag 108), with what decides whether it is staking.
    Transaction(Transaction),
    /// Any other decoded operation.
    Other(Fields),
    /// An operation tag palisade does not decode, at byte `offset` of the
    /// contents; it stands for everything from there to the end (the operations
    /// after it, if any, cannot be told apart). Only from
    /// [`decode_operations_allowing_unknown`].
    Unknown {
        /// The tag byte.
        tag: u8,
        /// Where it is.
        offset: usize,
    },
}

impl Operation {
    /// The kind policy sees when the key whose 21-byte public key hash is `signer`
    /// signs this operation; with `None` (signer unknown) no transaction is a
    /// staking kind.
    pub fn kind(&self, signer: Option<&[u8; 21]>) -> OperationKind {
        match self {
            Operation::Transaction(t) => signer
                .and_then(|s| t.staking_kind(s))
                .unwrap_or(OperationKind::Transaction),
            Operation::Other(f) => f.kind,
            Operation::Unknown { .. } => OperationKind::Unknown,
        }
    }

    /// The source ([`Fields::source`]; a transaction's source).
    pub fn source(&self) -> Option<[u8; 21]> {
        match self {
            Operation::Transaction(t) => Some(t.source),
            Operation::Other(f) => f.source,
            Operation::Unknown { .. } => None,
        }
    }

    /// The destination ([`Fields::destination`]; a transaction's destination).
    pub fn destination(&self) -> Option<Contract> {
        match self {
            Operation::Transaction(t) => Some(t.destination),
            Operation::Other(f) => f.destination,
            Operation::Unknown { .. } => None,
        }
    }

    /// The amount ([`Fields::amount`]; a transaction's amount in mutez).
    pub fn amount(&self) -> Option<i128> {
        match self {
            Operation::Transaction(t) => i128::try_from(t.amount).ok(),
            Operation::Other(f) => f.amount,
            Operation::Unknown { .. } => None,
        }
    }

    /// The delegate ([`Fields::delegate`]).
    pub fn delegate(&self) -> Option<[u8; 21]> {
        match self {
            Operation::Other(f) => f.delegate,
            _ => None,
        }
    }
}

/// Decodes `contents` (everything after the 32-byte branch of a `0x03` request)
/// completely, and returns each operation, in order.
///
/// Decoded operations, with their layout after the tag (octez
/// `src/proto_025_PsUshuai/lib_protocol/operation_repr.ml` unless named):
///
/// - manager operations: `source pkh(21) fee N counter N gas_limit N
///   storage_limit N`, then:
///   - `reveal` (107): public key, optional BLS proof;
///   - `transaction` (108): `amount N destination contract_id(22) parameters
///     option(entrypoint, u32-length-prefixed value)`;
///   - `origination` (109): `balance N delegate option(pkh) code expr storage expr`;
///   - `delegation` (110): `delegate option(pkh)`;
///   - `register_global_constant` (111): `value expr`;
///   - `set_deposits_limit` (112): `limit option(N)`;
///   - `increase_paid_storage` (113): `amount Z destination originated
///     contract_id(22)`;
///   - `update_consensus_key` (114), `update_companion_key` (115): public key,
///     optional BLS proof;
///   - `transfer_ticket` (158): `contents expr ty expr ticketer contract_id
///     amount N(>0) destination contract_id entrypoint string`;
///   - `smart_rollup_originate` (200): `pvm_kind uint8(0..=2) kernel bytes
///     parameters_ty expr whitelist option(list pkh)` (`sc_rollups.ml`,
///     `sc_rollup_whitelist_repr.ml`);
///   - `smart_rollup_add_messages` (201): `list(bytes)`;
///   - `smart_rollup_cement` (202): `rollup(20)`;
///   - `smart_rollup_publish` (203): `rollup(20) state(32) inbox_level int32
///     predecessor(32) ticks int64` (`sc_rollup_commitment_repr.ml`);
///   - `smart_rollup_refute` (204): `rollup(20) opponent pkh refutation`
///     (`sc_rollup_game_repr.ml`, `sc_rollup_proof_repr.ml`, see [`refutation`]);
///   - `smart_rollup_timeout` (205): `rollup(20) alice pkh bob pkh`;
///   - `smart_rollup_execute_outbox_message` (206): `rollup(20)
///     commitment(32) output_proof bytes`;
///   - `smart_rollup_recover_bond` (207): `rollup(20) staker pkh`;
///   - `dal_publish_commitment` (230): `slot_index uint8 commitment(48)
///     proof(96)` (`dal_operations_repr.ml`);
/// - `seed_nonce_revelation` (1): `level int32 nonce(32)`;
/// - `double_consensus_operation_evidence` (2): `slot uint16 op1 op2`, each
///   operation a `dynamic_size` field;
/// - `double_baking_evidence` (3): `bh1 bh2`, each a `dynamic_size` block header;
/// - `activate_account` (4): `ed25519 hash(20) secret(20)`;
/// - `proposals` (5): `source pkh period int32` then a 4-byte length (multiple
///   of 32) and that many bytes;
/// - `ballot` (6): `source pkh period int32 proposal(32) ballot int8`;
/// - `vdf_revelation` (8): `result(100) proof(100)` (`seed_repr.ml`);
/// - `drain_delegate` (9): `consensus_key pkh delegate pkh destination pkh`;
/// - `failing_noop` (17): `bytes`;
/// - `dal_entrapment_evidence` (24): `attestation dynamic_size slot uint16
///   slot_index uint8 lag_index option(uint8) shard_index int31 shares
///   list(32-byte scalars) proof(48)` (`dal_slot_repr.ml`, `cryptobox.ml`).
///
/// The inlined operations of the evidence kinds and the block headers of
/// `double_baking_evidence` are taken whole by their length prefix, not decoded.
///
/// A public key (reveal, update_*_key) may be followed by the optional BLS proof
/// of newer protocols: a next byte `0xff` is followed by a 4-byte length that
/// must be 96 and the 96-byte proof, a next byte `0x00` is an absent proof; any
/// other next byte (or none) means the field is not there (older protocols).
/// `0x00` and `0xff` are never operation tags.
///
/// # Errors
///
/// Fails closed: empty contents ([`OperationError::Empty`]), any tag not listed
/// above or trailing bytes that do not start a decoded operation
/// ([`OperationError::UnknownTag`]), consensus operations
/// ([`OperationError::Consensus`]), zk-rollup operations
/// ([`OperationError::Unsupported`]), any field running past the end
/// ([`OperationError::Truncated`]), and malformed booleans, zarith numbers,
/// key, contract, entrypoint or union tags and list lengths.
pub fn decode_operations(contents: &[u8]) -> Result<Vec<Operation>, OperationError> {
    decode(contents, false)
}

/// As [`decode_operations`], except that an operation tag this module does not
/// decode (an [`OperationError::UnknownTag`] where an operation starts) ends the
/// decoding with an [`Operation::Unknown`] standing for it and everything after
/// it. Consensus and zk-rollup tags, and malformed known operations, are still
/// refused. For a policy that names `unknown`.
///
/// # Errors
///
/// As [`decode_operations`], but never [`OperationError::UnknownTag`].
pub fn decode_operations_allowing_unknown(
    contents: &[u8],
) -> Result<Vec<Operation>, OperationError> {
    decode(contents, true)
}

fn decode(contents: &[u8], allow_unknown: bool) -> Result<Vec<Operation>, OperationError> {
    if contents.is_empty() {
        return Err(OperationError::Empty);
    }
    let mut r = Reader::new(contents);
    let mut ops = Vec::new();
    while !r.at_end() {
        let start = r.pos;
        match one_operation(&mut r) {
            Ok(op) => ops.push(op),
            Err(OperationError::UnknownTag { tag, offset }) if allow_unknown && offset == start => {
                ops.push(Operation::Unknown { tag, offset });
                break;
            }
            Err(e) => return Err(e),
        }
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
    let fields = match tag {
        TAG_TRANSACTION => return transaction(r).map(Operation::Transaction),
        TAG_REVEAL..=TAG_UPDATE_COMPANION_KEY
        | TAG_TRANSFER_TICKET
        | TAG_SMART_ROLLUP_ORIGINATE..=TAG_SMART_ROLLUP_RECOVER_BOND
        | TAG_DAL_PUBLISH_COMMITMENT => manager_operation(r, tag)?,
        TAG_SEED_NONCE_REVELATION => {
            r.skip(4, "seed_nonce_revelation level")?;
            r.skip(32, "seed_nonce_revelation nonce")?;
            Fields::new(OperationKind::SeedNonceRevelation)
        }
        TAG_DOUBLE_CONSENSUS_OPERATION_EVIDENCE => {
            r.skip(2, "double_consensus_operation_evidence slot")?;
            r.u32_length_prefixed("double_consensus_operation_evidence op1")?;
            r.u32_length_prefixed("double_consensus_operation_evidence op2")?;
            Fields::new(OperationKind::DoubleConsensusOperationEvidence)
        }
        TAG_DOUBLE_BAKING_EVIDENCE => {
            r.u32_length_prefixed("double_baking_evidence bh1")?;
            r.u32_length_prefixed("double_baking_evidence bh2")?;
            Fields::new(OperationKind::DoubleBakingEvidence)
        }
        TAG_ACTIVATE_ACCOUNT => {
            r.skip(20, "activate_account ed25519 public key hash")?;
            r.skip(20, "activate_account activation code")?;
            Fields::new(OperationKind::ActivateAccount)
        }
        TAG_BALLOT => {
            let source = r.public_key_hash("ballot source")?;
            r.skip(4, "ballot period")?;
            r.skip(32, "ballot proposal")?;
            r.skip(1, "ballot vote")?;
            Fields::new(OperationKind::Ballot).source(source)
        }
        TAG_PROPOSALS => {
            let source = r.public_key_hash("proposals source")?;
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
            Fields::new(OperationKind::Proposals).source(source)
        }
        TAG_VDF_REVELATION => {
            r.skip(100, "vdf_revelation result")?;
            r.skip(100, "vdf_revelation proof")?;
            Fields::new(OperationKind::VdfRevelation)
        }
        TAG_DRAIN_DELEGATE => {
            let consensus_key = r.public_key_hash("drain_delegate consensus key")?;
            let delegate = r.public_key_hash("drain_delegate delegate")?;
            let destination = r.public_key_hash("drain_delegate destination")?;
            Fields {
                kind: OperationKind::DrainDelegate,
                source: Some(consensus_key),
                destination: Some(Contract::Implicit(destination)),
                amount: None,
                delegate: Some(delegate),
            }
        }
        TAG_FAILING_NOOP => {
            r.u32_length_prefixed("failing_noop bytes")?;
            Fields::new(OperationKind::FailingNoop)
        }
        TAG_DAL_ENTRAPMENT_EVIDENCE => {
            r.u32_length_prefixed("dal_entrapment_evidence attestation")?;
            r.skip(2, "dal_entrapment_evidence consensus slot")?;
            r.skip(1, "dal_entrapment_evidence slot index")?;
            if r.bool("dal_entrapment_evidence lag index presence")? {
                r.skip(1, "dal_entrapment_evidence lag index")?;
            }
            r.int31("dal_entrapment_evidence shard index")?;
            r.list_of_fixed("dal_entrapment_evidence shard shares", 32)?;
            r.skip(48, "dal_entrapment_evidence shard proof")?;
            Fields::new(OperationKind::DalEntrapmentEvidence)
        }
        t if CONSENSUS_TAGS.contains(&t) => {
            return Err(OperationError::Consensus {
                tag: t,
                offset: tag_offset,
            });
        }
        t if ZK_ROLLUP_TAGS.contains(&t) => {
            return Err(OperationError::Unsupported {
                tag: t,
                offset: tag_offset,
            });
        }
        other => {
            return Err(OperationError::UnknownTag {
                tag: other,
                offset: tag_offset,
            });
        }
    };
    Ok(Operation::Other(fields))
}

/// A `transaction` (108) after its tag.
fn transaction(r: &mut Reader<'_>) -> Result<Transaction, OperationError> {
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
    Ok(Transaction {
        source,
        amount,
        destination,
        entrypoint,
        unit_parameter,
    })
}

/// A manager operation other than a transaction, after its tag.
fn manager_operation(r: &mut Reader<'_>, tag: u8) -> Result<Fields, OperationError> {
    let source = manager_header(r)?;
    let fields = match tag {
        TAG_REVEAL => {
            r.public_key("reveal public key")?;
            r.optional_bls_proof("reveal proof")?;
            Fields::new(OperationKind::Reveal)
        }
        TAG_ORIGINATION => {
            let balance = r.zarith_n("origination balance")?;
            let delegate = if r.bool("origination delegate presence")? {
                Some(r.public_key_hash("origination delegate")?)
            } else {
                None
            };
            r.u32_length_prefixed("origination script code")?;
            r.u32_length_prefixed("origination script storage")?;
            Fields {
                amount: Some(n_to_i128(balance)),
                delegate,
                ..Fields::new(OperationKind::Origination)
            }
        }
        TAG_DELEGATION => {
            let delegate = if r.bool("delegation delegate presence")? {
                Some(r.public_key_hash("delegation delegate")?)
            } else {
                None
            };
            Fields {
                delegate,
                ..Fields::new(OperationKind::Delegation)
            }
        }
        TAG_REGISTER_GLOBAL_CONSTANT => {
            r.u32_length_prefixed("register_global_constant value")?;
            Fields::new(OperationKind::RegisterGlobalConstant)
        }
        TAG_SET_DEPOSITS_LIMIT => {
            let limit = if r.bool("set_deposits_limit limit presence")? {
                Some(n_to_i128(r.zarith_n("set_deposits_limit limit")?))
            } else {
                None
            };
            Fields {
                amount: limit,
                ..Fields::new(OperationKind::SetDepositsLimit)
            }
        }
        TAG_INCREASE_PAID_STORAGE => {
            // `Data_encoding.z` in octez (Taquito wrongly forges it as a natural:
            // the two agree below 64 only).
            let amount = r.zarith_z("increase_paid_storage amount")?;
            let offset = r.pos;
            let destination = r.contract_id("increase_paid_storage destination")?;
            if !matches!(destination, Contract::Originated(_)) {
                // `Contract_repr.originated_encoding`: only tag 1.
                return Err(OperationError::BadContractTag {
                    what: "increase_paid_storage destination (originated only)",
                    tag: 0,
                    offset,
                });
            }
            Fields {
                destination: Some(destination),
                amount: Some(amount),
                ..Fields::new(OperationKind::IncreasePaidStorage)
            }
        }
        TAG_UPDATE_CONSENSUS_KEY => {
            r.public_key("update_consensus_key public key")?;
            r.optional_bls_proof("update_consensus_key proof")?;
            Fields::new(OperationKind::UpdateConsensusKey)
        }
        TAG_UPDATE_COMPANION_KEY => {
            r.public_key("update_companion_key public key")?;
            r.optional_bls_proof("update_companion_key proof")?;
            Fields::new(OperationKind::UpdateCompanionKey)
        }
        TAG_TRANSFER_TICKET => {
            r.u32_length_prefixed("transfer_ticket contents")?;
            r.u32_length_prefixed("transfer_ticket type")?;
            r.contract_id("transfer_ticket ticketer")?;
            let offset = r.pos;
            let amount = r.zarith_n("transfer_ticket amount")?;
            if amount == 0 {
                // `Ticket_amount.encoding`: a positive natural.
                return Err(OperationError::Malformed {
                    what: "transfer_ticket amount",
                    reason: "a ticket amount must be positive, got 0".into(),
                    offset,
                });
            }
            let destination = r.contract_id("transfer_ticket destination")?;
            r.u32_length_prefixed("transfer_ticket entrypoint")?;
            Fields {
                destination: Some(destination),
                amount: Some(n_to_i128(amount)),
                ..Fields::new(OperationKind::TransferTicket)
            }
        }
        TAG_SMART_ROLLUP_ORIGINATE => {
            // `Sc_rollups.Kind.encoding`: string_enum arith, wasm_2_0_0, riscv.
            let offset = r.pos;
            let pvm = r.u8("smart_rollup_originate pvm kind")?;
            if pvm > 2 {
                return Err(OperationError::Malformed {
                    what: "smart_rollup_originate pvm kind",
                    reason: format!(
                        "unknown PVM kind {pvm} (known: 0 arith, 1 wasm_2_0_0, 2 riscv)"
                    ),
                    offset,
                });
            }
            r.u32_length_prefixed("smart_rollup_originate kernel")?;
            r.u32_length_prefixed("smart_rollup_originate parameters type")?;
            if r.bool("smart_rollup_originate whitelist presence")? {
                let list = r.u32_length_prefixed("smart_rollup_originate whitelist")?;
                let base = r.offset() - list.len();
                let mut sub = Reader::at(list, base);
                while !sub.at_end() {
                    sub.public_key_hash("smart_rollup_originate whitelist entry")?;
                }
            }
            Fields::new(OperationKind::SmartRollupOriginate)
        }
        TAG_SMART_ROLLUP_ADD_MESSAGES => {
            let list = r.u32_length_prefixed("smart_rollup_add_messages messages")?;
            let base = r.offset() - list.len();
            let mut sub = Reader::at(list, base);
            while !sub.at_end() {
                sub.u32_length_prefixed("smart_rollup_add_messages message")?;
            }
            Fields::new(OperationKind::SmartRollupAddMessages)
        }
        TAG_SMART_ROLLUP_CEMENT => {
            r.skip(20, "smart_rollup_cement rollup")?;
            Fields::new(OperationKind::SmartRollupCement)
        }
        TAG_SMART_ROLLUP_PUBLISH => {
            r.skip(20, "smart_rollup_publish rollup")?;
            r.skip(32, "smart_rollup_publish compressed state")?;
            r.skip(4, "smart_rollup_publish inbox level")?;
            r.skip(32, "smart_rollup_publish predecessor")?;
            r.skip(8, "smart_rollup_publish number of ticks")?;
            Fields::new(OperationKind::SmartRollupPublish)
        }
        TAG_SMART_ROLLUP_REFUTE => {
            r.skip(20, "smart_rollup_refute rollup")?;
            r.public_key_hash("smart_rollup_refute opponent")?;
            refutation(r)?;
            Fields::new(OperationKind::SmartRollupRefute)
        }
        TAG_SMART_ROLLUP_TIMEOUT => {
            r.skip(20, "smart_rollup_timeout rollup")?;
            r.public_key_hash("smart_rollup_timeout alice")?;
            r.public_key_hash("smart_rollup_timeout bob")?;
            Fields::new(OperationKind::SmartRollupTimeout)
        }
        TAG_SMART_ROLLUP_EXECUTE_OUTBOX_MESSAGE => {
            r.skip(20, "smart_rollup_execute_outbox_message rollup")?;
            r.skip(
                32,
                "smart_rollup_execute_outbox_message cemented commitment",
            )?;
            r.u32_length_prefixed("smart_rollup_execute_outbox_message output proof")?;
            Fields::new(OperationKind::SmartRollupExecuteOutboxMessage)
        }
        TAG_SMART_ROLLUP_RECOVER_BOND => {
            r.skip(20, "smart_rollup_recover_bond rollup")?;
            r.public_key_hash("smart_rollup_recover_bond staker")?;
            Fields::new(OperationKind::SmartRollupRecoverBond)
        }
        TAG_DAL_PUBLISH_COMMITMENT => {
            r.skip(1, "dal_publish_commitment slot index")?;
            r.skip(48, "dal_publish_commitment commitment")?;
            r.skip(96, "dal_publish_commitment commitment proof")?;
            Fields::new(OperationKind::DalPublishCommitment)
        }
        _ => unreachable!("manager_operation is called for manager tags only"),
    };
    Ok(fields.source(source))
}

/// The `refutation` of a `smart_rollup_refute` (`sc_rollup_game_repr.ml`,
/// `refutation_encoding`), a `uint8`-tagged union:
///
/// - `0` start: `player_commitment_hash(32) opponent_commitment_hash(32)`;
/// - `1` move: `choice N` (a tick, `sc_rollup_tick_repr.ml`) then a step,
///   `uint8`-tagged: `0` dissection, a list of chunks `option(state_hash(32))
///   tick N` (`sc_rollup_dissection_chunk_repr.ml`); `1` proof
///   (`sc_rollup_proof_repr.ml`): `pvm_step bytes` then `option(input_proof)`,
///   where an input proof is `0` inbox `level int32 message_counter N
///   serialized_proof bytes`, `1` reveal (`0` raw data: uint16 length ≤ 4096
///   and bytes; `1` metadata; `2` DAL page: `published_level int32 slot_index
///   uint8 page_index int16 proof bytes` (`dal_slot_repr.ml`); `3` DAL
///   parameters), or `2` first input.
fn refutation(r: &mut Reader<'_>) -> Result<(), OperationError> {
    let bad_tag =
        |what: &'static str, tag: u8, offset: usize, known: &str| OperationError::Malformed {
            what,
            reason: format!("unknown tag {tag} (known: {known})"),
            offset,
        };
    let offset = r.pos;
    match r.u8("smart_rollup_refute refutation kind")? {
        0 => {
            r.skip(32, "smart_rollup_refute player commitment hash")?;
            r.skip(32, "smart_rollup_refute opponent commitment hash")?;
        }
        1 => {
            r.zarith_n("smart_rollup_refute choice tick")?;
            let offset = r.pos;
            match r.u8("smart_rollup_refute step kind")? {
                0 => {
                    let list = r.u32_length_prefixed("smart_rollup_refute dissection")?;
                    let base = r.offset() - list.len();
                    let mut sub = Reader::at(list, base);
                    while !sub.at_end() {
                        if sub.bool("smart_rollup_refute dissection state presence")? {
                            sub.skip(32, "smart_rollup_refute dissection state hash")?;
                        }
                        sub.zarith_n("smart_rollup_refute dissection tick")?;
                    }
                }
                1 => {
                    r.u32_length_prefixed("smart_rollup_refute pvm step")?;
                    if r.bool("smart_rollup_refute input proof presence")? {
                        let offset = r.pos;
                        match r.u8("smart_rollup_refute input proof kind")? {
                            0 => {
                                r.skip(4, "smart_rollup_refute inbox proof level")?;
                                r.zarith_n("smart_rollup_refute inbox proof message counter")?;
                                r.u32_length_prefixed("smart_rollup_refute inbox proof")?;
                            }
                            1 => {
                                let offset = r.pos;
                                match r.u8("smart_rollup_refute reveal proof kind")? {
                                    0 => {
                                        let len_offset = r.pos;
                                        let len =
                                            r.u16_be("smart_rollup_refute raw data length")?;
                                        if usize::from(len) > SC_ROLLUP_MESSAGE_SIZE_LIMIT {
                                            return Err(OperationError::Malformed {
                                                what: "smart_rollup_refute raw data",
                                                reason: format!(
                                                    "length {len} is over the limit of \
                                                     {SC_ROLLUP_MESSAGE_SIZE_LIMIT} bytes"
                                                ),
                                                offset: len_offset,
                                            });
                                        }
                                        r.skip(usize::from(len), "smart_rollup_refute raw data")?;
                                    }
                                    1 | 3 => {}
                                    2 => {
                                        r.skip(4, "smart_rollup_refute dal page published level")?;
                                        r.skip(1, "smart_rollup_refute dal page slot index")?;
                                        r.skip(2, "smart_rollup_refute dal page index")?;
                                        r.u32_length_prefixed(
                                            "smart_rollup_refute dal page proof",
                                        )?;
                                    }
                                    t => {
                                        return Err(bad_tag(
                                            "smart_rollup_refute reveal proof kind",
                                            t,
                                            offset,
                                            "0 raw data, 1 metadata, 2 dal page, 3 dal parameters",
                                        ));
                                    }
                                }
                            }
                            2 => {}
                            t => {
                                return Err(bad_tag(
                                    "smart_rollup_refute input proof kind",
                                    t,
                                    offset,
                                    "0 inbox, 1 reveal, 2 first input",
                                ));
                            }
                        }
                    }
                }
                t => {
                    return Err(bad_tag(
                        "smart_rollup_refute step kind",
                        t,
                        offset,
                        "0 dissection, 1 proof",
                    ));
                }
            }
        }
        t => {
            return Err(bad_tag(
                "smart_rollup_refute refutation kind",
                t,
                offset,
                "0 start, 1 move",
            ));
        }
    }
    Ok(())
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

/// A zarith natural (at most 70 bits) as a signed amount.
fn n_to_i128(n: u128) -> i128 {
    i128::try_from(n).unwrap_or(i128::MAX)
}

/// A `u32` length as `usize`, saturating on (hypothetical) 16-bit targets so the
/// following bounds check fails instead of wrapping.
fn len_to_usize(len: u32) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

/// Bounds-checked cursor over the contents (or over a length-prefixed part of
/// them, with offsets still counted from the start of the contents).
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of `bytes[0]` in the contents, for error offsets.
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader {
            bytes,
            pos: 0,
            base: 0,
        }
    }

    /// A reader over `bytes`, which start at offset `base` of the contents.
    fn at(bytes: &'a [u8], base: usize) -> Self {
        Reader {
            bytes,
            pos: 0,
            base,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// The offset of the cursor in the contents.
    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], OperationError> {
        let truncated = OperationError::Truncated {
            what,
            offset: self.offset(),
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
            offset: self.offset(),
            need: 1,
            got: 0,
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn u16_be(&mut self, what: &'static str) -> Result<u16, OperationError> {
        let s = self.take(2, what)?;
        let mut b = [0u8; 2];
        b.copy_from_slice(s);
        Ok(u16::from_be_bytes(b))
    }

    fn u32_be(&mut self, what: &'static str) -> Result<u32, OperationError> {
        let s = self.take(4, what)?;
        let mut b = [0u8; 4];
        b.copy_from_slice(s);
        Ok(u32::from_be_bytes(b))
    }

    /// A data-encoding `int31`: 4 bytes, a signed value in `-2^30..2^30`.
    fn int31(&mut self, what: &'static str) -> Result<i32, OperationError> {
        let offset = self.offset();
        let v = self.u32_be(what)?.cast_signed();
        if !(-(1 << 30)..(1 << 30)).contains(&v) {
            return Err(OperationError::Malformed {
                what,
                reason: format!("{v} is out of the int31 range"),
                offset,
            });
        }
        Ok(v)
    }

    /// A 4-byte big-endian length, then that many bytes (returned).
    fn u32_length_prefixed(&mut self, what: &'static str) -> Result<&'a [u8], OperationError> {
        let len = self.u32_be(what)?;
        self.take(len_to_usize(len), what)
    }

    /// A 4-byte big-endian byte length that is a multiple of `elem`, then that many bytes.
    fn list_of_fixed(&mut self, what: &'static str, elem: usize) -> Result<(), OperationError> {
        let offset = self.offset();
        let len = self.u32_be(what)?;
        if !len_to_usize(len).is_multiple_of(elem) {
            return Err(OperationError::Malformed {
                what,
                reason: format!("length {len} is not a multiple of {elem} bytes"),
                offset,
            });
        }
        self.skip(len_to_usize(len), what)
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, OperationError> {
        let offset = self.offset();
        match self.u8(what)? {
            0x00 => Ok(false),
            0xff => Ok(true),
            byte => Err(OperationError::BadBool { what, byte, offset }),
        }
    }

    /// Reads one zarith natural (`N`): at most [`MAX_ZARITH_BYTES`] bytes, so at
    /// most 70 bits.
    fn zarith_n(&mut self, what: &'static str) -> Result<u128, OperationError> {
        let offset = self.offset();
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

    /// Reads one zarith integer (`Z`, data-encoding's `z`): the first byte is
    /// `continue(0x80) | sign(0x40) | 6 bits`, each next byte `continue | 7 bits`;
    /// at most [`MAX_ZARITH_BYTES`] bytes (69 bits of magnitude).
    fn zarith_z(&mut self, what: &'static str) -> Result<i128, OperationError> {
        let offset = self.offset();
        let first = self.u8(what)?;
        let negative = first & 0x40 != 0;
        let mut value: i128 = i128::from(first & 0x3f);
        let mut more = first & 0x80 != 0;
        let mut shift = 6;
        let mut count = 1;
        while more {
            if count == MAX_ZARITH_BYTES {
                return Err(OperationError::ZarithTooLong { what, offset });
            }
            let b = self.u8(what)?;
            count += 1;
            if b == 0 {
                return Err(OperationError::ZarithTrailingZero { what, offset });
            }
            value |= i128::from(b & 0x7f) << shift;
            shift += 7;
            more = b & 0x80 != 0;
        }
        if negative && value == 0 {
            return Err(OperationError::ZarithTrailingZero { what, offset });
        }
        Ok(if negative { -value } else { value })
    }

    /// Reads a 21-byte public key hash, checking its tag.
    fn public_key_hash(&mut self, what: &'static str) -> Result<[u8; 21], OperationError> {
        let offset = self.offset();
        let tag = self.u8(what)?;
        if tag > 4 {
            return Err(OperationError::BadPublicKeyHashTag { what, tag, offset });
        }
        let mut pkh = [0u8; 21];
        pkh[0] = tag;
        pkh[1..].copy_from_slice(self.take(20, what)?);
        Ok(pkh)
    }

    /// Skips a tagged public key.
    fn public_key(&mut self, what: &'static str) -> Result<(), OperationError> {
        let offset = self.offset();
        let tag = self.u8(what)?;
        let len = match tag {
            0 => 32,
            1 | 2 => 33,
            3 => 48,
            4 => ML_DSA_44_PUBLIC_KEY_LEN,
            _ => return Err(OperationError::BadPublicKeyTag { tag, offset }),
        };
        self.skip(len, what)
    }

    /// The optional BLS proof after a public key (`opt (dynamic_size Bls.encoding)`):
    /// `0x00` absent, `0xff` + 4-byte length 96 + 96 bytes present, any other
    /// next byte (or the end) the field of older protocols that do not have it.
    fn optional_bls_proof(&mut self, what: &'static str) -> Result<(), OperationError> {
        match self.peek() {
            Some(0xff) => {
                self.skip(1, what)?;
                let offset = self.offset();
                let len = self.u32_be(what)?;
                if len_to_usize(len) != BLS_PROOF_LEN {
                    return Err(OperationError::Malformed {
                        what,
                        reason: format!(
                            "a BLS proof is {BLS_PROOF_LEN} bytes, its length says {len}"
                        ),
                        offset,
                    });
                }
                self.skip(BLS_PROOF_LEN, what)
            }
            Some(0x00) => self.skip(1, what),
            _ => Ok(()),
        }
    }

    /// Reads a 22-byte contract id, checking its tag (an originated contract's
    /// padding byte is not checked).
    fn contract_id(&mut self, what: &'static str) -> Result<Contract, OperationError> {
        let offset = self.offset();
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
        let offset = self.offset();
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
                4 => 1312,
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
        for tag in 0..=4 {
            assert_eq!(kinds(B::new().reveal(tag)), Ok(vec![OperationKind::Reveal]));
        }
        // Absent proof.
        assert_eq!(
            kinds(B::new().reveal(3).u8(0x00)),
            Ok(vec![OperationKind::Reveal])
        );
        // Present 96-byte proof (`opt (dynamic_size Bls.encoding)`: 0xff, length 96, proof).
        assert_eq!(
            kinds(B::new().reveal(3).u8(0xff).u32(96).fill(96, 7)),
            Ok(vec![OperationKind::Reveal])
        );
        // Present but short proof.
        assert!(matches!(
            kinds(B::new().reveal(3).u8(0xff).u32(96).fill(95, 7)),
            Err(OperationError::Truncated { .. })
        ));
        // A proof whose length is not 96.
        assert!(matches!(
            kinds(B::new().reveal(3).u8(0xff).u32(95).fill(95, 7)),
            Err(OperationError::Malformed { .. })
        ));
        // Bad key tag.
        assert!(matches!(
            kinds(B::new().manager(TAG_REVEAL).u8(5).fill(48, 0)),
            Err(OperationError::BadPublicKeyTag { tag: 5, .. })
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
                    .u32(96)
                    .fill(96, 1)
                    .manager(TAG_DELEGATION)
                    .u8(0x00)
            ),
            Ok(vec![OperationKind::Reveal, OperationKind::Delegation])
        );
    }

    #[test]
    fn unknown_tag_is_refused_and_named() {
        // Tags that no operation of the current protocol uses (7 was
        // double_preattestation_evidence, 150..=157 the removed tx_rollup operations,
        // 253..=255 are reserved).
        for tag in [
            0u8, 7, 10, 16, 18, 22, 25, 42, 96, 106, 116, 150, 157, 199, 208, 229, 231, 249, 253,
            254, 255,
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
            .pkh(5)
            .u32(1)
            .fill(32, 0)
            .u8(0)
            .done();
        assert!(matches!(
            operation_kinds(&v),
            Err(OperationError::BadPublicKeyHashTag {
                tag: 5,
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
        let tags = ALL_TAGS;
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
            B::new()
                .reveal(3)
                .u8(0xff)
                .u32(96)
                .fill(96, 1)
                .transfer(5)
                .done(),
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

    // ---- Every operation of protocol 025 (PsUshuai). Layouts: octez
    // `src/proto_025_PsUshuai/lib_protocol/operation_repr.ml` unless named. ----

    /// Every tag this module decodes.
    const ALL_TAGS: [u8; 32] = [
        TAG_SEED_NONCE_REVELATION,
        TAG_DOUBLE_CONSENSUS_OPERATION_EVIDENCE,
        TAG_DOUBLE_BAKING_EVIDENCE,
        TAG_ACTIVATE_ACCOUNT,
        TAG_PROPOSALS,
        TAG_BALLOT,
        TAG_VDF_REVELATION,
        TAG_DRAIN_DELEGATE,
        TAG_FAILING_NOOP,
        TAG_DAL_ENTRAPMENT_EVIDENCE,
        TAG_REVEAL,
        TAG_TRANSACTION,
        TAG_ORIGINATION,
        TAG_DELEGATION,
        TAG_REGISTER_GLOBAL_CONSTANT,
        TAG_SET_DEPOSITS_LIMIT,
        TAG_INCREASE_PAID_STORAGE,
        TAG_UPDATE_CONSENSUS_KEY,
        TAG_UPDATE_COMPANION_KEY,
        TAG_TRANSFER_TICKET,
        TAG_SMART_ROLLUP_ORIGINATE,
        TAG_SMART_ROLLUP_ADD_MESSAGES,
        TAG_SMART_ROLLUP_CEMENT,
        TAG_SMART_ROLLUP_PUBLISH,
        TAG_SMART_ROLLUP_REFUTE,
        TAG_SMART_ROLLUP_TIMEOUT,
        TAG_SMART_ROLLUP_EXECUTE_OUTBOX_MESSAGE,
        TAG_SMART_ROLLUP_RECOVER_BOND,
        TAG_DAL_PUBLISH_COMMITMENT,
        // Not decoded, but steer the random tests into their refusals too.
        21,
        250,
        0x60,
    ];

    /// The source the builder's manager header uses.
    const SRC: [u8; 21] = ME;

    fn pkh_bytes(tag: u8) -> [u8; 21] {
        let mut p = [0xab; 21];
        p[0] = tag;
        p
    }

    fn only(b: B) -> Operation {
        let v = b.done();
        let mut ops = decode_operations(&v).unwrap_or_else(|e| panic!("{e}: {}", hex(&v)));
        assert_eq!(ops.len(), 1, "{ops:?}");
        ops.remove(0)
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fields(kind: OperationKind) -> Fields {
        Fields::new(kind)
    }

    /// A manager operation of `kind` by [`SRC`] with nothing else exposed.
    fn plain(kind: OperationKind) -> Operation {
        Operation::Other(fields(kind).source(SRC))
    }

    /// Every strict prefix of `v` that is not in `allowed` is refused.
    fn every_cut_refused(v: &[u8], allowed: &[usize]) {
        for cut in 1..v.len() {
            if allowed.contains(&cut) {
                continue;
            }
            assert!(
                decode_operations(&v[..cut]).is_err(),
                "cut at {cut} of {} accepted: {}",
                v.len(),
                hex(v)
            );
        }
    }

    /// Where a single reveal / update_*_key `v` may be cut and still decode: right
    /// after its public key (older protocols without the proof field) and after an
    /// absent-proof byte.
    fn lenient_cuts(v: &[u8]) -> Vec<usize> {
        if ![
            TAG_REVEAL,
            TAG_UPDATE_CONSENSUS_KEY,
            TAG_UPDATE_COMPANION_KEY,
        ]
        .contains(&v[0])
        {
            return vec![];
        }
        let mut r = Reader::new(v);
        r.u8("tag").unwrap();
        manager_header(&mut r).unwrap();
        r.public_key("key").unwrap();
        vec![r.pos, r.pos + 1]
    }

    #[test]
    fn taquito_forged_vectors_decode() {
        // Forged by @taquito/local-forging 24.2.0 (tests/clients/tezos_forge.mjs).
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/vectors/tezos-operations/taquito_forged.json"
        ))
        .unwrap();
        let forged = v["forged"].as_array().unwrap();
        assert!(forged.len() >= 18);
        for f in forged {
            let label = f["label"].as_str().unwrap();
            let bytes = unhex(f["forged_hex"].as_str().unwrap());
            let contents = &bytes[32..];
            let want: OperationKind = f["kind"].as_str().unwrap().parse().unwrap();
            assert_eq!(operation_kinds(contents), Ok(vec![want]), "{label}");
            let op = &decode_operations(contents).unwrap()[0];
            // Source tz1 = 20 × 0x11, KT1 = 20 × 0x55, tz2 = 20 × 0x22.
            let tz1 = {
                let mut p = [0x11; 21];
                p[0] = 0;
                p
            };
            let tz2 = {
                let mut p = [0x22; 21];
                p[0] = 1;
                p
            };
            match label {
                "increase_paid_storage/10" => {
                    assert_eq!(op.amount(), Some(10));
                    assert_eq!(op.destination(), Some(Contract::Originated([0x55; 20])));
                    assert_eq!(op.source(), Some(tz1));
                }
                "set_deposits_limit/with" => assert_eq!(op.amount(), Some(1_000_000)),
                "set_deposits_limit/without" => assert_eq!(op.amount(), None),
                "transfer_ticket" => {
                    assert_eq!(op.amount(), Some(2));
                    assert_eq!(op.destination(), Some(Contract::Implicit(tz2)));
                }
                "drain_delegate" => {
                    let mut ck = [0x44; 21];
                    ck[0] = 3;
                    assert_eq!(op.source(), Some(ck));
                    assert_eq!(op.delegate(), Some(tz1));
                    assert_eq!(op.destination(), Some(Contract::Implicit(tz2)));
                }
                "seed_nonce_revelation" | "activate_account" | "failing_noop" => {
                    assert_eq!(op.source(), None, "{label}");
                }
                _ => assert_eq!(op.source(), Some(tz1), "{label}"),
            }
            every_cut_refused(contents, &lenient_cuts(contents));
        }
    }

    #[test]
    fn new_manager_kinds_hand_built() {
        use OperationKind as K;
        let kt1 = || B::new().originated();
        let cases: Vec<(&str, B, Operation)> = vec![
            (
                "register_global_constant: value lazy_expr",
                B::new()
                    .manager(TAG_REGISTER_GLOBAL_CONSTANT)
                    .u32(2)
                    .bytes(UNIT),
                plain(K::RegisterGlobalConstant),
            ),
            (
                "set_deposits_limit: opt N",
                B::new().manager(TAG_SET_DEPOSITS_LIMIT).u8(0xff).n(300),
                Operation::Other(Fields {
                    amount: Some(300),
                    ..fields(K::SetDepositsLimit).source(SRC)
                }),
            ),
            (
                "set_deposits_limit: no limit",
                B::new().manager(TAG_SET_DEPOSITS_LIMIT).u8(0x00),
                plain(K::SetDepositsLimit),
            ),
            (
                // 100 as `Data_encoding.z` is a4 01 (Taquito would forge 64).
                "increase_paid_storage: amount Z, originated destination",
                B::new()
                    .manager(TAG_INCREASE_PAID_STORAGE)
                    .bytes(&[0xa4, 0x01])
                    .bytes(&kt1().done()),
                Operation::Other(Fields {
                    amount: Some(100),
                    destination: Some(Contract::Originated([0x11; 20])),
                    ..fields(K::IncreasePaidStorage).source(SRC)
                }),
            ),
            (
                "update_consensus_key: ed25519, no proof",
                B::new().manager(TAG_UPDATE_CONSENSUS_KEY).pk(0).u8(0x00),
                plain(K::UpdateConsensusKey),
            ),
            (
                "update_consensus_key: older encoding without the proof field",
                B::new().manager(TAG_UPDATE_CONSENSUS_KEY).pk(1),
                plain(K::UpdateConsensusKey),
            ),
            (
                "update_consensus_key: tz4 with proof",
                B::new()
                    .manager(TAG_UPDATE_CONSENSUS_KEY)
                    .pk(3)
                    .u8(0xff)
                    .u32(96)
                    .fill(96, 0x88),
                plain(K::UpdateConsensusKey),
            ),
            (
                "update_companion_key: tz4 with proof",
                B::new()
                    .manager(TAG_UPDATE_COMPANION_KEY)
                    .pk(3)
                    .u8(0xff)
                    .u32(96)
                    .fill(96, 0x88),
                plain(K::UpdateCompanionKey),
            ),
            (
                "transfer_ticket: contents ty ticketer amount destination entrypoint",
                B::new()
                    .manager(TAG_TRANSFER_TICKET)
                    .u32(2)
                    .bytes(UNIT)
                    .u32(2)
                    .bytes(&[0x03, 0x6c])
                    .originated()
                    .n(1_000)
                    .implicit()
                    .u32(7)
                    .bytes(b"default"),
                Operation::Other(Fields {
                    amount: Some(1_000),
                    destination: Some(Contract::Implicit(ME)),
                    ..fields(K::TransferTicket).source(SRC)
                }),
            ),
            (
                // sc_rollups.ml Kind.encoding; sc_rollup_whitelist_repr.ml.
                "smart_rollup_originate: riscv, whitelist of a tz5 and a tz1",
                B::new()
                    .manager(TAG_SMART_ROLLUP_ORIGINATE)
                    .u8(2)
                    .u32(3)
                    .fill(3, 0x23)
                    .u32(2)
                    .bytes(&[0x03, 0x69])
                    .u8(0xff)
                    .u32(42)
                    .pkh(4)
                    .pkh(0),
                plain(K::SmartRollupOriginate),
            ),
            (
                "smart_rollup_add_messages: list of bytes",
                B::new()
                    .manager(TAG_SMART_ROLLUP_ADD_MESSAGES)
                    .u32(4 + 3 + 4)
                    .u32(3)
                    .fill(3, 0x31)
                    .u32(0),
                plain(K::SmartRollupAddMessages),
            ),
            (
                "smart_rollup_cement: rollup(20)",
                B::new().manager(TAG_SMART_ROLLUP_CEMENT).fill(20, 0xbb),
                plain(K::SmartRollupCement),
            ),
            (
                // sc_rollup_commitment_repr.ml: state(32) inbox_level int32 predecessor(32) ticks int64.
                "smart_rollup_publish: rollup commitment",
                B::new()
                    .manager(TAG_SMART_ROLLUP_PUBLISH)
                    .fill(20, 0xbb)
                    .fill(32, 0xee)
                    .u32(7)
                    .fill(32, 0xcc)
                    .u32(0)
                    .u32(1),
                plain(K::SmartRollupPublish),
            ),
            (
                "smart_rollup_timeout: rollup alice bob",
                B::new()
                    .manager(TAG_SMART_ROLLUP_TIMEOUT)
                    .fill(20, 0xbb)
                    .pkh(0)
                    .pkh(1),
                plain(K::SmartRollupTimeout),
            ),
            (
                "smart_rollup_execute_outbox_message: rollup commitment proof",
                B::new()
                    .manager(TAG_SMART_ROLLUP_EXECUTE_OUTBOX_MESSAGE)
                    .fill(20, 0xbb)
                    .fill(32, 0xcc)
                    .u32(5)
                    .fill(5, 0x41),
                plain(K::SmartRollupExecuteOutboxMessage),
            ),
            (
                "smart_rollup_recover_bond: rollup staker",
                B::new()
                    .manager(TAG_SMART_ROLLUP_RECOVER_BOND)
                    .fill(20, 0xbb)
                    .pkh(2),
                plain(K::SmartRollupRecoverBond),
            ),
            (
                // dal_operations_repr.ml: slot_index uint8 commitment(48) proof(96).
                "dal_publish_commitment",
                B::new()
                    .manager(TAG_DAL_PUBLISH_COMMITMENT)
                    .u8(3)
                    .fill(48, 0xdd)
                    .fill(96, 0x51),
                plain(K::DalPublishCommitment),
            ),
        ];
        for (what, b, want) in cases {
            let v = b.clone().done();
            assert_eq!(only(b), want, "{what}");
            // Batched after a transfer, and with a transfer after it: self-delimiting.
            let batch = B::new().transfer(1).bytes(&v).transfer(2).done();
            assert_eq!(
                operation_kinds(&batch),
                Ok(vec![K::Transaction, want.kind(None), K::Transaction]),
                "{what} in a batch"
            );
            // Lenient proof field: the key alone (and with the 0x00) are complete.
            let allowed = lenient_cuts(&v);
            every_cut_refused(&v, &allowed);
        }
    }

    #[test]
    fn increase_paid_storage_amount_is_a_signed_zarith() {
        let ips = |amount: &[u8]| {
            B::new()
                .manager(TAG_INCREASE_PAID_STORAGE)
                .bytes(amount)
                .originated()
                .done()
        };
        let amount = |v: &[u8]| decode_operations(v).map(|ops| ops[0].amount());
        // `z`: first byte continue | sign | 6 bits.
        assert_eq!(amount(&ips(&[0x0a])), Ok(Some(10)));
        assert_eq!(amount(&ips(&[0x3f])), Ok(Some(63)));
        assert_eq!(amount(&ips(&[0x80, 0x01])), Ok(Some(64)));
        assert_eq!(amount(&ips(&[0xa4, 0x01])), Ok(Some(100)));
        // What Taquito forges for 100 (a natural) is -36 as octez reads it.
        assert_eq!(amount(&ips(&[0x64])), Ok(Some(-36)));
        assert_eq!(amount(&ips(&[0x00])), Ok(Some(0)));
        // Ten bytes at most (69 bits).
        let mut ten = vec![0xbf];
        ten.extend_from_slice(&[0xff; 8]);
        ten.push(0x7f);
        assert_eq!(amount(&ips(&ten)), Ok(Some((1i128 << 69) - 1)));
        let mut eleven = vec![0x80];
        eleven.extend_from_slice(&[0x80; 9]);
        eleven.push(0x01);
        assert!(matches!(
            decode_operations(&ips(&eleven)),
            Err(OperationError::ZarithTooLong { .. })
        ));
        // Non-canonical: trailing zero byte, minus zero.
        for bad in [&[0x80, 0x00][..], &[0x40], &[0xc0, 0x00]] {
            assert!(
                matches!(
                    decode_operations(&ips(bad)),
                    Err(OperationError::ZarithTrailingZero { .. })
                ),
                "{bad:02x?}"
            );
        }
        // `Contract_repr.originated_encoding`: an implicit destination is refused.
        let implicit = B::new()
            .manager(TAG_INCREASE_PAID_STORAGE)
            .u8(0x0a)
            .implicit()
            .done();
        assert!(matches!(
            decode_operations(&implicit),
            Err(OperationError::BadContractTag { tag: 0, .. })
        ));
    }

    #[test]
    fn malformed_new_manager_fields_are_refused() {
        let malformed = |b: B, what: &str| {
            let v = b.done();
            match decode_operations(&v) {
                Err(OperationError::Malformed { .. }) => {}
                other => panic!("{what}: {other:?}"),
            }
        };
        malformed(
            B::new()
                .manager(TAG_TRANSFER_TICKET)
                .u32(2)
                .bytes(UNIT)
                .u32(2)
                .bytes(UNIT)
                .originated()
                .n(0)
                .implicit()
                .u32(0),
            "ticket amount 0",
        );
        malformed(
            B::new()
                .manager(TAG_SMART_ROLLUP_ORIGINATE)
                .u8(3)
                .u32(0)
                .u32(0)
                .u8(0),
            "pvm kind 3",
        );
        malformed(
            B::new()
                .manager(TAG_UPDATE_COMPANION_KEY)
                .pk(3)
                .u8(0xff)
                .u32(48)
                .fill(48, 0),
            "48-byte proof",
        );
        // Whitelist not a whole number of pkhs, and a bad pkh tag in it.
        assert!(matches!(
            decode_operations(
                &B::new()
                    .manager(TAG_SMART_ROLLUP_ORIGINATE)
                    .u8(1)
                    .u32(0)
                    .u32(0)
                    .u8(0xff)
                    .u32(22)
                    .pkh(0)
                    .u8(0)
                    .done()
            ),
            Err(OperationError::Truncated { .. })
        ));
        assert!(matches!(
            decode_operations(
                &B::new()
                    .manager(TAG_SMART_ROLLUP_ORIGINATE)
                    .u8(1)
                    .u32(0)
                    .u32(0)
                    .u8(0xff)
                    .u32(21)
                    .pkh(7)
                    .done()
            ),
            Err(OperationError::BadPublicKeyHashTag { tag: 7, .. })
        ));
        // A message list whose last message runs past the list.
        assert!(matches!(
            decode_operations(
                &B::new()
                    .manager(TAG_SMART_ROLLUP_ADD_MESSAGES)
                    .u32(6)
                    .u32(3)
                    .fill(2, 0)
                    .done()
            ),
            Err(OperationError::Truncated { offset: 40, .. })
        ));
    }

    /// `smart_rollup_refute` by [`SRC`]: rollup(20), opponent pkh, then `refutation`.
    fn refute(refutation: B) -> B {
        B::new()
            .manager(TAG_SMART_ROLLUP_REFUTE)
            .fill(20, 0xbb)
            .pkh(1)
            .bytes(&refutation.done())
    }

    #[test]
    fn smart_rollup_refute_every_refutation_form() {
        // sc_rollup_game_repr.ml (refutation_encoding, step_encoding),
        // sc_rollup_dissection_chunk_repr.ml, sc_rollup_proof_repr.ml (encoding,
        // input_proof_encoding, reveal_proof_encoding), dal_slot_repr.ml (Page.encoding).
        let proof = |input: Option<B>| {
            let b = B::new().u8(1).n(1_000).u8(1).u32(4).fill(4, 0x70);
            match input {
                None => b.u8(0x00),
                Some(i) => b.u8(0xff).bytes(&i.done()),
            }
        };
        let forms: Vec<(&str, B)> = vec![
            ("start", B::new().u8(0).fill(32, 1).fill(32, 2)),
            (
                "move, dissection",
                B::new()
                    .u8(1)
                    .n(0)
                    .u8(0)
                    .u32(1 + 32 + 1 + 1 + 2)
                    .u8(0xff)
                    .fill(32, 3)
                    .n(0)
                    .u8(0x00)
                    .n(200),
            ),
            ("move, empty dissection", B::new().u8(1).n(5).u8(0).u32(0)),
            ("move, proof without input", proof(None)),
            (
                "move, inbox proof",
                proof(Some(B::new().u8(0).u32(9).n(3).u32(2).fill(2, 0))),
            ),
            (
                "move, raw data reveal",
                proof(Some(B::new().u8(1).u8(0).bytes(&[0, 3]).fill(3, 0x72))),
            ),
            ("move, metadata reveal", proof(Some(B::new().u8(1).u8(1)))),
            (
                "move, dal page reveal",
                proof(Some(
                    B::new()
                        .u8(1)
                        .u8(2)
                        .u32(10)
                        .u8(4)
                        .bytes(&[0, 5])
                        .u32(3)
                        .fill(3, 0x73),
                )),
            ),
            (
                "move, dal parameters reveal",
                proof(Some(B::new().u8(1).u8(3))),
            ),
            ("move, first input", proof(Some(B::new().u8(2)))),
        ];
        for (what, r) in forms {
            let b = refute(r);
            let v = b.clone().done();
            assert_eq!(only(b), plain(OperationKind::SmartRollupRefute), "{what}");
            let batch = B::new().bytes(&v).transfer(1).done();
            assert_eq!(
                operation_kinds(&batch),
                Ok(vec![
                    OperationKind::SmartRollupRefute,
                    OperationKind::Transaction
                ]),
                "{what} then a transfer"
            );
            every_cut_refused(&v, &[]);
        }
        for (what, r) in [
            ("refutation kind 2", B::new().u8(2)),
            ("step kind 2", B::new().u8(1).n(0).u8(2)),
            (
                "input proof kind 3",
                B::new().u8(1).n(0).u8(1).u32(0).u8(0xff).u8(3),
            ),
            (
                "reveal proof kind 4",
                B::new().u8(1).n(0).u8(1).u32(0).u8(0xff).u8(1).u8(4),
            ),
            (
                "raw data over 4096 bytes",
                B::new()
                    .u8(1)
                    .n(0)
                    .u8(1)
                    .u32(0)
                    .u8(0xff)
                    .u8(1)
                    .u8(0)
                    .bytes(&4097u16.to_be_bytes())
                    .fill(4097, 0),
            ),
        ] {
            assert!(
                matches!(
                    decode_operations(&refute(r).done()),
                    Err(OperationError::Malformed { .. })
                ),
                "{what}"
            );
        }
    }

    #[test]
    fn anonymous_and_other_kinds_hand_built() {
        use OperationKind as K;
        // An inlined consensus operation (branch, attestation content, signature),
        // taken whole by its dynamic_size length.
        let inlined = B::new()
            .fill(32, 0x22)
            .u8(21)
            .bytes(&[0, 1, 0, 0, 0, 9, 0, 0, 0, 0])
            .fill(32, 0x33)
            .fill(64, 0x44)
            .done();
        let header = B::new().fill(100, 0x55).done(); // block header, opaque here
        let cases: Vec<(&str, B, Operation)> = vec![
            (
                "seed_nonce_revelation: level int32 nonce(32)",
                B::new()
                    .u8(TAG_SEED_NONCE_REVELATION)
                    .u32(1234)
                    .fill(32, 0x71),
                Operation::Other(fields(K::SeedNonceRevelation)),
            ),
            (
                // seed_repr.ml vdf_solution_encoding: two forms of Vdf.form_size_bytes (100).
                "vdf_revelation: result(100) proof(100)",
                B::new().u8(TAG_VDF_REVELATION).fill(200, 0x01),
                Operation::Other(fields(K::VdfRevelation)),
            ),
            (
                "activate_account: ed25519 hash(20) code(20)",
                B::new()
                    .u8(TAG_ACTIVATE_ACCOUNT)
                    .fill(20, 0x11)
                    .fill(20, 0x12),
                Operation::Other(fields(K::ActivateAccount)),
            ),
            (
                "double_consensus_operation_evidence: slot op1 op2",
                B::new()
                    .u8(TAG_DOUBLE_CONSENSUS_OPERATION_EVIDENCE)
                    .bytes(&[0, 7])
                    .u32(inlined.len() as u32)
                    .bytes(&inlined)
                    .u32(inlined.len() as u32)
                    .bytes(&inlined),
                Operation::Other(fields(K::DoubleConsensusOperationEvidence)),
            ),
            (
                "double_baking_evidence: bh1 bh2",
                B::new()
                    .u8(TAG_DOUBLE_BAKING_EVIDENCE)
                    .u32(header.len() as u32)
                    .bytes(&header)
                    .u32(header.len() as u32)
                    .bytes(&header),
                Operation::Other(fields(K::DoubleBakingEvidence)),
            ),
            (
                // dal_slot_repr.ml Shard_with_proof; cryptobox.ml shard_encoding
                // (int31, array of 32-byte scalars), shard proof (48, G1).
                "dal_entrapment_evidence",
                B::new()
                    .u8(TAG_DAL_ENTRAPMENT_EVIDENCE)
                    .u32(inlined.len() as u32)
                    .bytes(&inlined)
                    .bytes(&[0, 3])
                    .u8(5)
                    .u8(0xff)
                    .u8(2)
                    .u32(17)
                    .u32(64)
                    .fill(64, 0x61)
                    .fill(48, 0x62),
                Operation::Other(fields(K::DalEntrapmentEvidence)),
            ),
            (
                "dal_entrapment_evidence without lag index",
                B::new()
                    .u8(TAG_DAL_ENTRAPMENT_EVIDENCE)
                    .u32(inlined.len() as u32)
                    .bytes(&inlined)
                    .bytes(&[0, 3])
                    .u8(5)
                    .u8(0x00)
                    .u32(0)
                    .u32(0)
                    .fill(48, 0x62),
                Operation::Other(fields(K::DalEntrapmentEvidence)),
            ),
            (
                "drain_delegate: consensus_key delegate destination",
                B::new().u8(TAG_DRAIN_DELEGATE).pkh(3).pkh(0).pkh(4),
                Operation::Other(Fields {
                    kind: K::DrainDelegate,
                    source: Some(pkh_bytes(3)),
                    destination: Some(Contract::Implicit(pkh_bytes(4))),
                    amount: None,
                    delegate: Some(pkh_bytes(0)),
                }),
            ),
            (
                "failing_noop: bytes",
                B::new().u8(TAG_FAILING_NOOP).u32(3).bytes(b"abc"),
                Operation::Other(fields(K::FailingNoop)),
            ),
            (
                "ballot by a tz5",
                B::new().u8(TAG_BALLOT).pkh(4).u32(1).fill(32, 0).u8(2),
                Operation::Other(fields(K::Ballot).source(pkh_bytes(4))),
            ),
        ];
        for (what, b, want) in cases {
            let v = b.clone().done();
            assert_eq!(only(b), want, "{what}");
            let batch = B::new().bytes(&v).bytes(&v).done();
            assert_eq!(
                operation_kinds(&batch),
                Ok(vec![want.kind(None), want.kind(None)]),
                "{what} twice"
            );
            every_cut_refused(&v, &[]);
        }
        // Shares not a whole number of 32-byte scalars; an int31 out of range.
        let entrapment = |index: u32, shares: u32| {
            B::new()
                .u8(TAG_DAL_ENTRAPMENT_EVIDENCE)
                .u32(0)
                .bytes(&[0, 0])
                .u8(0)
                .u8(0)
                .u32(index)
                .u32(shares)
                .fill(shares as usize, 0)
                .fill(48, 0)
                .done()
        };
        assert!(decode_operations(&entrapment(0, 32)).is_ok());
        assert!(matches!(
            decode_operations(&entrapment(0, 33)),
            Err(OperationError::Malformed { .. })
        ));
        assert!(matches!(
            decode_operations(&entrapment(1 << 30, 0)),
            Err(OperationError::Malformed { .. })
        ));
        assert!(decode_operations(&entrapment((-(1i32 << 30)).cast_unsigned(), 0)).is_ok());
    }

    #[test]
    fn existing_kinds_expose_their_fields() {
        let op = only(B::new().manager(TAG_DELEGATION).u8(0xff).pkh(3));
        assert_eq!(op.delegate(), Some(pkh_bytes(3)));
        assert_eq!(op.source(), Some(SRC));
        let op = only(B::new().manager(TAG_DELEGATION).u8(0x00));
        assert_eq!(op.delegate(), None);
        let op = only(
            B::new()
                .manager(TAG_ORIGINATION)
                .n(2_000_000)
                .u8(0xff)
                .pkh(1)
                .u32(0)
                .u32(0),
        );
        assert_eq!(op.amount(), Some(2_000_000));
        assert_eq!(op.delegate(), Some(pkh_bytes(1)));
        let op = only(B::new().transfer(77));
        assert_eq!(op.amount(), Some(77));
        assert_eq!(op.destination(), Some(Contract::Implicit(ME)));
        assert_eq!(op.source(), Some(ME));
        assert_eq!(op.delegate(), None);
        let op = only(B::new().u8(TAG_PROPOSALS).pkh(2).u32(1).u32(0));
        assert_eq!(op.source(), Some(pkh_bytes(2)));
    }

    #[test]
    fn tz5_keys_and_hashes() {
        // signature_v3.ml: public key hash tag 4 (20 bytes), public key tag 4 (1312 bytes).
        let tz5 = pkh_bytes(4);
        let reveal = B::new()
            .u8(TAG_REVEAL)
            .bytes(&tz5)
            .n(1)
            .n(1)
            .n(1)
            .n(1)
            .u8(4)
            .fill(1312, 0x5a)
            .u8(0x00)
            .done();
        let ops = decode_operations(&reveal).unwrap();
        assert_eq!(ops[0].kind(None), OperationKind::Reveal);
        assert_eq!(ops[0].source(), Some(tz5));
        every_cut_refused(&reveal, &[reveal.len() - 1]);
        // A transfer to a tz5 and a delegation from one.
        let v = B::new()
            .manager(TAG_TRANSACTION)
            .n(5)
            .u8(0)
            .pkh(4)
            .u8(0x00)
            .done();
        assert_eq!(
            decode_operations(&v).unwrap()[0].destination(),
            Some(Contract::Implicit(tz5))
        );
        // The tz5's own stake is staking for the tz5 key.
        let stake = B::new().tx(&tz5, 10, &implicit_of(&tz5), &[6], UNIT).done();
        assert_eq!(
            operation_kinds_for(&stake, &tz5),
            Ok(vec![OperationKind::Stake])
        );
    }

    #[test]
    fn consensus_and_zk_rollup_tags_are_refused_even_allowing_unknown() {
        for tag in CONSENSUS_TAGS {
            let v = B::new().transfer(1).u8(tag).fill(60, 0).done();
            let want = OperationError::Consensus {
                tag,
                offset: B::new().transfer(1).done().len(),
            };
            assert_eq!(decode_operations(&v), Err(want.clone()));
            assert_eq!(decode_operations_allowing_unknown(&v), Err(want.clone()));
            let msg = want.to_string();
            assert!(
                msg.contains("consensus") && msg.contains("refused"),
                "{msg}"
            );
        }
        assert!(
            OperationError::Consensus { tag: 41, offset: 0 }
                .to_string()
                .contains("bls_mode_attestation")
        );
        for tag in ZK_ROLLUP_TAGS {
            let v = B::new().manager(tag).fill(60, 0).done();
            let want = OperationError::Unsupported { tag, offset: 0 };
            assert_eq!(decode_operations(&v), Err(want.clone()));
            assert_eq!(decode_operations_allowing_unknown(&v), Err(want.clone()));
            assert!(want.to_string().contains("zk_rollup"), "{want}");
        }
    }

    #[test]
    fn unknown_tags_allowed_only_on_request() {
        let known = B::new().transfer(1).done();
        let mut v = known.clone();
        v.push(0x60);
        v.extend_from_slice(&[0xde, 0xad, TAG_DELEGATION, 0xff]);
        assert_eq!(
            decode_operations(&v),
            Err(OperationError::UnknownTag {
                tag: 0x60,
                offset: known.len()
            })
        );
        let ops = decode_operations_allowing_unknown(&v).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].kind(None), OperationKind::Transaction);
        assert_eq!(
            ops[1],
            Operation::Unknown {
                tag: 0x60,
                offset: known.len()
            }
        );
        assert_eq!(ops[1].kind(None), OperationKind::Unknown);
        assert_eq!(ops[1].source(), None);
        // Unknown first: one operation standing for everything.
        assert_eq!(
            decode_operations_allowing_unknown(&[0x60]),
            Ok(vec![Operation::Unknown {
                tag: 0x60,
                offset: 0
            }])
        );
        // A malformed known operation before it is still refused.
        let mut bad = B::new().manager(TAG_DELEGATION).u8(0x7f).done();
        bad.push(0x60);
        assert!(matches!(
            decode_operations_allowing_unknown(&bad),
            Err(OperationError::BadBool { .. })
        ));
        // So is a truncated known operation, and empty contents.
        assert!(matches!(
            decode_operations_allowing_unknown(&known[..known.len() - 1]),
            Err(OperationError::Truncated { .. })
        ));
        assert_eq!(
            decode_operations_allowing_unknown(&[]),
            Err(OperationError::Empty)
        );
        // Without an unknown tag both decoders agree.
        assert_eq!(
            decode_operations_allowing_unknown(&known),
            decode_operations(&known)
        );
    }

    #[test]
    fn default_kinds_are_the_ten_decoded_before() {
        let names: Vec<&str> = OperationKind::DEFAULT.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "transaction",
                "reveal",
                "delegation",
                "origination",
                "ballot",
                "proposals",
                "stake",
                "unstake",
                "finalize_unstake",
                "set_delegate_parameters"
            ]
        );
        assert!(!OperationKind::DEFAULT.contains(&OperationKind::Unknown));
        // Every name is distinct and listed in the unknown-name error.
        let err = "teleport".parse::<OperationKind>().unwrap_err().to_string();
        let mut seen = std::collections::HashSet::new();
        for k in OperationKind::ALL {
            assert!(seen.insert(k.as_str()), "{k} twice");
            assert!(err.contains(k.as_str()), "{err} lacks {k}");
        }
        assert_eq!(
            OperationKind::SmartRollupExecuteOutboxMessage.to_string(),
            "smart_rollup_execute_outbox_message"
        );
    }
}
