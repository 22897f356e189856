//! Key backends through the one dispatcher, on the real actix apps on ephemeral ports: a
//! backend's execution hint decides where its calls run and how long they may take, for both
//! chains. A backend that does not answer within its timeout gets 503 with a JSON body and
//! releases nothing, while requests for the other keys keep being answered; a failing
//! backend gets an error, never a signature; a BLS key whose backend lacks the
//! proof-of-possession capability is refused.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use palisade::api::tezos::{self, TezosState};
use palisade::api::{self, AppState};
use palisade::chain::eth2::network::NetworkConfig;
use palisade::chain::tezos::policy::{Policy, PolicyConfig};
use palisade::crypto::bls::SecretKey;
use palisade::crypto::tezos::{PublicKey, Signature};
use palisade::keys::tezos::TezosKey;
use palisade::keys::{
    BackendError, Execution, KeyRegistry, Keys, MemoryKey, MemoryTezosKey, Signer, TezosSigner,
};
use palisade::protection::sqlite::SqliteStore;

/// How a test backend misbehaves.
#[derive(Clone, Copy)]
enum Mode {
    /// Waits 3 s on the runtime (a network vault that hangs), under a 100 ms timeout.
    HangsAsync,
    /// Blocks its thread 3 s (an HSM that hangs), under a 100 ms timeout.
    HangsBlocking,
    /// Answers with a failure.
    Fails,
}

impl Mode {
    fn execution(self) -> Execution {
        let timeout = Duration::from_millis(100);
        match self {
            Mode::HangsAsync => Execution::Async { timeout },
            Mode::HangsBlocking => Execution::Blocking { timeout },
            Mode::Fails => Execution::CpuPool,
        }
    }

    async fn misbehave(self) -> BackendError {
        match self {
            Mode::HangsAsync => tokio::time::sleep(Duration::from_secs(3)).await,
            Mode::HangsBlocking => std::thread::sleep(Duration::from_secs(3)),
            Mode::Fails => {}
        }
        BackendError("test backend refused".into())
    }
}

/// An eth2 backend holding a real key that it never uses.
struct BadEth2 {
    public: [u8; 48],
    mode: Mode,
}

#[async_trait]
impl Signer for BadEth2 {
    fn public_key(&self) -> [u8; 48] {
        self.public
    }
    fn execution(&self) -> Execution {
        self.mode.execution()
    }
    async fn sign(&self, _root: &[u8; 32]) -> Result<[u8; 96], BackendError> {
        Err(self.mode.misbehave().await)
    }
}

/// A Tezos backend holding a real public key that it never signs with.
struct BadTezos {
    public: PublicKey,
    mode: Mode,
}

#[async_trait]
impl TezosSigner for BadTezos {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn execution(&self) -> Execution {
        self.mode.execution()
    }
    async fn sign(&self, _data: &[u8], _version: u8) -> Result<Signature, BackendError> {
        Err(self.mode.misbehave().await)
    }
    fn backend(&self) -> String {
        "test".into()
    }
}

fn memory_key(i: u32) -> Arc<dyn Signer> {
    let secret = hex::decode(&common::test_secret(i)[2..]).unwrap();
    Arc::new(MemoryKey::new(SecretKey::from_bytes(&secret).unwrap()))
}

fn public_of(i: u32) -> [u8; 48] {
    memory_key(i).public_key()
}

fn serve_eth2(keys: Vec<Arc<dyn Signer>>, dir: &std::path::Path) -> String {
    let db = format!("sqlite://{}", dir.join("p.sqlite").display());
    common::serve_in_process(move || async move {
        let state = AppState {
            keys: Arc::new(Keys::new(KeyRegistry::from_signers(keys))),
            store: Arc::new(SqliteStore::open(&db).await.unwrap()),
            network: Arc::new(NetworkConfig::from_name_or_path("mainnet").unwrap()),
            reloader: None,
        };
        move |cfg: &mut actix_web::web::ServiceConfig| api::configure(state.clone())(cfg)
    })
}

fn post_eth2(url: &str, pk: &str, body: &serde_json::Value) -> (u16, String, Duration) {
    let started = Instant::now();
    let r = common::client()
        .post(format!("{url}/api/v1/eth2/sign/{pk}"))
        .header("accept", "application/json")
        .json(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap(), started.elapsed())
}

fn check_eth2_hang(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let hanging = BadEth2 {
        public: public_of(40),
        mode,
    };
    let url = serve_eth2(vec![Arc::new(hanging), memory_key(41)], dir.path());
    let (slow, fast) = (common::test_pubkey(40), common::test_pubkey(41));
    // The hanging backend is answered 503 at its timeout, not when it gives up.
    let hung = {
        let (url, slow) = (url.clone(), slow.clone());
        std::thread::spawn(move || post_eth2(&url, &slow, &common::block(1, 10, 1)))
    };
    // Meanwhile the other key signs at once: the hang stalls nobody else.
    std::thread::sleep(Duration::from_millis(20));
    for slot in 0..5 {
        let (status, text, took) = post_eth2(&url, &fast, &common::block(1, 10 + slot, 1));
        assert_eq!(status, 200, "{text}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }
    let (status, text, took) = hung.join().unwrap();
    assert_eq!(status, 503, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("a JSON error body");
    assert!(
        v["error"].as_str().unwrap().contains("within 100 ms"),
        "{text}"
    );
    assert!(!text.contains("signature"), "{text}");
    assert!(
        took < Duration::from_millis(2500),
        "answered at the timeout: {took:?}"
    );
    // A message without a protection record (a RANDAO reveal) times out the same way.
    let randao = serde_json::json!({
        "type": "RANDAO_REVEAL",
        "fork_info": common::fork_info(1),
        "randao_reveal": {"epoch": "3"}
    });
    let (status, text, _) = post_eth2(&url, &slow, &randao);
    assert_eq!(status, 503, "{text}");
}

#[test]
fn eth2_async_backend_past_its_timeout_gets_503_and_stalls_no_other_key() {
    check_eth2_hang(Mode::HangsAsync);
}

#[test]
fn eth2_blocking_backend_past_its_timeout_gets_503_and_stalls_no_other_key() {
    check_eth2_hang(Mode::HangsBlocking);
}

#[test]
fn eth2_failing_backend_gets_500_and_no_signature() {
    let dir = tempfile::tempdir().unwrap();
    let failing = BadEth2 {
        public: public_of(42),
        mode: Mode::Fails,
    };
    let url = serve_eth2(vec![Arc::new(failing)], dir.path());
    let (status, text, _) = post_eth2(&url, &common::test_pubkey(42), &common::block(1, 5, 1));
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("test backend refused"), "{text}");
    assert!(!text.contains("signature\""), "{text}");
}

fn tezos_secret(n: usize) -> palisade::crypto::tezos::SecretKey {
    let vectors = common::vector("tezos/vectors.json");
    palisade::crypto::tezos::SecretKey::from_b58(
        vectors["vectors"][n]["secret_key"].as_str().unwrap(),
    )
    .unwrap()
}

fn serve_tezos(keys: Vec<TezosKey>, dir: &std::path::Path) -> String {
    let db = format!("sqlite://{}", dir.join("t.sqlite").display());
    common::serve_in_process(move || async move {
        let state = TezosState {
            keys: Arc::new(Keys::new(KeyRegistry::from_parts(vec![], keys))),
            store: Arc::new(SqliteStore::open(&db).await.unwrap()),
            magic_bytes: palisade::chain::tezos::payload::KNOWN_MAGIC_BYTES.to_vec(),
            allow_list_known_keys: false,
            authorized_keys: None,
            order: Default::default(),
        };
        move |cfg: &mut actix_web::web::ServiceConfig| tezos::configure(state.clone())(cfg)
    })
}

fn tezos_key(signer: Box<dyn TezosSigner>, policy: Policy) -> TezosKey {
    TezosKey {
        pkh: signer.public_key().pkh_b58(),
        signer,
        policy,
        origin: "test.yaml".into(),
    }
}

#[test]
fn tezos_backends_past_their_timeout_get_503_and_move_no_watermark() {
    for mode in [Mode::HangsAsync, Mode::HangsBlocking] {
        let dir = tempfile::tempdir().unwrap();
        let hanging = BadTezos {
            public: tezos_secret(0).public_key(),
            mode,
        };
        let good = MemoryTezosKey::new(tezos_secret(1));
        let (slow, fast) = (hanging.public.pkh_b58(), good.public_key().pkh_b58());
        let url = serve_tezos(
            vec![
                tezos_key(Box::new(hanging), Policy::default()),
                tezos_key(Box::new(good), Policy::default()),
            ],
            dir.path(),
        );
        let post = |pkh: &str, level: u32| {
            let started = Instant::now();
            let r = common::client()
                .post(format!("{url}/keys/{pkh}"))
                .json(&common::tezos_attestation(
                    [0x7a, 0x06, 0xa7, 0x70],
                    level,
                    0,
                    1,
                ))
                .send()
                .unwrap();
            (r.status().as_u16(), r.text().unwrap(), started.elapsed())
        };
        let (status, text, took) = post(&slow, 10);
        assert_eq!(status, 503, "{text}");
        assert!(text.contains("within 100 ms"), "{text}");
        assert!(took < Duration::from_millis(2500), "{took:?}");
        let (status, text, _) = post(&fast, 10);
        assert_eq!(status, 200, "{text}");
        // Nothing was recorded for the key that timed out: the same level is still free,
        // and is refused only because it times out again.
        let (status, text, _) = post(&slow, 10);
        assert_eq!(status, 503, "{text}");
        assert!(!text.contains("watermark"), "{text}");
    }
}

#[test]
fn tz4_key_without_the_possession_capability_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vectors = common::vector("tezos/vectors.json");
    let bls = vectors["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["secret_key"].as_str().unwrap().starts_with("BLsk"))
        .expect("a tz4 vector");
    let secret =
        palisade::crypto::tezos::SecretKey::from_b58(bls["secret_key"].as_str().unwrap()).unwrap();
    let policy = Policy::from_config(
        &serde_norway::from_str::<PolicyConfig>("provePossession: true").unwrap(),
    )
    .unwrap();
    let without = BadTezos {
        public: secret.public_key(),
        mode: Mode::Fails,
    };
    let url = serve_tezos(
        vec![tezos_key(Box::new(without), policy.clone())],
        dir.path(),
    );
    let pkh = secret.public_key().pkh_b58();
    let r = common::client()
        .get(format!("{url}/bls_prove_possession/{pkh}"))
        .send()
        .unwrap();
    let (status, text) = (r.status().as_u16(), r.text().unwrap());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("cannot prove possession"), "{text}");

    // The in-memory backend has the capability.
    let dir = tempfile::tempdir().unwrap();
    let url = serve_tezos(
        vec![tezos_key(Box::new(MemoryTezosKey::new(secret)), policy)],
        dir.path(),
    );
    let r = common::client()
        .get(format!("{url}/bls_prove_possession/{pkh}"))
        .send()
        .unwrap();
    let (status, text) = (r.status().as_u16(), r.text().unwrap());
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("BLsig"), "{text}");
}
