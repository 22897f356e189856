//! Keys held in a PKCS#11 HSM (AWS CloudHSM, YubiHSM 2, SoftHSM2), through `cryptoki`.
//!
//! Tezos keys (`type: pkcs11`) sign inside the HSM: tz1 with `CKM_EDDSA` (pure Ed25519 over
//! the 32-byte blake2b-256 digest of the request bytes), tz2/tz3 with `CKM_ECDSA` over the
//! same digest, the 64-byte `r‖s` normalised to low-S before it leaves palisade. The curve is
//! read from the key's `CKA_EC_PARAMS`, the public key from `CKA_EC_POINT` (DER OCTET STRING
//! unwrapped) and the pkh computed from it.
//!
//! ```yaml
//! type: pkcs11
//! module: /opt/cloudhsm/lib/libcloudhsm_pkcs11.so   # the vendor's PKCS#11 library
//! tokenLabel: hsm1              # check with `palisade hsm list`; or slotId: 1
//! pinFile: /etc/palisade/hsm.pin # or pinEnv: PALISADE_HSM_PIN (never inline)
//! keyLabel: baker               # and/or keyId: 0a1b2c (hex CKA_ID)
//! sessions: 4                   # optional, default: one per core
//! timeoutMs: 5000               # optional: longest wait for a session or the HSM
//! policy: { allow: [block, preattestation, attestation] }
//! ```
//!
//! BLS keys cannot be computed in an HSM; `type: pkcs11-wrapped-bls` key configs name a
//! keystore whose secret is AES-256-GCM encrypted under an AES key that never leaves the HSM
//! (see [`wrapped`]); the HSM decrypts it into memory at start-up.
//!
//! Every token is opened once per process and shared by its keys: one `C_Initialize` per
//! module, one pool of logged-in read-write sessions per token. A PKCS#11 session is used
//! by one thread at a time; a session that fails with `CKR_SESSION_HANDLE_INVALID`,
//! `CKR_SESSION_CLOSED`, `CKR_USER_NOT_LOGGED_IN`, `CKR_DEVICE_ERROR`, `CKR_DEVICE_REMOVED`
//! or `CKR_TOKEN_NOT_PRESENT` (or whose key handle went stale: `CKR_KEY_HANDLE_INVALID`,
//! `CKR_OBJECT_HANDLE_INVALID`) is dropped with the other idle sessions and the call retried
//! once on a freshly opened and logged-in session; if that fails too the request gets the
//! error (503 at the API).
//!
//! A token that failed to open (wrong PIN, no such token) is remembered for the life of the
//! process, so the other key configs on it do not log in again with the same wrong PIN (HSMs
//! lock users after a few failures). The PIN source, `sessions` and `timeoutMs` come from the
//! first key config that opens the token; a later one that differs is logged as a warning.

pub mod admin;
mod error;
mod objects;
mod signer;
mod token;
pub mod wrapped;

pub use error::HsmError;
pub use objects::{
    EC_PARAMS_ED25519, EC_PARAMS_P256, EC_PARAMS_SECP256K1, KeySelector, curve_of_ec_params,
    ec_params_of, find_one, read_public_key, unwrap_ec_point, wrap_ec_point,
};
pub use signer::Pkcs11TezosKey;
pub use token::{
    DEFAULT_TIMEOUT_MS, PinSource, Token, TokenRef, TokenSelector, forget_failed_tokens,
};

pub(crate) use token::{TOKEN_FIELDS, TokenFields};

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::tezos_secret::policy;
use super::{Backend, KeyLoad, LoadContext, LoadedKey, base_dir, parse};
use crate::chain::tezos::policy::{Policy, PolicyConfig};
use crate::keys::LoadError;
use crate::keys::signer::TezosSigner;
use crate::keys::tezos::TezosKey;
use crate::protection::audit::Chain;

/// The `pkcs11` backend: Tezos key pairs that sign inside a token.
pub struct Pkcs11;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(flatten)]
    token: TokenFields,
    #[serde(default)]
    key_label: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    policy: Option<PolicyConfig>,
}

impl Backend for Pkcs11 {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }
    fn fields_hint(&self) -> &'static str {
        "module, tokenLabel|slotId, pinFile|pinEnv, keyLabel|keyId, policy"
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        Some([TOKEN_FIELDS, &["keyLabel", "keyId", "policy"]].concat())
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let config: Config = parse(text, self)?;
        let token = config.token.resolve(base_dir(file))?;
        let id = config
            .key_id
            .map(|h| hex::decode(h.trim_start_matches("0x")))
            .transpose()
            .map_err(|_| "keyId is not hex".to_string())?;
        if config.key_label.is_none() && id.is_none() {
            return Err("keyLabel or keyId is required".into());
        }
        Ok(Box::new(HsmKey {
            file: file.to_path_buf(),
            token,
            key: KeySelector {
                label: config.key_label,
                id,
            },
            policy: policy(config.policy)?,
        }))
    }
}

/// A Tezos key pair in a token, from a `pkcs11` key config.
struct HsmKey {
    file: PathBuf,
    token: TokenRef,
    key: KeySelector,
    policy: Policy,
}

impl KeyLoad for HsmKey {
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        (Some(Chain::Tezos), None)
    }

    fn load(self: Box<Self>, _context: &LoadContext<'_>) -> Result<LoadedKey, LoadError> {
        let fail = |e: HsmError| LoadError {
            file: self.file.clone(),
            reason: e.to_string(),
        };
        let token = Token::open(&self.token).map_err(fail)?;
        let signer = Pkcs11TezosKey::open(token, self.key.clone()).map_err(fail)?;
        Ok(LoadedKey::Tezos(TezosKey {
            pkh: signer.public_key().pkh_b58(),
            signer: Box::new(signer),
            policy: self.policy,
            origin: self.file,
        }))
    }
}
