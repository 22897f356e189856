//! Web3Signer eth2 signing requests (`POST /api/v1/eth2/sign/{identifier}`) and the
//! signing root palisade recomputes from each typed body.
//!
//! The request's own `signingRoot` is never trusted: it is only cross-checked.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tree_hash::TreeHash;

use super::containers::*;
use super::network::{ForkName, NetworkConfig, PresetBase};
use super::signing::{compute_domain, compute_signing_root, domain, fork_version_at};

/// Why a request body cannot be signed. Every variant is a client error (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// The body is not JSON (the parser's message).
    #[error("request body is not valid JSON: {0}")]
    NotJson(String),
    /// The body has no `type` field.
    #[error("missing field `type`")]
    MissingType,
    /// `type` is not one of the Web3Signer eth2 signing types (`BLOCK_V2`, `ATTESTATION`, …).
    #[error("unknown signing type `{0}`")]
    UnknownType(String),
    /// A field is missing or malformed for the `type` (wrong hex length, non-decimal
    /// `uint64`, a list over its SSZ limit, an unknown block `version`, no `fork_info`).
    #[error("invalid field `{path}`: {reason}")]
    InvalidField {
        /// Dotted JSON path of the field (`fork_info.fork.epoch`, `beacon_block.block.slot`).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request's `signingRoot` differs from the signing root computed from the body.
    #[error(
        "signingRoot {sent} does not match the signing root {computed} computed from the request"
    )]
    SigningRootMismatch {
        /// The `signingRoot` sent, `0x`-hex (32 bytes).
        sent: String,
        /// The signing root palisade computed, `0x`-hex (32 bytes).
        computed: String,
    },
}

/// The slashable part of a message: what slashing protection checks and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectedMessage {
    /// A block proposal at `slot`.
    Block {
        /// Slot of the proposed block.
        slot: u64,
    },
    /// An attestation from `source` to `target` epoch.
    Attestation {
        /// Source epoch (`AttestationData.source.epoch`).
        source: u64,
        /// Target epoch (`AttestationData.target.epoch`).
        target: u64,
    },
}

/// What to sign: the 32-byte signing root, and for blocks and attestations the data that
/// slashing protection must check against the genesis validators root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningPlan {
    /// The request's `type`, as sent (for logs and metrics).
    pub kind: &'static str,
    /// `compute_signing_root(object, domain)`.
    pub signing_root: Root,
    /// Present for BLOCK, BLOCK_V2 and ATTESTATION.
    pub protected: Option<(ProtectedMessage, Root)>,
    /// The message's slot, when it has one (blocks, attestations, aggregates, sync committee
    /// messages), for the audit trail.
    pub slot: Option<u64>,
    /// The message's epoch (an attestation's or aggregate's target epoch, a RANDAO reveal's
    /// or voluntary exit's epoch), for the audit trail.
    pub epoch: Option<u64>,
}

#[derive(Deserialize)]
struct Common {
    #[serde(default)]
    fork_info: Option<ForkInfo>,
    #[serde(rename = "signingRoot", alias = "signing_root", default)]
    signing_root: Option<Root>,
}

/// `fork_info` of a request.
#[derive(Debug, Clone, Deserialize)]
pub struct ForkInfo {
    /// The fork at the message's epoch: previous and current fork version, and the epoch
    /// between them.
    pub fork: Fork,
    /// 32-byte genesis validators root of the chain, part of every domain.
    pub genesis_validators_root: Root,
}

#[derive(Deserialize)]
struct BeaconBlockV2 {
    version: String,
    #[serde(default)]
    block: Option<serde_json::Value>,
    #[serde(default)]
    block_header: Option<BeaconBlockHeader>,
}

/// All signing types of Web3Signer's eth2 API.
pub const SIGNING_TYPES: [&str; 13] = [
    "BLOCK",
    "BLOCK_V2",
    "ATTESTATION",
    "AGGREGATION_SLOT",
    "AGGREGATE_AND_PROOF",
    "AGGREGATE_AND_PROOF_V2",
    "DEPOSIT",
    "RANDAO_REVEAL",
    "VOLUNTARY_EXIT",
    "SYNC_COMMITTEE_MESSAGE",
    "SYNC_COMMITTEE_SELECTION_PROOF",
    "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF",
    "VALIDATOR_REGISTRATION",
];

fn field<T: DeserializeOwned>(body: &serde_json::Value, name: &str) -> Result<T, RequestError> {
    let value = body.get(name).ok_or_else(|| RequestError::InvalidField {
        path: name.to_string(),
        reason: "missing".to_string(),
    })?;
    typed(value, name)
}

fn typed<T: DeserializeOwned>(value: &serde_json::Value, prefix: &str) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{inner}")
        };
        RequestError::InvalidField {
            path,
            reason: e.into_inner().to_string(),
        }
    })
}

fn require_fork_info(common: &Common) -> Result<&ForkInfo, RequestError> {
    common
        .fork_info
        .as_ref()
        .ok_or_else(|| RequestError::InvalidField {
            path: "fork_info".to_string(),
            reason: "missing".to_string(),
        })
}

fn domain_at(fork_info: &ForkInfo, domain_type: DomainType, epoch: u64) -> Root {
    compute_domain(
        domain_type,
        fork_version_at(&fork_info.fork, epoch),
        fork_info.genesis_validators_root,
    )
}

fn epoch_of(slot: u64, network: &NetworkConfig) -> u64 {
    slot / network.slots_per_epoch
}

/// Runs `$body` with `$p` bound to the [`Preset`] type of `$network`'s `PRESET_BASE`.
macro_rules! with_preset {
    ($network:expr, $p:ident => $body:expr) => {
        match $network.preset {
            PresetBase::Minimal => {
                type $p = MinimalPreset;
                $body
            }
            PresetBase::Mainnet | PresetBase::Gnosis => {
                type $p = MainnetPreset;
                $body
            }
        }
    };
}

/// The request's `type` when it is one of [`SIGNING_TYPES`], before anything else is
/// parsed (for the request metrics of a body that [`plan`] then refuses).
pub fn signing_type(body: &serde_json::Value) -> Option<&'static str> {
    let name = body.get("type")?.as_str()?;
    SIGNING_TYPES.iter().find(|t| **t == name).copied()
}

/// Parses one signing request body and computes its signing root.
///
/// `body` is the JSON request; `network` supplies the genesis fork version
/// (VALIDATOR_REGISTRATION), the Capella version for exits from Deneb on (EIP-7044) and
/// `SLOTS_PER_EPOCH`. Blocks use the fork at the slot's epoch, attestations and aggregates
/// the fork at the target epoch, DEPOSIT the request's `genesis_fork_version` with a zero
/// genesis validators root.
///
/// # Errors
/// [`RequestError`] naming the field for a malformed body, an unknown `type`, or a
/// `signingRoot` that differs from the computed one.
pub fn plan(
    body: &serde_json::Value,
    network: &NetworkConfig,
) -> Result<SigningPlan, RequestError> {
    let kind_str = body
        .get("type")
        .ok_or(RequestError::MissingType)?
        .as_str()
        .ok_or_else(|| RequestError::InvalidField {
            path: "type".into(),
            reason: "must be a string".into(),
        })?;
    let kind = SIGNING_TYPES
        .iter()
        .find(|t| **t == kind_str)
        .copied()
        .ok_or_else(|| RequestError::UnknownType(kind_str.to_string()))?;
    let common: Common = typed(body, "").map_err(|e| match e {
        RequestError::InvalidField { path, reason } => RequestError::InvalidField {
            path: path.trim_start_matches('.').to_string(),
            reason,
        },
        other => other,
    })?;

    // (slot, epoch) of the message, for the audit trail.
    let mut position: (Option<u64>, Option<u64>) = (None, None);
    let (signing_root, protected) = match kind {
        "BLOCK" => {
            let fi = require_fork_info(&common)?;
            let block: BeaconBlock<BeaconBlockBodyPhase0> = field(body, "block")?;
            position = (Some(block.slot), Some(epoch_of(block.slot, network)));
            block_root(fi, &block.header(), network)
        }
        "BLOCK_V2" => {
            let fi = require_fork_info(&common)?;
            let bb: BeaconBlockV2 = field(body, "beacon_block")?;
            let version =
                ForkName::parse(&bb.version).ok_or_else(|| RequestError::InvalidField {
                    path: "beacon_block.version".into(),
                    reason: format!("unknown fork `{}`", bb.version),
                })?;
            let header = match (bb.block_header, bb.block) {
                (Some(header), _) => header,
                (None, Some(block)) => match version {
                    ForkName::Phase0 => {
                        typed::<BeaconBlock<BeaconBlockBodyPhase0>>(&block, "beacon_block.block")?
                            .header()
                    }
                    ForkName::Altair => with_preset!(network, P => {
                        typed::<BeaconBlock<BeaconBlockBodyAltair<P>>>(
                            &block,
                            "beacon_block.block",
                        )?
                        .header()
                    }),
                    _ => {
                        return Err(RequestError::InvalidField {
                            path: "beacon_block.block_header".into(),
                            reason: format!(
                                "missing: from BELLATRIX on ({}) send block_header",
                                bb.version
                            ),
                        });
                    }
                },
                (None, None) => {
                    return Err(RequestError::InvalidField {
                        path: "beacon_block.block_header".into(),
                        reason: "missing (neither block nor block_header given)".into(),
                    });
                }
            };
            position = (Some(header.slot), Some(epoch_of(header.slot, network)));
            block_root(fi, &header, network)
        }
        "ATTESTATION" => {
            let fi = require_fork_info(&common)?;
            let data: AttestationData = field(body, "attestation")?;
            position = (Some(data.slot), Some(data.target.epoch));
            let root = compute_signing_root(
                data.tree_hash_root(),
                domain_at(fi, domain::BEACON_ATTESTER, data.target.epoch),
            );
            let msg = ProtectedMessage::Attestation {
                source: data.source.epoch,
                target: data.target.epoch,
            };
            (root, Some((msg, fi.genesis_validators_root)))
        }
        "AGGREGATION_SLOT" => {
            let fi = require_fork_info(&common)?;
            let a: AggregationSlot = field(body, "aggregation_slot")?;
            position = (Some(a.slot), Some(epoch_of(a.slot, network)));
            let d = domain_at(fi, domain::SELECTION_PROOF, epoch_of(a.slot, network));
            (compute_signing_root(a.slot.tree_hash_root(), d), None)
        }
        "AGGREGATE_AND_PROOF" => {
            let fi = require_fork_info(&common)?;
            let a: AggregateAndProof = field(body, "aggregate_and_proof")?;
            position = (
                Some(a.aggregate.data.slot),
                Some(a.aggregate.data.target.epoch),
            );
            let d = domain_at(
                fi,
                domain::AGGREGATE_AND_PROOF,
                a.aggregate.data.target.epoch,
            );
            (compute_signing_root(a.tree_hash_root(), d), None)
        }
        "AGGREGATE_AND_PROOF_V2" => {
            let fi = require_fork_info(&common)?;
            let raw: serde_json::Value = field(body, "aggregate_and_proof")?;
            // Web3Signer wraps the object as {version, data}; accept a bare object too and
            // tell the two container shapes apart by `committee_bits`.
            let (version, data, path) = match (raw.get("version"), raw.get("data")) {
                (Some(v), Some(d)) => {
                    let name = v.as_str().unwrap_or_default();
                    let fork = ForkName::parse(name).ok_or_else(|| RequestError::InvalidField {
                        path: "aggregate_and_proof.version".into(),
                        reason: format!("unknown fork `{name}`"),
                    })?;
                    (Some(fork), d.clone(), "aggregate_and_proof.data")
                }
                _ => (None, raw.clone(), "aggregate_and_proof"),
            };
            let electra = match version {
                Some(f) => f >= ForkName::Electra,
                None => data
                    .get("aggregate")
                    .and_then(|a| a.get("committee_bits"))
                    .is_some(),
            };
            let (object_root, target) = if electra {
                let (root, data) = with_preset!(network, P => {
                    let a: AggregateAndProofElectra<P> = typed(&data, path)?;
                    (a.tree_hash_root(), a.aggregate.data)
                });
                position = (Some(data.slot), None);
                (root, data.target.epoch)
            } else {
                let a: AggregateAndProof = typed(&data, path)?;
                position = (Some(a.aggregate.data.slot), None);
                (a.tree_hash_root(), a.aggregate.data.target.epoch)
            };
            position.1 = Some(target);
            let d = domain_at(fi, domain::AGGREGATE_AND_PROOF, target);
            (compute_signing_root(object_root, d), None)
        }
        "DEPOSIT" => {
            let dep: DepositRequest = field(body, "deposit")?;
            let message = DepositMessage {
                pubkey: dep.pubkey,
                withdrawal_credentials: dep.withdrawal_credentials,
                amount: dep.amount,
            };
            let d = compute_domain(domain::DEPOSIT, dep.genesis_fork_version, Root::ZERO);
            (compute_signing_root(message.tree_hash_root(), d), None)
        }
        "RANDAO_REVEAL" => {
            let fi = require_fork_info(&common)?;
            let r: RandaoReveal = field(body, "randao_reveal")?;
            position = (None, Some(r.epoch));
            let d = domain_at(fi, domain::RANDAO, r.epoch);
            (compute_signing_root(r.epoch.tree_hash_root(), d), None)
        }
        "VOLUNTARY_EXIT" => {
            let fi = require_fork_info(&common)?;
            let exit: VoluntaryExit = field(body, "voluntary_exit")?;
            position = (None, Some(exit.epoch));
            // EIP-7044: from Deneb on, exits are signed with the Capella fork version.
            let state_fork = network.fork_of_version(&fi.fork.current_version);
            let d = match (state_fork, network.fork_version(ForkName::Capella)) {
                (Some(f), Some(capella)) if f >= ForkName::Deneb => {
                    compute_domain(domain::VOLUNTARY_EXIT, capella, fi.genesis_validators_root)
                }
                _ => domain_at(fi, domain::VOLUNTARY_EXIT, exit.epoch),
            };
            (compute_signing_root(exit.tree_hash_root(), d), None)
        }
        "SYNC_COMMITTEE_MESSAGE" => {
            let fi = require_fork_info(&common)?;
            let m: SyncCommitteeMessageRequest = field(body, "sync_committee_message")?;
            position = (Some(m.slot), Some(epoch_of(m.slot, network)));
            let d = domain_at(fi, domain::SYNC_COMMITTEE, epoch_of(m.slot, network));
            (compute_signing_root(m.beacon_block_root, d), None)
        }
        "SYNC_COMMITTEE_SELECTION_PROOF" => {
            let fi = require_fork_info(&common)?;
            let s: SyncAggregatorSelectionData = field(body, "sync_aggregator_selection_data")?;
            position = (Some(s.slot), Some(epoch_of(s.slot, network)));
            let d = domain_at(
                fi,
                domain::SYNC_COMMITTEE_SELECTION_PROOF,
                epoch_of(s.slot, network),
            );
            (compute_signing_root(s.tree_hash_root(), d), None)
        }
        "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF" => {
            let fi = require_fork_info(&common)?;
            let (object_root, slot) = with_preset!(network, P => {
                let c: ContributionAndProof<P> = field(body, "contribution_and_proof")?;
                (c.tree_hash_root(), c.contribution.slot)
            });
            position = (Some(slot), Some(epoch_of(slot, network)));
            let d = domain_at(fi, domain::CONTRIBUTION_AND_PROOF, epoch_of(slot, network));
            (compute_signing_root(object_root, d), None)
        }
        "VALIDATOR_REGISTRATION" => {
            let r: ValidatorRegistration = field(body, "validator_registration")?;
            let d = compute_domain(
                domain::APPLICATION_BUILDER,
                network.genesis_fork_version,
                Root::ZERO,
            );
            (compute_signing_root(r.tree_hash_root(), d), None)
        }
        _ => unreachable!("SIGNING_TYPES is exhaustive"),
    };

    if let Some(sent) = common.signing_root
        && sent != signing_root
    {
        return Err(RequestError::SigningRootMismatch {
            sent: format!("{sent}"),
            computed: format!("{signing_root}"),
        });
    }
    Ok(SigningPlan {
        kind,
        signing_root,
        protected,
        slot: position.0,
        epoch: position.1,
    })
}

fn block_root(
    fi: &ForkInfo,
    header: &BeaconBlockHeader,
    network: &NetworkConfig,
) -> (Root, Option<(ProtectedMessage, Root)>) {
    let d = domain_at(fi, domain::BEACON_PROPOSER, epoch_of(header.slot, network));
    let root = compute_signing_root(header.tree_hash_root(), d);
    (
        root,
        Some((
            ProtectedMessage::Block { slot: header.slot },
            fi.genesis_validators_root,
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mainnet() -> NetworkConfig {
        NetworkConfig::from_name_or_path("mainnet").unwrap()
    }

    fn fork_info() -> serde_json::Value {
        json!({"fork": {"previous_version": "0x00000000", "current_version": "0x00000000", "epoch": "0"},
               "genesis_validators_root": format!("0x{}", "11".repeat(32))})
    }

    /// A contribution's `aggregation_bits` have `SYNC_COMMITTEE_SIZE / 4` bits: 8 under the
    /// minimal preset, 128 under mainnet; the other preset's length is refused, naming the
    /// field.
    #[test]
    fn the_preset_sizes_contribution_bits() {
        let minimal = NetworkConfig::from_name_or_path("minimal").unwrap();
        let sig = format!("0x{}", "00".repeat(96));
        let body = |bytes: usize| {
            json!({"type": "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF", "fork_info": fork_info(),
                "contribution_and_proof": {"aggregator_index": "1", "selection_proof": sig,
                  "contribution": {"slot": "9", "beacon_block_root": format!("0x{}", "22".repeat(32)),
                    "subcommittee_index": "0", "aggregation_bits": format!("0x{}", "ff".repeat(bytes)),
                    "signature": sig}}})
        };
        assert!(plan(&body(1), &minimal).is_ok());
        assert!(plan(&body(16), &mainnet()).is_ok());
        for (bytes, network) in [(16, &minimal), (1, &mainnet())] {
            match plan(&body(bytes), network).unwrap_err() {
                RequestError::InvalidField { path, .. } => assert!(
                    path.starts_with("contribution_and_proof.contribution"),
                    "{path}"
                ),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn errors_name_the_field() {
        let body = json!({"type": "ATTESTATION", "fork_info": fork_info(),
            "attestation": {"slot": "1", "index": "0", "beacon_block_root": "0x00",
              "source": {"epoch": "0", "root": format!("0x{}", "00".repeat(32))},
              "target": {"epoch": "1", "root": format!("0x{}", "00".repeat(32))}}});
        let err = plan(&body, &mainnet()).unwrap_err();
        match err {
            RequestError::InvalidField { path, .. } => {
                assert_eq!(path, "attestation.beacon_block_root")
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = plan(
            &json!({"type": "RANDAO_REVEAL", "randao_reveal": {"epoch": "1"}}),
            &mainnet(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            RequestError::InvalidField {
                path: "fork_info".into(),
                reason: "missing".into()
            }
        );
        assert_eq!(
            plan(&json!({"type": "NOPE"}), &mainnet()).unwrap_err(),
            RequestError::UnknownType("NOPE".into())
        );
        assert_eq!(
            plan(&json!({}), &mainnet()).unwrap_err(),
            RequestError::MissingType
        );
    }

    #[test]
    fn attestation_is_protected_with_its_epochs() {
        let root = format!("0x{}", "00".repeat(32));
        let body = json!({"type": "ATTESTATION", "fork_info": fork_info(),
            "attestation": {"slot": "64", "index": "0", "beacon_block_root": root,
              "source": {"epoch": "1", "root": root}, "target": {"epoch": "2", "root": root}}});
        let p = plan(&body, &mainnet()).unwrap();
        assert_eq!(
            p.protected.unwrap().0,
            ProtectedMessage::Attestation {
                source: 1,
                target: 2
            }
        );
    }

    #[test]
    fn signing_root_mismatch_is_refused() {
        let body = json!({"type": "RANDAO_REVEAL", "fork_info": fork_info(), "randao_reveal": {"epoch": "3"},
            "signingRoot": format!("0x{}", "22".repeat(32))});
        assert!(matches!(
            plan(&body, &mainnet()),
            Err(RequestError::SigningRootMismatch { .. })
        ));
    }
}
