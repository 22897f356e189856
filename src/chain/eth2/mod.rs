//! Ethereum consensus signing: SSZ containers, domains, signing roots and fork schedules.

pub mod containers;
pub mod network;
pub mod request;
pub mod signing;
