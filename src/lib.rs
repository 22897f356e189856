//! palisade: a remote signer for proof-of-stake validators.
//!
//! Layout (see DESIGN.md): `api` (HTTP only) → `chain` (what is signed, pure) →
//! `protection` (slashing rules, pure, and the store) → `keys` (signers).

pub mod api;
pub mod ceremony;
pub mod chain;
pub mod config;
pub mod crypto;
pub mod keys;
pub mod protection;
pub mod server;
