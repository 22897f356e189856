//! SSZ containers of the consensus specs that a validator signs, with the JSON
//! spelling of the beacon-node API (snake_case fields, `uint64` as decimal
//! strings, byte vectors and bitfields as `0x`-hex).
//!
//! List and vector sizes that differ between presets (`SYNC_COMMITTEE_SIZE`,
//! `MAX_COMMITTEES_PER_SLOT`) come from a [`Preset`] type parameter: [`MainnetPreset`]
//! (mainnet, sepolia, holesky, hoodi, and gnosis, whose preset has the same sizes) and
//! [`MinimalPreset`] (consensus-specs `presets/minimal`). Sizes that are equal in every
//! preset (`MAX_VALIDATORS_PER_COMMITTEE`, the phase0 block body limits) are fixed.
//! `hash_tree_root` is computed by `tree_hash`.

use alloy_primitives::{Address, B256, FixedBytes};
use serde::{Deserialize, Serialize};
use ssz_types::typenum::{
    U2, U4, U8, U16, U32, U33, U64, U128, U512, U2048, U8192, U131072, Unsigned,
};
use ssz_types::{BitList, BitVector, FixedVector, VariableList};
use tree_hash_derive::TreeHash;

use serde_utils::quoted_u64;

/// A 32-byte SSZ root (`Root`, `Bytes32`).
pub type Root = B256;
/// A 4-byte fork version (`Version`).
pub type Version = FixedBytes<4>;
/// A 4-byte domain type (`DomainType`).
pub type DomainType = FixedBytes<4>;
/// A 48-byte compressed BLS12-381 G1 public key (`BLSPubkey`).
pub type PubkeyBytes = FixedBytes<48>;
/// A 96-byte compressed BLS12-381 G2 signature (`BLSSignature`).
pub type SignatureBytes = FixedBytes<96>;

/// `MAX_VALIDATORS_PER_COMMITTEE`: 2048 in every preset.
pub type MaxValidatorsPerCommittee = U2048;

/// A size parameter of an SSZ list or vector type (a `typenum` unsigned integer).
pub trait Size: Unsigned + Clone + std::fmt::Debug + Send + Sync + 'static {}
impl<T: Unsigned + Clone + std::fmt::Debug + Send + Sync + 'static> Size for T {}

/// The preset values that change the SSZ shape of a signed message (consensus-specs
/// `presets/<name>/{phase0,altair,electra}.yaml`).
pub trait Preset: Clone + std::fmt::Debug + PartialEq + Eq + Send + Sync + 'static {
    /// `SYNC_COMMITTEE_SIZE` (bits of `SyncAggregate.sync_committee_bits`).
    type SyncCommitteeSize: Size;
    /// `SYNC_COMMITTEE_SIZE / SYNC_COMMITTEE_SUBNET_COUNT` (bits of a contribution).
    type SyncSubcommitteeSize: Size;
    /// `MAX_COMMITTEES_PER_SLOT` (bits of an Electra `committee_bits`).
    type MaxCommitteesPerSlot: Size;
    /// `MAX_VALIDATORS_PER_COMMITTEE * MAX_COMMITTEES_PER_SLOT` (limit of an Electra
    /// `aggregation_bits`).
    type MaxValidatorsPerSlot: Size;
}

/// The `mainnet` preset (also gnosis: same sync committee and committee sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainnetPreset;

impl Preset for MainnetPreset {
    type SyncCommitteeSize = U512;
    type SyncSubcommitteeSize = U128;
    type MaxCommitteesPerSlot = U64;
    type MaxValidatorsPerSlot = U131072;
}

/// The `minimal` preset of local devnets and client test set-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinimalPreset;

impl Preset for MinimalPreset {
    type SyncCommitteeSize = U32;
    type SyncSubcommitteeSize = U8;
    type MaxCommitteesPerSlot = U4;
    type MaxValidatorsPerSlot = U8192;
}

/// `Fork` (phase0). Accepts `previousVersion`/`currentVersion` as Web3Signer does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TreeHash)]
pub struct Fork {
    #[serde(alias = "previousVersion")]
    pub previous_version: Version,
    #[serde(alias = "currentVersion")]
    pub current_version: Version,
    /// Epoch at which `current_version` took effect.
    #[serde(with = "quoted_u64")]
    pub epoch: u64,
}

/// `ForkData` (phase0), hashed by `compute_fork_data_root`.
#[derive(Debug, Clone, TreeHash)]
pub struct ForkData {
    pub current_version: Version,
    pub genesis_validators_root: Root,
}

/// `SigningData` (phase0), hashed by `compute_signing_root`.
#[derive(Debug, Clone, TreeHash)]
pub struct SigningData {
    pub object_root: Root,
    pub domain: Root,
}

/// `Checkpoint` (phase0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TreeHash)]
pub struct Checkpoint {
    #[serde(with = "quoted_u64")]
    pub epoch: u64,
    pub root: Root,
}

/// `AttestationData` (phase0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TreeHash)]
pub struct AttestationData {
    #[serde(with = "quoted_u64")]
    pub slot: u64,
    #[serde(with = "quoted_u64")]
    pub index: u64,
    pub beacon_block_root: Root,
    pub source: Checkpoint,
    pub target: Checkpoint,
}

/// `BeaconBlockHeader` (phase0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TreeHash)]
pub struct BeaconBlockHeader {
    #[serde(with = "quoted_u64")]
    pub slot: u64,
    #[serde(with = "quoted_u64")]
    pub proposer_index: u64,
    pub parent_root: Root,
    pub state_root: Root,
    pub body_root: Root,
}

/// `SignedBeaconBlockHeader` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct SignedBeaconBlockHeader {
    pub message: BeaconBlockHeader,
    pub signature: SignatureBytes,
}

/// `Eth1Data` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct Eth1Data {
    pub deposit_root: Root,
    #[serde(with = "quoted_u64")]
    pub deposit_count: u64,
    pub block_hash: Root,
}

/// `ProposerSlashing` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct ProposerSlashing {
    pub signed_header_1: SignedBeaconBlockHeader,
    pub signed_header_2: SignedBeaconBlockHeader,
}

/// `IndexedAttestation` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct IndexedAttestation {
    #[serde(with = "ssz_types::serde_utils::quoted_u64_var_list")]
    pub attesting_indices: VariableList<u64, MaxValidatorsPerCommittee>,
    pub data: AttestationData,
    pub signature: SignatureBytes,
}

/// `AttesterSlashing` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct AttesterSlashing {
    pub attestation_1: IndexedAttestation,
    pub attestation_2: IndexedAttestation,
}

/// `Attestation` (phase0 to deneb).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct Attestation {
    pub aggregation_bits: BitList<MaxValidatorsPerCommittee>,
    pub data: AttestationData,
    pub signature: SignatureBytes,
}

/// `Attestation` (electra and later, EIP-7549: `committee_bits`).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct AttestationElectra<P: Preset> {
    pub aggregation_bits: BitList<P::MaxValidatorsPerSlot>,
    pub data: AttestationData,
    pub signature: SignatureBytes,
    pub committee_bits: BitVector<P::MaxCommitteesPerSlot>,
}

/// `DepositData` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct DepositData {
    pub pubkey: PubkeyBytes,
    pub withdrawal_credentials: Root,
    /// Amount in Gwei.
    #[serde(with = "quoted_u64")]
    pub amount: u64,
    pub signature: SignatureBytes,
}

/// `Deposit` (phase0): `DEPOSIT_CONTRACT_TREE_DEPTH + 1` = 33 proof nodes.
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct Deposit {
    pub proof: FixedVector<Root, U33>,
    pub data: DepositData,
}

/// `VoluntaryExit` (phase0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TreeHash)]
pub struct VoluntaryExit {
    #[serde(with = "quoted_u64")]
    pub epoch: u64,
    #[serde(with = "quoted_u64")]
    pub validator_index: u64,
}

/// `SignedVoluntaryExit` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct SignedVoluntaryExit {
    pub message: VoluntaryExit,
    pub signature: SignatureBytes,
}

/// `SyncAggregate` (altair).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct SyncAggregate<P: Preset> {
    pub sync_committee_bits: BitVector<P::SyncCommitteeSize>,
    pub sync_committee_signature: SignatureBytes,
}

/// `BeaconBlockBody` (phase0); its limits are equal in every preset.
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct BeaconBlockBodyPhase0 {
    pub randao_reveal: SignatureBytes,
    pub eth1_data: Eth1Data,
    pub graffiti: Root,
    pub proposer_slashings: VariableList<ProposerSlashing, U16>,
    pub attester_slashings: VariableList<AttesterSlashing, U2>,
    pub attestations: VariableList<Attestation, U128>,
    pub deposits: VariableList<Deposit, U16>,
    pub voluntary_exits: VariableList<SignedVoluntaryExit, U16>,
}

/// `BeaconBlockBody` (altair), sized by the preset's `SYNC_COMMITTEE_SIZE`.
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct BeaconBlockBodyAltair<P: Preset> {
    pub randao_reveal: SignatureBytes,
    pub eth1_data: Eth1Data,
    pub graffiti: Root,
    pub proposer_slashings: VariableList<ProposerSlashing, U16>,
    pub attester_slashings: VariableList<AttesterSlashing, U2>,
    pub attestations: VariableList<Attestation, U128>,
    pub deposits: VariableList<Deposit, U16>,
    pub voluntary_exits: VariableList<SignedVoluntaryExit, U16>,
    pub sync_aggregate: SyncAggregate<P>,
}

/// `BeaconBlock` (phase0 / altair), generic over the body.
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct BeaconBlock<B: tree_hash::TreeHash> {
    #[serde(with = "quoted_u64")]
    pub slot: u64,
    #[serde(with = "quoted_u64")]
    pub proposer_index: u64,
    pub parent_root: Root,
    pub state_root: Root,
    pub body: B,
}

impl<B: tree_hash::TreeHash> BeaconBlock<B> {
    /// The header of this block: same slot, proposer and roots, `body_root = hash_tree_root(body)`.
    pub fn header(&self) -> BeaconBlockHeader {
        BeaconBlockHeader {
            slot: self.slot,
            proposer_index: self.proposer_index,
            parent_root: self.parent_root,
            state_root: self.state_root,
            body_root: self.body.tree_hash_root(),
        }
    }
}

/// `AggregateAndProof` (phase0 to deneb).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct AggregateAndProof {
    #[serde(with = "quoted_u64")]
    pub aggregator_index: u64,
    pub aggregate: Attestation,
    pub selection_proof: SignatureBytes,
}

/// `AggregateAndProof` (electra and later).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct AggregateAndProofElectra<P: Preset> {
    #[serde(with = "quoted_u64")]
    pub aggregator_index: u64,
    pub aggregate: AttestationElectra<P>,
    pub selection_proof: SignatureBytes,
}

/// `AggregationSlot` request body: the slot whose root is signed for the selection proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AggregationSlot {
    #[serde(with = "quoted_u64")]
    pub slot: u64,
}

/// `RandaoReveal` request body: the epoch whose root is signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RandaoReveal {
    #[serde(with = "quoted_u64")]
    pub epoch: u64,
}

/// Web3Signer's `SyncCommitteeMessage` request body: the block root is what is signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncCommitteeMessageRequest {
    pub beacon_block_root: Root,
    #[serde(with = "quoted_u64")]
    pub slot: u64,
}

/// `SyncAggregatorSelectionData` (altair).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct SyncAggregatorSelectionData {
    #[serde(with = "quoted_u64")]
    pub slot: u64,
    #[serde(with = "quoted_u64")]
    pub subcommittee_index: u64,
}

/// `SyncCommitteeContribution` (altair).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct SyncCommitteeContribution<P: Preset> {
    #[serde(with = "quoted_u64")]
    pub slot: u64,
    pub beacon_block_root: Root,
    #[serde(with = "quoted_u64")]
    pub subcommittee_index: u64,
    pub aggregation_bits: BitVector<P::SyncSubcommitteeSize>,
    pub signature: SignatureBytes,
}

/// `ContributionAndProof` (altair).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct ContributionAndProof<P: Preset> {
    #[serde(with = "quoted_u64")]
    pub aggregator_index: u64,
    pub contribution: SyncCommitteeContribution<P>,
    pub selection_proof: SignatureBytes,
}

/// `ValidatorRegistrationV1` (builder-specs).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct ValidatorRegistration {
    pub fee_recipient: Address,
    #[serde(with = "quoted_u64")]
    pub gas_limit: u64,
    /// Unix time in seconds.
    #[serde(with = "quoted_u64")]
    pub timestamp: u64,
    pub pubkey: PubkeyBytes,
}

/// `DepositMessage` (phase0): what a deposit signature covers.
#[derive(Debug, Clone, TreeHash)]
pub struct DepositMessage {
    pub pubkey: PubkeyBytes,
    pub withdrawal_credentials: Root,
    pub amount: u64,
}

/// Web3Signer's DEPOSIT request body (`DepositMessage` plus the genesis fork version).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepositRequest {
    pub pubkey: PubkeyBytes,
    pub withdrawal_credentials: Root,
    /// Amount in Gwei.
    #[serde(with = "quoted_u64")]
    pub amount: u64,
    pub genesis_fork_version: Version,
}
