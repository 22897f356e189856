//! PKCS#11 failures: [`HsmError`], with the function and the `CKR_…` return value.

use std::path::PathBuf;

use cryptoki::error::{Error as CkError, RvError};

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
    pub(super) fn call(token: &str, e: &CkError) -> Self {
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

    pub(super) fn session_lost(&self) -> bool {
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

pub(super) fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, _) => ckr_name(*rv),
        other => other.to_string(),
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
}
