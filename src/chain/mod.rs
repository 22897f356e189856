//! What exactly is being signed, per chain: pure functions, no I/O.

pub mod eth2;
pub mod tezos;
