//! What a Tezos key may sign: request kinds, operation kinds inside generic operations and
//! chain ids. Pure; the `policy:` block of a `tezos-secret` or `pkcs11` key config.
//!
//! ```yaml
//! policy:
//!   allow: [block, preattestation, attestation, generic]   # default: block, preattestation, attestation
//!   operations: [transaction, reveal, delegation, stake, unstake, finalize_unstake]  # default: every kind palisade decodes
//!   chainIds: [NetXdQprcVkpaWU]                             # default: any chain
//!   provePossession: true                                   # serve GET /bls_prove_possession (tz4), default false
//! ```
//! Generic operations (magic byte 0x03) are always decoded as far as their operation tags;
//! anything that cannot be decoded is refused (fail closed).

use serde::Deserialize;

use super::base58;
use super::operations::{OperationKind, operation_kinds};
use super::payload::{Payload, RequestKind};

/// The `policy:` block as written in a key config (camelCase).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyConfig {
    /// Request kinds: block, preattestation, attestation, generic, michelson_data.
    pub allow: Option<Vec<String>>,
    /// Operation kinds allowed inside generic operations.
    pub operations: Option<Vec<String>>,
    /// Chain ids (`Net…`) consensus messages may name.
    pub chain_ids: Option<Vec<String>>,
    /// Whether `GET /bls_prove_possession/{pkh}` answers for this key.
    #[serde(default)]
    pub prove_possession: bool,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    kinds: Vec<RequestKind>,
    operations: Option<Vec<OperationKind>>,
    chain_ids: Option<Vec<[u8; 4]>>,
    prove_possession: bool,
}

impl Default for Policy {
    /// Block, preattestation and attestation on any chain; no generic operations, no
    /// Michelson data, no proof of possession.
    fn default() -> Self {
        Policy {
            kinds: vec![
                RequestKind::Block,
                RequestKind::Preattestation,
                RequestKind::Attestation,
            ],
            operations: None,
            chain_ids: None,
            prove_possession: false,
        }
    }
}

/// Why a request is refused by policy (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The request kind is not in the key's `allow` list.
    #[error("policy of this key does not allow {0} requests")]
    Kind(&'static str),
    /// A generic operation contains an operation kind not in `operations`.
    #[error("policy of this key does not allow {0} operations")]
    Operation(&'static str),
    /// A generic operation palisade cannot decode far enough to apply the policy.
    #[error("operation refused: {0}")]
    Undecodable(String),
    /// The chain id is not in `chainIds`.
    #[error("policy of this key does not allow chain {0}")]
    Chain(String),
}

impl Policy {
    /// Validates a `policy:` block.
    ///
    /// # Errors
    /// A message naming the unknown kind, operation or malformed chain id.
    pub fn from_config(config: &PolicyConfig) -> Result<Self, String> {
        let mut policy = Policy::default();
        if let Some(allow) = &config.allow {
            policy.kinds = allow
                .iter()
                .map(|k| {
                    k.parse::<RequestKind>().map_err(|_| {
                        format!("policy.allow: unknown request kind `{k}` (block, preattestation, attestation, generic, michelson_data)")
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(ops) = &config.operations {
            policy.operations = Some(
                ops.iter()
                    .map(|o| {
                        o.parse::<OperationKind>()
                            .map_err(|_| format!("policy.operations: unknown operation kind `{o}`"))
                    })
                    .collect::<Result<_, _>>()?,
            );
        }
        if let Some(chains) = &config.chain_ids {
            policy.chain_ids = Some(
                chains
                    .iter()
                    .map(|c| {
                        base58::decode_chain_id(c)
                            .map_err(|e| format!("policy.chainIds: `{c}` is not a chain id: {e}"))
                    })
                    .collect::<Result<_, _>>()?,
            );
        }
        policy.prove_possession = config.prove_possession;
        Ok(policy)
    }

    /// Whether `GET /bls_prove_possession` may answer for this key.
    pub fn allows_prove_possession(&self) -> bool {
        self.prove_possession
    }

    /// Checks one parsed request.
    ///
    /// # Errors
    /// [`PolicyError`] naming what is not allowed.
    pub fn check(&self, payload: &Payload<'_>) -> Result<(), PolicyError> {
        let kind = payload.request_kind();
        if !self.kinds.contains(&kind) {
            return Err(PolicyError::Kind(kind.as_str()));
        }
        if let (Some(allowed), Some(chain)) = (&self.chain_ids, payload.chain_id())
            && !allowed.contains(&chain)
        {
            return Err(PolicyError::Chain(base58::encode_chain_id(chain)));
        }
        if let Payload::Generic { contents, .. } = payload {
            let kinds =
                operation_kinds(contents).map_err(|e| PolicyError::Undecodable(e.to_string()))?;
            if let Some(allowed) = &self.operations
                && let Some(bad) = kinds.iter().find(|k| !allowed.contains(k))
            {
                return Err(PolicyError::Operation(bad.as_str()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tezos::payload::parse;

    const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

    fn attestation(chain: [u8; 4]) -> Vec<u8> {
        let mut b = vec![0x13];
        b.extend_from_slice(&chain);
        b.extend_from_slice(&[0; 32]);
        b.extend_from_slice(&[21, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        b
    }

    /// A generic operation with one delegation (tag 110) withdrawing the delegate.
    fn delegation() -> Vec<u8> {
        let mut b = vec![0x03];
        b.extend_from_slice(&[0; 32]);
        b.push(110);
        b.extend_from_slice(&[0; 21]);
        b.extend_from_slice(&[1, 1, 1, 1, 0x00]);
        b
    }

    fn config(yaml: &str) -> Result<Policy, String> {
        Policy::from_config(&serde_norway::from_str::<PolicyConfig>(yaml).unwrap())
    }

    #[test]
    fn default_allows_consensus_only() {
        let p = Policy::default();
        assert_eq!(p.check(&parse(&attestation(MAINNET)).unwrap()), Ok(()));
        assert_eq!(
            p.check(&parse(&delegation()).unwrap()),
            Err(PolicyError::Kind("generic"))
        );
        assert!(!p.allows_prove_possession());
    }

    #[test]
    fn operations_and_chains_narrow_what_is_allowed() {
        let p = config(
            "allow: [generic, attestation]\noperations: [transaction]\nchainIds: [NetXdQprcVkpaWU]",
        )
        .unwrap();
        assert_eq!(
            p.check(&parse(&delegation()).unwrap()),
            Err(PolicyError::Operation("delegation"))
        );
        assert_eq!(p.check(&parse(&attestation(MAINNET)).unwrap()), Ok(()));
        assert!(matches!(
            p.check(&parse(&attestation([1, 2, 3, 4])).unwrap()),
            Err(PolicyError::Chain(_))
        ));
        let any_op = config("allow: [generic]").unwrap();
        assert_eq!(any_op.check(&parse(&delegation()).unwrap()), Ok(()));
        let mut truncated = delegation();
        truncated.pop();
        assert!(matches!(
            any_op.check(&parse(&truncated).unwrap()),
            Err(PolicyError::Undecodable(_))
        ));
    }

    #[test]
    fn bad_config_is_refused_with_its_name() {
        assert!(config("allow: [baking]").unwrap_err().contains("baking"));
        assert!(
            config("operations: [teleport]")
                .unwrap_err()
                .contains("teleport")
        );
        assert!(
            config("chainIds: [NetXnotachain]")
                .unwrap_err()
                .contains("NetXnotachain")
        );
        assert!(serde_norway::from_str::<PolicyConfig>("alow: [block]").is_err());
    }
}
