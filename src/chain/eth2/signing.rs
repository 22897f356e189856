//! Domains and signing roots (consensus-specs phase0 `compute_domain`,
//! `compute_fork_data_root`, `compute_signing_root`; EIP-7044 for exits).

use alloy_primitives::B256;
use tree_hash::TreeHash;

use super::containers::{DomainType, Fork, ForkData, Root, SigningData, Version};

/// Domain types of the consensus specs and the builder specs (4 bytes each).
pub mod domain {
    use super::DomainType;
    /// `DOMAIN_BEACON_PROPOSER`
    pub const BEACON_PROPOSER: DomainType = DomainType::new([0, 0, 0, 0]);
    /// `DOMAIN_BEACON_ATTESTER`
    pub const BEACON_ATTESTER: DomainType = DomainType::new([1, 0, 0, 0]);
    /// `DOMAIN_RANDAO`
    pub const RANDAO: DomainType = DomainType::new([2, 0, 0, 0]);
    /// `DOMAIN_DEPOSIT`
    pub const DEPOSIT: DomainType = DomainType::new([3, 0, 0, 0]);
    /// `DOMAIN_VOLUNTARY_EXIT`
    pub const VOLUNTARY_EXIT: DomainType = DomainType::new([4, 0, 0, 0]);
    /// `DOMAIN_SELECTION_PROOF`
    pub const SELECTION_PROOF: DomainType = DomainType::new([5, 0, 0, 0]);
    /// `DOMAIN_AGGREGATE_AND_PROOF`
    pub const AGGREGATE_AND_PROOF: DomainType = DomainType::new([6, 0, 0, 0]);
    /// `DOMAIN_SYNC_COMMITTEE`
    pub const SYNC_COMMITTEE: DomainType = DomainType::new([7, 0, 0, 0]);
    /// `DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF`
    pub const SYNC_COMMITTEE_SELECTION_PROOF: DomainType = DomainType::new([8, 0, 0, 0]);
    /// `DOMAIN_CONTRIBUTION_AND_PROOF`
    pub const CONTRIBUTION_AND_PROOF: DomainType = DomainType::new([9, 0, 0, 0]);
    /// `DOMAIN_APPLICATION_BUILDER` (builder-specs)
    pub const APPLICATION_BUILDER: DomainType = DomainType::new([0, 0, 0, 1]);
}

/// `compute_fork_data_root(current_version, genesis_validators_root)`: 32 bytes.
pub fn compute_fork_data_root(current_version: Version, genesis_validators_root: Root) -> Root {
    ForkData {
        current_version,
        genesis_validators_root,
    }
    .tree_hash_root()
}

/// `compute_domain(domain_type, fork_version, genesis_validators_root)`: the 4-byte domain
/// type followed by the first 28 bytes of the fork data root.
pub fn compute_domain(
    domain_type: DomainType,
    fork_version: Version,
    genesis_validators_root: Root,
) -> Root {
    let fork_data_root = compute_fork_data_root(fork_version, genesis_validators_root);
    let mut domain = [0u8; 32];
    domain[..4].copy_from_slice(domain_type.as_slice());
    domain[4..].copy_from_slice(&fork_data_root[..28]);
    B256::from(domain)
}

/// `compute_signing_root(object, domain)` from the object's `hash_tree_root`.
pub fn compute_signing_root(object_root: Root, domain: Root) -> Root {
    SigningData {
        object_root,
        domain,
    }
    .tree_hash_root()
}

/// The fork version in force at `epoch` per `fork` (`get_domain`'s selection:
/// `previous_version` before `fork.epoch`, `current_version` from it on).
pub fn fork_version_at(fork: &Fork, epoch: u64) -> Version {
    if epoch < fork.epoch {
        fork.previous_version
    } else {
        fork.current_version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_layout() {
        let d = compute_domain(domain::DEPOSIT, Version::ZERO, Root::ZERO);
        assert_eq!(&d[..4], &[3, 0, 0, 0]);
        // mainnet DOMAIN_DEPOSIT, well known.
        assert_eq!(
            hex::encode(d),
            "03000000f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9"
        );
    }

    #[test]
    fn fork_selection_by_epoch() {
        let fork = Fork {
            previous_version: Version::from([1, 0, 0, 0]),
            current_version: Version::from([2, 0, 0, 0]),
            epoch: 10,
        };
        assert_eq!(fork_version_at(&fork, 9), fork.previous_version);
        assert_eq!(fork_version_at(&fork, 10), fork.current_version);
    }
}
