//! Slashing protection at the store level, on every registered store (SQLite, and PostgreSQL
//! at `DATABASE_URL`; see `common::store_suite!`): the EIP-3076 interchange test suite from
//! `tests/vectors/slashing-interchange/`, malformed imports, export round trips, the high
//! watermark and pruning, audit rows, disabled validators.

mod common;

use std::sync::Arc;

use common::{Backend, TestDb, fresh_db};
use palisade::protection::interchange::{self, InterchangeError};
use palisade::protection::{
    self, HighWatermark, ProtectedMessage, ProtectionError, ProtectionStore,
};
use serde_json::Value;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Opens a store on `rt`, which must outlive it (PostgreSQL's group-commit workers run there).
fn open(db: &TestDb, rt: &tokio::runtime::Runtime) -> Arc<dyn ProtectionStore> {
    rt.block_on(protection::open(&db.url, 4)).unwrap()
}

fn hex32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap().trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap()
}

fn hex48(v: &Value) -> [u8; 48] {
    hex::decode(v.as_str().unwrap().trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap()
}

fn num(v: &Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}

/// Runs every interchange test file on `backend`; returns the checks where palisade chose
/// the stricter answer (minimal refuses, complete allows, palisade refused).
fn interchange_checks(backend: Backend) -> Option<Vec<String>> {
    let dir = common::vectors_dir().join("slashing-interchange");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 28, "interchange suite present");
    let mut stricter = Vec::new();
    let rt = rt();
    for file in files {
        let tmp = tempfile::tempdir().unwrap();
        let db = fresh_db(backend, tmp.path())?;
        let store = rt.block_on(protection::open(&db.url, 4)).unwrap();
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let name = case["name"].as_str().unwrap().to_string();
        let gvr = hex32(&case["genesis_validators_root"]);
        // Bind the fresh database to the file's genesis validators root (an empty import).
        let bind = format!(
            r#"{{"metadata": {{"interchange_format_version": "5", "genesis_validators_root": "0x{}"}}, "data": []}}"#,
            hex::encode(gvr)
        );
        rt.block_on(store.import(&interchange::parse(&bind).unwrap()))
            .unwrap();
        'steps: for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let result = interchange::parse(&step["interchange"].to_string())
                .map_err(ProtectionError::from)
                .and_then(|p| rt.block_on(store.import(&p)));
            match (step["should_succeed"].as_bool().unwrap(), &result) {
                (true, Err(e)) if step["contains_slashable_data"].as_bool().unwrap() => {
                    println!(
                        "{name} step {i}: import of slashable data refused ({e}); later checks skipped"
                    );
                    break 'steps;
                }
                (true, Err(e)) => panic!("{name} step {i}: import must succeed: {e}"),
                (false, Ok(_)) => panic!("{name} step {i}: import must fail"),
                _ => {}
            }
            let checks = step["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    (
                        b,
                        ProtectedMessage::Block {
                            slot: num(&b["slot"]),
                        },
                    )
                })
                .chain(step["attestations"].as_array().unwrap().iter().map(|a| {
                    (
                        a,
                        ProtectedMessage::Attestation {
                            source: num(&a["source_epoch"]),
                            target: num(&a["target_epoch"]),
                        },
                    )
                }));
            for (check, message) in checks {
                let outcome = rt.block_on(store.check_and_record(
                    &hex48(&check["pubkey"]),
                    gvr,
                    message,
                    hex32(&check["signing_root"]),
                ));
                let signed = match &outcome {
                    Ok(_) => true,
                    Err(ProtectionError::Slashable(_))
                    | Err(ProtectionError::GenesisMismatch { .. }) => false,
                    Err(e) => panic!("{name}: store failed: {e}"),
                };
                let minimal = check["should_succeed"].as_bool().unwrap();
                let complete = check["should_succeed_complete"].as_bool().unwrap();
                if !complete {
                    assert!(!signed, "{name} step {i}: {message:?} must be refused");
                }
                if minimal {
                    assert!(
                        signed,
                        "{name} step {i}: {message:?} must be signed: {outcome:?}"
                    );
                }
                if minimal != complete {
                    let choice = if signed {
                        "allowed (complete)"
                    } else {
                        "refused (stricter)"
                    };
                    println!("{name} step {i}: {message:?}: {choice}");
                    if !signed {
                        stricter.push(format!("{name} step {i} {message:?}"));
                    }
                }
            }
        }
        drop(store);
        drop(db);
    }
    Some(stricter)
}

/// The interchange suite on `backend`, printing the checks answered with the stricter choice.
fn interchange_suite(backend: Backend) {
    if let Some(stricter) = interchange_checks(backend) {
        println!(
            "{backend:?}: {} checks answered with the stricter choice: {stricter:#?}",
            stricter.len()
        );
    }
}

const PK: [u8; 48] = [0xa9; 48];

fn doc(gvr: u8, body: &str) -> String {
    format!(
        r#"{{"metadata": {{"interchange_format_version": "5", "genesis_validators_root": "0x{}"}}, "data": [{body}]}}"#,
        hex::encode([gvr; 32])
    )
}

fn validator(blocks: &str, atts: &str) -> String {
    format!(
        r#"{{"pubkey": "0x{}", "signed_blocks": [{blocks}], "signed_attestations": [{atts}]}}"#,
        hex::encode(PK)
    )
}

fn malformed_imports_change_nothing(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(backend, tmp.path()) else {
        return;
    };
    let rt = rt();
    let store = open(&db, &rt);
    let good = doc(
        1,
        &validator(
            r#"{"slot": "10"}"#,
            r#"{"source_epoch": "1", "target_epoch": "2"}"#,
        ),
    );
    rt.block_on(store.import(&interchange::parse(&good).unwrap()))
        .unwrap();
    let before = rt.block_on(store.history(&PK)).unwrap();
    let counts = common::count_records_any(&db.url);

    let cases = [
        ("bad version", doc(1, "").replace("\"5\"", "\"4\"")),
        (
            "bad hex",
            doc(
                1,
                &validator(r#"{"slot": "11", "signing_root": "0xnothex"}"#, ""),
            ),
        ),
        ("wrong root", doc(2, &validator(r#"{"slot": "12"}"#, ""))),
        (
            "duplicate pubkeys with conflicting data",
            doc(
                1,
                &format!(
                    "{},{}",
                    validator("", r#"{"source_epoch": "5", "target_epoch": "6"}"#),
                    validator("", r#"{"source_epoch": "4", "target_epoch": "7"}"#)
                ),
            ),
        ),
        ("truncated", good[..good.len() / 2].to_string()),
    ];
    for (what, text) in cases {
        let result = interchange::parse(&text)
            .map_err(ProtectionError::from)
            .and_then(|p| rt.block_on(store.import(&p)));
        match result {
            Err(ProtectionError::Import(e)) => println!("{what}: refused: {e}"),
            other => panic!("{what}: expected an import error, got {other:?}"),
        }
        assert_eq!(
            rt.block_on(store.history(&PK)).unwrap(),
            before,
            "{what}: history unchanged"
        );
        assert_eq!(
            common::count_records_any(&db.url),
            counts,
            "{what}: nothing written"
        );
    }
    assert!(matches!(
        interchange::parse(&doc(2, "")).map(|p| rt.block_on(store.import(&p))),
        Ok(Err(ProtectionError::Import(
            InterchangeError::GenesisMismatch { .. }
        )))
    ));
}

fn export_round_trip_and_import_watermarks(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(backend, tmp.path()) else {
        return;
    };
    let rt = rt();
    let store = open(&db, &rt);
    let gvr = [1u8; 32];
    for (s, t) in [(1, 2), (2, 3), (3, 5)] {
        rt.block_on(store.check_and_record(
            &PK,
            gvr,
            ProtectedMessage::Attestation {
                source: s,
                target: t,
            },
            [t as u8; 32],
        ))
        .unwrap();
    }
    rt.block_on(store.check_and_record(&PK, gvr, ProtectedMessage::Block { slot: 40 }, [9; 32]))
        .unwrap();
    let exported = rt
        .block_on(protection::export(store.as_ref(), None))
        .unwrap();
    assert_eq!(exported.data.len(), 1);
    assert_eq!(exported.data[0].signed_attestations.len(), 3);

    // import into a fresh database: same history, and the file's minima become low watermarks
    let tmp2 = tempfile::tempdir().unwrap();
    let db2 = fresh_db(backend, tmp2.path()).unwrap();
    let store2 = open(&db2, &rt);
    let text = serde_json::to_string(&exported).unwrap();
    rt.block_on(store2.import(&interchange::parse(&text).unwrap()))
        .unwrap();
    let h = rt.block_on(store2.history(&PK)).unwrap();
    assert_eq!(h.blocks, rt.block_on(store.history(&PK)).unwrap().blocks);
    assert_eq!(
        h.attestations,
        rt.block_on(store.history(&PK)).unwrap().attestations
    );
    assert_eq!(
        (
            h.watermarks.slot,
            h.watermarks.source_epoch,
            h.watermarks.target_epoch
        ),
        (Some(40), Some(1), Some(2))
    );
    // importing the same file again is idempotent
    rt.block_on(store2.import(&interchange::parse(&text).unwrap()))
        .unwrap();
    assert_eq!(rt.block_on(store2.history(&PK)).unwrap(), h);
    // below the imported minimum: refused even though nothing conflicts
    let r = rt.block_on(store2.check_and_record(
        &PK,
        gvr,
        ProtectedMessage::Block { slot: 39 },
        [1; 32],
    ));
    assert!(matches!(r, Err(ProtectionError::Slashable(_))), "{r:?}");
    let r = rt.block_on(store2.check_and_record(
        &PK,
        gvr,
        ProtectedMessage::Attestation {
            source: 0,
            target: 6,
        },
        [1; 32],
    ));
    assert!(
        matches!(r, Err(ProtectionError::Slashable(_))),
        "source below the imported minimum: {r:?}"
    );
}

fn high_watermark_and_pruning(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(backend, tmp.path()) else {
        return;
    };
    let rt = rt();
    let store = open(&db, &rt);
    let gvr = [1u8; 32];
    // history: attestations (t-1, t) for t in 1..=300, blocks every 32 slots
    for t in 1..=300u64 {
        rt.block_on(store.check_and_record(
            &PK,
            gvr,
            ProtectedMessage::Attestation {
                source: t - 1,
                target: t,
            },
            [7; 32],
        ))
        .unwrap();
        rt.block_on(store.check_and_record(
            &PK,
            gvr,
            ProtectedMessage::Block { slot: t * 32 },
            [7; 32],
        ))
        .unwrap();
    }
    let refused_before: Vec<ProtectedMessage> = vec![
        ProtectedMessage::Attestation {
            source: 10,
            target: 11,
        }, // double vote (other root)
        ProtectedMessage::Attestation {
            source: 5,
            target: 20,
        }, // surrounds
        ProtectedMessage::Block { slot: 320 }, // double proposal
    ];
    for m in &refused_before {
        assert!(matches!(
            rt.block_on(store.check_and_record(&PK, gvr, *m, [8; 32])),
            Err(ProtectionError::Slashable(_))
        ));
    }
    let s = rt.block_on(store.prune(256, 32)).unwrap();
    assert!(s.attestations > 0 && s.blocks > 0, "{s:?}");
    let h = rt.block_on(store.history(&PK)).unwrap();
    assert!(h.attestations.len() <= 257, "{}", h.attestations.len());
    for m in &refused_before {
        let r = rt.block_on(store.check_and_record(&PK, gvr, *m, [8; 32]));
        assert!(
            matches!(r, Err(ProtectionError::Slashable(_))),
            "{m:?} still refused after pruning: {r:?}"
        );
    }
    // new messages still sign
    rt.block_on(store.check_and_record(
        &PK,
        gvr,
        ProtectedMessage::Attestation {
            source: 300,
            target: 301,
        },
        [7; 32],
    ))
    .unwrap();

    // high watermark: nothing at or above it
    rt.block_on(store.set_high_watermark(Some(HighWatermark {
        epoch: 310,
        slot: 310 * 32,
    })))
    .unwrap();
    assert_eq!(
        rt.block_on(store.high_watermark()).unwrap(),
        Some(HighWatermark {
            epoch: 310,
            slot: 9920
        })
    );
    let r = rt.block_on(store.check_and_record(
        &PK,
        gvr,
        ProtectedMessage::Attestation {
            source: 309,
            target: 310,
        },
        [7; 32],
    ));
    assert!(matches!(r, Err(ProtectionError::Slashable(_))), "{r:?}");
    let r = rt.block_on(store.check_and_record(
        &PK,
        gvr,
        ProtectedMessage::Block { slot: 9920 },
        [7; 32],
    ));
    assert!(matches!(r, Err(ProtectionError::Slashable(_))), "{r:?}");
    rt.block_on(store.check_and_record(
        &PK,
        gvr,
        ProtectedMessage::Attestation {
            source: 308,
            target: 309,
        },
        [7; 32],
    ))
    .unwrap();
    rt.block_on(store.set_high_watermark(None)).unwrap();
    rt.block_on(store.check_and_record(
        &PK,
        gvr,
        ProtectedMessage::Attestation {
            source: 309,
            target: 310,
        },
        [7; 32],
    ))
    .unwrap();
}

/// Concurrent decisions for several validators (PostgreSQL decides them in group-commit
/// batches): every decision has exactly one audit row, signed rows match the records, and
/// the per-key totals add up; a refusal changes no protection record.
fn audit_rows_match_decisions(backend: Backend) {
    use palisade::protection::audit::{AuditDecision, Chain};
    let tmp = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(backend, tmp.path()) else {
        return;
    };
    let rt = rt();
    let store = open(&db, &rt);
    let keys: Vec<[u8; 48]> = (0..8u8).map(|i| [i + 1; 48]).collect();
    let gvr = [3; 32];
    // Per validator: blocks at slots 1..=6 and each slot again with another root (refused).
    let mut jobs = Vec::new();
    for k in &keys {
        for slot in 1..=6u64 {
            jobs.push((*k, slot, [slot as u8; 32]));
            jobs.push((*k, slot, [0xee; 32]));
        }
    }
    let outcomes: Vec<bool> = rt.block_on(async {
        let tasks: Vec<_> = jobs
            .iter()
            .map(|(k, slot, root)| {
                let (store, k, slot, root) = (store.clone(), *k, *slot, *root);
                tokio::spawn(async move {
                    store
                        .check_and_record(&k, gvr, ProtectedMessage::Block { slot }, root)
                        .await
                })
            })
            .collect();
        let mut v = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => v.push(true),
                Err(ProtectionError::Slashable(_)) => v.push(false),
                Err(e) => panic!("unexpected {e}"),
            }
        }
        v
    });
    let signed = outcomes.iter().filter(|o| **o).count() as u64;
    assert_eq!(signed, 8 * 6, "one of each pair is signed");
    let records = rt
        .block_on(store.audit_records(0, i64::MAX, 0, 10_000))
        .unwrap();
    assert_eq!(records.len(), jobs.len(), "one audit row per decision");
    let mut ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), records.len());
    let signed_rows = records
        .iter()
        .filter(|r| r.entry.decision == AuditDecision::Signed)
        .count() as u64;
    assert_eq!(signed_rows, signed);
    for r in &records {
        assert_eq!(r.entry.kind, "BLOCK");
        assert_eq!(
            r.entry.decision == AuditDecision::Refused,
            r.entry.reason.is_some()
        );
    }
    // Every signed row's root is the one recorded for its slot.
    for k in &keys {
        let history = rt.block_on(store.history(k)).unwrap();
        assert_eq!(history.blocks.len(), 6);
        let key = format!("0x{}", hex::encode(k));
        for b in &history.blocks {
            let row = records
                .iter()
                .find(|r| {
                    r.entry.key == key
                        && r.entry.slot == Some(b.slot)
                        && r.entry.decision == AuditDecision::Signed
                })
                .expect("signed row for each record");
            assert_eq!(row.entry.signing_root, b.signing_root);
        }
    }
    let activity = rt.block_on(store.key_activity()).unwrap();
    assert_eq!(activity.len(), keys.len());
    for a in &activity {
        assert_eq!(a.chain, Chain::Eth2);
        assert_eq!((a.signed, a.refused), (6, 6), "{a:?}");
        assert!(a.last_signed.as_ref().unwrap().slot.is_some());
    }
    // Pruning by time keeps the totals.
    let deleted = rt
        .block_on(store.prune_audit(palisade::protection::audit::now_ms() + 1))
        .unwrap();
    assert_eq!(deleted as usize, jobs.len());
    assert_eq!(rt.block_on(store.key_activity()).unwrap(), activity);
}

/// A disabled validator is refused (and the refusal audited) until it is enabled again; its
/// records are kept.
fn disabled_validators_are_refused(backend: Backend) {
    use palisade::protection::audit::AuditDecision;
    let tmp = tempfile::tempdir().unwrap();
    let Some(db) = fresh_db(backend, tmp.path()) else {
        return;
    };
    let rt = rt();
    let store = open(&db, &rt);
    let (pk, gvr) = ([9u8; 48], [4u8; 32]);
    rt.block_on(store.check_and_record(&pk, gvr, ProtectedMessage::Block { slot: 1 }, [1; 32]))
        .unwrap();
    rt.block_on(store.set_enabled(&[pk], false)).unwrap();
    let refused =
        rt.block_on(store.check_and_record(&pk, gvr, ProtectedMessage::Block { slot: 2 }, [2; 32]));
    assert!(
        matches!(refused, Err(ProtectionError::Disabled(_))),
        "{refused:?}"
    );
    let refused = rt.block_on(store.check_and_record(
        &pk,
        gvr,
        ProtectedMessage::Attestation {
            source: 1,
            target: 2,
        },
        [3; 32],
    ));
    assert!(
        matches!(refused, Err(ProtectionError::Disabled(_))),
        "{refused:?}"
    );
    let history = rt.block_on(store.history(&pk)).unwrap();
    assert_eq!(history.blocks.len(), 1, "records kept, nothing added");
    assert!(history.attestations.is_empty());
    let audit = rt
        .block_on(store.audit_records(0, i64::MAX, 0, 100))
        .unwrap();
    let refusals = audit
        .iter()
        .filter(|r| r.entry.decision == AuditDecision::Refused)
        .count();
    assert_eq!(refusals, 2);
    // Disabling an unknown validator registers it disabled.
    let other = [10u8; 48];
    rt.block_on(store.set_enabled(&[other], false)).unwrap();
    assert!(rt.block_on(store.validators()).unwrap().contains(&other));
    let refused = rt.block_on(store.check_and_record(
        &other,
        gvr,
        ProtectedMessage::Block { slot: 5 },
        [5; 32],
    ));
    assert!(matches!(refused, Err(ProtectionError::Disabled(_))));
    rt.block_on(store.set_enabled(&[pk, other], true)).unwrap();
    rt.block_on(store.check_and_record(&pk, gvr, ProtectedMessage::Block { slot: 2 }, [2; 32]))
        .unwrap();
    rt.block_on(store.check_and_record(&other, gvr, ProtectedMessage::Block { slot: 5 }, [5; 32]))
        .unwrap();
}

common::store_suite!(
    interchange_suite,
    malformed_imports_change_nothing,
    export_round_trip_and_import_watermarks,
    high_watermark_and_pruning,
    audit_rows_match_decisions,
    disabled_validators_are_refused,
);
