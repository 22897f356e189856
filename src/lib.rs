//! palisade: a remote signer for proof-of-stake validators.
//!
//! Layout (see docs/design.md): `api` (HTTP only: decode, call, encode) → `service` (the
//! signing flows, no transport types) → `chain` (what is signed, pure), `protection`
//! (slashing rules, pure, the stores, release after commit) and `keys` (signers).
//!
//! The library has no `unsafe` code (`forbid`); the binary's one `unsafe` block (core dumps
//! and ptrace off, `main.rs`) carries its safety argument.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
pub mod api;
pub mod ceremony;
pub mod chain;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod protection;
pub mod server;
pub mod service;
pub mod tls;
pub mod transport;

/// Helpers shared by unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    /// The Python interpreter of the test venv (`tests/clients/python/.venv`, made by
    /// `scripts/test.sh`), or `PALISADE_TEST_PYTHON`; fails (never skips) when missing.
    pub fn python() -> std::path::PathBuf {
        let py = std::env::var_os("PALISADE_TEST_PYTHON")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/clients/python/.venv/bin/python")
            });
        assert!(
            py.exists(),
            "{} is missing: scripts/test.sh creates the venv (python3 -m venv \
             tests/clients/python/.venv; pip install -r tests/clients/python/requirements.txt)",
            py.display()
        );
        py
    }
}
