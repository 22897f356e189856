//! Tezos high watermarks (octez-signer semantics), pure: no I/O.
//!
//! One mark per (chain id, public key hash, kind) with kind in {block, preattestation,
//! attestation}. A request at (level, round) is signed only if it is strictly above the mark,
//! or if its bytes are identical to the bytes last signed at the mark; then the stored
//! signature is returned again instead of a new one.

use crate::chain::tezos::payload::ConsensusKind;

/// The mark stored for one (chain id, pkh, kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TezosMark {
    /// Block level of the last signed message.
    pub level: u32,
    /// Round of the last signed message.
    pub round: u32,
    /// blake2b-256 of the bytes last signed (magic byte included).
    pub payload_hash: [u8; 32],
    /// The signature released for them (raw bytes: 64, 96 for BLS, 2420 for ML-DSA-44).
    pub signature: Vec<u8>,
}

/// One consensus signing request to check against the mark and record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TezosWatermarkRequest {
    /// Chain id (4 bytes, from the payload at offset 1).
    pub chain_id: [u8; 4],
    /// Baker's public key hash, base58 (`tz1…`–`tz5…`).
    pub pkh: String,
    /// Block, preattestation or attestation.
    pub kind: ConsensusKind,
    /// Level from the payload.
    pub level: u32,
    /// Round from the payload.
    pub round: u32,
    /// blake2b-256 of the bytes to sign.
    pub payload_hash: [u8; 32],
    /// The signature computed for them, released only if the mark allows it.
    pub signature: Vec<u8>,
}

/// What the mark allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatermarkDecision {
    /// Above the mark: record the new mark and release the new signature.
    SignAndRecord,
    /// Identical bytes at the mark: release the stored signature; nothing changes.
    Repeat(Vec<u8>),
}

/// A request at or below the high watermark with other bytes (HTTP 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{kind} at level {level} round {round} is not above the high watermark (level {mark_level}, round {mark_round}) for {pkh} on chain {chain}"
)]
pub struct WatermarkViolation {
    /// `block`, `preattestation` or `attestation`.
    pub kind: &'static str,
    /// Baker's public key hash, base58 (`tz1…`–`tz5…`).
    pub pkh: String,
    /// Chain id, base58 (`Net…`).
    pub chain: String,
    /// Level of the refused request.
    pub level: u32,
    /// Round of the refused request.
    pub round: u32,
    /// Level of the high watermark (the last signed message of this kind).
    pub mark_level: u32,
    /// Round of the high watermark; the request's (level, round) is at or below
    /// (`mark_level`, `mark_round`) in lexicographic order.
    pub mark_round: u32,
}

/// Decides a request against the stored mark (`None` when nothing was signed yet).
///
/// # Errors
/// [`WatermarkViolation`] when (level, round) is not strictly above the mark and the bytes
/// differ from those signed at the mark.
pub fn check(
    mark: Option<&TezosMark>,
    request: &TezosWatermarkRequest,
) -> Result<WatermarkDecision, WatermarkViolation> {
    let Some(mark) = mark else {
        return Ok(WatermarkDecision::SignAndRecord);
    };
    let requested = (request.level, request.round);
    let marked = (mark.level, mark.round);
    if requested > marked {
        Ok(WatermarkDecision::SignAndRecord)
    } else if requested == marked && request.payload_hash == mark.payload_hash {
        Ok(WatermarkDecision::Repeat(mark.signature.clone()))
    } else {
        Err(WatermarkViolation {
            kind: request.kind.as_str(),
            pkh: request.pkh.clone(),
            chain: crate::chain::tezos::base58::encode_chain_id(request.chain_id),
            level: request.level,
            round: request.round,
            mark_level: mark.level,
            mark_round: mark.round,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(level: u32, round: u32, hash: u8) -> TezosWatermarkRequest {
        TezosWatermarkRequest {
            chain_id: [0x7a, 0x06, 0xa7, 0x70],
            pkh: "tz1RvhdZ5pcjD19vCCK9PgZpnmErTba3dsBs".into(),
            kind: ConsensusKind::Attestation,
            level,
            round,
            payload_hash: [hash; 32],
            signature: vec![hash; 64],
        }
    }

    fn mark(level: u32, round: u32, hash: u8) -> TezosMark {
        TezosMark {
            level,
            round,
            payload_hash: [hash; 32],
            signature: vec![0xee; 64],
        }
    }

    #[test]
    fn first_request_is_signed() {
        assert_eq!(
            check(None, &request(0, 0, 1)),
            Ok(WatermarkDecision::SignAndRecord)
        );
    }

    #[test]
    fn strictly_above_is_signed() {
        let m = mark(10, 2, 1);
        for (level, round) in [(10, 3), (11, 0), (11, 2), (u32::MAX, 0)] {
            assert_eq!(
                check(Some(&m), &request(level, round, 9)),
                Ok(WatermarkDecision::SignAndRecord),
                "({level}, {round})"
            );
        }
    }

    #[test]
    fn at_or_below_with_other_bytes_is_refused() {
        let m = mark(10, 2, 1);
        for (level, round) in [(10, 2), (10, 1), (10, 0), (9, 5), (0, 0)] {
            let err = check(Some(&m), &request(level, round, 9)).unwrap_err();
            assert_eq!((err.mark_level, err.mark_round), (10, 2));
            assert!(err.to_string().contains("NetXdQprcVkpaWU"), "{err}");
        }
    }

    #[test]
    fn identical_bytes_at_the_mark_repeat_the_stored_signature() {
        let m = mark(10, 2, 1);
        assert_eq!(
            check(Some(&m), &request(10, 2, 1)),
            Ok(WatermarkDecision::Repeat(vec![0xee; 64]))
        );
        // Identical bytes below the mark are not the last signed ones: refused.
        assert!(check(Some(&m), &request(10, 1, 1)).is_err());
    }
}
