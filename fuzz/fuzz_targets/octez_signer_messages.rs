//! Fuzz target: the octez remote-signer binary protocol's request decoder
//! (`chain::tezos::signer_messages::decode_request`), what the TCP and Unix listeners run on
//! every frame a client sends.
//!
//! Invariants: no panic; the same outcome twice; a decoded request's fields stay within the
//! payload (data no longer than the payload, an authentication signature of 64, 96 or 2420 bytes,
//! a pkh tag of at most 4); every answer encodes within one frame when its message does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade::chain::tezos::signer_messages::{Answer, Request, decode_request, frame};

fuzz_target!(|data: &[u8]| {
    let first = decode_request(data);
    assert_eq!(first, decode_request(data), "not deterministic");
    match first {
        Ok(Request::Sign(a) | Request::DeterministicNonce(a) | Request::DeterministicNonceHash(a)) => {
            assert!(a.data.len() < data.len());
            assert!(a.pkh[0] <= 4);
            if let Some(s) = &a.authentication {
                assert!(matches!(s.len(), 64 | 96 | 2420), "{}", s.len());
            }
            assert!(a.version.is_none() || a.pkh[0] == 3);
        }
        Ok(Request::PublicKey(p) | Request::SupportsDeterministicNonces(p)) => {
            assert_eq!(data.len(), 22);
            assert!(p[0] <= 4);
        }
        Ok(Request::BlsProvePossession(p, o)) => {
            assert_eq!(data.len(), if o.is_some() { 71 } else { 23 });
            assert!(p[0] <= 4);
        }
        Ok(Request::AuthorizedKeys | Request::KnownKeys) => assert_eq!(data.len(), 1),
        Err(e) => {
            // The refusal is answered as octez's error; short inputs make short answers.
            let answer = Answer::Error(format!("malformed signer request: {e}")).encode();
            assert!(frame(&answer).is_some());
        }
    }
});
