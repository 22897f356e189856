//! Ethereum slashing rules (EIP-3076 with full history): pure functions over the
//! records a store has fetched. No I/O here.
//!
//! The store passes every record that could conflict (same slot; same target; any
//! attestation that surrounds or is surrounded by the new one) and the validator's low
//! watermarks; the rules decide.

/// A signing root (32 bytes), or `None` where a record (e.g. an imported one) has none.
pub type SigningRoot = Option<[u8; 32]>;

/// A recorded block proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedBlock {
    /// Slot of the proposed block (a block record is identified by (validator, slot)).
    pub slot: u64,
    /// The block's 32-byte signing root; `None` where an imported record had none or two
    /// records at the slot (imported or recorded) disagreed: it then conflicts with every
    /// block at the slot.
    pub signing_root: SigningRoot,
}

/// A recorded attestation, by source and target epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedAttestation {
    /// Source (justified checkpoint) epoch of the attestation's FFG vote.
    pub source_epoch: u64,
    /// Target (checkpoint) epoch of the FFG vote; records are identified by (validator,
    /// target epoch, source epoch), so several sources may be recorded at one target.
    pub target_epoch: u64,
    /// The attestation's 32-byte signing root; `None` where an imported record had none or
    /// two records at the same (target, source) disagreed: it then conflicts with every
    /// attestation at that target.
    pub signing_root: SigningRoot,
}

/// Per-validator low watermarks. Palisade's own signing never sets them; imports (the minima
/// of the imported files, EIP-3076's import conditions) and pruning (the largest pruned slot,
/// source and target) do, and they only rise.
///
/// They are strict: at or below them nothing is signed, not even an exact repeat of a record.
/// EIP-3076 lets a repeat through; palisade does not, because a record below a watermark may
/// have been imported after the records the watermark stands for were pruned (or left behind
/// in a migration), and re-signing it could conflict with one of those that no check can see
/// any more. The model-based tests found both sequences (prune, import, repeat; and prune,
/// export, import into a fresh database, import, repeat: issue 13). The cost is liveness
/// only: a validator client that asks again for a duty at the edge of an imported history
/// gets 412 (the interchange suite's "complete" column allows this everywhere).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LowWatermarks {
    /// No block at or below this slot is signed.
    pub slot: Option<u64>,
    /// No attestation with a source below this epoch is signed.
    pub source_epoch: Option<u64>,
    /// No attestation with a target at or below this epoch is signed.
    pub target_epoch: Option<u64>,
}

impl LowWatermarks {
    /// From the nullable columns `slot, source_epoch, target_epoch` of a `low_watermarks` row.
    pub fn from_columns(c: [Option<i64>; 3]) -> Self {
        let u = |v: Option<i64>| v.map(|x| x as u64);
        LowWatermarks {
            slot: u(c[0]),
            source_epoch: u(c[1]),
            target_epoch: u(c[2]),
        }
    }

    /// The columns of a `low_watermarks` row, in [`LowWatermarks::from_columns`]'s order.
    pub fn columns(&self) -> [Option<i64>; 3] {
        let i = |v: Option<u64>| v.map(|x| x as i64);
        [i(self.slot), i(self.source_epoch), i(self.target_epoch)]
    }
}

/// A global stop set by the operator (chain rollbacks, migrations): nothing at or above
/// `slot` (blocks) or `epoch` (attestation source or target) is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HighWatermark {
    /// First refused epoch: an attestation whose source or target epoch is at or above it is
    /// refused. A decimal string in JSON.
    #[serde(with = "serde_utils::quoted_u64")]
    pub epoch: u64,
    /// First refused slot: a block at or above it is refused. A decimal string in JSON.
    #[serde(with = "serde_utils::quoted_u64")]
    pub slot: u64,
}

/// What to do with a message that is not slashable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// New message: record it, then sign.
    SignAndRecord,
    /// Exactly repeats a recorded message (same slot or target and same signing root): sign
    /// again without a new record.
    SignRepeat,
}

/// Why a message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A block at this slot is already recorded with another signing root, or with none
    /// (an imported record); signing would be a double proposal.
    #[error("double block proposal at slot {slot}: a different block is already signed there")]
    DoubleProposal {
        /// Slot of the refused block (and of the conflicting record).
        slot: u64,
    },
    /// The block's slot is at or below the validator's low slot watermark (strict: an exact
    /// repeat is refused too).
    #[error("block at slot {slot} is at or below the low slot watermark {watermark}")]
    BlockBelowWatermark {
        /// Slot of the refused block.
        slot: u64,
        /// The low slot watermark it is at or below.
        watermark: u64,
    },
    /// The attestation's source epoch is greater than its target epoch, which no valid FFG
    /// vote has (source == target is allowed).
    #[error(
        "attestation source epoch {source_epoch} is greater than its target epoch {target_epoch}"
    )]
    SourceAfterTarget {
        /// Source epoch of the refused attestation.
        source_epoch: u64,
        /// Target epoch of the refused attestation, below its source.
        target_epoch: u64,
    },
    /// A record at the same target epoch has another source epoch, another signing root, or
    /// no signing root: signing would be a double vote.
    #[error(
        "double vote at target epoch {target_epoch}: a different attestation is already signed there"
    )]
    DoubleVote {
        /// Target epoch shared by the refused attestation and the conflicting record.
        target_epoch: u64,
    },
    /// The attestation surrounds a recorded one (`source < existing_source` and
    /// `existing_target < target`): a surround vote.
    #[error(
        "surround vote: attestation {source_epoch}->{target_epoch} surrounds the signed attestation {existing_source}->{existing_target}"
    )]
    SurroundsExisting {
        /// Source epoch of the refused attestation.
        source_epoch: u64,
        /// Target epoch of the refused attestation.
        target_epoch: u64,
        /// Source epoch of the recorded attestation it surrounds.
        existing_source: u64,
        /// Target epoch of the recorded attestation it surrounds.
        existing_target: u64,
    },
    /// The attestation is surrounded by a recorded one (`existing_source < source` and
    /// `target < existing_target`): a surround vote.
    #[error(
        "surround vote: attestation {source_epoch}->{target_epoch} is surrounded by the signed attestation {existing_source}->{existing_target}"
    )]
    SurroundedByExisting {
        /// Source epoch of the refused attestation.
        source_epoch: u64,
        /// Target epoch of the refused attestation.
        target_epoch: u64,
        /// Source epoch of the recorded attestation that surrounds it.
        existing_source: u64,
        /// Target epoch of the recorded attestation that surrounds it.
        existing_target: u64,
    },
    /// The attestation's source epoch is below the validator's low source watermark (strict:
    /// an exact repeat is refused too).
    #[error(
        "attestation source epoch {source_epoch} is below the low source watermark {watermark}"
    )]
    SourceBelowWatermark {
        /// Source epoch of the refused attestation.
        source_epoch: u64,
        /// The low source watermark it is below.
        watermark: u64,
    },
    /// The block's slot is at or above the operator's high watermark slot.
    #[error("block at slot {slot} is at or above the high watermark slot {watermark}")]
    BlockAboveHighWatermark {
        /// Slot of the refused block.
        slot: u64,
        /// The high watermark slot ([`HighWatermark::slot`]) it is at or above.
        watermark: u64,
    },
    /// The attestation's source or target epoch is at or above the operator's high watermark
    /// epoch.
    #[error(
        "attestation {source_epoch}->{target_epoch} is at or above the high watermark epoch {watermark}"
    )]
    AttestationAboveHighWatermark {
        /// Source epoch of the refused attestation.
        source_epoch: u64,
        /// Target epoch of the refused attestation.
        target_epoch: u64,
        /// The high watermark epoch ([`HighWatermark::epoch`]).
        watermark: u64,
    },
    /// The attestation's target epoch is at or below the validator's low target watermark
    /// (strict: an exact repeat is refused too).
    #[error(
        "attestation target epoch {target_epoch} is at or below the low target watermark {watermark}"
    )]
    TargetBelowWatermark {
        /// Target epoch of the refused attestation.
        target_epoch: u64,
        /// The low target watermark it is at or below.
        watermark: u64,
    },
}

/// Checks a block's slot against the high watermark (refused at or above it).
///
/// # Errors
/// [`Violation::BlockAboveHighWatermark`].
pub fn check_block_high_watermark(
    high: Option<&HighWatermark>,
    slot: u64,
) -> Result<(), Violation> {
    match high {
        Some(h) if slot >= h.slot => Err(Violation::BlockAboveHighWatermark {
            slot,
            watermark: h.slot,
        }),
        _ => Ok(()),
    }
}

/// Checks an attestation's epochs against the high watermark (refused if either is at or above it).
///
/// # Errors
/// [`Violation::AttestationAboveHighWatermark`].
pub fn check_attestation_high_watermark(
    high: Option<&HighWatermark>,
    source_epoch: u64,
    target_epoch: u64,
) -> Result<(), Violation> {
    match high {
        Some(h) if source_epoch >= h.epoch || target_epoch >= h.epoch => {
            Err(Violation::AttestationAboveHighWatermark {
                source_epoch,
                target_epoch,
                watermark: h.epoch,
            })
        }
        _ => Ok(()),
    }
}

/// The low watermarks that keep every rule at least as strict after deleting the records
/// `pruned_blocks` and `pruned_attestations` (the largest pruned slot, source and target).
pub fn watermarks_after_pruning(
    existing: &LowWatermarks,
    pruned_blocks: &[SignedBlock],
    pruned_attestations: &[SignedAttestation],
) -> LowWatermarks {
    let max = |a: Option<u64>, b: Option<u64>| a.max(b);
    LowWatermarks {
        slot: max(existing.slot, pruned_blocks.iter().map(|b| b.slot).max()),
        source_epoch: max(
            existing.source_epoch,
            pruned_attestations.iter().map(|a| a.source_epoch).max(),
        ),
        target_epoch: max(
            existing.target_epoch,
            pruned_attestations.iter().map(|a| a.target_epoch).max(),
        ),
    }
}

/// Checks a block proposal at `slot` with `signing_root` against the record at the same slot
/// (if any) and the low slot watermark.
///
/// # Errors
/// [`Violation::DoubleProposal`] if a record at `slot` has another or no signing root;
/// [`Violation::BlockBelowWatermark`] if `slot` is at or below the low slot watermark (a
/// repeat too, see [`LowWatermarks`]).
pub fn check_block(
    same_slot: Option<&SignedBlock>,
    watermarks: &LowWatermarks,
    slot: u64,
    signing_root: [u8; 32],
) -> Result<Decision, Violation> {
    if let Some(existing) = same_slot {
        debug_assert_eq!(existing.slot, slot);
        if existing.signing_root != Some(signing_root) {
            return Err(Violation::DoubleProposal { slot });
        }
    }
    if let Some(w) = watermarks.slot
        && slot <= w
    {
        return Err(Violation::BlockBelowWatermark { slot, watermark: w });
    }
    Ok(if same_slot.is_some() {
        Decision::SignRepeat
    } else {
        Decision::SignAndRecord
    })
}

/// Checks an attestation `source_epoch -> target_epoch` with `signing_root` against the
/// records that may conflict with it and the low watermarks.
///
/// `candidates` may contain any records; only those at the same target or in a surround
/// relation matter.
///
/// # Errors
/// The first [`Violation`] found, in this order: source after target, double vote,
/// surround (either way), watermarks (which refuse repeats too, see [`LowWatermarks`]).
pub fn check_attestation(
    candidates: &[SignedAttestation],
    watermarks: &LowWatermarks,
    source_epoch: u64,
    target_epoch: u64,
    signing_root: [u8; 32],
) -> Result<Decision, Violation> {
    if source_epoch > target_epoch {
        return Err(Violation::SourceAfterTarget {
            source_epoch,
            target_epoch,
        });
    }
    let mut repeat = false;
    for r in candidates {
        if r.target_epoch == target_epoch {
            // An identical (target, root) is a repeat only if the source also matches;
            // a different source at the same target is a different vote.
            if r.signing_root == Some(signing_root) && r.source_epoch == source_epoch {
                repeat = true;
                continue;
            }
            return Err(Violation::DoubleVote { target_epoch });
        }
    }
    for r in candidates {
        if r.target_epoch == target_epoch {
            continue;
        }
        if source_epoch < r.source_epoch && r.target_epoch < target_epoch {
            return Err(Violation::SurroundsExisting {
                source_epoch,
                target_epoch,
                existing_source: r.source_epoch,
                existing_target: r.target_epoch,
            });
        }
        if r.source_epoch < source_epoch && target_epoch < r.target_epoch {
            return Err(Violation::SurroundedByExisting {
                source_epoch,
                target_epoch,
                existing_source: r.source_epoch,
                existing_target: r.target_epoch,
            });
        }
    }
    // At or below the watermarks not even a repeat is signed (see [`LowWatermarks`]).
    if let Some(w) = watermarks.source_epoch
        && source_epoch < w
    {
        return Err(Violation::SourceBelowWatermark {
            source_epoch,
            watermark: w,
        });
    }
    if let Some(w) = watermarks.target_epoch
        && target_epoch <= w
    {
        return Err(Violation::TargetBelowWatermark {
            target_epoch,
            watermark: w,
        });
    }
    if repeat {
        return Ok(Decision::SignRepeat);
    }
    Ok(Decision::SignAndRecord)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [0xaa; 32];
    const B: [u8; 32] = [0xbb; 32];
    const NONE: LowWatermarks = LowWatermarks {
        slot: None,
        source_epoch: None,
        target_epoch: None,
    };

    fn att(s: u64, t: u64, root: SigningRoot) -> SignedAttestation {
        SignedAttestation {
            source_epoch: s,
            target_epoch: t,
            signing_root: root,
        }
    }

    #[test]
    fn blocks() {
        let rec = SignedBlock {
            slot: 5,
            signing_root: Some(A),
        };
        assert_eq!(check_block(None, &NONE, 5, A), Ok(Decision::SignAndRecord));
        assert_eq!(
            check_block(Some(&rec), &NONE, 5, A),
            Ok(Decision::SignRepeat)
        );
        assert_eq!(
            check_block(Some(&rec), &NONE, 5, B),
            Err(Violation::DoubleProposal { slot: 5 })
        );
        let no_root = SignedBlock {
            slot: 5,
            signing_root: None,
        };
        assert_eq!(
            check_block(Some(&no_root), &NONE, 5, A),
            Err(Violation::DoubleProposal { slot: 5 })
        );
        let w = LowWatermarks {
            slot: Some(10),
            ..NONE
        };
        assert_eq!(
            check_block(None, &w, 10, A),
            Err(Violation::BlockBelowWatermark {
                slot: 10,
                watermark: 10
            })
        );
        assert_eq!(check_block(None, &w, 11, A), Ok(Decision::SignAndRecord));
        // not even an exact repeat at or below the watermark is signed
        let rec3 = SignedBlock {
            slot: 3,
            signing_root: Some(A),
        };
        assert!(matches!(
            check_block(Some(&rec3), &w, 3, A),
            Err(Violation::BlockBelowWatermark { .. })
        ));
        let rec12 = SignedBlock {
            slot: 12,
            signing_root: Some(A),
        };
        assert_eq!(
            check_block(Some(&rec12), &w, 12, A),
            Ok(Decision::SignRepeat)
        );
    }

    #[test]
    fn attestations() {
        let recs = [att(2, 3, Some(A))];
        assert_eq!(
            check_attestation(&[], &NONE, 4, 3, A),
            Err(Violation::SourceAfterTarget {
                source_epoch: 4,
                target_epoch: 3
            })
        );
        assert_eq!(
            check_attestation(&recs, &NONE, 2, 3, A),
            Ok(Decision::SignRepeat)
        );
        assert_eq!(
            check_attestation(&recs, &NONE, 2, 3, B),
            Err(Violation::DoubleVote { target_epoch: 3 })
        );
        assert_eq!(
            check_attestation(&recs, &NONE, 1, 3, A),
            Err(Violation::DoubleVote { target_epoch: 3 })
        );
        assert_eq!(
            check_attestation(&[att(2, 3, None)], &NONE, 2, 3, A),
            Err(Violation::DoubleVote { target_epoch: 3 })
        );
        assert!(matches!(
            check_attestation(&recs, &NONE, 1, 4, A),
            Err(Violation::SurroundsExisting { .. })
        ));
        let wide = [att(1, 10, Some(A))];
        assert!(matches!(
            check_attestation(&wide, &NONE, 2, 9, B),
            Err(Violation::SurroundedByExisting { .. })
        ));
        // same source, later target: fine; out of order but not conflicting: fine
        assert_eq!(
            check_attestation(&recs, &NONE, 2, 4, B),
            Ok(Decision::SignAndRecord)
        );
        assert_eq!(
            check_attestation(&[att(5, 6, Some(A))], &NONE, 1, 2, B),
            Ok(Decision::SignAndRecord)
        );
        // source == target is allowed
        assert_eq!(
            check_attestation(&[], &NONE, 3, 3, A),
            Ok(Decision::SignAndRecord)
        );
    }

    #[test]
    fn high_watermark_stops_at_and_above() {
        let h = HighWatermark {
            epoch: 10,
            slot: 320,
        };
        assert!(check_block_high_watermark(Some(&h), 319).is_ok());
        assert!(check_block_high_watermark(Some(&h), 320).is_err());
        assert!(check_attestation_high_watermark(Some(&h), 8, 9).is_ok());
        assert!(check_attestation_high_watermark(Some(&h), 9, 10).is_err());
        assert!(check_attestation_high_watermark(None, 9, 10).is_ok());
    }

    #[test]
    fn pruning_watermarks_keep_refusals() {
        // records (2,3) and (5,6) exist; (2,3) is pruned
        let pruned = [att(2, 3, Some(A))];
        let kept = [att(5, 6, Some(A))];
        let w = watermarks_after_pruning(&NONE, &[], &pruned);
        // everything refused before pruning is still refused with the kept records + watermarks
        for (s, t) in [(1, 4), (2, 3), (1, 3), (3, 3)] {
            let before = check_attestation(&[pruned[0], kept[0]], &NONE, s, t, B);
            let after = check_attestation(&kept, &w, s, t, B);
            assert!(before.is_err(), "({s},{t}) refused before");
            assert!(after.is_err(), "({s},{t}) still refused after pruning");
        }
    }

    #[test]
    fn attestation_watermarks() {
        let w = LowWatermarks {
            source_epoch: Some(5),
            target_epoch: Some(7),
            ..NONE
        };
        assert!(matches!(
            check_attestation(&[], &w, 4, 8, A),
            Err(Violation::SourceBelowWatermark { .. })
        ));
        assert!(matches!(
            check_attestation(&[], &w, 5, 7, A),
            Err(Violation::TargetBelowWatermark { .. })
        ));
        assert_eq!(
            check_attestation(&[], &w, 5, 8, A),
            Ok(Decision::SignAndRecord)
        );
        assert!(matches!(
            check_attestation(&[att(3, 6, Some(A))], &w, 3, 6, A),
            Err(Violation::SourceBelowWatermark { .. })
        ));
        assert_eq!(
            check_attestation(&[att(5, 8, Some(A))], &w, 5, 8, A),
            Ok(Decision::SignRepeat)
        );
    }

    #[test]
    fn no_repeat_at_or_below_the_watermarks() {
        // Pruned (2,8); an import later brought (4,8) with root A: re-signing it would be a
        // double vote against the deleted (2,8), so nothing at or below the watermarks is
        // signed, repeat or not.
        let w = LowWatermarks {
            source_epoch: Some(2),
            target_epoch: Some(8),
            slot: Some(9),
        };
        assert!(matches!(
            check_attestation(&[att(4, 8, Some(A))], &w, 4, 8, A),
            Err(Violation::TargetBelowWatermark { .. })
        ));
        assert!(matches!(
            check_attestation(&[att(1, 9, Some(A))], &w, 1, 9, A),
            Err(Violation::SourceBelowWatermark { .. })
        ));
        let rec = SignedBlock {
            slot: 9,
            signing_root: Some(A),
        };
        assert!(matches!(
            check_block(Some(&rec), &w, 9, A),
            Err(Violation::BlockBelowWatermark { .. })
        ));
        assert_eq!(
            check_attestation(&[], &w, 2, 9, A),
            Ok(Decision::SignAndRecord)
        );
        assert_eq!(
            check_attestation(&[att(2, 9, Some(A))], &w, 2, 9, A),
            Ok(Decision::SignRepeat)
        );
    }
}
