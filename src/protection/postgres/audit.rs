//! The PostgreSQL side of [`Sql`]: its audit insert writes a whole group-commit batch's
//! entries in one statement and its keys' totals in another (`unnest` of one array per
//! column), instead of SQLite's insert per entry and trigger.

use sqlx::postgres::PgQueryResult;
use sqlx::{PgConnection, Postgres};

use crate::protection::audit::{AuditEntry, activity_deltas, db_int};
use crate::protection::sql::Sql;

impl Sql for Postgres {
    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    /// Inserts audit entries (one statement) and adds them to their keys' totals (one statement,
    /// rows in key order), inside the caller's transaction.
    async fn insert_audit(
        conn: &mut PgConnection,
        entries: &[AuditEntry],
    ) -> Result<(), sqlx::Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut time = Vec::with_capacity(entries.len());
        let (mut chain, mut key, mut kind) = (Vec::new(), Vec::new(), Vec::new());
        let (mut slot, mut epoch, mut source) = (Vec::new(), Vec::new(), Vec::new());
        let (mut level, mut round, mut root) = (Vec::new(), Vec::new(), Vec::new());
        let (mut decision, mut reason, mut caller) = (Vec::new(), Vec::new(), Vec::new());
        for e in entries {
            time.push(e.time_ms);
            chain.push(e.chain.as_str());
            key.push(e.key.as_str());
            kind.push(e.kind.as_str());
            slot.push(db_int(e.slot));
            epoch.push(db_int(e.epoch));
            source.push(db_int(e.source_epoch));
            level.push(e.level.map(i64::from));
            round.push(e.round.map(i64::from));
            root.push(e.signing_root.map(|r| r.to_vec()));
            decision.push(e.decision.as_str());
            reason.push(e.reason.as_deref());
            caller.push(e.caller.as_deref());
        }
        sqlx::query(
            "INSERT INTO audit_log (time_ms, chain, key, kind, slot, epoch, source_epoch, level, round,
                                    signing_root, decision, reason, caller)
             SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                                  $7::int8[], $8::int8[], $9::int8[], $10::bytea[], $11::text[],
                                  $12::text[], $13::text[])",
        )
        .bind(&time)
        .bind(&chain)
        .bind(&key)
        .bind(&kind)
        .bind(&slot)
        .bind(&epoch)
        .bind(&source)
        .bind(&level)
        .bind(&round)
        .bind(&root)
        .bind(&decision)
        .bind(&reason)
        .bind(&caller)
        .execute(&mut *conn)
        .await?;

        let deltas = activity_deltas(entries);
        let mut d_chain = Vec::with_capacity(deltas.len());
        let (mut d_key, mut d_signed, mut d_refused) = (Vec::new(), Vec::new(), Vec::new());
        let (mut l_ms, mut l_kind, mut l_slot) = (Vec::new(), Vec::new(), Vec::new());
        let (mut l_epoch, mut l_level, mut l_round) = (Vec::new(), Vec::new(), Vec::new());
        for d in &deltas {
            let last = d.last_signed;
            d_chain.push(d.chain.as_str());
            d_key.push(d.key);
            d_signed.push(d.signed);
            d_refused.push(d.refused);
            l_ms.push(last.map(|e| e.time_ms));
            l_kind.push(last.map(|e| e.kind.as_str()));
            l_slot.push(last.and_then(|e| db_int(e.slot)));
            l_epoch.push(last.and_then(|e| db_int(e.epoch)));
            l_level.push(last.and_then(|e| e.level.map(i64::from)));
            l_round.push(last.and_then(|e| e.round.map(i64::from)));
        }
        sqlx::query(
            "INSERT INTO key_activity AS a (chain, key, signed_count, refused_count, last_signed_ms,
                                            last_kind, last_slot, last_epoch, last_level, last_round)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[],
                                  $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::int8[])
             ON CONFLICT (chain, key) DO UPDATE SET
                signed_count = a.signed_count + EXCLUDED.signed_count,
                refused_count = a.refused_count + EXCLUDED.refused_count,
                last_kind = CASE WHEN EXCLUDED.last_signed_ms IS NULL THEN a.last_kind ELSE EXCLUDED.last_kind END,
                last_slot = CASE WHEN EXCLUDED.last_signed_ms IS NULL THEN a.last_slot ELSE EXCLUDED.last_slot END,
                last_epoch = CASE WHEN EXCLUDED.last_signed_ms IS NULL THEN a.last_epoch ELSE EXCLUDED.last_epoch END,
                last_level = CASE WHEN EXCLUDED.last_signed_ms IS NULL THEN a.last_level ELSE EXCLUDED.last_level END,
                last_round = CASE WHEN EXCLUDED.last_signed_ms IS NULL THEN a.last_round ELSE EXCLUDED.last_round END,
                last_signed_ms = COALESCE(EXCLUDED.last_signed_ms, a.last_signed_ms)",
        )
        .bind(&d_chain)
        .bind(&d_key)
        .bind(&d_signed)
        .bind(&d_refused)
        .bind(&l_ms)
        .bind(&l_kind)
        .bind(&l_slot)
        .bind(&l_epoch)
        .bind(&l_level)
        .bind(&l_round)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
