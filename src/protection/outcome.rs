//! What each [`ProtectionError`] means for the caller, in one place: the status a transport
//! answers, the metric label of a refusal (`eth2_slashingprotection_prevented_signings_total`)
//! and the reason the audit trail records. Refusals (the message would be unsafe to sign, or
//! cannot be ordered) are kept apart from faults (the database did not answer, an import
//! document is unusable): a refusal is a decision and is audited; a fault is not.
//! [`ProtectionError::is_unavailable`] names the one fault the database causes (503).

use super::{ProtectionError, Violation};

/// How a transport answers a [`ProtectionError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The HTTP status (the octez socket protocol and CLI use only [`Outcome::is_refusal`]):
    /// 412 slashable, other genesis, disabled key; 409 Tezos high watermark; 400 out of
    /// range or a bad import document; 503 database unavailable.
    pub status: u16,
    /// The `reason` label of a refused eth2 signing (`double_block`, `double_vote`,
    /// `surround_vote`, `source_after_target`, `high_watermark`, `low_watermark`,
    /// `genesis_mismatch`, `out_of_range`, `disabled`); `None` for faults.
    pub metric_label: Option<&'static str>,
    /// The reason recorded with a refused decision in the audit trail; `None` for faults,
    /// which are not decisions and leave no entry.
    pub audit_reason: Option<String>,
}

impl Outcome {
    /// Whether this is a refusal (a decision not to sign) rather than a fault.
    pub fn is_refusal(&self) -> bool {
        self.audit_reason.is_some()
    }
}

impl ProtectionError {
    /// The status, metric label and audit reason of this error.
    pub fn outcome(&self) -> Outcome {
        let refused = |status: u16, label: &'static str| Outcome {
            status,
            metric_label: Some(label),
            audit_reason: Some(self.to_string()),
        };
        let fault = |status: u16| Outcome {
            status,
            metric_label: None,
            audit_reason: None,
        };
        match self {
            ProtectionError::Slashable(v) => refused(412, violation_label(v)),
            ProtectionError::Watermark(_) => refused(409, "high_watermark"),
            ProtectionError::GenesisMismatch { .. } => refused(412, "genesis_mismatch"),
            ProtectionError::Disabled(_) => refused(412, "disabled"),
            ProtectionError::OutOfRange(_) => refused(400, "out_of_range"),
            ProtectionError::Import(_) => fault(400),
            ProtectionError::Unavailable { .. } => fault(503),
        }
    }

    /// Whether the database did not answer (the 503 fault of [`ProtectionError::outcome`]):
    /// what the protection database call metrics count as unavailable and the octez error id
    /// `palisade.tezos.database_unavailable` names. Nothing was recorded and nothing may be
    /// signed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ProtectionError::Unavailable { .. })
    }
}

/// The metric label of a slashing-protection violation.
fn violation_label(v: &Violation) -> &'static str {
    match v {
        Violation::DoubleProposal { .. } => "double_block",
        Violation::DoubleVote { .. } => "double_vote",
        Violation::SurroundsExisting { .. } | Violation::SurroundedByExisting { .. } => {
            "surround_vote"
        }
        Violation::SourceAfterTarget { .. } => "source_after_target",
        Violation::BlockAboveHighWatermark { .. }
        | Violation::AttestationAboveHighWatermark { .. } => "high_watermark",
        Violation::BlockBelowWatermark { .. }
        | Violation::SourceBelowWatermark { .. }
        | Violation::TargetBelowWatermark { .. } => "low_watermark",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_audited_and_faults_are_not() {
        let slashable = ProtectionError::Slashable(Violation::DoubleProposal { slot: 3 });
        let o = slashable.outcome();
        assert_eq!((o.status, o.metric_label), (412, Some("double_block")));
        assert!(o.is_refusal());
        let down = ProtectionError::unavailable("down").outcome();
        assert_eq!((down.status, down.metric_label), (503, None));
        assert!(!down.is_refusal());
        assert!(ProtectionError::unavailable("down").is_unavailable());
        assert!(!slashable.is_unavailable());
        let range = ProtectionError::OutOfRange("slot").outcome();
        assert_eq!(range.status, 400);
        assert!(range.is_refusal());
    }
}
