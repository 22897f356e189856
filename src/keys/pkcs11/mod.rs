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
pub mod wrapped;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use parking_lot::{Condvar, Mutex};
use zeroize::Zeroizing;

use super::BackendError;
use super::tezos::TezosSigner;
use crate::crypto::tezos::{Curve, PublicKey, Signature, blake2b_256};

/// Default longest wait for a free session or for the HSM to answer, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// DER of the `CKA_EC_PARAMS` OID for Ed25519 (1.3.101.112).
pub const EC_PARAMS_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER of the `CKA_EC_PARAMS` OID for secp256k1 (1.3.132.0.10).
pub const EC_PARAMS_SECP256K1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
/// DER of the `CKA_EC_PARAMS` OID for P-256 / prime256v1 (1.2.840.10045.3.1.7).
pub const EC_PARAMS_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `CKA_EC_PARAMS` as a PrintableString curve name, as PKCS#11 3.0 allows for Edwards curves.
const EC_PARAMS_ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

/// A PKCS#11 failure, with the function and return value (never a PIN or key byte).
#[derive(Debug, Clone, thiserror::Error)]
pub enum HsmError {
    /// The module could not be loaded or initialised.
    #[error("PKCS#11 module {module}: {reason}")]
    Module {
        /// Library path.
        module: PathBuf,
        /// What failed.
        reason: String,
    },
    /// No token matches the configured label or slot.
    #[error("{0}")]
    NoToken(String),
    /// No object matches the configured label/id, or it is not usable.
    #[error("{0}")]
    Key(String),
    /// Every session was busy for the whole timeout.
    #[error("all {sessions} sessions of token `{token}` stayed busy for {waited_ms} ms")]
    Busy {
        /// Token label.
        token: String,
        /// Pool size.
        sessions: usize,
        /// Milliseconds waited.
        waited_ms: u64,
    },
    /// A PKCS#11 call failed.
    #[error("token `{token}`: {function} failed: {rv}")]
    Call {
        /// Token label.
        token: String,
        /// `C_Sign`, `C_Login`, …
        function: String,
        /// `CKR_…` name.
        rv: String,
        /// Whether a fresh session might succeed.
        session_lost: bool,
    },
    /// Configuration (PIN source, fields) is unusable.
    #[error("{0}")]
    Config(String),
}

impl HsmError {
    fn call(token: &str, e: &CkError) -> Self {
        match e {
            CkError::Pkcs11(rv, function) => HsmError::Call {
                token: token.to_string(),
                function: format!("C_{function:?}"),
                rv: ckr_name(*rv),
                session_lost: matches!(
                    rv,
                    RvError::SessionHandleInvalid
                        | RvError::SessionClosed
                        | RvError::UserNotLoggedIn
                        | RvError::DeviceError
                        | RvError::DeviceRemoved
                        | RvError::TokenNotPresent
                        | RvError::KeyHandleInvalid
                        | RvError::ObjectHandleInvalid
                ),
            },
            other => HsmError::Call {
                token: token.to_string(),
                function: "cryptoki".into(),
                rv: other.to_string(),
                session_lost: false,
            },
        }
    }

    fn session_lost(&self) -> bool {
        matches!(
            self,
            HsmError::Call {
                session_lost: true,
                ..
            }
        )
    }

    /// Whether the error is this return value (`CKR_…` name).
    pub fn is_rv(&self, name: &str) -> bool {
        matches!(self, HsmError::Call { rv, .. } if rv == name)
    }
}

/// `RvError::PinIncorrect` → `CKR_PIN_INCORRECT`.
fn ckr_name(rv: RvError) -> String {
    let mut out = String::from("CKR");
    for c in format!("{rv:?}").chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Where the user PIN comes from: never inline in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// A file holding the PIN (trailing newlines ignored).
    File(PathBuf),
    /// An environment variable holding the PIN.
    Env(String),
}

impl PinSource {
    /// Reads the PIN.
    ///
    /// # Errors
    /// [`HsmError::Config`] naming the file or variable (never the PIN).
    pub fn read(&self) -> Result<Zeroizing<String>, HsmError> {
        match self {
            PinSource::File(path) => {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(meta) = std::fs::metadata(path)
                    && meta.permissions().mode() & 0o077 != 0
                {
                    tracing::warn!(
                        file = %path.display(),
                        mode = format!("{:o}", meta.permissions().mode() & 0o777),
                        "PIN file is readable by group or others; chmod 600 it"
                    );
                }
                super::read_password_file(path).map_err(HsmError::Config)
            }
            PinSource::Env(var) => std::env::var(var)
                .map(|v| Zeroizing::new(v.trim_end_matches(['\n', '\r']).to_string()))
                .map_err(|_| {
                    HsmError::Config(format!("pinEnv: environment variable {var} is not set"))
                }),
        }
    }
}

/// Which token: by label (first slot whose token has it) or by slot id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenSelector {
    /// `CK_TOKEN_INFO.label`, trailing blanks ignored.
    Label(String),
    /// A slot id.
    Slot(u64),
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSelector::Label(l) => write!(f, "token `{l}`"),
            TokenSelector::Slot(s) => write!(f, "slot {s}"),
        }
    }
}

/// How to reach a token: module, token, PIN.
#[derive(Debug, Clone)]
pub struct TokenRef {
    /// Path of the vendor's PKCS#11 library.
    pub module: PathBuf,
    /// Which token.
    pub token: TokenSelector,
    /// Where the user PIN is.
    pub pin: PinSource,
    /// Session pool size; `None` = one per core.
    pub sessions: Option<usize>,
    /// Longest wait for a session or an answer, in milliseconds.
    pub timeout_ms: u64,
}

/// One `C_Initialize` per module per process.
fn module(path: &Path) -> Result<Pkcs11, HsmError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES.get_or_init(Default::default).lock();
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let fail = |reason: String| HsmError::Module {
        module: path.to_path_buf(),
        reason,
    };
    let ctx = Pkcs11::new(path).map_err(|e| fail(format!("cannot load: {e}")))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(fail(format!("C_Initialize: {}", describe(&e)))),
    }
    modules.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, _) => ckr_name(*rv),
        other => other.to_string(),
    }
}

/// An open token: its module, slot, PIN and pool of logged-in sessions. Shared by every key
/// configured on it ([`Token::open`] returns the same one for the same module and token).
pub struct Token {
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    pin: AuthPin,
    pin_source: PinSource,
    timeout: Duration,
    max_sessions: usize,
    pool: Mutex<Pool>,
    freed: Condvar,
}

/// Tokens open in this process, by module and token.
type OpenTokens = HashMap<(PathBuf, TokenSelector), Result<Arc<Token>, HsmError>>;

#[derive(Default)]
struct Pool {
    idle: Vec<Session>,
    open: usize,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.label)
            .field("slot", &self.slot.id())
            .finish_non_exhaustive()
    }
}

/// Tokens opened (or that failed to open) by this process, by (module, token).
static TOKENS: OnceLock<Mutex<OpenTokens>> = OnceLock::new();

/// Forgets the tokens that failed to open, so that the next [`Token::open`] tries them again
/// (a key reload: the operator may have fixed the PIN file). Open tokens are kept.
pub fn forget_failed_tokens() {
    if let Some(tokens) = TOKENS.get() {
        tokens.lock().retain(|_, t| t.is_ok());
    }
}

impl Token {
    /// Opens (or returns the already open) token named by `r`, and checks the PIN by logging
    /// in one session.
    ///
    /// # Errors
    /// [`HsmError`]: module not loadable, no such token, PIN unreadable or refused.
    pub fn open(r: &TokenRef) -> Result<Arc<Token>, HsmError> {
        let mut tokens = TOKENS.get_or_init(Default::default).lock();
        let id = (r.module.clone(), r.token.clone());
        match tokens.get(&id) {
            Some(Ok(t)) => {
                t.warn_if_configured_differently(r);
                return Ok(t.clone());
            }
            Some(Err(e)) => return Err(e.clone()),
            None => {}
        }
        let opened = Self::open_new(r);
        tokens.insert(id, opened.clone());
        opened
    }

    fn warn_if_configured_differently(&self, r: &TokenRef) {
        let sessions = r.sessions.unwrap_or(self.max_sessions);
        if sessions != self.max_sessions
            || r.timeout_ms != self.timeout.as_millis() as u64
            || r.pin != self.pin_source
        {
            tracing::warn!(
                token = %self.label,
                "key configs on this token disagree on pinFile/pinEnv, sessions or timeoutMs; \
                 the first one's are used"
            );
        }
    }

    fn open_new(r: &TokenRef) -> Result<Arc<Token>, HsmError> {
        let ctx = module(&r.module)?;
        let slot = find_slot(&ctx, &r.token)?;
        let label = ctx
            .get_token_info(slot)
            .map(|i| i.label().trim_end().to_string())
            .unwrap_or_else(|_| r.token.to_string());
        let pin = r.pin.read()?;
        let max_sessions = r
            .sessions
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        let token = Arc::new(Token {
            ctx,
            slot,
            label,
            pin: AuthPin::from(pin.as_str().to_string()),
            pin_source: r.pin.clone(),
            timeout: Duration::from_millis(r.timeout_ms.max(1)),
            max_sessions,
            pool: Mutex::new(Pool::default()),
            freed: Condvar::new(),
        });
        // Log in once now, so a wrong PIN fails at start-up, not at the first request.
        let session = token.new_session()?;
        token.pool.lock().open = 1;
        token.release(session, true);
        Ok(token)
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The slot id.
    pub fn slot_id(&self) -> u64 {
        self.slot.id()
    }

    /// Longest wait for a session or an answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The module's context (for operator tools).
    pub fn context(&self) -> &Pkcs11 {
        &self.ctx
    }

    fn new_session(&self) -> Result<Session, HsmError> {
        let session = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(|e| HsmError::call(&self.label, &e))?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(HsmError::call(&self.label, &e)),
        }
    }

    fn acquire(&self) -> Result<Session, HsmError> {
        let deadline = Instant::now() + self.timeout;
        let mut pool = self.pool.lock();
        loop {
            if let Some(s) = pool.idle.pop() {
                return Ok(s);
            }
            if pool.open < self.max_sessions {
                pool.open += 1;
                drop(pool);
                return self.new_session().inspect_err(|_| {
                    self.pool.lock().open -= 1;
                    self.freed.notify_one();
                });
            }
            if self.freed.wait_until(&mut pool, deadline).timed_out() {
                return Err(HsmError::Busy {
                    token: self.label.clone(),
                    sessions: self.max_sessions,
                    waited_ms: self.timeout.as_millis() as u64,
                });
            }
        }
    }

    fn release(&self, session: Session, healthy: bool) {
        let mut pool = self.pool.lock();
        if healthy {
            pool.idle.push(session);
        } else {
            pool.open -= 1;
            drop(pool);
            // Closing a session the token already dropped fails; nothing to do about it.
            let _ = session.close();
        }
        self.freed.notify_one();
    }

    fn discard_idle(&self) {
        let stale: Vec<Session> = {
            let mut pool = self.pool.lock();
            let stale = std::mem::take(&mut pool.idle);
            pool.open -= stale.len();
            stale
        };
        for s in stale {
            let _ = s.close();
        }
        self.freed.notify_all();
    }

    /// Runs `op` on a pooled, logged-in session. `op` gets `true` on a retry (cached object
    /// handles must be looked up again). A lost session is dropped and `op` retried once on
    /// a fresh one.
    ///
    /// # Errors
    /// [`HsmError::Busy`] when no session frees up within the timeout; the call's error
    /// otherwise.
    pub fn with_session<T>(
        &self,
        mut op: impl FnMut(&Session, bool) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        let session = self.acquire()?;
        match op(&session, false) {
            Ok(v) => {
                self.release(session, true);
                Ok(v)
            }
            Err(e) if e.session_lost() => {
                self.release(session, false);
                // The token dropped this session; the idle ones most likely went with it.
                self.discard_idle();
                tracing::warn!(token = %self.label, error = %e, "PKCS#11 session lost; re-opening and logging in again");
                let session = self.acquire()?;
                let result = op(&session, true);
                let healthy = !matches!(&result, Err(e) if e.session_lost());
                self.release(session, healthy);
                result
            }
            Err(e) => {
                self.release(session, true);
                Err(e)
            }
        }
    }
}

fn find_slot(ctx: &Pkcs11, selector: &TokenSelector) -> Result<Slot, HsmError> {
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| HsmError::NoToken(format!("C_GetSlotList: {}", describe(&e))))?;
    let mut labels = Vec::new();
    for slot in slots {
        let label = ctx
            .get_token_info(slot)
            .map(|i| i.label().trim_end().to_string())
            .unwrap_or_default();
        let hit = match selector {
            TokenSelector::Label(l) => label == *l,
            TokenSelector::Slot(id) => slot.id() == *id,
        };
        if hit {
            return Ok(slot);
        }
        labels.push(format!("`{label}` (slot {})", slot.id()));
    }
    Err(HsmError::NoToken(format!(
        "no initialised token matches {selector}; present: {}",
        if labels.is_empty() {
            "none".to_string()
        } else {
            labels.join(", ")
        }
    )))
}

/// Unwraps `CKA_EC_POINT`: a DER OCTET STRING (`04 len …`, short or long length form)
/// around the point; a bare point (some HSMs) is returned as it is.
pub fn unwrap_ec_point(der: &[u8]) -> &[u8] {
    if der.len() >= 2 && der[0] == 0x04 {
        let (len, header) = match der[1] {
            n if n < 0x80 => (n as usize, 2),
            0x81 if der.len() >= 3 => (der[2] as usize, 3),
            _ => return der,
        };
        if der.len() == header + len {
            return &der[header..];
        }
    }
    der
}

/// Wraps a point as the DER OCTET STRING `CKA_EC_POINT` holds (points are < 128 bytes).
pub fn wrap_ec_point(point: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04, point.len() as u8];
    out.extend_from_slice(point);
    out
}

/// The Tezos curve of a `CKA_EC_PARAMS` value (`None` for curves Tezos does not use).
pub fn curve_of_ec_params(params: &[u8]) -> Option<Curve> {
    match params {
        EC_PARAMS_ED25519 | EC_PARAMS_ED25519_NAME => Some(Curve::Ed25519),
        EC_PARAMS_SECP256K1 => Some(Curve::Secp256k1),
        EC_PARAMS_P256 => Some(Curve::P256),
        _ => None,
    }
}

/// The `CKA_EC_PARAMS` value palisade writes for a curve.
///
/// # Errors
/// A message for BLS, which no HSM computes.
pub fn ec_params_of(curve: Curve) -> Result<&'static [u8], HsmError> {
    match curve {
        Curve::Ed25519 => Ok(EC_PARAMS_ED25519),
        Curve::Secp256k1 => Ok(EC_PARAMS_SECP256K1),
        Curve::P256 => Ok(EC_PARAMS_P256),
        Curve::Bls => Err(HsmError::Config(
            "BLS (tz4) keys cannot be held in a PKCS#11 HSM; keep them in a keystore".into(),
        )),
    }
}

/// Which object: by `CKA_LABEL` and/or `CKA_ID`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySelector {
    /// `CKA_LABEL`.
    pub label: Option<String>,
    /// `CKA_ID` bytes.
    pub id: Option<Vec<u8>>,
}

impl KeySelector {
    fn template(&self, class: ObjectClass) -> Vec<Attribute> {
        let mut t = vec![Attribute::Class(class)];
        if let Some(l) = &self.label {
            t.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        if let Some(id) = &self.id {
            t.push(Attribute::Id(id.clone()));
        }
        t
    }
}

impl std::fmt::Display for KeySelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.label, &self.id) {
            (Some(l), Some(id)) => write!(f, "label `{l}` id {}", hex::encode(id)),
            (Some(l), None) => write!(f, "label `{l}`"),
            (None, Some(id)) => write!(f, "id {}", hex::encode(id)),
            (None, None) => write!(f, "(no label or id)"),
        }
    }
}

/// Finds exactly one object of `class` matching `selector`.
///
/// # Errors
/// [`HsmError::Key`] for none or several; [`HsmError::Call`] for a failed search.
pub fn find_one(
    token: &Token,
    session: &Session,
    class: ObjectClass,
    selector: &KeySelector,
) -> Result<ObjectHandle, HsmError> {
    let found = session
        .find_objects(&selector.template(class))
        .map_err(|e| HsmError::call(&token.label, &e))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(HsmError::Key(format!(
            "no {} with {selector} on token `{}`",
            class_name(class),
            token.label
        ))),
        many => Err(HsmError::Key(format!(
            "{} objects of class {} match {selector} on token `{}`; add keyId to pick one",
            many.len(),
            class_name(class),
            token.label
        ))),
    }
}

fn class_name(class: ObjectClass) -> &'static str {
    if class == ObjectClass::PRIVATE_KEY {
        "private key"
    } else if class == ObjectClass::PUBLIC_KEY {
        "public key"
    } else if class == ObjectClass::SECRET_KEY {
        "secret (AES) key"
    } else {
        "object"
    }
}

/// Reads the Tezos public key of a key pair: the curve from `CKA_EC_PARAMS`, the point from
/// the public key object's `CKA_EC_POINT`.
///
/// # Errors
/// [`HsmError::Key`] for a curve Tezos does not use or a bad point.
pub fn read_public_key(
    token: &Token,
    session: &Session,
    public: ObjectHandle,
) -> Result<PublicKey, HsmError> {
    let attrs = session
        .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
        .map_err(|e| HsmError::call(&token.label, &e))?;
    let (mut params, mut point) = (None, None);
    for a in attrs {
        match a {
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    let params = params.ok_or_else(|| HsmError::Key("public key has no CKA_EC_PARAMS".into()))?;
    let point = point.ok_or_else(|| HsmError::Key("public key has no CKA_EC_POINT".into()))?;
    let curve = curve_of_ec_params(&params).ok_or_else(|| {
        HsmError::Key(format!(
            "CKA_EC_PARAMS {} is not Ed25519, secp256k1 or P-256",
            hex::encode(&params)
        ))
    })?;
    PublicKey::from_sec1_point(curve, unwrap_ec_point(&point))
        .map_err(|e| HsmError::Key(format!("CKA_EC_POINT: {e}")))
}

/// A Tezos key pair in an HSM: signs with `CKM_EDDSA`/`CKM_ECDSA` over blake2b-256.
pub struct Pkcs11TezosKey {
    token: Arc<Token>,
    selector: KeySelector,
    public: PublicKey,
    handle: Mutex<Option<ObjectHandle>>,
}

impl std::fmt::Debug for Pkcs11TezosKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11TezosKey")
            .field("token", &self.token.label)
            .field("key", &self.selector.to_string())
            .field("public", &self.public)
            .finish()
    }
}

impl Pkcs11TezosKey {
    /// Finds the key pair on `token` and reads its public key; checks the private key can
    /// sign (`CKA_SIGN`).
    ///
    /// # Errors
    /// [`HsmError`] for a missing/ambiguous key, a curve Tezos does not use, a failed call.
    pub fn open(token: Arc<Token>, selector: KeySelector) -> Result<Self, HsmError> {
        if selector.label.is_none() && selector.id.is_none() {
            return Err(HsmError::Config("keyLabel or keyId is required".into()));
        }
        let (public, handle) = token.with_session(|s, _| {
            let private = find_one(&token, s, ObjectClass::PRIVATE_KEY, &selector)?;
            let public = find_one(&token, s, ObjectClass::PUBLIC_KEY, &selector)?;
            Ok((read_public_key(&token, s, public)?, private))
        })?;
        Ok(Pkcs11TezosKey {
            token,
            selector,
            public,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// The token the key lives on.
    pub fn token(&self) -> &Arc<Token> {
        &self.token
    }

    /// Signs the 32-byte digest in the HSM; low-S for ECDSA.
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Signature, HsmError> {
        let curve = self.public.curve();
        let mechanism = match curve {
            Curve::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            _ => Mechanism::Ecdsa,
        };
        let raw = self.token.with_session(|s, retry| {
            let cached = *self.handle.lock();
            let handle = match cached {
                Some(h) if !retry => h,
                _ => {
                    let h = find_one(&self.token, s, ObjectClass::PRIVATE_KEY, &self.selector)?;
                    *self.handle.lock() = Some(h);
                    h
                }
            };
            s.sign(&mechanism, handle, digest)
                .map_err(|e| HsmError::call(&self.token.label, &e))
        })?;
        Signature::from_raw_low_s(curve, &raw)
            .map_err(|e| HsmError::Key(format!("the HSM returned an unusable signature: {e}")))
    }
}

impl TezosSigner for Pkcs11TezosKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, data: &[u8], _version: u8) -> Result<Signature, BackendError> {
        self.sign_digest(&blake2b_256(data))
            .map_err(|e| BackendError(e.to_string()))
    }

    fn prove_possession(
        &self,
        _override_pk: Option<&PublicKey>,
    ) -> Result<Signature, BackendError> {
        Err(BackendError(format!(
            "proof of possession needs a BLS key, this key is {}",
            self.public.curve()
        )))
    }

    fn io_timeout(&self) -> Option<Duration> {
        Some(self.token.timeout)
    }

    fn backend(&self) -> String {
        format!("pkcs11 token `{}` {}", self.token.label, self.selector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckr_names() {
        assert_eq!(ckr_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            ckr_name(RvError::SessionHandleInvalid),
            "CKR_SESSION_HANDLE_INVALID"
        );
        assert_eq!(ckr_name(RvError::UserNotLoggedIn), "CKR_USER_NOT_LOGGED_IN");
    }

    #[test]
    fn ec_point_unwrapping() {
        let point = [7u8; 65];
        assert_eq!(unwrap_ec_point(&wrap_ec_point(&point)), &point[..]);
        let mut long = vec![0x04, 0x81, 65];
        long.extend_from_slice(&point);
        assert_eq!(unwrap_ec_point(&long), &point[..]);
        // A bare uncompressed point stays as it is.
        let mut bare = vec![0x04];
        bare.extend_from_slice(&[9u8; 64]);
        assert_eq!(unwrap_ec_point(&bare), &bare[..]);
        assert_eq!(unwrap_ec_point(&[0x04, 0x05, 1]), &[0x04, 0x05, 1]);
    }

    #[test]
    fn ec_params_round_trip() {
        for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
            assert_eq!(
                curve_of_ec_params(ec_params_of(curve).unwrap()),
                Some(curve)
            );
        }
        assert!(ec_params_of(Curve::Bls).is_err());
        assert_eq!(
            curve_of_ec_params(EC_PARAMS_ED25519_NAME),
            Some(Curve::Ed25519)
        );
        assert_eq!(curve_of_ec_params(&[0x06, 0x01, 0x00]), None);
    }
}
