//! Non-HTTP transports. [`octez_socket`]: octez's binary remote-signer protocol over TCP and a
//! Unix socket, calling the same Tezos signing service as the HTTP API.

pub mod octez_socket;
