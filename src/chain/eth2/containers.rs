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
    /// 4-byte fork version before `epoch` (consensus-specs `Fork.previous_version`).
    #[serde(alias = "previousVersion")]
    pub previous_version: Version,
    /// 4-byte fork version from `epoch` on (consensus-specs `Fork.current_version`).
    #[serde(alias = "currentVersion")]
    pub current_version: Version,
    /// Epoch at which `current_version` took effect.
    #[serde(with = "quoted_u64")]
    pub epoch: u64,
}

/// `ForkData` (phase0), hashed by `compute_fork_data_root`.
#[derive(Debug, Clone, TreeHash)]
pub struct ForkData {
    /// 4-byte fork version of the domain (consensus-specs `ForkData.current_version`).
    pub current_version: Version,
    /// 32-byte genesis validators root, which binds the domain to one chain.
    pub genesis_validators_root: Root,
}

/// `SigningData` (phase0), hashed by `compute_signing_root`.
#[derive(Debug, Clone, TreeHash)]
pub struct SigningData {
    /// 32-byte `hash_tree_root` of the signed object (consensus-specs `SigningData.object_root`).
    pub object_root: Root,
    /// 32-byte domain: the 4-byte domain type, then the first 28 bytes of the fork data root.
    pub domain: Root,
}

/// `Checkpoint` (phase0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TreeHash)]
pub struct Checkpoint {
    /// Epoch of the checkpoint (consensus-specs `Checkpoint.epoch`).
    #[serde(with = "quoted_u64")]
    pub epoch: u64,
    /// 32-byte root of the block at the start of `epoch` (consensus-specs `Checkpoint.root`).
    pub root: Root,
}

/// `AttestationData` (phase0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TreeHash)]
pub struct AttestationData {
    /// Slot the attestation is for (consensus-specs `AttestationData.slot`).
    #[serde(with = "quoted_u64")]
    pub slot: u64,
    /// Committee index in the slot; always 0 from Electra on (EIP-7549: see `committee_bits`).
    #[serde(with = "quoted_u64")]
    pub index: u64,
    /// 32-byte root of the head block voted for (LMD GHOST vote).
    pub beacon_block_root: Root,
    /// Source checkpoint (FFG vote); its epoch is the source epoch slashing protection checks.
    pub source: Checkpoint,
    /// Target checkpoint (FFG vote); its epoch is the target epoch slashing protection checks.
    pub target: Checkpoint,
}

/// `BeaconBlockHeader` (phase0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TreeHash)]
pub struct BeaconBlockHeader {
    /// Slot of the block (consensus-specs `BeaconBlockHeader.slot`).
    #[serde(with = "quoted_u64")]
    pub slot: u64,
    /// Validator index of the proposer.
    #[serde(with = "quoted_u64")]
    pub proposer_index: u64,
    /// 32-byte `hash_tree_root` of the parent block.
    pub parent_root: Root,
    /// 32-byte `hash_tree_root` of the beacon state after the block.
    pub state_root: Root,
    /// 32-byte `hash_tree_root` of the block body.
    pub body_root: Root,
}

/// `SignedBeaconBlockHeader` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct SignedBeaconBlockHeader {
    /// The header that was signed.
    pub message: BeaconBlockHeader,
    /// 96-byte BLS signature of the proposer over the header (`DOMAIN_BEACON_PROPOSER`).
    pub signature: SignatureBytes,
}

/// `Eth1Data` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct Eth1Data {
    /// 32-byte root of the deposit contract's Merkle tree.
    pub deposit_root: Root,
    /// Number of deposits the deposit contract holds.
    #[serde(with = "quoted_u64")]
    pub deposit_count: u64,
    /// 32-byte hash of the execution (eth1) block voted for.
    pub block_hash: Root,
}

/// `ProposerSlashing` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct ProposerSlashing {
    /// First of two different headers signed by the same proposer for the same slot.
    pub signed_header_1: SignedBeaconBlockHeader,
    /// Second of the two conflicting headers.
    pub signed_header_2: SignedBeaconBlockHeader,
}

/// `IndexedAttestation` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct IndexedAttestation {
    /// Sorted attester indices, at most `MAX_VALIDATORS_PER_COMMITTEE` (decimal strings in JSON).
    #[serde(with = "ssz_types::serde_utils::quoted_u64_var_list")]
    pub attesting_indices: VariableList<u64, MaxValidatorsPerCommittee>,
    /// The attested data.
    pub data: AttestationData,
    /// 96-byte aggregate BLS signature of the attesters over the data's signing root.
    pub signature: SignatureBytes,
}

/// `AttesterSlashing` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct AttesterSlashing {
    /// First of two conflicting (double or surround vote) attestations.
    pub attestation_1: IndexedAttestation,
    /// Second of the two conflicting attestations.
    pub attestation_2: IndexedAttestation,
}

/// `Attestation` (phase0 to deneb).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct Attestation {
    /// One bit per committee member that signed (`Bitlist[MAX_VALIDATORS_PER_COMMITTEE]`).
    pub aggregation_bits: BitList<MaxValidatorsPerCommittee>,
    /// The attested data; its signing root is what the attesters sign.
    pub data: AttestationData,
    /// 96-byte aggregate BLS signature over the data's signing root (`DOMAIN_BEACON_ATTESTER`).
    pub signature: SignatureBytes,
}

/// `Attestation` (electra and later, EIP-7549: `committee_bits`).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct AttestationElectra<P: Preset> {
    /// The bits of each committee in `committee_bits`, concatenated: one per member that signed.
    pub aggregation_bits: BitList<P::MaxValidatorsPerSlot>,
    /// The attested data (`index` is 0); its signing root is what the attesters sign.
    pub data: AttestationData,
    /// 96-byte aggregate BLS signature over the data's signing root (`DOMAIN_BEACON_ATTESTER`).
    pub signature: SignatureBytes,
    /// One bit per committee of the slot that takes part (`Bitvector[MAX_COMMITTEES_PER_SLOT]`).
    pub committee_bits: BitVector<P::MaxCommitteesPerSlot>,
}

/// `DepositData` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct DepositData {
    /// 48-byte BLS public key of the new validator.
    pub pubkey: PubkeyBytes,
    /// 32 bytes: a prefix (`0x00` BLS, `0x01` execution, `0x02` compounding), then the credential.
    pub withdrawal_credentials: Root,
    /// Amount in Gwei.
    #[serde(with = "quoted_u64")]
    pub amount: u64,
    /// 96-byte BLS signature over the `DepositMessage` signing root (`DOMAIN_DEPOSIT`).
    pub signature: SignatureBytes,
}

/// `Deposit` (phase0): `DEPOSIT_CONTRACT_TREE_DEPTH + 1` = 33 proof nodes.
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct Deposit {
    /// Merkle branch of `data`: 33 32-byte nodes (tree depth 32 plus the length mix-in).
    pub proof: FixedVector<Root, U33>,
    /// The deposit itself.
    pub data: DepositData,
}

/// `VoluntaryExit` (phase0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TreeHash)]
pub struct VoluntaryExit {
    /// Earliest epoch at which the exit may be processed (consensus-specs `VoluntaryExit.epoch`).
    #[serde(with = "quoted_u64")]
    pub epoch: u64,
    /// Validator index of the exiting validator.
    #[serde(with = "quoted_u64")]
    pub validator_index: u64,
}

/// `SignedVoluntaryExit` (phase0).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct SignedVoluntaryExit {
    /// The exit that was signed.
    pub message: VoluntaryExit,
    /// 96-byte BLS signature of the validator over the exit (`DOMAIN_VOLUNTARY_EXIT`).
    pub signature: SignatureBytes,
}

/// `SyncAggregate` (altair).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct SyncAggregate<P: Preset> {
    /// One bit per sync committee member that signed (`Bitvector[SYNC_COMMITTEE_SIZE]`).
    pub sync_committee_bits: BitVector<P::SyncCommitteeSize>,
    /// 96-byte aggregate BLS signature of those members over the previous slot's block root.
    pub sync_committee_signature: SignatureBytes,
}

/// `BeaconBlockBody` (phase0); its limits are equal in every preset.
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct BeaconBlockBodyPhase0 {
    /// 96-byte BLS signature of the proposer over the block's epoch (`DOMAIN_RANDAO`).
    pub randao_reveal: SignatureBytes,
    /// The proposer's vote on the deposit contract's state.
    pub eth1_data: Eth1Data,
    /// 32 bytes of the proposer's choosing.
    pub graffiti: Root,
    /// At most `MAX_PROPOSER_SLASHINGS` = 16 proposer slashings.
    pub proposer_slashings: VariableList<ProposerSlashing, U16>,
    /// At most `MAX_ATTESTER_SLASHINGS` = 2 attester slashings.
    pub attester_slashings: VariableList<AttesterSlashing, U2>,
    /// At most `MAX_ATTESTATIONS` = 128 attestations.
    pub attestations: VariableList<Attestation, U128>,
    /// At most `MAX_DEPOSITS` = 16 deposits.
    pub deposits: VariableList<Deposit, U16>,
    /// At most `MAX_VOLUNTARY_EXITS` = 16 signed voluntary exits.
    pub voluntary_exits: VariableList<SignedVoluntaryExit, U16>,
}

/// `BeaconBlockBody` (altair), sized by the preset's `SYNC_COMMITTEE_SIZE`.
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct BeaconBlockBodyAltair<P: Preset> {
    /// 96-byte BLS signature of the proposer over the block's epoch (`DOMAIN_RANDAO`).
    pub randao_reveal: SignatureBytes,
    /// The proposer's vote on the deposit contract's state.
    pub eth1_data: Eth1Data,
    /// 32 bytes of the proposer's choosing.
    pub graffiti: Root,
    /// At most `MAX_PROPOSER_SLASHINGS` = 16 proposer slashings.
    pub proposer_slashings: VariableList<ProposerSlashing, U16>,
    /// At most `MAX_ATTESTER_SLASHINGS` = 2 attester slashings.
    pub attester_slashings: VariableList<AttesterSlashing, U2>,
    /// At most `MAX_ATTESTATIONS` = 128 attestations.
    pub attestations: VariableList<Attestation, U128>,
    /// At most `MAX_DEPOSITS` = 16 deposits.
    pub deposits: VariableList<Deposit, U16>,
    /// At most `MAX_VOLUNTARY_EXITS` = 16 signed voluntary exits.
    pub voluntary_exits: VariableList<SignedVoluntaryExit, U16>,
    /// The sync committee's signatures over the parent block root (altair).
    pub sync_aggregate: SyncAggregate<P>,
}

/// `BeaconBlock` (phase0 / altair), generic over the body.
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct BeaconBlock<B: tree_hash::TreeHash> {
    /// Slot of the block (consensus-specs `BeaconBlock.slot`); selects the fork of the domain.
    #[serde(with = "quoted_u64")]
    pub slot: u64,
    /// Validator index of the proposer.
    #[serde(with = "quoted_u64")]
    pub proposer_index: u64,
    /// 32-byte `hash_tree_root` of the parent block.
    pub parent_root: Root,
    /// 32-byte `hash_tree_root` of the beacon state after the block.
    pub state_root: Root,
    /// The block body; its `hash_tree_root` is the header's `body_root`.
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
    /// Validator index of the aggregator.
    #[serde(with = "quoted_u64")]
    pub aggregator_index: u64,
    /// The aggregated attestation.
    pub aggregate: Attestation,
    /// 96-byte BLS signature of the aggregator over the slot (`DOMAIN_SELECTION_PROOF`).
    pub selection_proof: SignatureBytes,
}

/// `AggregateAndProof` (electra and later).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct AggregateAndProofElectra<P: Preset> {
    /// Validator index of the aggregator.
    #[serde(with = "quoted_u64")]
    pub aggregator_index: u64,
    /// The aggregated Electra attestation.
    pub aggregate: AttestationElectra<P>,
    /// 96-byte BLS signature of the aggregator over the slot (`DOMAIN_SELECTION_PROOF`).
    pub selection_proof: SignatureBytes,
}

/// `AggregationSlot` request body: the slot whose root is signed for the selection proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AggregationSlot {
    /// Slot whose `hash_tree_root` is signed (`DOMAIN_SELECTION_PROOF`).
    #[serde(with = "quoted_u64")]
    pub slot: u64,
}

/// `RandaoReveal` request body: the epoch whose root is signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RandaoReveal {
    /// Epoch whose `hash_tree_root` is signed (`DOMAIN_RANDAO`).
    #[serde(with = "quoted_u64")]
    pub epoch: u64,
}

/// Web3Signer's `SyncCommitteeMessage` request body: the block root is what is signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncCommitteeMessageRequest {
    /// 32-byte block root that is signed (`DOMAIN_SYNC_COMMITTEE`).
    pub beacon_block_root: Root,
    /// Slot of the message; selects the fork of the domain.
    #[serde(with = "quoted_u64")]
    pub slot: u64,
}

/// `SyncAggregatorSelectionData` (altair).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct SyncAggregatorSelectionData {
    /// Slot of the selection (consensus-specs `SyncAggregatorSelectionData.slot`).
    #[serde(with = "quoted_u64")]
    pub slot: u64,
    /// Sync subcommittee index, below `SYNC_COMMITTEE_SUBNET_COUNT` = 4.
    #[serde(with = "quoted_u64")]
    pub subcommittee_index: u64,
}

/// `SyncCommitteeContribution` (altair).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct SyncCommitteeContribution<P: Preset> {
    /// Slot of the contribution (consensus-specs `SyncCommitteeContribution.slot`).
    #[serde(with = "quoted_u64")]
    pub slot: u64,
    /// 32-byte block root the subcommittee members signed.
    pub beacon_block_root: Root,
    /// Sync subcommittee index, below `SYNC_COMMITTEE_SUBNET_COUNT` = 4.
    #[serde(with = "quoted_u64")]
    pub subcommittee_index: u64,
    /// One bit per subcommittee member that signed (128 bits in mainnet, 8 in minimal).
    pub aggregation_bits: BitVector<P::SyncSubcommitteeSize>,
    /// 96-byte aggregate BLS signature of those members over the block root.
    pub signature: SignatureBytes,
}

/// `ContributionAndProof` (altair).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
#[serde(bound = "P: Preset")]
pub struct ContributionAndProof<P: Preset> {
    /// Validator index of the aggregator.
    #[serde(with = "quoted_u64")]
    pub aggregator_index: u64,
    /// The aggregated sync committee contribution.
    pub contribution: SyncCommitteeContribution<P>,
    /// 96-byte BLS signature over the selection data (`DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF`).
    pub selection_proof: SignatureBytes,
}

/// `ValidatorRegistrationV1` (builder-specs).
#[derive(Debug, Clone, Serialize, Deserialize, TreeHash)]
pub struct ValidatorRegistration {
    /// 20-byte execution address that receives the fees of blocks built for the validator.
    pub fee_recipient: Address,
    /// Gas limit the validator wants for built execution payloads (gas units).
    #[serde(with = "quoted_u64")]
    pub gas_limit: u64,
    /// Unix time in seconds.
    #[serde(with = "quoted_u64")]
    pub timestamp: u64,
    /// 48-byte BLS public key of the registering validator.
    pub pubkey: PubkeyBytes,
}

/// `DepositMessage` (phase0): what a deposit signature covers.
#[derive(Debug, Clone, TreeHash)]
pub struct DepositMessage {
    /// 48-byte BLS public key of the new validator.
    pub pubkey: PubkeyBytes,
    /// 32 bytes: a prefix (`0x00` BLS, `0x01` execution, `0x02` compounding), then the credential.
    pub withdrawal_credentials: Root,
    /// Amount in Gwei.
    pub amount: u64,
}

/// Web3Signer's DEPOSIT request body (`DepositMessage` plus the genesis fork version).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepositRequest {
    /// 48-byte BLS public key of the new validator.
    pub pubkey: PubkeyBytes,
    /// 32 bytes: a prefix (`0x00` BLS, `0x01` execution, `0x02` compounding), then the credential.
    pub withdrawal_credentials: Root,
    /// Amount in Gwei.
    #[serde(with = "quoted_u64")]
    pub amount: u64,
    /// 4-byte genesis fork version of the `DOMAIN_DEPOSIT` domain (zero genesis validators root).
    pub genesis_fork_version: Version,
}
