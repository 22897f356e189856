//! `GET /api/v1/keys`: the key inventory (loopback clients only).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::AppState;
use super::error::ApiError;
use crate::protection::audit::{Chain, KeyActivity, LastSigned, rfc3339_ms};

/// One key of the inventory.
#[derive(Debug, Serialize)]
pub struct InventoryEntry {
    /// `eth2` or `tezos`; absent for a key file whose kind is not known.
    pub chain: Option<Chain>,
    /// `0x` + 96 hex characters (eth2) or the pkh (Tezos); absent when a failed file does not
    /// state it in the clear.
    pub key: Option<String>,
    /// Tezos: the base58 public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// `keystore`, `file-raw`, `memory`, `pkcs11 token … label …`, `pkcs11-wrapped keystore …`.
    pub backend: Option<String>,
    /// The keystore or key config file.
    pub source: String,
    /// `active`, `disabled` (loaded here but disabled in the protection database: blocks and
    /// attestations are refused) or `failed`.
    pub status: &'static str,
    /// Why it failed to load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339 UTC.
    pub loaded_at: Option<String>,
    /// The last signed message (slot/epoch or level/round), from the protection database.
    pub last_signed: Option<LastSigned>,
    /// Signatures released over the database's lifetime (all instances sharing it).
    pub signed: u64,
    /// Requests refused over the database's lifetime.
    pub refused: u64,
}

/// The body of `GET /api/v1/keys`.
#[derive(Debug, Serialize)]
pub struct Inventory {
    /// Loaded keys (eth2 then Tezos, by key), then the files that failed.
    pub keys: Vec<InventoryEntry>,
    /// Set when the protection database did not answer: counts are then 0 and `last_signed`
    /// absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity_error: Option<String>,
}

/// Builds the inventory from the registry and the database's per-key totals.
pub async fn inventory(state: &AppState) -> Inventory {
    let (activity, activity_error) = match state.store.key_activity().await {
        Ok(a) => (a, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let disabled: std::collections::HashSet<String> = state
        .store
        .disabled_validators()
        .await
        .unwrap_or_default()
        .iter()
        .map(|k| format!("0x{}", hex::encode(k)))
        .collect();
    let find = |chain: Option<Chain>, key: Option<&str>| -> Option<&KeyActivity> {
        activity
            .iter()
            .find(|a| Some(a.chain) == chain && Some(a.key.as_str()) == key)
    };
    let registry = state.keys.current();
    let mut keys = Vec::new();
    for info in registry.inventory() {
        let act = find(Some(info.chain), Some(&info.key));
        keys.push(InventoryEntry {
            chain: Some(info.chain),
            public_key: info.public_key.clone(),
            backend: Some(info.backend.clone()),
            source: info.source.display().to_string(),
            status: if disabled.contains(&info.key) {
                "disabled"
            } else {
                "active"
            },
            reason: disabled.contains(&info.key).then(|| {
                "disabled in the slashing protection database (deleted through the Keymanager \
                 API); blocks and attestations are refused"
                    .to_string()
            }),
            loaded_at: Some(rfc3339_ms(info.loaded_at_ms)),
            last_signed: act.and_then(|a| a.last_signed.clone()),
            signed: act.map_or(0, |a| a.signed),
            refused: act.map_or(0, |a| a.refused),
            key: Some(info.key),
        });
    }
    for f in registry.failed() {
        let act = find(f.chain, f.key.as_deref());
        keys.push(InventoryEntry {
            chain: f.chain,
            key: f.key.clone(),
            public_key: None,
            backend: None,
            source: f.error.file.display().to_string(),
            status: "failed",
            reason: Some(f.error.reason.clone()),
            loaded_at: None,
            last_signed: act.and_then(|a| a.last_signed.clone()),
            signed: act.map_or(0, |a| a.signed),
            refused: act.map_or(0, |a| a.refused),
        });
    }
    Inventory {
        keys,
        activity_error,
    }
}

/// `GET /api/v1/keys`: every configured key with its chain, key, backend, status (`active`,
/// or `failed` with the reason), load time, last signed message and lifetime counts of signed
/// and refused requests. Answers loopback clients only (403 otherwise), or, with the Keymanager
/// API on, clients presenting its bearer token: the inventory names files and backends that
/// are not for the validator clients on the network.
pub async fn keys(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    super::admin_allowed(&req, "the key inventory")?;
    Ok(HttpResponse::Ok().json(inventory(&state).await))
}
