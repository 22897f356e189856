//! Tokens: where a token is ([`TokenRef`]: module, label or slot, PIN source), and the open
//! token shared by its keys ([`Token`]: one `C_Initialize` per module, a pool of logged-in
//! sessions, retry on a lost session).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use parking_lot::{Condvar, Mutex};
use zeroize::Zeroizing;

use super::error::{HsmError, describe};

/// Default longest wait for a free session or for the HSM to answer, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

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
                crate::keys::read_password_file(path).map_err(HsmError::Config)
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

/// The fields of [`TokenFields`] (and `type`), as a key config spells them.
pub(crate) const TOKEN_FIELDS: &[&str] = &[
    "type",
    "module",
    "tokenLabel",
    "slotId",
    "pinFile",
    "pinEnv",
    "sessions",
    "timeoutMs",
];

/// The token fields shared by `pkcs11` and `pkcs11-wrapped-bls` key configs, as written.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenFields {
    module: PathBuf,
    #[serde(default)]
    token_label: Option<String>,
    #[serde(default)]
    slot_id: Option<u64>,
    #[serde(default)]
    pin_file: Option<PathBuf>,
    #[serde(default)]
    pin_env: Option<String>,
    #[serde(default)]
    sessions: Option<usize>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

impl TokenFields {
    /// The token these fields name; a relative `pinFile` resolves against `base`.
    ///
    /// # Errors
    /// A message for both or neither of `tokenLabel`/`slotId` or `pinFile`/`pinEnv`, or
    /// `sessions: 0`.
    pub(crate) fn resolve(self, base: &Path) -> Result<TokenRef, String> {
        let token = match (self.token_label, self.slot_id) {
            (Some(l), None) => TokenSelector::Label(l),
            (None, Some(s)) => TokenSelector::Slot(s),
            _ => return Err("exactly one of tokenLabel or slotId is required".into()),
        };
        let pin = match (self.pin_file, self.pin_env) {
            (Some(f), None) => PinSource::File(base.join(f)),
            (None, Some(v)) => PinSource::Env(v),
            _ => {
                return Err(
                    "exactly one of pinFile or pinEnv is required (the PIN is never inline)".into(),
                );
            }
        };
        if self.sessions == Some(0) {
            return Err("sessions must be at least 1".into());
        }
        Ok(TokenRef {
            module: self.module,
            token,
            pin,
            sessions: self.sessions,
            timeout_ms: self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        })
    }
}
