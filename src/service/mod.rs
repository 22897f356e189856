//! The signing services: one function per operation, called by every transport (the HTTP
//! APIs in `api/`, later the octez socket protocol), holding no transport types.
//!
//! A service takes a request as the transport decoded it and returns the signature or a
//! typed reason: a refusal (slashing protection, high watermark, policy) or a fault
//! (database unavailable, backend failure). The transport only encodes that answer.
//! Signatures leave a service only through [`crate::protection::release`]: after the
//! record of the decision committed.

pub mod eth2;
pub mod keymanager;
pub mod tezos;
