//! What a Tezos key may sign: request kinds, operation kinds inside generic operations and
//! chain ids. Pure; the `policy:` block of a `tezos-secret` or `pkcs11` key config.
//!
//! ```yaml
//! policy:
//!   allow: [block, preattestation, attestation, generic]   # default: block, preattestation, attestation
//!   operations: [transaction, reveal, delegation, stake, unstake, finalize_unstake]  # default: see below
//!   chainIds: [NetXdQprcVkpaWU]                             # default: any chain
//!   provePossession: true                                   # serve GET /bls_prove_possession (tz4), default false
//! ```
//! Generic operations (magic byte 0x03) are always decoded completely
//! ([`super::operations::decode_operations`]); anything that cannot be decoded is refused
//! (fail closed), and every operation of a batch must be allowed.
//!
//! `operations` names octez's operation kinds ([`OperationKind::as_str`]): `transaction`,
//! `reveal`, `delegation`, `origination`, `ballot`, `proposals`, the staking kinds `stake`,
//! `unstake`, `finalize_unstake`, `set_delegate_parameters`, and `register_global_constant`,
//! `set_deposits_limit`, `increase_paid_storage`, `update_consensus_key`,
//! `update_companion_key`, `transfer_ticket`, `smart_rollup_originate`,
//! `smart_rollup_add_messages`, `smart_rollup_cement`, `smart_rollup_publish`,
//! `smart_rollup_refute`, `smart_rollup_timeout`, `smart_rollup_execute_outbox_message`,
//! `smart_rollup_recover_bond`, `dal_publish_commitment`, `drain_delegate`, `failing_noop`,
//! `seed_nonce_revelation`, `vdf_revelation`, `activate_account`,
//! `double_consensus_operation_evidence`, `double_baking_evidence`, `dal_entrapment_evidence`,
//! and `unknown`. Without `operations`, the default is the first ten
//! ([`OperationKind::DEFAULT`], what palisade decoded before it decoded every operation), so
//! that an upgrade never widens what an existing config allows: every other kind must be
//! named.
//!
//! `unknown` allows an operation tag palisade does not decode (a future protocol's), with
//! everything after it: the decoder cannot tell where an unknown operation ends, so the rest
//! of the contents is taken as that one unknown operation, unchecked. The operations before
//! it are still decoded and checked. Consensus operations inside a generic request and
//! zk-rollup operations are refused even then. Without `unknown` (the default), an unknown
//! tag is refused. Consensus signing (block, preattestation, attestation) never goes through
//! this decoder and is not affected by either.
//!
//! `stake`, `unstake`, `finalize_unstake` and `set_delegate_parameters` in `operations` allow
//! the staking pseudo-operations of the key's *own* account only: a transaction by the key's
//! pkh to itself that the protocol applies as staking
//! ([`super::operations::Transaction::staking_kind`]). Any other transaction, whatever its
//! entrypoint is called (a call named `stake` to a KT1 contract or to another account, or a
//! staking call by another source), is a `transaction` and needs `transaction` in the list.

use serde::Deserialize;

use super::base58;
use super::operations::{
    Entrypoint, Operation, OperationError, OperationKind, decode_operations,
    decode_operations_allowing_unknown,
};
use super::payload::{Payload, RequestKind};

/// The `policy:` block as written in a key config (camelCase).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyConfig {
    /// Request kinds: block, preattestation, attestation, generic, michelson_data.
    pub allow: Option<Vec<String>>,
    /// Operation kinds allowed inside generic operations (default: [`OperationKind::DEFAULT`]);
    /// `unknown` allows operation tags palisade does not decode, and everything after them.
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
    operations: Vec<OperationKind>,
    chain_ids: Option<Vec<[u8; 4]>>,
    prove_possession: bool,
}

impl Default for Policy {
    /// Block, preattestation and attestation on any chain; no generic operations (and, once
    /// `generic` is allowed, the [`OperationKind::DEFAULT`] kinds inside them), no Michelson
    /// data, no proof of possession.
    fn default() -> Self {
        Policy {
            kinds: vec![
                RequestKind::Block,
                RequestKind::Preattestation,
                RequestKind::Attestation,
            ],
            operations: OperationKind::DEFAULT.to_vec(),
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
    /// A generic operation contains an operation kind not in `operations` (or, without
    /// `operations`, not one of [`OperationKind::DEFAULT`]).
    #[error(
        "policy of this key does not allow {0} operations (name `{0}` in policy.operations to \
         allow them)"
    )]
    Operation(&'static str),
    /// A transaction at a staking entrypoint (named here) that is not a staking
    /// pseudo-operation of this key, and `transaction` is not in `operations`.
    #[error(
        "policy of this key does not allow transaction operations: this call to entrypoint \
         `{0}` is a transaction, not staking (staking is only the key's own account calling \
         itself, with the protocol's amount and Unit parameter)"
    )]
    NotStaking(&'static str),
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
            policy.operations = ops
                .iter()
                .map(|o| {
                    o.parse::<OperationKind>()
                        .map_err(|e| format!("policy.operations: `{o}`: {e}"))
                })
                .collect::<Result<_, _>>()?;
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

    /// Checks one parsed request that the key whose 21-byte public key hash (tag byte, then the
    /// 20-byte hash) is `signer` is asked to sign: operations inside a generic request are
    /// classified for that key ([`Operation::kind`]), so only its own staking pseudo-operations
    /// count as staking.
    ///
    /// # Errors
    /// [`PolicyError`] naming what is not allowed.
    pub fn check(&self, payload: &Payload<'_>, signer: &[u8; 21]) -> Result<(), PolicyError> {
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
            let allowed = &self.operations;
            let decoded = if allowed.contains(&OperationKind::Unknown) {
                decode_operations_allowing_unknown(contents)
            } else {
                decode_operations(contents)
            };
            let operations = decoded.map_err(|e| match e {
                OperationError::UnknownTag { .. } => PolicyError::Undecodable(format!(
                    "{e} (this key's policy.operations does not name `unknown`, which would \
                     allow it and everything after it)"
                )),
                e => PolicyError::Undecodable(e.to_string()),
            })?;
            for op in &operations {
                let kind = op.kind(Some(signer));
                if allowed.contains(&kind) {
                    continue;
                }
                if let Operation::Transaction(t) = op
                    && kind == OperationKind::Transaction
                    && let Some(name) = staking_entrypoint_name(&t.entrypoint)
                {
                    return Err(PolicyError::NotStaking(name));
                }
                return Err(PolicyError::Operation(kind.as_str()));
            }
        }
        Ok(())
    }
}

/// The name of a staking entrypoint, for the refusal of a transaction that only looks like
/// staking.
fn staking_entrypoint_name(entrypoint: &Entrypoint) -> Option<&'static str> {
    match entrypoint {
        Entrypoint::Stake => Some("stake"),
        Entrypoint::Unstake => Some("unstake"),
        Entrypoint::FinalizeUnstake => Some("finalize_unstake"),
        Entrypoint::SetDelegateParameters => Some("set_delegate_parameters"),
        _ => None,
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

    /// The signing key of these tests: tag 0 (ed25519), hash 0x11….
    const KEY: [u8; 21] = {
        let mut pkh = [0x11; 21];
        pkh[0] = 0;
        pkh
    };

    /// A generic operation with one transaction from `source` to the implicit account `dest`
    /// (or to a KT1 when `None`) of `amount` (a one-byte zarith, < 128) at entrypoint tag
    /// `entrypoint` with `Unit`.
    fn call(source: [u8; 21], dest: Option<[u8; 21]>, amount: u8, entrypoint: u8) -> Vec<u8> {
        let mut b = vec![0x03];
        b.extend_from_slice(&[0; 32]);
        b.push(108);
        b.extend_from_slice(&source);
        b.extend_from_slice(&[1, 1, 1, 1, amount]);
        match dest {
            Some(d) => {
                b.push(0);
                b.extend_from_slice(&d);
            }
            None => {
                b.push(1);
                b.extend_from_slice(&[0x22; 20]);
                b.push(0);
            }
        }
        b.extend_from_slice(&[0xff, entrypoint, 0, 0, 0, 2, 0x03, 0x0b]);
        b
    }

    fn config(yaml: &str) -> Result<Policy, String> {
        Policy::from_config(&serde_norway::from_str::<PolicyConfig>(yaml).unwrap())
    }

    #[test]
    fn default_allows_consensus_only() {
        let p = Policy::default();
        assert_eq!(
            p.check(&parse(&attestation(MAINNET)).unwrap(), &KEY),
            Ok(())
        );
        assert_eq!(
            p.check(&parse(&delegation()).unwrap(), &KEY),
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
            p.check(&parse(&delegation()).unwrap(), &KEY),
            Err(PolicyError::Operation("delegation"))
        );
        assert_eq!(
            p.check(&parse(&attestation(MAINNET)).unwrap(), &KEY),
            Ok(())
        );
        assert!(matches!(
            p.check(&parse(&attestation([1, 2, 3, 4])).unwrap(), &KEY),
            Err(PolicyError::Chain(_))
        ));
        let any_op = config("allow: [generic]").unwrap();
        assert_eq!(any_op.check(&parse(&delegation()).unwrap(), &KEY), Ok(()));
        let mut truncated = delegation();
        truncated.pop();
        assert!(matches!(
            any_op.check(&parse(&truncated).unwrap(), &KEY),
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

    #[test]
    fn staking_policy_allows_only_the_keys_own_staking() {
        let p = config("allow: [generic]\noperations: [stake, unstake, finalize_unstake]").unwrap();
        let check = |bytes: &[u8], signer: &[u8; 21]| p.check(&parse(bytes).unwrap(), signer);
        // The key's own stake (tag 6), unstake (7) and finalize_unstake (8, amount 0).
        assert_eq!(check(&call(KEY, Some(KEY), 100, 6), &KEY), Ok(()));
        assert_eq!(check(&call(KEY, Some(KEY), 100, 7), &KEY), Ok(()));
        assert_eq!(check(&call(KEY, Some(KEY), 0, 8), &KEY), Ok(()));
        // Transfers dressed as staking.
        let mut other = KEY;
        other[20] = 0x99;
        for (what, bytes, signer, name) in [
            ("stake to a KT1", call(KEY, None, 100, 6), KEY, "stake"),
            (
                "stake to another tz1",
                call(KEY, Some(other), 100, 6),
                KEY,
                "stake",
            ),
            (
                "unstake to another tz1",
                call(KEY, Some(other), 100, 7),
                KEY,
                "unstake",
            ),
            (
                "another account's stake",
                call(other, Some(other), 100, 6),
                KEY,
                "stake",
            ),
            (
                "our stake signed by another key",
                call(KEY, Some(KEY), 100, 6),
                other,
                "stake",
            ),
            (
                "finalize with an amount",
                call(KEY, Some(KEY), 5, 8),
                KEY,
                "finalize_unstake",
            ),
            ("stake of nothing", call(KEY, Some(KEY), 0, 6), KEY, "stake"),
        ] {
            let err = check(&bytes, &signer).unwrap_err();
            assert_eq!(err, PolicyError::NotStaking(name), "{what}");
            assert!(err.to_string().contains("transaction"), "{what}: {err}");
        }
        // A plain transfer and set_delegate_parameters (not in the list).
        assert_eq!(
            check(&call(KEY, Some(other), 100, 0), &KEY),
            Err(PolicyError::Operation("transaction"))
        );
        let sdp = {
            let mut b = call(KEY, Some(KEY), 0, 9);
            let n = b.len();
            b[n - 2..].copy_from_slice(&[0x03, 0x0b]);
            b
        };
        assert_eq!(
            check(&sdp, &KEY),
            Err(PolicyError::Operation("set_delegate_parameters"))
        );
        // With `transaction` allowed too, the dressed-up transfer is signed as what it is.
        let with_tx = config("allow: [generic]\noperations: [transaction, stake]").unwrap();
        assert_eq!(
            with_tx.check(&parse(&call(KEY, None, 100, 6)).unwrap(), &KEY),
            Ok(())
        );
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `(kind, generic request)` for every kind decoded since palisade decodes every
    /// operation: Taquito-forged where Taquito supports the kind
    /// (`tests/vectors/tezos-operations/taquito_forged.json`), hand-built from the octez
    /// layouts (`src/proto_025_PsUshuai/lib_protocol/operation_repr.ml`) otherwise.
    fn new_kind_requests() -> Vec<(OperationKind, Vec<u8>)> {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/vectors/tezos-operations/taquito_forged.json"
        ))
        .unwrap();
        let mut out = Vec::new();
        for f in v["forged"].as_array().unwrap() {
            let kind: OperationKind = f["kind"].as_str().unwrap().parse().unwrap();
            if OperationKind::DEFAULT.contains(&kind) {
                continue;
            }
            let mut b = vec![0x03];
            b.extend(hex_bytes(f["forged_hex"].as_str().unwrap()));
            out.push((kind, b));
        }
        let generic = |contents: &[&[u8]]| {
            let mut b = vec![0x03];
            b.extend_from_slice(&[0; 32]);
            for c in contents {
                b.extend_from_slice(c);
            }
            b
        };
        let manager = |tag: u8| {
            let mut m = vec![tag];
            m.extend_from_slice(&KEY);
            m.extend_from_slice(&[1, 1, 1, 1]);
            m
        };
        let pkh: &[u8] = &KEY;
        let len = |n: u32| n.to_be_bytes();
        use OperationKind as K;
        out.extend([
            (K::SmartRollupCement, generic(&[&manager(202), &[0xbb; 20]])),
            (
                K::SmartRollupPublish,
                generic(&[
                    &manager(203),
                    &[0xbb; 20],
                    &[0xee; 32],
                    &len(5),
                    &[0xcc; 32],
                    &[0; 8],
                ]),
            ),
            (
                K::SmartRollupRefute,
                generic(&[&manager(204), &[0xbb; 20], pkh, &[0], &[1; 32], &[2; 32]]),
            ),
            (
                K::SmartRollupTimeout,
                generic(&[&manager(205), &[0xbb; 20], pkh, pkh]),
            ),
            (
                K::SmartRollupRecoverBond,
                generic(&[&manager(207), &[0xbb; 20], pkh]),
            ),
            (K::VdfRevelation, generic(&[&[8], &[1; 200]])),
            (
                K::DoubleConsensusOperationEvidence,
                generic(&[&[2, 0, 1], &len(3), &[1, 2, 3], &len(1), &[4]]),
            ),
            (
                K::DoubleBakingEvidence,
                generic(&[&[3], &len(2), &[1, 2], &len(0)]),
            ),
            (
                K::DalEntrapmentEvidence,
                generic(&[
                    &[24],
                    &len(1),
                    &[9],
                    &[0, 1, 2, 0x00],
                    &len(0),
                    &len(32),
                    &[7; 32],
                    &[8; 48],
                ]),
            ),
        ]);
        out
    }

    #[test]
    fn every_new_kind_needs_its_name() {
        let requests = new_kind_requests();
        let named: Vec<OperationKind> = requests.iter().map(|(k, _)| *k).collect();
        for k in OperationKind::ALL {
            if !OperationKind::DEFAULT.contains(&k) && k != OperationKind::Unknown {
                assert!(named.contains(&k), "no request for {k}");
            }
        }
        let default = config("allow: [generic]").unwrap();
        for (kind, bytes) in &requests {
            let payload = parse(bytes).unwrap();
            // Refused by default: upgrading palisade does not widen an existing config.
            assert_eq!(
                default.check(&payload, &KEY),
                Err(PolicyError::Operation(kind.as_str())),
                "{kind} by default"
            );
            let only = config(&format!("allow: [generic]\noperations: [{kind}]")).unwrap();
            assert_eq!(only.check(&payload, &KEY), Ok(()), "{kind} named");
            let others: Vec<&str> = OperationKind::ALL
                .iter()
                .filter(|k| *k != kind)
                .map(|k| k.as_str())
                .collect();
            let all_but = config(&format!(
                "allow: [generic]\noperations: [{}]",
                others.join(", ")
            ))
            .unwrap();
            let err = all_but.check(&payload, &KEY).unwrap_err();
            assert_eq!(
                err,
                PolicyError::Operation(kind.as_str()),
                "{kind} not named"
            );
            assert!(err.to_string().contains(&format!("`{kind}`")), "{err}");
        }
        // The default list is still what palisade allowed before.
        assert_eq!(
            config("allow: [generic]").unwrap().operations,
            OperationKind::DEFAULT.to_vec()
        );
        assert_eq!(default.check(&parse(&delegation()).unwrap(), &KEY), Ok(()));
    }

    #[test]
    fn unknown_tags_need_the_unknown_name() {
        let mut unknown = delegation();
        unknown.extend_from_slice(&[0x60, 1, 2, 3]);
        let payload = parse(&unknown).unwrap();
        let default = config("allow: [generic]").unwrap();
        let err = default.check(&payload, &KEY).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Undecodable(m) if m.contains("0x60") && m.contains("`unknown`")),
            "{err}"
        );
        let opt_in =
            config("allow: [generic, attestation]\noperations: [delegation, unknown]").unwrap();
        assert_eq!(opt_in.check(&payload, &KEY), Ok(()));
        // The operations before the unknown one still need their own names.
        let unknown_only = config("allow: [generic]\noperations: [unknown]").unwrap();
        assert_eq!(
            unknown_only.check(&payload, &KEY),
            Err(PolicyError::Operation("delegation"))
        );
        assert_eq!(
            unknown_only.check(
                &parse(&[&[0x03][..], &[0; 32], &[0x60]].concat()).unwrap(),
                &KEY
            ),
            Ok(())
        );
        // A consensus operation inside a generic request is refused even so.
        let mut consensus = vec![0x03];
        consensus.extend_from_slice(&[0; 32]);
        consensus.extend_from_slice(&[21, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        consensus.extend_from_slice(&[0; 32]);
        assert!(matches!(
            opt_in.check(&parse(&consensus).unwrap(), &KEY),
            Err(PolicyError::Undecodable(m)) if m.contains("consensus")
        ));
        // Consensus signing does not go through the operation decoder.
        assert_eq!(
            opt_in.check(&parse(&attestation(MAINNET)).unwrap(), &KEY),
            Ok(())
        );
        assert_eq!(
            default.check(&parse(&attestation(MAINNET)).unwrap(), &KEY),
            Err(PolicyError::Kind("attestation"))
        );
    }
}
