//! When the slashing-protection database fails, blocks and attestations get 503 and no
//! signature, `/healthcheck` reports the database DOWN, and signing resumes when it returns.
//! Runs the real actix app on an ephemeral port over a real SQLite store that can be
//! switched to failing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use common::{attestation, block, count_records};
use palisade::api::{self, AppState};
use palisade::chain::eth2::network::NetworkConfig;
use palisade::chain::tezos::payload::ConsensusKind;
use palisade::crypto::bls::SecretKey;
use palisade::keys::{KeyRegistry, MemoryKey, Signer};
use palisade::protection::audit::{AuditEntry, AuditRecord, KeyActivity};
use palisade::protection::interchange::PreparedImport;
use palisade::protection::roles::{AuditLog, Eth2Protection, ProtectionAdmin, TezosWatermarks};
use palisade::protection::sqlite::SqliteStore;
use palisade::protection::watermark::{TezosMark, TezosWatermarkRequest, WatermarkDecision};
use palisade::protection::{
    Decision, HighWatermark, ImportSummary, ProtectedMessage, ProtectionError, PruneSummary,
    ValidatorHistory,
};

struct Flaky {
    inner: SqliteStore,
    down: Arc<AtomicBool>,
}

impl Flaky {
    fn check(&self) -> Result<(), ProtectionError> {
        if self.down.load(Ordering::SeqCst) {
            Err(ProtectionError::unavailable(
                "connection refused (test outage)",
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Eth2Protection for Flaky {
    async fn register_validators(&self, keys: &[[u8; 48]]) -> Result<(), ProtectionError> {
        self.check()?;
        self.inner.register_validators(keys).await
    }

    async fn check_record_and_audit(
        &self,
        pk: &[u8; 48],
        gvr: [u8; 32],
        m: ProtectedMessage,
        root: [u8; 32],
        audit: AuditEntry,
    ) -> Result<Decision, ProtectionError> {
        self.check()?;
        self.inner
            .check_record_and_audit(pk, gvr, m, root, audit)
            .await
    }

    async fn history(&self, pk: &[u8; 48]) -> Result<ValidatorHistory, ProtectionError> {
        self.check()?;
        self.inner.history(pk).await
    }

    async fn genesis_validators_root(&self) -> Result<Option<[u8; 32]>, ProtectionError> {
        self.check()?;
        self.inner.genesis_validators_root().await
    }

    async fn validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError> {
        self.check()?;
        self.inner.validators().await
    }
}

#[async_trait]
impl TezosWatermarks for Flaky {
    async fn tezos_check_record_and_audit(
        &self,
        r: &TezosWatermarkRequest,
        audit: AuditEntry,
    ) -> Result<WatermarkDecision, ProtectionError> {
        self.check()?;
        self.inner.tezos_check_record_and_audit(r, audit).await
    }

    async fn tezos_mark(
        &self,
        chain: [u8; 4],
        pkh: &str,
        kind: ConsensusKind,
    ) -> Result<Option<TezosMark>, ProtectionError> {
        self.check()?;
        self.inner.tezos_mark(chain, pkh, kind).await
    }
}

#[async_trait]
impl AuditLog for Flaky {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), ProtectionError> {
        self.check()?;
        self.inner.append_audit(entry).await
    }

    async fn audit_records(
        &self,
        since: i64,
        until: i64,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ProtectionError> {
        self.check()?;
        self.inner.audit_records(since, until, after, limit).await
    }

    async fn prune_audit(&self, before: i64) -> Result<u64, ProtectionError> {
        self.check()?;
        self.inner.prune_audit(before).await
    }

    async fn key_activity(&self) -> Result<Vec<KeyActivity>, ProtectionError> {
        self.check()?;
        self.inner.key_activity().await
    }
}

#[async_trait]
impl ProtectionAdmin for Flaky {
    async fn import(&self, p: &PreparedImport) -> Result<ImportSummary, ProtectionError> {
        self.check()?;
        self.inner.import(p).await
    }

    async fn prune(&self, keep: u64, spe: u64) -> Result<PruneSummary, ProtectionError> {
        self.check()?;
        self.inner.prune(keep, spe).await
    }

    async fn set_enabled(&self, keys: &[[u8; 48]], enabled: bool) -> Result<(), ProtectionError> {
        self.check()?;
        self.inner.set_enabled(keys, enabled).await
    }

    async fn disabled_validators(&self) -> Result<Vec<[u8; 48]>, ProtectionError> {
        self.check()?;
        self.inner.disabled_validators().await
    }

    async fn high_watermark(&self) -> Result<Option<HighWatermark>, ProtectionError> {
        self.check()?;
        self.inner.high_watermark().await
    }

    async fn set_high_watermark(&self, h: Option<HighWatermark>) -> Result<(), ProtectionError> {
        self.check()?;
        self.inner.set_high_watermark(h).await
    }

    async fn ping(&self) -> Result<(), ProtectionError> {
        self.check()?;
        self.inner.ping().await
    }
}

#[test]
fn outage_gives_503_and_no_signature_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    let down = Arc::new(AtomicBool::new(false));
    let secret = hex::decode(&common::test_secret(30)[2..]).unwrap();
    let key: Arc<dyn Signer> = Arc::new(MemoryKey::new(SecretKey::from_bytes(&secret).unwrap()));
    let pk = common::test_pubkey(30);

    let (db, flag) = (db_url.clone(), down.clone());
    let url = common::serve_in_process(move || async move {
        let store = Flaky {
            inner: SqliteStore::open(&db).await.unwrap(),
            down: flag,
        };
        let state = AppState {
            keys: Arc::new(palisade::keys::Keys::new(KeyRegistry::from_signers(vec![
                key,
            ]))),
            store: Arc::new(store),
            network: Arc::new(NetworkConfig::from_name_or_path("mainnet").unwrap()),
            reloader: None,
        };
        move |cfg: &mut actix_web::web::ServiceConfig| api::configure(state.clone())(cfg)
    });
    let post = |body: &serde_json::Value| {
        let r = common::client()
            .post(format!("{url}/api/v1/eth2/sign/{pk}"))
            .json(body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };

    assert_eq!(post(&attestation(1, 1, 2, 1)).0, 200);
    down.store(true, Ordering::SeqCst);
    for (what, body) in [
        ("attestation", attestation(1, 2, 3, 1)),
        ("block", block(1, 100, 1)),
    ] {
        let (status, text) = post(&body);
        assert_eq!(status, 503, "{what} during the outage: {text}");
        assert!(
            !text.contains("signature"),
            "no signature leaves during an outage: {text}"
        );
        assert!(text.contains("unavailable"), "{text}");
    }
    let h = common::client()
        .get(format!("{url}/healthcheck"))
        .send()
        .unwrap();
    assert_eq!(h.status().as_u16(), 503);
    let body: serde_json::Value = h.json().unwrap();
    assert_eq!(
        body["checks"][1]["id"],
        "slashing-protection-db-health-check"
    );
    assert_eq!(body["checks"][1]["status"], "DOWN");

    down.store(false, Ordering::SeqCst);
    assert_eq!(post(&attestation(1, 2, 3, 1)).0, 200, "signing resumes");
    assert_eq!(post(&block(1, 100, 1)).0, 200);
    assert_eq!(
        count_records(&db_url),
        (1, 2),
        "only signed messages are recorded"
    );
}

#[test]
fn tezos_outage_gives_503_and_moves_no_watermark() {
    use palisade::api::tezos::{self, TezosState};
    use palisade::chain::tezos::policy::Policy;
    use palisade::keys::tezos::{MemoryTezosKey, TezosKey};

    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
    let down = Arc::new(AtomicBool::new(false));
    let vectors = common::vector("tezos/vectors.json");
    let secret = palisade::crypto::tezos::SecretKey::from_b58(
        vectors["vectors"][0]["secret_key"].as_str().unwrap(),
    )
    .unwrap();
    let key = MemoryTezosKey::new(secret);
    use palisade::keys::tezos::TezosSigner;
    let pkh = key.public_key().pkh_b58();
    let tezos_key = TezosKey {
        pkh: pkh.clone(),
        signer: Box::new(key),
        policy: Policy::default(),
        origin: dir.path().join("baker.yaml"),
    };

    let (db, flag) = (db_url.clone(), down.clone());
    let url = common::serve_in_process(move || async move {
        let store = Flaky {
            inner: SqliteStore::open(&db).await.unwrap(),
            down: flag,
        };
        let state = TezosState {
            keys: Arc::new(palisade::keys::Keys::new(KeyRegistry::from_parts(
                vec![],
                vec![tezos_key],
            ))),
            store: Arc::new(store),
            magic_bytes: palisade::chain::tezos::payload::KNOWN_MAGIC_BYTES.to_vec(),
            allow_list_known_keys: false,
            authorized_keys: None,
            order: Default::default(),
        };
        move |cfg: &mut actix_web::web::ServiceConfig| tezos::configure(state.clone())(cfg)
    });
    let attestation = |level: u32, fill: u8| {
        let mut b = vec![0x13, 0x7a, 0x06, 0xa7, 0x70];
        b.extend_from_slice(&[fill; 32]);
        b.extend_from_slice(&[21, 0, 0]);
        b.extend_from_slice(&level.to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&[fill; 32]);
        hex::encode(b)
    };
    let post = |hex: String| {
        let r = common::client()
            .post(format!("{url}/keys/{pkh}"))
            .json(&hex)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(post(attestation(10, 1)).0, 200);
    down.store(true, Ordering::SeqCst);
    let (status, text) = post(attestation(11, 1));
    assert_eq!(status, 503, "{text}");
    assert!(!text.contains("signature"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        v[0]["msg"].as_str().unwrap().contains("unavailable"),
        "{text}"
    );
    down.store(false, Ordering::SeqCst);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mark = |store_url: &str| {
        rt.block_on(async {
            let store = palisade::protection::open(store_url, 1).await.unwrap();
            store
                .tezos_mark([0x7a, 0x06, 0xa7, 0x70], &pkh, ConsensusKind::Attestation)
                .await
                .unwrap()
                .map(|m| m.level)
        })
    };
    assert_eq!(mark(&db_url), Some(10), "the outage moved no watermark");
    assert_eq!(post(attestation(11, 1)).0, 200, "signing resumes");
    assert_eq!(mark(&db_url), Some(11));
}
