//! The reference model of palisade's protection invariant, written from the consensus specs
//! and independent of `palisade::protection::rules` (it shares no code and no types with it).
//!
//! Per validator it keeps every message palisade released and every record that was
//! imported, and answers one question: would releasing this message now be slashable against
//! any of them? "Slashable" is the consensus-spec definition
//! (`is_slashable_attestation_data`, and `process_proposer_slashing`'s "same slot, different
//! header"):
//! - two blocks at the same slot whose signing roots differ;
//! - two attestations at the same target epoch whose data differ (double vote);
//! - one attestation whose source is earlier and whose target is later than the other's
//!   (surround vote, either way round).
//!
//! A record without a signing root (an import may carry one) stands for an unknown message:
//! it conflicts with every other message at the same slot or target epoch.
//!
//! The model knows nothing of low watermarks, pruning or high watermarks: those are palisade's
//! means, not the invariant. Pruning, disabling, restarts and migrations do not change what was
//! released, so they leave the model as it is.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;

/// One message as the model sees it. `root` is the 32-byte signing root, `None` when unknown.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Msg {
    Block {
        slot: u64,
        root: Option<[u8; 32]>,
    },
    Attestation {
        source: u64,
        target: u64,
        root: Option<[u8; 32]>,
    },
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |root: &Option<[u8; 32]>| match root {
            Some(r) => format!("{:02x}{:02x}", r[0], r[1]),
            None => "--".to_string(),
        };
        match self {
            Msg::Block { slot, root } => write!(f, "block({slot}, {})", r(root)),
            Msg::Attestation {
                source,
                target,
                root,
            } => write!(f, "att({source}->{target}, {})", r(root)),
        }
    }
}

/// Whether releasing both `a` and `b` would get the validator slashed.
pub fn slashable(a: &Msg, b: &Msg) -> bool {
    let same_message = |x: &Option<[u8; 32]>, y: &Option<[u8; 32]>| x.is_some() && x == y;
    match (a, b) {
        (Msg::Block { slot: s1, root: r1 }, Msg::Block { slot: s2, root: r2 }) => {
            s1 == s2 && !same_message(r1, r2)
        }
        (
            Msg::Attestation {
                source: s1,
                target: t1,
                root: r1,
            },
            Msg::Attestation {
                source: s2,
                target: t2,
                root: r2,
            },
        ) => {
            let double = t1 == t2 && !(s1 == s2 && same_message(r1, r2));
            let surround = (s1 < s2 && t2 < t1) || (s2 < s1 && t1 < t2);
            double || surround
        }
        _ => false,
    }
}

/// Everything released or imported, per validator (the key is any validator identifier).
#[derive(Default, Clone)]
pub struct Model {
    known: HashMap<u32, Vec<Msg>>,
}

impl Model {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// The known messages of validator `v` with which `m` would be slashable.
    pub fn conflicts(&self, v: u32, m: &Msg) -> Vec<Msg> {
        self.known
            .get(&v)
            .map(|ms| ms.iter().filter(|k| slashable(k, m)).copied().collect())
            .unwrap_or_default()
    }

    /// Records that palisade released `m` for `v`; panics (with the conflicting messages) if
    /// that release broke the invariant. `context` is printed with the panic (the seed and the
    /// steps so far), so a failure can be replayed.
    pub fn released(&mut self, v: u32, m: Msg, context: &dyn Fn() -> String) {
        let c = self.conflicts(v, &m);
        assert!(
            c.is_empty(),
            "INVARIANT BROKEN: validator {v}: released {m:?}, slashable against {c:?}\n{}",
            context()
        );
        let ms = self.known.entry(v).or_default();
        if !ms.contains(&m) {
            ms.push(m);
        }
    }

    /// Records that `m` was imported for `v` (it may itself conflict with what is known: an
    /// import of slashable data only makes palisade stricter).
    pub fn imported(&mut self, v: u32, m: Msg) {
        let ms = self.known.entry(v).or_default();
        if !ms.contains(&m) {
            ms.push(m);
        }
    }

    /// Every known message of `v`.
    pub fn known(&self, v: u32) -> &[Msg] {
        self.known.get(&v).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The highest slot and the highest source and target epochs known for `v` (blocks,
    /// attestations), for choosing a message that every correct signer must sign.
    pub fn maxima(&self, v: u32) -> (Option<u64>, Option<u64>, Option<u64>) {
        let (mut slot, mut source, mut target) = (None, None, None);
        for m in self.known(v) {
            match *m {
                Msg::Block { slot: s, .. } => slot = slot.max(Some(s)),
                Msg::Attestation {
                    source: s,
                    target: t,
                    ..
                } => {
                    source = source.max(Some(s));
                    target = target.max(Some(t));
                }
            }
        }
        (slot, source, target)
    }
}
