//! The PKCS#11 session pool under load and after the token drops every session, on the real
//! actix app (in this process, so the test can reach the same SoftHSM instance and close all
//! of its sessions with `C_CloseAllSessions`, as an HSM fail-over or a network HSM's
//! reconnect does).
//!
//! One test in this binary: `SOFTHSM2_CONF` is set before SoftHSM is first loaded.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::softhsm::{MODULE, SoftHsm};
use palisade::api::tezos::{self, TezosState};
use palisade::crypto::tezos::{PublicKey, Signature};
use palisade::keys::pkcs11::{PinSource, Token, TokenRef, TokenSelector};
use palisade::keys::{KeyRegistry, KeySources};
use palisade::protection::sqlite::SqliteStore;
use serde_json::Value;

/// Posts `hex` to `/keys/{pkh}` with a 30 s client timeout; `None` if the request did not
/// complete (a hang).
fn post(url: &str, pkh: &str, hex: &str) -> Option<(u16, String)> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = client
        .post(format!("{url}/keys/{pkh}"))
        .json(&hex)
        .send()
        .ok()?;
    Some((r.status().as_u16(), r.text().ok()?))
}

/// A burst request: the key index, the bytes sent, and status and body (`None`: it hung).
type Outcome = (usize, String, Option<(u16, String)>);

/// Sends `n` requests at once (Michelson data, no watermark) across `keys`; returns each
/// outcome with the key and bytes it was for.
fn burst(url: &str, keys: &[(String, PublicKey)], n: usize, tag: u8) -> Vec<Outcome> {
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (url, barrier) = (url.to_string(), barrier.clone());
            let k = i % keys.len();
            let pkh = keys[k].0.clone();
            std::thread::spawn(move || {
                let hex = format!("05{tag:02x}{:08x}", i);
                barrier.wait();
                let outcome = post(&url, &pkh, &hex);
                (k, hex, outcome)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn verify(keys: &[(String, PublicKey)], k: usize, hex: &str, body: &str) {
    let v: Value = serde_json::from_str(body).unwrap();
    let pk = &keys[k].1;
    let sig = Signature::from_b58_for(pk.curve(), v["signature"].as_str().unwrap()).unwrap();
    assert!(
        pk.verify(&hex::decode(hex).unwrap(), &sig, 0),
        "{}: signature does not verify",
        keys[k].0
    );
}

#[test]
fn session_pool_serves_concurrent_requests_and_recovers_from_closed_sessions() {
    let hsm = SoftHsm::new("palisade-pool");
    // SAFETY: the only test in this binary, before any thread reads the environment or
    // SoftHSM is loaded.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &hsm.conf) };
    let dir = tempfile::tempdir().unwrap();
    let key_dir = dir.path().join("keys");
    let mut expected = Vec::new();
    for curve in ["ed25519", "secp256k1", "p256"] {
        let created = hsm.generate(curve, curve);
        hsm.write_key_config(&key_dir, curve, curve, "{ allow: [michelson_data] }");
        expected.push(created["pkh"].as_str().unwrap().to_string());
    }
    let registry = KeyRegistry::load(&KeySources {
        key_config_path: Some(key_dir),
        ..Default::default()
    });
    assert!(registry.errors().is_empty(), "{:?}", registry.errors());
    let keys: Vec<(String, PublicKey)> = expected
        .iter()
        .map(|pkh| {
            let k = registry.tezos(pkh).expect("HSM key loaded");
            (pkh.clone(), k.signer.public_key().clone())
        })
        .collect();

    let db_url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
    let url = common::serve_in_process(move || async move {
        let state = TezosState {
            keys: Arc::new(palisade::keys::Keys::new(registry)),
            store: Arc::new(SqliteStore::open(&db_url).await.unwrap()),
            magic_bytes: palisade::chain::tezos::payload::KNOWN_MAGIC_BYTES.to_vec(),
            allow_list_known_keys: false,
            authorized_keys: None,
            order: Default::default(),
        };
        move |cfg: &mut actix_web::web::ServiceConfig| tezos::configure(state.clone())(cfg)
    });

    // 200 requests at once across the three HSM keys: every one signed and verifying.
    let started = Instant::now();
    let results = burst(&url, &keys, 200, 1);
    for (k, hex, outcome) in &results {
        let (status, body) = outcome.as_ref().expect("request hung");
        assert_eq!(*status, 200, "{body}");
        verify(&keys, *k, hex, body);
    }
    eprintln!("200 concurrent HSM signatures in {:?}", started.elapsed());

    // The token drops every session (and with them the login).
    let token = Token::open(&TokenRef {
        module: MODULE.into(),
        token: TokenSelector::Label(hsm.label.clone()),
        pin: PinSource::File(hsm.pin_file.clone()),
        sessions: None,
        timeout_ms: 5_000,
    })
    .unwrap();
    // SAFETY: the same library SoftHSM is already loaded from; C_CloseAllSessions takes a
    // slot id and touches no memory of ours.
    let rv = unsafe {
        let lib = cryptoki_sys::Pkcs11::new(MODULE).unwrap();
        lib.C_CloseAllSessions(token.slot_id() as cryptoki_sys::CK_SLOT_ID)
    };
    assert_eq!(rv, cryptoki_sys::CKR_OK, "C_CloseAllSessions");

    // The next requests re-open and log in again: each answers, 200 or 503, none hangs.
    let started = Instant::now();
    let results = burst(&url, &keys, 60, 2);
    let mut ok = 0;
    for (k, hex, outcome) in &results {
        let (status, body) = outcome
            .as_ref()
            .expect("a request hung after the sessions closed");
        assert!(matches!(status, 200 | 503), "{status}: {body}");
        if *status == 200 {
            verify(&keys, *k, hex, body);
            ok += 1;
        } else {
            assert!(!body.contains("signature\""), "{body}");
        }
    }
    eprintln!(
        "after C_CloseAllSessions: {ok}/60 signed, the rest 503, in {:?}",
        started.elapsed()
    );
    // And signing works again on every key.
    for (k, (pkh, _)) in keys.iter().enumerate() {
        let hex = format!("05ff{k:02x}");
        let (status, body) = post(&url, pkh, &hex).expect("hung");
        assert_eq!(status, 200, "{pkh} after re-login: {body}");
        verify(&keys, k, &hex, &body);
    }
    assert!(ok > 0, "re-login must let requests succeed");

    // A token that will not let the user log in (here: the security officer is logged in,
    // so C_Login(CKU_USER) fails): requests fail fast with 503, none hangs, nothing signed.
    let rv = unsafe {
        let lib = cryptoki_sys::Pkcs11::new(MODULE).unwrap();
        lib.C_CloseAllSessions(token.slot_id() as cryptoki_sys::CK_SLOT_ID)
    };
    assert_eq!(rv, cryptoki_sys::CKR_OK, "C_CloseAllSessions");
    let slot = cryptoki::slot::Slot::try_from(token.slot_id()).unwrap();
    let so = token.context().open_rw_session(slot).unwrap();
    so.login(
        cryptoki::session::UserType::So,
        Some(&cryptoki::types::AuthPin::from("12345678".to_string())),
    )
    .unwrap();
    let started = Instant::now();
    for (_, _, outcome) in burst(&url, &keys, 30, 3) {
        let (status, body) = outcome.expect("a request hung while the token refused logins");
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("CKR_USER_ANOTHER_ALREADY_LOGGED_IN"),
            "{body}"
        );
    }
    eprintln!(
        "token refusing logins: 30/30 answered 503 in {:?}",
        started.elapsed()
    );
    so.logout().unwrap();
    so.close().unwrap();
    for (k, (pkh, _)) in keys.iter().enumerate() {
        let hex = format!("05fe{k:02x}");
        let (status, body) = post(&url, pkh, &hex).expect("hung");
        assert_eq!(status, 200, "{pkh} once the user can log in again: {body}");
        verify(&keys, k, &hex, &body);
    }
}
