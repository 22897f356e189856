//! Signature schemes. Secret keys are zeroized on drop and never `Debug`/`Display`ed.

pub mod bls;
pub mod eip2333;
pub mod tezos;
