//! Fuzz target: the Tezos operation decoder (`chain::tezos::operations::operation_kinds`).
//!
//! The input's first byte picks the mode.
//!
//! - Raw (`mode` even): the rest is a generic request's contents. Invariants: the decoder
//!   is deterministic and never panics; operations are self-delimiting, so appending or
//!   prepending a known operation appends or prepends its kind and nothing else; every
//!   prefix of an accepted contents that is itself accepted decodes to a prefix of the
//!   kinds, and the rest then decodes to the remaining kinds (unless the cut falls right
//!   before the optional proof byte `0x00`/`0xff` of a reveal or update_*_key). The
//!   decoder that allows unknown tags agrees with the strict one wherever the strict one
//!   accepts, and where the strict one refuses an unknown tag it gives the operations before
//!   it followed by one `Unknown` at that tag.
//! - Structured (`mode` odd): the rest drives an encoder written here from the octez
//!   operation encodings; the decoder must accept what it builds and give back each
//!   operation, in order, with a transaction's source, amount, destination, entrypoint and
//!   `Unit`-ness as encoded and the other kinds' source, destination, amount (a signed
//!   zarith for `increase_paid_storage`) and delegate; `operation_kinds_for(signer)` is a
//!   staking kind exactly when
//!   the module's protocol conditions hold (the signer's own account calling itself at
//!   that entrypoint, `Unit` and amount rules), and never for another signer or without
//!   one; cutting the encoding anywhere inside the last operation is refused.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use palisade::chain::tezos::operations::{
    Contract, Entrypoint as DecodedEntrypoint, Fields, MICHELSON_UNIT, Operation, OperationError,
    OperationKind, decode_operations, decode_operations_allowing_unknown, operation_kinds,
    operation_kinds_for,
};

/// Prefix checks are quadratic; only contents up to this length get them.
const MAX_PREFIX_CHECK: usize = 600;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        raw(rest);
    } else if let Ok(ops) = Vec::<Op>::arbitrary_take_rest(Unstructured::new(rest)) {
        structured(&ops);
    }
});

/// A delegation withdrawal by tz1 (manager header, no delegate): a known operation.
fn known_op() -> Vec<u8> {
    let mut b = Enc::default();
    b.manager(110, 0, [7; 20], &Header::default());
    b.u8(0x00);
    b.0
}

fn raw(contents: &[u8]) {
    let kinds = operation_kinds(contents);
    assert_eq!(kinds, operation_kinds(contents), "not deterministic");
    let decoded = decode_operations(contents);
    let lenient = decode_operations_allowing_unknown(contents);
    match &decoded {
        Ok(ops) => assert_eq!(lenient.as_ref(), Ok(ops), "lenient decoder disagrees"),
        Err(OperationError::UnknownTag { tag, offset }) => {
            let mut want = if *offset == 0 {
                Vec::new()
            } else {
                decode_operations(&contents[..*offset]).expect("operations before the unknown tag")
            };
            want.push(Operation::Unknown {
                tag: *tag,
                offset: *offset,
            });
            assert_eq!(lenient, Ok(want), "unknown tag at {offset}");
        }
        Err(e) => assert_eq!(lenient.as_ref(), Err(e), "lenient decoder disagrees"),
    }
    assert_eq!(decoded.is_ok(), kinds.is_ok(), "decode and kinds disagree");
    let (Ok(kinds), Ok(decoded)) = (kinds, decoded) else {
        return;
    };
    assert!(!kinds.is_empty(), "accepted contents with no operation");
    let none: Vec<OperationKind> = decoded.iter().map(|op| op.kind(None)).collect();
    assert_eq!(kinds, none);
    assert!(
        !kinds.iter().any(|k| STAKING_KINDS.contains(k)),
        "staking without a signer"
    );
    // With each source as the signer: staking only for that source's calls to itself.
    for op in &decoded {
        let Operation::Transaction(t) = op else {
            continue;
        };
        let for_source = operation_kinds_for(contents, &t.source).expect("decoded once");
        for (k, op) in for_source.iter().zip(&decoded) {
            if STAKING_KINDS.contains(k) {
                let Operation::Transaction(x) = op else {
                    panic!("{op:?} classified {k:?}");
                };
                assert!(
                    x.source == t.source && x.destination == Contract::Implicit(x.source),
                    "{x:?} is {k:?} for signer {:?}",
                    t.source
                );
            }
        }
    }
    let op = known_op();
    let mut after = contents.to_vec();
    after.extend_from_slice(&op);
    let mut want = kinds.clone();
    want.push(OperationKind::Delegation);
    assert_eq!(operation_kinds(&after), Ok(want), "appending an operation");
    let mut before = op.clone();
    before.extend_from_slice(contents);
    let mut want = vec![OperationKind::Delegation];
    want.extend_from_slice(&kinds);
    assert_eq!(
        operation_kinds(&before),
        Ok(want),
        "prepending an operation"
    );

    if contents.len() > MAX_PREFIX_CHECK {
        return;
    }
    for cut in 1..contents.len() {
        let Ok(head) = operation_kinds(&contents[..cut]) else {
            continue;
        };
        assert!(
            head.len() <= kinds.len() && head[..] == kinds[..head.len()],
            "prefix {cut} decodes to {head:?}, not a prefix of {kinds:?}"
        );
        let tail = &contents[cut..];
        if matches!(tail[0], 0x00 | 0xff)
            && matches!(
                head.last(),
                Some(
                    OperationKind::Reveal
                        | OperationKind::UpdateConsensusKey
                        | OperationKind::UpdateCompanionKey
                )
            )
        {
            continue;
        }
        assert_eq!(
            operation_kinds(tail).as_deref(),
            Ok(&kinds[head.len()..]),
            "cut at {cut}"
        );
    }
}

/// Fee, counter, gas and storage limits (zarith naturals).
#[derive(Debug, Default, Arbitrary)]
struct Header {
    fee: u64,
    counter: u64,
    gas: u32,
    storage: u32,
}

#[derive(Debug, Arbitrary)]
enum Dest {
    /// An implicit account (pkh tag 0..=4 and hash).
    Implicit(u8, [u8; 20]),
    /// An originated contract.
    Originated([u8; 20]),
    /// The source itself.
    Source,
}

#[derive(Debug, Arbitrary)]
enum Entrypoint {
    /// One of the numbered entrypoints 0..=9.
    Numbered(u8),
    /// A named entrypoint (up to 255 bytes).
    Named(Vec<u8>),
    /// A staking entrypoint by name.
    StakingName(u8),
}

/// A transaction's parameter value.
#[derive(Debug, Arbitrary)]
enum Param {
    Unit,
    Bytes(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Body {
    Reveal {
        pk_tag: u8,
        /// `None`: older protocols (no field); `Some(false)`: absent; `Some(true)`: present.
        proof: Option<bool>,
    },
    Transaction {
        amount: u64,
        dest: Dest,
        params: Option<(Entrypoint, Param)>,
    },
    Origination {
        balance: u64,
        delegate: Option<(u8, [u8; 20])>,
        code: Vec<u8>,
        storage: Vec<u8>,
    },
    Delegation {
        delegate: Option<(u8, [u8; 20])>,
    },
    Ballot {
        period: i32,
        vote: u8,
    },
    Proposals {
        period: i32,
        count: u8,
    },
    SmartRollupCement {
        rollup: [u8; 20],
    },
    DrainDelegate {
        consensus_key: (u8, [u8; 20]),
        delegate: (u8, [u8; 20]),
        destination: (u8, [u8; 20]),
    },
    FailingNoop {
        bytes: Vec<u8>,
    },
    IncreasePaidStorage {
        amount: i64,
        destination: [u8; 20],
    },
}

#[derive(Debug, Arbitrary)]
struct Op {
    source_tag: u8,
    source: [u8; 20],
    header: Header,
    body: Body,
}

const STAKING_KINDS: [OperationKind; 4] = [
    OperationKind::Stake,
    OperationKind::Unstake,
    OperationKind::FinalizeUnstake,
    OperationKind::SetDelegateParameters,
];

#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, b: u8) {
        self.0.push(b);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn n(&mut self, mut v: u64) {
        loop {
            let low = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(low);
                return;
            }
            self.0.push(low | 0x80);
        }
    }
    fn pkh(&mut self, tag: u8, hash: [u8; 20]) {
        self.u8(tag % 5);
        self.bytes(&hash);
    }
    /// Zarith integer (`Data_encoding.z`): continue | sign | 6 bits, then 7 bits a byte.
    fn z(&mut self, v: i64) {
        let mut m = v.unsigned_abs();
        let sign = if v < 0 { 0x40 } else { 0 };
        let low = (m & 0x3f) as u8;
        m >>= 6;
        if m == 0 {
            self.0.push(low | sign);
            return;
        }
        self.0.push(low | sign | 0x80);
        self.n(m);
    }
    fn len_prefixed(&mut self, b: &[u8]) {
        self.bytes(&(b.len() as u32).to_be_bytes());
        self.bytes(b);
    }
    fn manager(&mut self, tag: u8, source_tag: u8, source: [u8; 20], h: &Header) {
        self.u8(tag);
        self.pkh(source_tag, source);
        self.n(h.fee);
        self.n(h.counter);
        self.n(u64::from(h.gas));
        self.n(u64::from(h.storage));
    }
}

/// The ten entrypoints with tags of their own, by tag.
fn numbered(n: u8) -> DecodedEntrypoint {
    match n {
        0 => DecodedEntrypoint::Default,
        1 => DecodedEntrypoint::Root,
        2 => DecodedEntrypoint::Do,
        3 => DecodedEntrypoint::SetDelegate,
        4 => DecodedEntrypoint::RemoveDelegate,
        5 => DecodedEntrypoint::Deposit,
        6 => DecodedEntrypoint::Stake,
        7 => DecodedEntrypoint::Unstake,
        8 => DecodedEntrypoint::FinalizeUnstake,
        _ => DecodedEntrypoint::SetDelegateParameters,
    }
}

const NAMES: [&[u8]; 10] = [
    b"default",
    b"root",
    b"do",
    b"set_delegate",
    b"remove_delegate",
    b"deposit",
    b"stake",
    b"unstake",
    b"finalize_unstake",
    b"set_delegate_parameters",
];

/// The 21-byte public key hash the encoder writes for `(tag, hash)`.
fn pkh_of(tag: u8, hash: [u8; 20]) -> [u8; 21] {
    let mut pkh = [0u8; 21];
    pkh[0] = tag % 5;
    pkh[1..].copy_from_slice(&hash);
    pkh
}

/// A decoded non-transaction operation with only a kind and a source.
fn other(kind: OperationKind, source: Option<[u8; 21]>) -> Operation {
    Operation::Other(Fields {
        kind,
        source,
        destination: None,
        amount: None,
        delegate: None,
    })
}

/// Encodes one operation; returns what the decoder must give back for it.
fn encode(op: &Op, e: &mut Enc) -> Operation {
    let source: [u8; 21] = [op.source_tag % 5]
        .into_iter()
        .chain(op.source)
        .collect::<Vec<u8>>()
        .try_into()
        .expect("21 bytes");
    match &op.body {
        Body::Ballot { period, vote } => {
            e.u8(6);
            e.pkh(op.source_tag, op.source);
            e.bytes(&period.to_be_bytes());
            e.bytes(&[0x5a; 32]);
            e.u8(*vote);
            return other(OperationKind::Ballot, Some(source));
        }
        Body::Proposals { period, count } => {
            e.u8(5);
            e.pkh(op.source_tag, op.source);
            e.bytes(&period.to_be_bytes());
            let list = vec![0x33; 32 * usize::from(*count % 8)];
            e.len_prefixed(&list);
            return other(OperationKind::Proposals, Some(source));
        }
        Body::DrainDelegate {
            consensus_key,
            delegate,
            destination,
        } => {
            e.u8(9);
            e.pkh(consensus_key.0, consensus_key.1);
            e.pkh(delegate.0, delegate.1);
            e.pkh(destination.0, destination.1);
            return Operation::Other(Fields {
                kind: OperationKind::DrainDelegate,
                source: Some(pkh_of(consensus_key.0, consensus_key.1)),
                destination: Some(Contract::Implicit(pkh_of(destination.0, destination.1))),
                amount: None,
                delegate: Some(pkh_of(delegate.0, delegate.1)),
            });
        }
        Body::FailingNoop { bytes } => {
            e.u8(17);
            e.len_prefixed(bytes);
            return other(OperationKind::FailingNoop, None);
        }
        _ => {}
    }
    let tag = match &op.body {
        Body::Reveal { .. } => 107,
        Body::Transaction { .. } => 108,
        Body::Origination { .. } => 109,
        Body::SmartRollupCement { .. } => 202,
        Body::IncreasePaidStorage { .. } => 113,
        _ => 110,
    };
    e.manager(tag, op.source_tag, op.source, &op.header);
    match &op.body {
        Body::Reveal { pk_tag, proof } => {
            let tag = pk_tag % 5;
            e.u8(tag);
            e.bytes(&vec![0xcd; [32, 33, 33, 48, 1312][usize::from(tag)]]);
            match proof {
                None => {}
                Some(false) => e.u8(0x00),
                Some(true) => {
                    e.u8(0xff);
                    e.bytes(&96u32.to_be_bytes());
                    e.bytes(&[0x99; 96]);
                }
            }
            other(OperationKind::Reveal, Some(source))
        }
        Body::Transaction {
            amount,
            dest,
            params,
        } => {
            e.n(*amount);
            let destination = match dest {
                Dest::Implicit(t, h) => {
                    e.u8(0);
                    e.pkh(*t, *h);
                    Contract::Implicit(pkh_of(*t, *h))
                }
                Dest::Originated(h) => {
                    e.u8(1);
                    e.bytes(h);
                    e.u8(0);
                    Contract::Originated(*h)
                }
                Dest::Source => {
                    e.u8(0);
                    e.pkh(op.source_tag, op.source);
                    Contract::Implicit(source)
                }
            };
            let (entrypoint, unit_parameter) = match params {
                None => {
                    e.u8(0x00);
                    (DecodedEntrypoint::Default, true)
                }
                Some((entrypoint, param)) => {
                    e.u8(0xff);
                    let entrypoint = match entrypoint {
                        Entrypoint::Numbered(n) => {
                            e.u8(n % 10);
                            numbered(n % 10)
                        }
                        Entrypoint::Named(name) => {
                            let name = &name[..name.len().min(255)];
                            e.u8(255);
                            e.u8(name.len() as u8);
                            e.bytes(name);
                            match NAMES.iter().position(|n| *n == name) {
                                Some(i) => numbered(i as u8),
                                None => DecodedEntrypoint::Named(name.to_vec()),
                            }
                        }
                        Entrypoint::StakingName(i) => {
                            let i = 6 + usize::from(i % 4);
                            e.u8(255);
                            e.u8(NAMES[i].len() as u8);
                            e.bytes(NAMES[i]);
                            numbered(i as u8)
                        }
                    };
                    let value: &[u8] = match param {
                        Param::Unit => &MICHELSON_UNIT,
                        Param::Bytes(b) => b,
                    };
                    e.len_prefixed(value);
                    (entrypoint, value == MICHELSON_UNIT)
                }
            };
            Operation::Transaction(palisade::chain::tezos::operations::Transaction {
                source,
                amount: u128::from(*amount),
                destination,
                entrypoint,
                unit_parameter,
            })
        }
        Body::Origination {
            balance,
            delegate,
            code,
            storage,
        } => {
            e.n(*balance);
            match delegate {
                Some((t, h)) => {
                    e.u8(0xff);
                    e.pkh(*t, *h);
                }
                None => e.u8(0x00),
            }
            e.len_prefixed(code);
            e.len_prefixed(storage);
            Operation::Other(Fields {
                kind: OperationKind::Origination,
                source: Some(source),
                destination: None,
                amount: Some(i128::from(*balance)),
                delegate: delegate.map(|(t, h)| pkh_of(t, h)),
            })
        }
        Body::Delegation { delegate } => {
            match delegate {
                Some((t, h)) => {
                    e.u8(0xff);
                    e.pkh(*t, *h);
                }
                None => e.u8(0x00),
            }
            Operation::Other(Fields {
                kind: OperationKind::Delegation,
                source: Some(source),
                destination: None,
                amount: None,
                delegate: delegate.map(|(t, h)| pkh_of(t, h)),
            })
        }
        Body::SmartRollupCement { rollup } => {
            e.bytes(rollup);
            other(OperationKind::SmartRollupCement, Some(source))
        }
        Body::IncreasePaidStorage {
            amount,
            destination,
        } => {
            e.z(*amount);
            e.u8(1);
            e.bytes(destination);
            e.u8(0);
            Operation::Other(Fields {
                kind: OperationKind::IncreasePaidStorage,
                source: Some(source),
                destination: Some(Contract::Originated(*destination)),
                amount: Some(i128::from(*amount)),
                delegate: None,
            })
        }
        Body::Ballot { .. }
        | Body::Proposals { .. }
        | Body::DrainDelegate { .. }
        | Body::FailingNoop { .. } => unreachable!("encoded above"),
    }
}

/// The kind the protocol's rules give `op` signed by `signer` (module docs of
/// `chain::tezos::operations`, after octez's `apply_manager_operation`): staking only for
/// the signer's own account calling itself, `stake` with `Unit` and a non-zero amount,
/// `unstake` with `Unit`, `finalize_unstake` with `Unit` and no amount,
/// `set_delegate_parameters` with no amount.
fn expected_kind(op: &Operation, signer: Option<&[u8; 21]>) -> OperationKind {
    let t = match op {
        Operation::Other(f) => return f.kind,
        Operation::Unknown { .. } => return OperationKind::Unknown,
        Operation::Transaction(t) => t,
    };
    let own = signer == Some(&t.source) && t.destination == Contract::Implicit(t.source);
    let kind = match &t.entrypoint {
        DecodedEntrypoint::Stake if t.unit_parameter && t.amount > 0 => OperationKind::Stake,
        DecodedEntrypoint::Unstake if t.unit_parameter => OperationKind::Unstake,
        DecodedEntrypoint::FinalizeUnstake if t.unit_parameter && t.amount == 0 => {
            OperationKind::FinalizeUnstake
        }
        DecodedEntrypoint::SetDelegateParameters if t.amount == 0 => {
            OperationKind::SetDelegateParameters
        }
        _ => OperationKind::Transaction,
    };
    if own {
        kind
    } else {
        OperationKind::Transaction
    }
}

fn structured(ops: &[Op]) {
    if ops.is_empty() {
        return;
    }
    let mut e = Enc::default();
    let mut want = Vec::new();
    let mut last_start = 0;
    for op in ops {
        last_start = e.0.len();
        want.push(encode(op, &mut e));
    }
    let decoded = decode_operations(&e.0)
        .unwrap_or_else(|err| panic!("refused a well-formed batch {ops:?}: {err}"));
    assert_eq!(
        decoded, want,
        "decoded operations differ from the encoded ones"
    );
    let kinds: Vec<OperationKind> = want.iter().map(|o| expected_kind(o, None)).collect();
    assert_eq!(operation_kinds(&e.0), Ok(kinds));
    // Each operation's source as the signer, and a signer that is none of them.
    let mut signers: Vec<[u8; 21]> = want
        .iter()
        .filter_map(|o| match o {
            Operation::Transaction(t) => Some(t.source),
            _ => None,
        })
        .collect();
    signers.push([9; 21]);
    for signer in &signers {
        let want_kinds: Vec<OperationKind> = want
            .iter()
            .map(|o| expected_kind(o, Some(signer)))
            .collect();
        assert_eq!(
            operation_kinds_for(&e.0, signer),
            Ok(want_kinds),
            "signer {signer:?}, operations {want:?}"
        );
    }
    // Every cut strictly inside the last operation is refused, except right after a
    // reveal's public key (the optional proof field then looks absent).
    let reveal_without_proof_end = match &ops[ops.len() - 1].body {
        Body::Reveal { proof: Some(_), .. } => {
            let mut probe = Enc::default();
            encode(&ops[ops.len() - 1].clone_reveal_without_proof(), &mut probe);
            Some(last_start + probe.0.len())
        }
        _ => None,
    };
    for cut in last_start + 1..e.0.len() {
        if Some(cut) == reveal_without_proof_end {
            continue;
        }
        assert!(
            operation_kinds(&e.0[..cut]).is_err(),
            "cut at {cut} of {} inside the last operation {:?} accepted",
            e.0.len(),
            ops[ops.len() - 1]
        );
    }
}

impl Op {
    /// The same reveal with the optional proof field left out.
    fn clone_reveal_without_proof(&self) -> Op {
        let Body::Reveal { pk_tag, .. } = &self.body else {
            unreachable!("only called for reveals")
        };
        Op {
            source_tag: self.source_tag,
            source: self.source,
            header: Header {
                fee: self.header.fee,
                counter: self.header.counter,
                gas: self.header.gas,
                storage: self.header.storage,
            },
            body: Body::Reveal {
                pk_tag: *pk_tag,
                proof: None,
            },
        }
    }
}
