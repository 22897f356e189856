//! Fuzz target: the eth2 request planner (`chain::eth2::request::plan`, JSON body → signing
//! root).
//!
//! The input's first byte picks the mode.
//!
//! - Structured (`mode` odd): typed containers (`AttestationData`, `BeaconBlockHeader`,
//!   `VoluntaryExit`, …) built from the fuzz input are serialised into a Web3Signer body and
//!   planned. Invariant: the plan's signing root equals `compute_signing_root` of the
//!   container's own `hash_tree_root` under the domain the consensus specs give it (fork at
//!   the message's epoch, EIP-7044 for exits, the genesis fork and a zero root for deposits
//!   and registrations); the protected message, slot and epoch are the container's; a sent
//!   `signingRoot` equal to it is accepted and any other refused.
//! - Raw (`mode` even): the rest is any JSON. Invariants: no panic; planning is
//!   deterministic; a planned body stays planned, identically, with its computed
//!   `signingRoot` added, and is refused with another one; the kind is the body's `type`.
#![no_main]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use palisade::chain::eth2::containers::{
    AggregationSlot, AttestationData, BeaconBlockHeader, Checkpoint, DepositMessage,
    DepositRequest, Fork, RandaoReveal, Root, SyncAggregatorSelectionData,
    SyncCommitteeMessageRequest, ValidatorRegistration, Version, VoluntaryExit,
};
use palisade::chain::eth2::network::{ForkName, NetworkConfig};
use palisade::chain::eth2::request::{ProtectedMessage, RequestError, SigningPlan, plan};
use palisade::chain::eth2::signing::{
    compute_domain, compute_signing_root, domain, fork_version_at,
};
use serde_json::{Value, json};
use tree_hash::TreeHash;

static NETWORKS: LazyLock<Vec<NetworkConfig>> = LazyLock::new(|| {
    ["mainnet", "minimal", "gnosis", "hoodi"]
        .into_iter()
        .map(|n| NetworkConfig::from_name_or_path(n).expect("built-in network"))
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        raw(rest);
    } else if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(rest)) {
        structured(&input);
    }
});

fn with_signing_root(body: &Value, root: Root) -> Value {
    let mut body = body.clone();
    let map = body.as_object_mut().expect("a planned body is an object");
    map.remove("signing_root");
    map.insert("signingRoot".into(), json!(format!("{root}")));
    body
}

fn other_root(root: Root) -> Root {
    let mut b = root.0;
    b[31] ^= 1;
    Root::from(b)
}

fn raw(rest: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    for network in NETWORKS.iter().take(2) {
        let planned = plan(&body, network);
        assert_eq!(planned, plan(&body, network), "plan is not deterministic");
        let Ok(p) = planned else {
            continue;
        };
        assert_eq!(Some(p.kind), body.get("type").and_then(Value::as_str));
        assert_eq!(
            p.protected.is_some(),
            matches!(p.kind, "BLOCK" | "BLOCK_V2" | "ATTESTATION"),
            "{p:?}"
        );
        match p.protected {
            Some((ProtectedMessage::Block { slot }, _)) => assert_eq!(p.slot, Some(slot)),
            Some((ProtectedMessage::Attestation { target, .. }, _)) => {
                assert_eq!(p.epoch, Some(target))
            }
            None => {}
        }
        let same = plan(&with_signing_root(&body, p.signing_root), network);
        assert_eq!(same.as_ref(), Ok(&p), "its own signingRoot refused");
        let wrong = plan(
            &with_signing_root(&body, other_root(p.signing_root)),
            network,
        );
        assert!(
            matches!(wrong, Err(RequestError::SigningRootMismatch { .. })),
            "another signingRoot: {wrong:?}"
        );
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    network: u8,
    previous_version: [u8; 4],
    current_version: CurrentVersion,
    fork_epoch: u64,
    genesis_validators_root: [u8; 32],
    message: Message,
    sent_root: SentRoot,
}

/// The fork's current version: any 4 bytes, or one the network schedules (so that the
/// EIP-7044 rule for exits is reached).
#[derive(Debug, Arbitrary)]
enum CurrentVersion {
    Any([u8; 4]),
    Scheduled(u8),
}

#[derive(Debug, Arbitrary)]
enum SentRoot {
    Absent,
    Computed,
    Other([u8; 32]),
}

#[derive(Debug, Arbitrary)]
enum Message {
    Attestation {
        slot: u64,
        index: u64,
        beacon_block_root: [u8; 32],
        source: (u64, [u8; 32]),
        target: (u64, [u8; 32]),
    },
    Block {
        version: u8,
        slot: u64,
        proposer_index: u64,
        parent_root: [u8; 32],
        state_root: [u8; 32],
        body_root: [u8; 32],
    },
    Randao {
        epoch: u64,
    },
    AggregationSlot {
        slot: u64,
    },
    Exit {
        epoch: u64,
        validator_index: u64,
    },
    SyncCommitteeMessage {
        beacon_block_root: [u8; 32],
        slot: u64,
    },
    SyncSelection {
        slot: u64,
        subcommittee_index: u64,
    },
    Deposit {
        pubkey: [u8; 48],
        withdrawal_credentials: [u8; 32],
        amount: u64,
        genesis_fork_version: [u8; 4],
    },
    Registration {
        fee_recipient: [u8; 20],
        gas_limit: u64,
        timestamp: u64,
        pubkey: [u8; 48],
    },
}

/// What the plan must be: type, body field and value, signing root, protected message, slot
/// and epoch.
struct Expected {
    kind: &'static str,
    field: &'static str,
    value: Value,
    root: Root,
    protected: Option<ProtectedMessage>,
    slot: Option<u64>,
    epoch: Option<u64>,
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).expect("containers serialise")
}

fn structured(input: &Input) {
    let network = &NETWORKS[usize::from(input.network) % NETWORKS.len()];
    let current_version = match &input.current_version {
        CurrentVersion::Any(v) => Version::from(*v),
        CurrentVersion::Scheduled(i) => network.forks[usize::from(*i) % network.forks.len()].1,
    };
    let fork = Fork {
        previous_version: Version::from(input.previous_version),
        current_version,
        epoch: input.fork_epoch,
    };
    let gvr = Root::from(input.genesis_validators_root);
    let spe = network.slots_per_epoch;
    // get_domain: the fork version at the message's epoch, and the genesis validators root.
    let at = |domain_type, epoch| compute_domain(domain_type, fork_version_at(&fork, epoch), gvr);

    let e = match &input.message {
        Message::Attestation {
            slot,
            index,
            beacon_block_root,
            source,
            target,
        } => {
            let data = AttestationData {
                slot: *slot,
                index: *index,
                beacon_block_root: Root::from(*beacon_block_root),
                source: Checkpoint {
                    epoch: source.0,
                    root: Root::from(source.1),
                },
                target: Checkpoint {
                    epoch: target.0,
                    root: Root::from(target.1),
                },
            };
            Expected {
                kind: "ATTESTATION",
                field: "attestation",
                value: to_value(&data),
                root: compute_signing_root(
                    data.tree_hash_root(),
                    at(domain::BEACON_ATTESTER, target.0),
                ),
                protected: Some(ProtectedMessage::Attestation {
                    source: source.0,
                    target: target.0,
                }),
                slot: Some(*slot),
                epoch: Some(target.0),
            }
        }
        Message::Block {
            version,
            slot,
            proposer_index,
            parent_root,
            state_root,
            body_root,
        } => {
            let header = BeaconBlockHeader {
                slot: *slot,
                proposer_index: *proposer_index,
                parent_root: Root::from(*parent_root),
                state_root: Root::from(*state_root),
                body_root: Root::from(*body_root),
            };
            let fork_name = ForkName::ALL[usize::from(*version) % ForkName::ALL.len()];
            let version = format!("{fork_name:?}").to_ascii_uppercase();
            Expected {
                kind: "BLOCK_V2",
                field: "beacon_block",
                value: json!({"version": version, "block_header": to_value(&header)}),
                root: compute_signing_root(
                    header.tree_hash_root(),
                    at(domain::BEACON_PROPOSER, slot / spe),
                ),
                protected: Some(ProtectedMessage::Block { slot: *slot }),
                slot: Some(*slot),
                epoch: Some(slot / spe),
            }
        }
        Message::Randao { epoch } => Expected {
            kind: "RANDAO_REVEAL",
            field: "randao_reveal",
            value: to_value(&RandaoReveal { epoch: *epoch }),
            root: compute_signing_root(epoch.tree_hash_root(), at(domain::RANDAO, *epoch)),
            protected: None,
            slot: None,
            epoch: Some(*epoch),
        },
        Message::AggregationSlot { slot } => Expected {
            kind: "AGGREGATION_SLOT",
            field: "aggregation_slot",
            value: to_value(&AggregationSlot { slot: *slot }),
            root: compute_signing_root(
                slot.tree_hash_root(),
                at(domain::SELECTION_PROOF, slot / spe),
            ),
            protected: None,
            slot: Some(*slot),
            epoch: Some(slot / spe),
        },
        Message::Exit {
            epoch,
            validator_index,
        } => {
            let exit = VoluntaryExit {
                epoch: *epoch,
                validator_index: *validator_index,
            };
            // EIP-7044: a state at Deneb or later signs exits with the Capella version.
            let deneb_or_later = network
                .forks
                .iter()
                .rev()
                .find(|(_, v, _)| *v == fork.current_version)
                .is_some_and(|(f, _, _)| *f >= ForkName::Deneb);
            let capella = network
                .forks
                .iter()
                .find(|(f, _, _)| *f == ForkName::Capella)
                .map(|(_, v, _)| *v);
            let d = match capella {
                Some(capella) if deneb_or_later => {
                    compute_domain(domain::VOLUNTARY_EXIT, capella, gvr)
                }
                _ => at(domain::VOLUNTARY_EXIT, *epoch),
            };
            Expected {
                kind: "VOLUNTARY_EXIT",
                field: "voluntary_exit",
                value: to_value(&exit),
                root: compute_signing_root(exit.tree_hash_root(), d),
                protected: None,
                slot: None,
                epoch: Some(*epoch),
            }
        }
        Message::SyncCommitteeMessage {
            beacon_block_root,
            slot,
        } => {
            let m = SyncCommitteeMessageRequest {
                beacon_block_root: Root::from(*beacon_block_root),
                slot: *slot,
            };
            Expected {
                kind: "SYNC_COMMITTEE_MESSAGE",
                field: "sync_committee_message",
                value: to_value(&m),
                root: compute_signing_root(
                    m.beacon_block_root,
                    at(domain::SYNC_COMMITTEE, slot / spe),
                ),
                protected: None,
                slot: Some(*slot),
                epoch: Some(slot / spe),
            }
        }
        Message::SyncSelection {
            slot,
            subcommittee_index,
        } => {
            let s = SyncAggregatorSelectionData {
                slot: *slot,
                subcommittee_index: *subcommittee_index,
            };
            Expected {
                kind: "SYNC_COMMITTEE_SELECTION_PROOF",
                field: "sync_aggregator_selection_data",
                value: to_value(&s),
                root: compute_signing_root(
                    s.tree_hash_root(),
                    at(domain::SYNC_COMMITTEE_SELECTION_PROOF, slot / spe),
                ),
                protected: None,
                slot: Some(*slot),
                epoch: Some(slot / spe),
            }
        }
        Message::Deposit {
            pubkey,
            withdrawal_credentials,
            amount,
            genesis_fork_version,
        } => {
            let request = DepositRequest {
                pubkey: (*pubkey).into(),
                withdrawal_credentials: Root::from(*withdrawal_credentials),
                amount: *amount,
                genesis_fork_version: Version::from(*genesis_fork_version),
            };
            let message = DepositMessage {
                pubkey: request.pubkey,
                withdrawal_credentials: request.withdrawal_credentials,
                amount: request.amount,
            };
            Expected {
                kind: "DEPOSIT",
                field: "deposit",
                value: to_value(&request),
                root: compute_signing_root(
                    message.tree_hash_root(),
                    compute_domain(domain::DEPOSIT, request.genesis_fork_version, Root::ZERO),
                ),
                protected: None,
                slot: None,
                epoch: None,
            }
        }
        Message::Registration {
            fee_recipient,
            gas_limit,
            timestamp,
            pubkey,
        } => {
            let r = ValidatorRegistration {
                fee_recipient: (*fee_recipient).into(),
                gas_limit: *gas_limit,
                timestamp: *timestamp,
                pubkey: (*pubkey).into(),
            };
            Expected {
                kind: "VALIDATOR_REGISTRATION",
                field: "validator_registration",
                value: to_value(&r),
                root: compute_signing_root(
                    r.tree_hash_root(),
                    compute_domain(
                        domain::APPLICATION_BUILDER,
                        network.genesis_fork_version,
                        Root::ZERO,
                    ),
                ),
                protected: None,
                slot: None,
                epoch: None,
            }
        }
    };

    let mut body = json!({
        "type": e.kind,
        "fork_info": {"fork": to_value(&fork), "genesis_validators_root": format!("{gvr}")},
    });
    body[e.field] = e.value.clone();
    let sent = match &input.sent_root {
        SentRoot::Absent => None,
        SentRoot::Computed => Some(e.root),
        SentRoot::Other(r) => Some(Root::from(*r)),
    };
    if let Some(r) = sent {
        body["signingRoot"] = json!(format!("{r}"));
    }
    let got = plan(&body, network);
    if sent.is_some_and(|r| r != e.root) {
        assert!(
            matches!(got, Err(RequestError::SigningRootMismatch { .. })),
            "a wrong signingRoot gave {got:?}"
        );
        return;
    }
    let want = SigningPlan {
        kind: e.kind,
        signing_root: e.root,
        protected: e.protected.map(|m| (m, gvr)),
        slot: e.slot,
        epoch: e.epoch,
    };
    assert_eq!(got, Ok(want), "body {body}");
}
