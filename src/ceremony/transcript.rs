//! The ceremony transcript: one JSON file (and a Markdown rendering) holding only public data
//! — ceremony id, time, tool version, parameters, every public key or pkh, share fingerprints,
//! deposit data roots, and the outcome of each verification step. It is what custodians and
//! auditors sign off, and what `ceremony combine` and `ceremony verify` check against.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Transcript format version.
pub const TRANSCRIPT_VERSION: u32 = 1;

/// A ceremony transcript (`transcript.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    /// Always [`TRANSCRIPT_VERSION`].
    pub version: u32,
    /// Random UUID naming the ceremony; every share carries it.
    pub ceremony_id: String,
    /// `eth2` or `tezos`.
    pub kind: String,
    /// RFC 3339 UTC time the ceremony ran.
    pub created_at: String,
    /// `palisade <version>`.
    pub tool: String,
    /// The parameters given (no secrets): network, count, start index, withdrawal address,
    /// amount, KDF, curve, threshold, shares.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// One entry per key generated.
    pub keys: Vec<TranscriptKey>,
    /// One entry per Shamir share written.
    pub shares: Vec<TranscriptShare>,
    /// Files written, relative to the output directory (keystores, deposit data, key files).
    pub files: Vec<String>,
    /// Each verification step and its outcome.
    pub verifications: Vec<Verification>,
}

/// A generated key's public data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TranscriptKey {
    /// EIP-2334 index (eth2) or 0 (tezos).
    pub index: u32,
    /// EIP-2334 path (`m/12381/3600/i/0/0`) or the octez alias.
    pub path: String,
    /// `0x`-hex 48-byte BLS public key, or the Tezos `edpk…`/`sppk…`/`p2pk…`/`BLpk…`.
    pub public_key: String,
    /// Tezos public key hash (`tz1…`–`tz4…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkh: Option<String>,
    /// `0x`-hex deposit data root (eth2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposit_data_root: Option<String>,
}

/// A share's public data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TranscriptShare {
    /// 1-based share index.
    pub index: u8,
    /// The share's fingerprint (derived from a hash; reveals nothing of the share).
    pub fingerprint: String,
    /// The share file, relative to the output directory.
    pub file: String,
}

/// One verification step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// What was checked.
    pub step: String,
    /// Whether it passed.
    pub ok: bool,
    /// Counts or reasons.
    pub detail: String,
}

impl Transcript {
    /// Appends a verification step.
    pub fn record(&mut self, step: &str, ok: bool, detail: impl Into<String>) {
        self.verifications.push(Verification {
            step: step.to_string(),
            ok,
            detail: detail.into(),
        });
    }

    /// Whether every verification step passed.
    pub fn all_ok(&self) -> bool {
        self.verifications.iter().all(|v| v.ok)
    }

    /// Reads `transcript.json`.
    ///
    /// # Errors
    /// A message naming the file.
    pub fn read(path: &Path) -> Result<Transcript, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read transcript {}: {e}", path.display()))?;
        let t: Transcript = serde_json::from_str(&text)
            .map_err(|e| format!("transcript {}: {e}", path.display()))?;
        if t.version != TRANSCRIPT_VERSION {
            return Err(format!(
                "transcript {}: version {} (expected {TRANSCRIPT_VERSION})",
                path.display(),
                t.version
            ));
        }
        Ok(t)
    }

    /// The Markdown rendering (`transcript.md`), for printing and signing off.
    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "# Key ceremony {}\n\n- kind: {}\n- time: {}\n- tool: {}\n",
            self.ceremony_id, self.kind, self.created_at, self.tool
        );
        for (k, v) in &self.parameters {
            md.push_str(&format!("- {k}: {}\n", v.to_string().trim_matches('"')));
        }
        md.push_str("\n## Keys\n\n| index | path | public key | pkh / deposit data root |\n|---|---|---|---|\n");
        for k in &self.keys {
            let extra = k
                .pkh
                .clone()
                .or_else(|| k.deposit_data_root.clone())
                .unwrap_or_default();
            md.push_str(&format!(
                "| {} | {} | `{}` | `{extra}` |\n",
                k.index, k.path, k.public_key
            ));
        }
        md.push_str("\n## Shares\n\n| share | fingerprint | file | custodian | signature |\n|---|---|---|---|---|\n");
        for s in &self.shares {
            md.push_str(&format!(
                "| {} | `{}` | {} | | |\n",
                s.index, s.fingerprint, s.file
            ));
        }
        md.push_str("\n## Verification\n\n");
        for v in &self.verifications {
            md.push_str(&format!(
                "- [{}] {}: {}\n",
                if v.ok { "x" } else { " " },
                v.step,
                v.detail
            ));
        }
        md.push_str("\n## Files\n\n");
        for f in &self.files {
            md.push_str(&format!("- {f}\n"));
        }
        md
    }
}

/// The current time as RFC 3339 UTC with seconds, and as Unix seconds.
pub fn now() -> (String, u64) {
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    (humantime::format_rfc3339_seconds(now).to_string(), secs)
}
