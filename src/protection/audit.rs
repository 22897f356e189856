//! The audit trail: one [`AuditEntry`] per signing decision (signed or refused), stored in the
//! protection database's `audit_log` table, and the per-key totals ([`KeyActivity`]) kept
//! beside it in `key_activity` for the key inventory.
//!
//! Stores write the entry of a protected message (eth2 block/attestation, Tezos consensus
//! operation) in the same transaction as its protection record; a refusal by slashing
//! protection or a high watermark is written in its own transaction after the protection
//! transaction rolled back, so the protection record stays as it was. Entries of messages
//! without a protection record, and refusals by policy, are appended by the API layer
//! ([`super::AuditLog::append_audit`]) before the answer is sent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::ProtectionError;

/// The chain a key signs for: `"eth2"` or `"tezos"` in the database and in exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Chain {
    /// Ethereum consensus layer (BLS keys, Web3Signer's eth2 API).
    Eth2,
    /// Tezos (octez-signer API).
    Tezos,
}

impl Chain {
    /// `"eth2"` or `"tezos"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Chain::Eth2 => "eth2",
            Chain::Tezos => "tezos",
        }
    }

    /// The inverse of [`Chain::as_str`].
    pub fn from_name(name: &str) -> Option<Chain> {
        match name {
            "eth2" => Some(Chain::Eth2),
            "tezos" => Some(Chain::Tezos),
            _ => None,
        }
    }
}

/// Whether a signature was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDecision {
    /// A signature was released (including an exact repeat answered from the record).
    Signed,
    /// The request was refused (slashing protection, high watermark, policy).
    Refused,
}

impl AuditDecision {
    /// `"signed"` or `"refused"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditDecision::Signed => "signed",
            AuditDecision::Refused => "refused",
        }
    }
}

/// One signing decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When the decision was made: Unix time in milliseconds.
    pub time_ms: i64,
    /// The key's chain.
    pub chain: Chain,
    /// The key: `0x` + 96 hex characters (48-byte BLS public key) for eth2, the public key
    /// hash (`tz1…`–`tz5…`) for Tezos.
    pub key: String,
    /// The message kind: the eth2 request `type` (`BLOCK_V2`, `ATTESTATION`, …) or the Tezos
    /// operation (`block`, `preattestation`, `attestation`, `generic_operation`, …).
    pub kind: String,
    /// Slot (eth2 blocks, attestations and slot-based messages).
    pub slot: Option<u64>,
    /// Epoch (eth2: an attestation's target epoch, or the message's epoch).
    pub epoch: Option<u64>,
    /// An eth2 attestation's source epoch.
    pub source_epoch: Option<u64>,
    /// Tezos level.
    pub level: Option<u32>,
    /// Tezos round.
    pub round: Option<u32>,
    /// The 32-byte eth2 signing root, or the Tezos blake2b-256 hash of the signed bytes.
    pub signing_root: Option<[u8; 32]>,
    /// Signed or refused.
    pub decision: AuditDecision,
    /// Why it was refused (the error message answered to the client).
    pub reason: Option<String>,
    /// The client's IP address as seen by the listener (no proxy headers are trusted).
    pub caller: Option<String>,
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl AuditEntry {
    /// A `signed` entry for an eth2 key (48-byte BLS public key) at the current time, with no
    /// position; add one with the `with_…` methods.
    pub fn eth2(public_key: &[u8; 48], kind: &str, signing_root: [u8; 32]) -> Self {
        Self::signed(
            Chain::Eth2,
            format!("0x{}", hex::encode(public_key)),
            kind,
            Some(signing_root),
        )
    }

    /// A `signed` entry for a Tezos key (public key hash) at the current time.
    pub fn tezos(pkh: &str, kind: &str, payload_hash: Option<[u8; 32]>) -> Self {
        Self::signed(Chain::Tezos, pkh.to_string(), kind, payload_hash)
    }

    fn signed(chain: Chain, key: String, kind: &str, signing_root: Option<[u8; 32]>) -> Self {
        AuditEntry {
            time_ms: now_ms(),
            chain,
            key,
            kind: kind.to_string(),
            slot: None,
            epoch: None,
            source_epoch: None,
            level: None,
            round: None,
            signing_root,
            decision: AuditDecision::Signed,
            reason: None,
            caller: None,
        }
    }

    /// Sets the slot and epoch (either may be `None`).
    pub fn with_slot_epoch(mut self, slot: Option<u64>, epoch: Option<u64>) -> Self {
        self.slot = slot;
        self.epoch = epoch;
        self
    }

    /// Sets an attestation's source epoch.
    pub fn with_source_epoch(mut self, source_epoch: u64) -> Self {
        self.source_epoch = Some(source_epoch);
        self
    }

    /// Sets a Tezos level and round.
    pub fn with_level_round(mut self, level: u32, round: u32) -> Self {
        self.level = Some(level);
        self.round = Some(round);
        self
    }

    /// Sets the caller's address.
    pub fn with_caller(mut self, caller: Option<String>) -> Self {
        self.caller = caller;
        self
    }

    /// This entry as a refusal for `reason`, stamped now.
    pub fn refused(mut self, reason: impl Into<String>) -> Self {
        self.decision = AuditDecision::Refused;
        self.reason = Some(reason.into());
        self.time_ms = now_ms();
        self
    }
}

/// The `signed` entry of a protected eth2 message: a block's slot, or an attestation's target
/// epoch (as `epoch`) and source epoch.
pub fn for_protected(
    public_key: &[u8; 48],
    kind: &str,
    message: &super::ProtectedMessage,
    signing_root: [u8; 32],
) -> AuditEntry {
    let e = AuditEntry::eth2(public_key, kind, signing_root);
    match *message {
        super::ProtectedMessage::Block { slot } => e.with_slot_epoch(Some(slot), None),
        super::ProtectedMessage::Attestation { source, target } => e
            .with_slot_epoch(None, Some(target))
            .with_source_epoch(source),
    }
}

/// The reason to record when a store's answer is a refusal, `None` when it is not one
/// (database unavailable, import errors): those are not decisions and leave no entry
/// ([`ProtectionError::outcome`]).
pub fn refusal_reason(e: &ProtectionError) -> Option<String> {
    e.outcome().audit_reason
}

/// A stored entry with its row id (ascending in insertion order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// `audit_log.id`.
    pub id: i64,
    /// The decision.
    pub entry: AuditEntry,
}

/// One line of `palisade audit export --format jsonl`, and the column order of `csv`.
#[derive(Debug, Serialize)]
pub struct AuditRow<'a> {
    /// `audit_log.id`, ascending in insertion order ([`AuditRecord::id`]).
    pub id: i64,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// The same instant as `time`, Unix time in milliseconds ([`AuditEntry::time_ms`]).
    pub time_ms: i64,
    /// `eth2` or `tezos`.
    pub chain: Chain,
    /// `0x`-hex 48-byte BLS public key (eth2) or public key hash `tz1…`–`tz5…` (Tezos), as in
    /// [`AuditEntry::key`].
    pub key: &'a str,
    /// The eth2 request `type` or the Tezos operation kind, as in [`AuditEntry::kind`].
    pub kind: &'a str,
    /// eth2 slot, as in [`AuditEntry::slot`]; `null` (JSONL) or empty (CSV) where none.
    pub slot: Option<u64>,
    /// eth2 epoch: an attestation's target epoch, or the message's epoch.
    pub epoch: Option<u64>,
    /// eth2 attestation source epoch.
    pub source_epoch: Option<u64>,
    /// Tezos block level.
    pub level: Option<u32>,
    /// Tezos round.
    pub round: Option<u32>,
    /// `0x` + 64 hex characters.
    pub signing_root: Option<String>,
    /// `signed` or `refused`.
    pub decision: AuditDecision,
    /// The refusal's message as answered to the client; none for `signed`.
    pub reason: Option<&'a str>,
    /// The client's IP address as seen by the listener, if known.
    pub caller: Option<&'a str>,
}

/// RFC 3339 UTC text of a Unix time in milliseconds (`1970-01-01T00:00:00.000Z` if negative).
pub fn rfc3339_ms(time_ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(time_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

impl AuditRecord {
    /// The export row of this record.
    pub fn row(&self) -> AuditRow<'_> {
        let e = &self.entry;
        AuditRow {
            id: self.id,
            time: rfc3339_ms(e.time_ms),
            time_ms: e.time_ms,
            chain: e.chain,
            key: &e.key,
            kind: &e.kind,
            slot: e.slot,
            epoch: e.epoch,
            source_epoch: e.source_epoch,
            level: e.level,
            round: e.round,
            signing_root: e.signing_root.map(|r| format!("0x{}", hex::encode(r))),
            decision: e.decision,
            reason: e.reason.as_deref(),
            caller: e.caller.as_deref(),
        }
    }
}

/// Lifetime totals of one key, from `key_activity` (not reduced by audit retention).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyActivity {
    /// The key's chain, `eth2` or `tezos`.
    pub chain: Chain,
    /// As in [`AuditEntry::key`].
    pub key: String,
    /// Signatures released.
    pub signed: u64,
    /// Requests refused.
    pub refused: u64,
    /// The last signed message, if any.
    pub last_signed: Option<LastSigned>,
}

/// The position of a key's last signed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastSigned {
    /// Unix time in milliseconds.
    pub time_ms: i64,
    /// RFC 3339 UTC.
    pub time: String,
    /// The message kind, as in [`AuditEntry::kind`] (e.g. `BLOCK_V2`, `attestation`).
    pub kind: String,
    /// eth2 slot, if the message had one (omitted from JSON otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// eth2 epoch (an attestation's target epoch), if any (omitted from JSON otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Tezos block level, if any (omitted from JSON otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    /// Tezos round, if any (omitted from JSON otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
}

/// What one batch of entries adds to one key's `key_activity` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActivityDelta<'a> {
    pub chain: Chain,
    pub key: &'a str,
    pub signed: i64,
    pub refused: i64,
    /// The batch's last signed entry for the key.
    pub last_signed: Option<&'a AuditEntry>,
}

/// Sums entries per key, sorted by (chain, key) so that concurrent writers update rows in
/// the same order.
pub(crate) fn activity_deltas(entries: &[AuditEntry]) -> Vec<ActivityDelta<'_>> {
    let mut by_key: std::collections::BTreeMap<(Chain, &str), ActivityDelta<'_>> =
        std::collections::BTreeMap::new();
    for e in entries {
        let d = by_key
            .entry((e.chain, e.key.as_str()))
            .or_insert(ActivityDelta {
                chain: e.chain,
                key: &e.key,
                signed: 0,
                refused: 0,
                last_signed: None,
            });
        match e.decision {
            AuditDecision::Signed => {
                d.signed += 1;
                d.last_signed = Some(e);
            }
            AuditDecision::Refused => d.refused += 1,
        }
    }
    by_key.into_values().collect()
}

/// A `key_activity` row as both stores select it: `(chain, key, signed_count, refused_count,
/// last_signed_ms, last_kind, last_slot, last_epoch, last_level, last_round)`.
pub(crate) type ActivityRow = (
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// The columns of an [`ActivityRow`], for `SELECT` (a macro so that queries stay literals).
macro_rules! activity_columns {
    () => {
        "chain, key, signed_count, refused_count, last_signed_ms, last_kind, last_slot, last_epoch, last_level, last_round"
    };
}
pub(crate) use activity_columns;

/// Converts an [`ActivityRow`].
///
/// # Errors
/// [`ProtectionError::Unavailable`] for a row the schema's checks should have prevented.
pub(crate) fn activity_of(row: ActivityRow) -> Result<KeyActivity, ProtectionError> {
    let (chain, key, signed, refused, ms, kind, slot, epoch, level, round) = row;
    let chain = Chain::from_name(&chain)
        .ok_or_else(|| ProtectionError::unavailable("corrupt key_activity row"))?;
    let last_signed = match (ms, kind) {
        (Some(time_ms), Some(kind)) => Some(LastSigned {
            time_ms,
            time: rfc3339_ms(time_ms),
            kind,
            slot: slot.map(|v| v as u64),
            epoch: epoch.map(|v| v as u64),
            level: level.map(|v| v as u32),
            round: round.map(|v| v as u32),
        }),
        _ => None,
    };
    Ok(KeyActivity {
        chain,
        key,
        signed: signed.max(0) as u64,
        refused: refused.max(0) as u64,
        last_signed,
    })
}

/// An `audit_log` row as both stores select it, in [`audit_columns!`] order.
pub(crate) type AuditDbRow = (
    i64,
    i64,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<Vec<u8>>,
    String,
    Option<String>,
    Option<String>,
);

/// The columns of an [`AuditDbRow`], for `SELECT` (a macro so that queries stay literals).
macro_rules! audit_columns {
    () => {
        "id, time_ms, chain, key, kind, slot, epoch, source_epoch, level, round, signing_root, decision, reason, caller"
    };
}
pub(crate) use audit_columns;

/// Converts an [`AuditDbRow`].
///
/// # Errors
/// [`ProtectionError::Unavailable`] for a row the schema's checks should have prevented.
pub(crate) fn record_of(row: AuditDbRow) -> Result<AuditRecord, ProtectionError> {
    let (
        id,
        time_ms,
        chain,
        key,
        kind,
        slot,
        epoch,
        source,
        level,
        round,
        root,
        decision,
        reason,
        caller,
    ) = row;
    let corrupt = || ProtectionError::unavailable(format!("corrupt audit_log row {id}"));
    Ok(AuditRecord {
        id,
        entry: AuditEntry {
            time_ms,
            chain: Chain::from_name(&chain).ok_or_else(corrupt)?,
            key,
            kind,
            slot: slot.map(|v| v as u64),
            epoch: epoch.map(|v| v as u64),
            source_epoch: source.map(|v| v as u64),
            level: level.map(|v| v as u32),
            round: round.map(|v| v as u32),
            signing_root: root
                .map(|r| r.try_into().map_err(|_| corrupt()))
                .transpose()?,
            decision: match decision.as_str() {
                "signed" => AuditDecision::Signed,
                "refused" => AuditDecision::Refused,
                _ => return Err(corrupt()),
            },
            reason,
            caller,
        },
    })
}

/// A slot, epoch, level or round as the database's signed 64-bit integer (saturating; values
/// above 2^63 − 1 never pass request validation).
pub(crate) fn db_int(v: Option<u64>) -> Option<i64> {
    v.map(|x| i64::try_from(x).unwrap_or(i64::MAX))
}

/// Format of [`export`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line ([`AuditRow`]).
    Jsonl,
    /// RFC 4180 CSV with a header line, columns in [`AuditRow`] order.
    Csv,
}

impl ExportFormat {
    /// `jsonl` or `csv`.
    pub fn from_name(name: &str) -> Option<ExportFormat> {
        match name {
            "jsonl" => Some(ExportFormat::Jsonl),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }
}

/// Writes every audit record with `since_ms <= time_ms < until_ms` (Unix milliseconds) to
/// `out`, by ascending id, reading 1,000 records at a time; returns how many were written.
///
/// # Errors
/// [`ExportError::Store`] when the records cannot be read, [`ExportError::Output`] when
/// `out` cannot be written.
pub async fn export(
    store: &dyn super::AuditLog,
    since_ms: i64,
    until_ms: i64,
    format: ExportFormat,
    out: impl std::io::Write,
) -> Result<u64, ExportError> {
    let csv_io = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(e) => ExportError::Output(e),
        other => ExportError::Output(std::io::Error::other(format!("{other:?}"))),
    };
    let mut csv_out = None;
    let mut json_out = None;
    match format {
        ExportFormat::Csv => csv_out = Some(csv::Writer::from_writer(out)),
        ExportFormat::Jsonl => json_out = Some(std::io::BufWriter::new(out)),
    }
    let (mut after, mut written) = (0_i64, 0_u64);
    loop {
        let page = store.audit_records(since_ms, until_ms, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for r in &page {
            if let Some(w) = csv_out.as_mut() {
                w.serialize(r.row()).map_err(csv_io)?;
            }
            if let Some(w) = json_out.as_mut() {
                serde_json::to_writer(&mut *w, &r.row()).map_err(std::io::Error::from)?;
                std::io::Write::write_all(w, b"\n")?;
            }
            written += 1;
        }
    }
    if let Some(mut w) = csv_out {
        if written == 0 {
            // An empty export still names its columns.
            w.write_record(CSV_HEADER).map_err(csv_io)?;
        }
        w.flush()?;
    }
    if let Some(mut w) = json_out {
        std::io::Write::flush(&mut w)?;
    }
    Ok(written)
}

/// Why [`export`] stopped. Records already written stay written; the database is only read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the audit records failed (the database is unavailable).
    #[error(transparent)]
    Store(#[from] ProtectionError),
    /// Writing the export failed: the output file or pipe (a reader such as `head` that
    /// closed its end gives `Broken pipe`), not the database.
    #[error("cannot write the audit export: {0}")]
    Output(#[from] std::io::Error),
}

/// The CSV header, as `csv` derives it from [`AuditRow`].
const CSV_HEADER: [&str; 15] = [
    "id",
    "time",
    "time_ms",
    "chain",
    "key",
    "kind",
    "slot",
    "epoch",
    "source_epoch",
    "level",
    "round",
    "signing_root",
    "decision",
    "reason",
    "caller",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_sum_per_key_in_key_order_and_keep_the_last_signed() {
        let a1 = AuditEntry::tezos("tz1b", "block", None).with_level_round(5, 0);
        let a2 = AuditEntry::tezos("tz1b", "block", None).with_level_round(6, 1);
        let r = AuditEntry::tezos("tz1b", "block", None).refused("below mark");
        let other = AuditEntry::tezos("tz1a", "attestation", None).refused("policy");
        let entries = vec![a1, a2.clone(), r, other];
        let d = activity_deltas(&entries);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].key, d[0].signed, d[0].refused), ("tz1a", 0, 1));
        assert!(d[0].last_signed.is_none());
        assert_eq!((d[1].key, d[1].signed, d[1].refused), ("tz1b", 2, 1));
        assert_eq!(d[1].last_signed, Some(&a2));
    }

    #[test]
    fn export_row_formats_time_and_root() {
        let mut e = AuditEntry::eth2(&[0xab; 48], "ATTESTATION", [1; 32])
            .with_slot_epoch(Some(64), Some(2))
            .with_source_epoch(1);
        e.time_ms = 1_700_000_000_123;
        let rec = AuditRecord { id: 7, entry: e };
        let row = rec.row();
        assert_eq!(row.time, "2023-11-14T22:13:20.123Z");
        assert_eq!(
            row.signing_root.as_deref(),
            Some(format!("0x{}", "01".repeat(32)).as_str())
        );
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["chain"], "eth2");
        assert_eq!(json["decision"], "signed");
        assert_eq!(json["key"], format!("0x{}", "ab".repeat(48)));
    }

    #[test]
    fn only_decisions_are_refusals() {
        assert!(refusal_reason(&ProtectionError::unavailable("down")).is_none());
        assert!(refusal_reason(&ProtectionError::OutOfRange("slot")).is_some());
    }
}
