//! EIP-3076 slashing-protection interchange format, version 5: parsing, validation and the
//! pure preparation of an import (merging duplicates, computing the import's low
//! watermarks). No I/O here: stores apply a [`PreparedImport`] in one transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_utils::quoted_u64;

use super::rules::{LowWatermarks, SignedAttestation, SignedBlock};

/// The only interchange format version palisade reads and writes.
pub const FORMAT_VERSION: &str = "5";

/// An EIP-3076 interchange document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interchange {
    /// The `metadata` object: format version and genesis validators root.
    pub metadata: Metadata,
    /// The `data` array: one entry per validator (a validator may appear more than once;
    /// [`prepare`] merges the entries or refuses conflicting ones).
    pub data: Vec<InterchangeValidator>,
}

/// `metadata`: format version (the string `"5"`) and the 32-byte genesis validators root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `interchange_format_version`: a decimal string; only [`FORMAT_VERSION`] (`"5"`) is
    /// accepted.
    pub interchange_format_version: String,
    /// `genesis_validators_root`: the chain's 32-byte genesis validators root, `0x`-hex; it
    /// must match the one the database is bound to.
    pub genesis_validators_root: alloy_primitives::B256,
}

/// One validator's records; `pubkey` is the 48-byte BLS public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangeValidator {
    /// `pubkey`: the validator's 48-byte compressed BLS public key, `0x`-hex.
    pub pubkey: alloy_primitives::FixedBytes<48>,
    /// `signed_blocks`: the block proposals signed by this validator, in any order.
    pub signed_blocks: Vec<InterchangeBlock>,
    /// `signed_attestations`: the attestations signed by this validator, in any order.
    pub signed_attestations: Vec<InterchangeAttestation>,
}

/// A signed block: slot, optional 32-byte signing root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangeBlock {
    /// `slot`: the block's slot, a decimal string (at most 2^63 - 1 on import).
    #[serde(with = "quoted_u64")]
    pub slot: u64,
    /// `signing_root`: the 32-byte signing root, `0x`-hex; optional. Without it the record
    /// conflicts with every block at its slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_root: Option<alloy_primitives::B256>,
}

/// A signed attestation: source and target epochs, optional 32-byte signing root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangeAttestation {
    /// `source_epoch`: the FFG source epoch, a decimal string (at most 2^63 - 1 on import).
    #[serde(with = "quoted_u64")]
    pub source_epoch: u64,
    /// `target_epoch`: the FFG target epoch, a decimal string (at most 2^63 - 1 on import).
    #[serde(with = "quoted_u64")]
    pub target_epoch: u64,
    /// `signing_root`: the 32-byte signing root, `0x`-hex; optional. Without it the record
    /// conflicts with every attestation at its target epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_root: Option<alloy_primitives::B256>,
}

/// Why an interchange file cannot be imported. Nothing is written for any of these.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InterchangeError {
    /// The text is not one JSON document of the EIP-3076 shape (a missing or mistyped field,
    /// bad hex or length, a non-decimal number, trailing data), or an export was asked of a
    /// database with no genesis validators root yet. A parse error's message starts with the
    /// path of the offending field (e.g. `data[0].signed_blocks[2].slot`).
    #[error("not a valid EIP-3076 interchange file: {0}")]
    Malformed(String),
    /// `interchange_format_version` is not `"5"`; holds the version found.
    #[error("unsupported interchange_format_version {0:?} (\"5\" expected)")]
    UnsupportedVersion(String),
    /// A slot or epoch above 2^63 - 1, which the database's signed 64-bit columns cannot
    /// order.
    #[error("{what} {value} of validator {pubkey} is too large (at most 2^63 - 1)")]
    OutOfRange {
        /// Which field: `slot`, `source epoch` or `target epoch`.
        what: &'static str,
        /// The value found.
        value: u64,
        /// The validator's 48-byte BLS public key, `0x`-hex.
        pubkey: String,
    },
    /// A validator listed more than once in `data` whose later entry conflicts with the
    /// earlier ones: another signing root at a recorded slot or (target, source), another
    /// source at a recorded target (a double vote), or a surround vote between the entries.
    #[error("validator {pubkey} appears more than once with conflicting data: {detail}")]
    DuplicateConflict {
        /// The validator's 48-byte BLS public key, `0x`-hex.
        pubkey: String,
        /// The conflicting records, e.g. `two blocks at slot 5` or `attestation 1->4
        /// conflicts with 2->3`.
        detail: String,
    },
    /// The file's genesis validators root is not the one the database is bound to (reported
    /// by the store's import, before anything is written).
    #[error("genesis validators root {file} of the file does not match the database's {database}")]
    GenesisMismatch {
        /// The file's `metadata.genesis_validators_root`, `0x`-hex (32 bytes).
        file: String,
        /// The root the database is bound to, `0x`-hex (32 bytes).
        database: String,
    },
}

/// What an import writes for one validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorImport {
    /// The validator's 48-byte BLS public key.
    pub pubkey: [u8; 48],
    /// One record per slot; where the file has several roots for a slot, the root is `None`
    /// (nothing can then be signed at that slot).
    pub blocks: Vec<SignedBlock>,
    /// One record per (target, source) epoch pair: votes at one target with different
    /// sources are all kept; where the file has several votes at the same (target, source)
    /// with different or missing roots, the root is `None`.
    pub attestations: Vec<SignedAttestation>,
    /// The file's minima (EIP-3076 import conditions), to be merged with `max`.
    pub watermarks: LowWatermarks,
}

/// A validated interchange, ready for a store to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedImport {
    /// The file's 32-byte genesis validators root; the import binds an unbound database to
    /// it and is refused by a database bound to another.
    pub genesis_validators_root: [u8; 32],
    /// One entry per distinct validator, sorted by public key, duplicates in the file merged
    /// (in [`PreparedImport::batches`] a validator may span several batches).
    pub validators: Vec<ValidatorImport>,
}

/// Records per import transaction: a large file is written in transactions of at most this
/// many blocks and attestations, so that signing (which needs the same writer lock on SQLite,
/// and the validators' advisory locks on PostgreSQL) waits for one batch at most, not for the
/// whole file. About 0.1-0.2 s of SQLite work per batch on a 2-core machine.
pub const IMPORT_BATCH_RECORDS: usize = 1000;

impl PreparedImport {
    /// Splits the import into batches of at most `max_records` records (at least one batch,
    /// which may be empty: it still binds the genesis validators root). A validator with more
    /// records than that is split over consecutive batches, each carrying its full low
    /// watermarks.
    ///
    /// Applying a prefix of the batches is safe: an import only ever adds records and raises
    /// watermarks, so a store that fails after some batches is stricter than before and less
    /// strict than after the whole file; importing the file again completes it.
    pub fn batches(&self, max_records: usize) -> Vec<PreparedImport> {
        let max = max_records.max(1);
        let mut out = vec![PreparedImport {
            genesis_validators_root: self.genesis_validators_root,
            validators: Vec::new(),
        }];
        let mut room = max;
        for v in &self.validators {
            let mut blocks = v.blocks.as_slice();
            let mut atts = v.attestations.as_slice();
            loop {
                if room == 0 {
                    out.push(PreparedImport {
                        genesis_validators_root: self.genesis_validators_root,
                        validators: Vec::new(),
                    });
                    room = max;
                }
                let nb = blocks.len().min(room);
                let na = atts.len().min(room - nb);
                let batch = out.last_mut().expect("at least one batch");
                batch.validators.push(ValidatorImport {
                    pubkey: v.pubkey,
                    blocks: blocks[..nb].to_vec(),
                    attestations: atts[..na].to_vec(),
                    watermarks: v.watermarks,
                });
                room -= nb + na;
                blocks = &blocks[nb..];
                atts = &atts[na..];
                if blocks.is_empty() && atts.is_empty() {
                    break;
                }
            }
        }
        out
    }
}

/// Parses and validates an interchange document.
///
/// # Errors
/// [`InterchangeError::Malformed`] (naming the field and position),
/// [`InterchangeError::UnsupportedVersion`], [`InterchangeError::OutOfRange`],
/// [`InterchangeError::DuplicateConflict`].
pub fn parse(json: &str) -> Result<PreparedImport, InterchangeError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let interchange: Interchange = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        InterchangeError::Malformed(format!("{path}: {}", e.into_inner()))
    })?;
    // One document and nothing after it but whitespace (found by the `interchange` fuzz
    // target: `{…} garbage` was accepted).
    de.end()
        .map_err(|e| InterchangeError::Malformed(format!("after the document: {e}")))?;
    prepare(&interchange)
}

fn check_range(value: u64, what: &'static str, pubkey: &[u8; 48]) -> Result<(), InterchangeError> {
    if value > i64::MAX as u64 {
        return Err(InterchangeError::OutOfRange {
            what,
            value,
            pubkey: format!("0x{}", hex::encode(pubkey)),
        });
    }
    Ok(())
}

/// Refuses a repeated validator entry whose records conflict with the earlier entries:
/// another root at a recorded slot or target, another source at a recorded target, or a
/// surround vote between the entries.
fn check_duplicate(
    pubkey: &[u8; 48],
    entry: &InterchangeValidator,
    blocks: &BTreeMap<u64, Option<[u8; 32]>>,
    atts: &BTreeMap<(u64, u64), Option<[u8; 32]>>,
) -> Result<(), InterchangeError> {
    let fail = |detail: String| InterchangeError::DuplicateConflict {
        pubkey: format!("0x{}", hex::encode(pubkey)),
        detail,
    };
    for b in &entry.signed_blocks {
        if let Some(root) = blocks.get(&b.slot)
            && *root != b.signing_root.map(|r| r.0)
        {
            return Err(fail(format!("two blocks at slot {}", b.slot)));
        }
    }
    for a in &entry.signed_attestations {
        let root = a.signing_root.map(|r| r.0);
        for ((target, source), existing) in atts {
            let same_target =
                *target == a.target_epoch && (*source != a.source_epoch || *existing != root);
            let surround = (a.source_epoch < *source && *target < a.target_epoch)
                || (*source < a.source_epoch && a.target_epoch < *target);
            if same_target || surround {
                return Err(fail(format!(
                    "attestation {}->{} conflicts with {}->{}",
                    a.source_epoch, a.target_epoch, source, target
                )));
            }
        }
    }
    Ok(())
}

/// Merges duplicate validators and records and computes each validator's import minima.
///
/// # Errors
/// [`InterchangeError::UnsupportedVersion`], [`InterchangeError::OutOfRange`],
/// [`InterchangeError::DuplicateConflict`].
pub fn prepare(interchange: &Interchange) -> Result<PreparedImport, InterchangeError> {
    if interchange.metadata.interchange_format_version != FORMAT_VERSION {
        return Err(InterchangeError::UnsupportedVersion(
            interchange.metadata.interchange_format_version.clone(),
        ));
    }
    // Blocks by slot; attestations by (target epoch, source epoch). Two records at the same
    // slot, or at the same (target, source), with different or missing roots merge into one
    // without a root (it conflicts with every message there). Attestations at one target with
    // different sources are all kept: folding them into one would lose a source and with it
    // the surround checks it stands for (issue 13).
    type Merged = (
        BTreeMap<u64, Option<[u8; 32]>>,
        BTreeMap<(u64, u64), Option<[u8; 32]>>,
    );
    let mut by_key: BTreeMap<[u8; 48], Merged> = BTreeMap::new();
    for v in &interchange.data {
        let pubkey: [u8; 48] = v.pubkey.0;
        let duplicate = by_key.contains_key(&pubkey);
        let (blocks, atts) = by_key.entry(pubkey).or_default();
        if duplicate {
            check_duplicate(&pubkey, v, blocks, atts)?;
        }
        for b in &v.signed_blocks {
            check_range(b.slot, "slot", &pubkey)?;
            merge_root(blocks.entry(b.slot), b.signing_root.map(|r| r.0));
        }
        for a in &v.signed_attestations {
            check_range(a.source_epoch, "source epoch", &pubkey)?;
            check_range(a.target_epoch, "target epoch", &pubkey)?;
            merge_root(
                atts.entry((a.target_epoch, a.source_epoch)),
                a.signing_root.map(|r| r.0),
            );
        }
    }
    let validators = by_key
        .into_iter()
        .map(|(pubkey, (blocks, atts))| {
            let watermarks = LowWatermarks {
                slot: blocks.keys().next().copied(),
                source_epoch: atts.keys().map(|(_, s)| *s).min(),
                target_epoch: atts.keys().next().map(|(t, _)| *t),
            };
            ValidatorImport {
                pubkey,
                blocks: blocks
                    .into_iter()
                    .map(|(slot, signing_root)| SignedBlock { slot, signing_root })
                    .collect(),
                attestations: atts
                    .into_iter()
                    .map(
                        |((target_epoch, source_epoch), signing_root)| SignedAttestation {
                            source_epoch,
                            target_epoch,
                            signing_root,
                        },
                    )
                    .collect(),
                watermarks,
            }
        })
        .collect();
    Ok(PreparedImport {
        genesis_validators_root: interchange.metadata.genesis_validators_root.0,
        validators,
    })
}

/// Merges a record's signing root into the entry of its position (slot, or target and source
/// epoch): a second record with another or no root leaves the position without a root.
fn merge_root<K: Ord>(
    entry: std::collections::btree_map::Entry<'_, K, Option<[u8; 32]>>,
    root: Option<[u8; 32]>,
) {
    entry
        .and_modify(|existing| {
            if *existing != root {
                *existing = None;
            }
        })
        .or_insert(root);
}

/// Merges an import's minima (`imported`) into a validator's `existing` low watermarks:
/// each of slot, source epoch and target epoch becomes the larger of the two (a missing one
/// takes the other), so an import never lowers a watermark.
pub fn merge_watermarks(existing: &LowWatermarks, imported: &LowWatermarks) -> LowWatermarks {
    let max = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    };
    LowWatermarks {
        slot: max(existing.slot, imported.slot),
        source_epoch: max(existing.source_epoch, imported.source_epoch),
        target_epoch: max(existing.target_epoch, imported.target_epoch),
    }
}

/// The records that stand for one validator's history in an export.
///
/// EIP-3076 has no field for low watermarks, and an importer derives its own from the file's
/// minima (the lowest slot, source epoch and target epoch). So that a migration through an
/// export ends at least as strict as the database it came from, the low watermarks travel as
/// records without a signing root: a block at the slot watermark, and an attestation at
/// (source watermark, target watermark). Records dominated by the watermarks (a block at or
/// below the slot watermark; an attestation whose source and target are both at or below the
/// epoch watermarks) refuse nothing the watermarks do not already refuse, and are left out, so
/// that the importer's minima are the watermarks themselves.
pub fn exported_records(
    history: &super::ValidatorHistory,
) -> (Vec<SignedBlock>, Vec<SignedAttestation>) {
    let w = &history.watermarks;
    let (w_slot, w_source, w_target) = (w.slot, w.source_epoch, w.target_epoch);
    let mut blocks: Vec<SignedBlock> = history
        .blocks
        .iter()
        .filter(|b| w_slot.is_none_or(|ws| b.slot > ws))
        .copied()
        .collect();
    if let Some(slot) = w_slot {
        blocks.insert(
            0,
            SignedBlock {
                slot,
                signing_root: None,
            },
        );
    }
    let mut attestations: Vec<SignedAttestation> = history
        .attestations
        .iter()
        .filter(|a| match (w_source, w_target) {
            (Some(ws), Some(wt)) => a.source_epoch > ws || a.target_epoch > wt,
            _ => true,
        })
        .copied()
        .collect();
    if w_source.is_some() || w_target.is_some() {
        let source_epoch = w_source.unwrap_or(0);
        attestations.insert(
            0,
            SignedAttestation {
                source_epoch,
                target_epoch: w_target.unwrap_or(source_epoch),
                signing_root: None,
            },
        );
    }
    (blocks, attestations)
}

/// Builds an interchange document from per-validator histories (records as
/// [`exported_records`] gives them).
pub fn build(
    genesis_validators_root: [u8; 32],
    validators: Vec<([u8; 48], super::ValidatorHistory)>,
) -> Interchange {
    Interchange {
        metadata: Metadata {
            interchange_format_version: FORMAT_VERSION.to_string(),
            genesis_validators_root: genesis_validators_root.into(),
        },
        data: validators
            .into_iter()
            .map(|(pubkey, h)| {
                let (blocks, attestations) = exported_records(&h);
                InterchangeValidator {
                    pubkey: pubkey.into(),
                    signed_blocks: blocks
                        .into_iter()
                        .map(|b| InterchangeBlock {
                            slot: b.slot,
                            signing_root: b.signing_root.map(Into::into),
                        })
                        .collect(),
                    signed_attestations: attestations
                        .into_iter()
                        .map(|a| InterchangeAttestation {
                            source_epoch: a.source_epoch,
                            target_epoch: a.target_epoch,
                            signing_root: a.signing_root.map(Into::into),
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PK: &str = "0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c";

    fn doc(body: &str) -> String {
        format!(
            r#"{{"metadata": {{"interchange_format_version": "5", "genesis_validators_root": "0x{}"}}, "data": [{body}]}}"#,
            "00".repeat(32)
        )
    }

    #[test]
    fn duplicates_merge_conservatively_and_minima_are_computed() {
        let json = doc(&format!(
            r#"{{"pubkey": "{PK}", "signed_blocks": [{{"slot": "5", "signing_root": "0x{a}"}}, {{"slot": "5", "signing_root": "0x{b}"}}, {{"slot": "9"}}],
                "signed_attestations": [{{"source_epoch": "2", "target_epoch": "3", "signing_root": "0x{a}"}}]}},
               {{"pubkey": "{PK}", "signed_blocks": [], "signed_attestations": [{{"source_epoch": "2", "target_epoch": "3", "signing_root": "0x{a}"}}, {{"source_epoch": "1", "target_epoch": "2"}}]}}"#,
            a = "aa".repeat(32),
            b = "bb".repeat(32)
        ));
        let p = parse(&json).unwrap();
        assert_eq!(p.validators.len(), 1);
        let v = &p.validators[0];
        assert_eq!(
            v.blocks,
            vec![
                SignedBlock {
                    slot: 5,
                    signing_root: None
                },
                SignedBlock {
                    slot: 9,
                    signing_root: None
                }
            ]
        );
        assert_eq!(
            v.attestations,
            vec![
                SignedAttestation {
                    source_epoch: 1,
                    target_epoch: 2,
                    signing_root: None
                },
                SignedAttestation {
                    source_epoch: 2,
                    target_epoch: 3,
                    signing_root: Some([0xaa; 32])
                }
            ]
        );
        assert_eq!(
            v.watermarks,
            LowWatermarks {
                slot: Some(5),
                source_epoch: Some(1),
                target_epoch: Some(2),
            }
        );
    }

    #[test]
    fn malformed_files_are_refused_with_the_problem_named() {
        let bad_version = doc("").replace("\"5\"", "\"4\"");
        assert_eq!(
            parse(&bad_version).unwrap_err(),
            InterchangeError::UnsupportedVersion("4".into())
        );
        let bad_hex = doc(r#"{"pubkey": "0xzz", "signed_blocks": [], "signed_attestations": []}"#);
        assert!(
            matches!(parse(&bad_hex).unwrap_err(), InterchangeError::Malformed(m) if m.contains("pubkey"))
        );
        let huge = doc(&format!(
            r#"{{"pubkey": "{PK}", "signed_blocks": [{{"slot": "18446744073709551615"}}], "signed_attestations": []}}"#
        ));
        assert!(matches!(
            parse(&huge).unwrap_err(),
            InterchangeError::OutOfRange { what: "slot", .. }
        ));
        assert!(matches!(
            parse("{").unwrap_err(),
            InterchangeError::Malformed(_)
        ));
        let dup = doc(&format!(
            r#"{{"pubkey": "{PK}", "signed_blocks": [], "signed_attestations": [{{"source_epoch": "2", "target_epoch": "3"}}]}},
               {{"pubkey": "{PK}", "signed_blocks": [], "signed_attestations": [{{"source_epoch": "1", "target_epoch": "4"}}]}}"#
        ));
        assert!(matches!(
            parse(&dup).unwrap_err(),
            InterchangeError::DuplicateConflict { .. }
        ));
    }

    #[test]
    fn watermarks_only_rise() {
        let old = LowWatermarks {
            slot: Some(10),
            source_epoch: None,
            target_epoch: Some(4),
        };
        let new = LowWatermarks {
            slot: Some(7),
            source_epoch: Some(3),
            target_epoch: Some(6),
        };
        assert_eq!(
            merge_watermarks(&old, &new),
            LowWatermarks {
                slot: Some(10),
                source_epoch: Some(3),
                target_epoch: Some(6),
            }
        );
    }

    #[test]
    fn batches_cover_every_record_once_and_bound_each_transaction() {
        let att = |t: u64| SignedAttestation {
            source_epoch: t,
            target_epoch: t + 1,
            signing_root: None,
        };
        let blk = |slot: u64| SignedBlock {
            slot,
            signing_root: None,
        };
        let v = |k: u8, nb: u64, na: u64| ValidatorImport {
            pubkey: [k; 48],
            blocks: (0..nb).map(blk).collect(),
            attestations: (0..na).map(att).collect(),
            watermarks: LowWatermarks {
                slot: Some(k as u64),
                ..LowWatermarks::default()
            },
        };
        let p = PreparedImport {
            genesis_validators_root: [7; 32],
            validators: vec![v(1, 3, 4), v(2, 0, 0), v(3, 10, 1)],
        };
        let batches = p.batches(5);
        assert!(batches.iter().all(|b| b.genesis_validators_root == [7; 32]));
        assert!(batches.iter().all(|b| {
            b.validators
                .iter()
                .map(|v| v.blocks.len() + v.attestations.len())
                .sum::<usize>()
                <= 5
        }));
        for original in &p.validators {
            let parts: Vec<&ValidatorImport> = batches
                .iter()
                .flat_map(|b| &b.validators)
                .filter(|x| x.pubkey == original.pubkey)
                .collect();
            assert!(parts.iter().all(|x| x.watermarks == original.watermarks));
            let blocks: Vec<SignedBlock> = parts.iter().flat_map(|x| x.blocks.clone()).collect();
            let atts: Vec<SignedAttestation> =
                parts.iter().flat_map(|x| x.attestations.clone()).collect();
            assert_eq!(blocks, original.blocks);
            assert_eq!(atts, original.attestations);
        }
        let empty = PreparedImport {
            genesis_validators_root: [7; 32],
            validators: Vec::new(),
        };
        assert_eq!(
            empty.batches(5).len(),
            1,
            "an empty file still binds the root"
        );
    }

    #[test]
    fn trailing_characters_are_refused() {
        let ok = doc("");
        assert!(parse(&ok).is_ok());
        assert!(parse(&format!("{ok}\n  ")).is_ok());
        assert!(matches!(
            parse(&format!("{ok} x")).unwrap_err(),
            InterchangeError::Malformed(m) if m.contains("after the document")
        ));
        assert!(parse(&format!("{ok}{ok}")).is_err());
    }
}
