//! `palisade serve`: its flags ([`ServeArgs`], also the keys of the `--config` TOML file)
//! and its run function. Resolution (file < environment < flags, defaults) is
//! [`crate::config`].

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

/// Flags of `palisade serve`. Every field is optional here; [`ServeArgs::resolve`] applies the
/// file and the defaults.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML config file; its keys are the flag names.
    #[arg(long, env = "PALISADE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "PALISADE_HTTP_LISTEN_HOST")]
    pub http_listen_host: Option<String>,
    /// Port to listen on; 0 picks a free port [default: 9000].
    #[arg(long, env = "PALISADE_HTTP_LISTEN_PORT")]
    pub http_listen_port: Option<u16>,
    /// Directory for palisade's own files [default: ./palisade-data].
    #[arg(long, env = "PALISADE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// mainnet, sepolia, holesky, hoodi, gnosis, minimal, or a consensus-spec config.yaml [default: mainnet].
    #[arg(long, env = "PALISADE_NETWORK")]
    pub network: Option<String>,
    /// Directory of EIP-2335 keystores (`*.json`) [default: ./keystores when nothing else is given].
    #[arg(long, env = "PALISADE_KEYSTORES_PATH")]
    pub keystores_path: Option<PathBuf>,
    /// Directory of `<keystore file stem>.txt` password files [default: the keystores directory].
    #[arg(long, env = "PALISADE_KEYSTORES_PASSWORDS_PATH")]
    pub keystores_passwords_path: Option<PathBuf>,
    /// One password file for all keystores.
    #[arg(
        long,
        env = "PALISADE_KEYSTORES_PASSWORD_FILE",
        conflicts_with = "keystores_passwords_path"
    )]
    pub keystores_password_file: Option<PathBuf>,
    /// Directory of YAML key configs: file-keystore, file-raw (eth2), tezos-secret, pkcs11
    /// (Tezos keys in an HSM), pkcs11-wrapped-bls (eth2 keystores wrapped by an HSM).
    #[arg(long, env = "PALISADE_KEY_CONFIG_PATH")]
    pub key_config_path: Option<PathBuf>,
    /// Slashing-protection database URL [default: sqlite://<data-dir>/slashing-protection.sqlite].
    #[arg(long, env = "PALISADE_SLASHING_PROTECTION_DB_URL")]
    pub slashing_protection_db_url: Option<String>,
    /// PostgreSQL connection pool size [default: 16].
    #[arg(long, env = "PALISADE_SLASHING_PROTECTION_DB_POOL_SIZE")]
    pub slashing_protection_db_pool_size: Option<u32>,
    /// Prune old slashing-protection records periodically [default: false].
    #[arg(long, env = "PALISADE_SLASHING_PROTECTION_PRUNING_ENABLED")]
    pub slashing_protection_pruning_enabled: Option<bool>,
    /// Epochs of history kept when pruning [default: 256].
    #[arg(long, env = "PALISADE_SLASHING_PROTECTION_PRUNING_EPOCHS_TO_KEEP")]
    pub slashing_protection_pruning_epochs_to_keep: Option<u64>,
    /// Hours between pruning runs [default: 24].
    #[arg(long, env = "PALISADE_SLASHING_PROTECTION_PRUNING_INTERVAL")]
    pub slashing_protection_pruning_interval: Option<u64>,
    /// Address of the Tezos (octez-signer) API [default: the eth2 API's host]. Giving it turns
    /// the Tezos listener on even without Tezos keys.
    #[arg(long, env = "PALISADE_TEZOS_HTTP_LISTEN_HOST")]
    pub tezos_http_listen_host: Option<String>,
    /// Port of the Tezos (octez-signer) API; 0 picks a free port [default: 6732]. The listener
    /// starts when Tezos keys are configured or this flag (or the host flag) is given.
    #[arg(long, env = "PALISADE_TEZOS_HTTP_LISTEN_PORT")]
    pub tezos_http_listen_port: Option<u16>,
    /// Address of the octez binary signer protocol's TCP listener (`tcp://HOST:PORT/<pkh>` in
    /// octez-client) [default: 127.0.0.1]. It has no TLS: keep it on loopback or behind a
    /// tunnel. Giving it (or the port) turns the listener on.
    #[arg(long, env = "PALISADE_TEZOS_TCP_LISTEN_HOST")]
    pub tezos_tcp_listen_host: Option<String>,
    /// Port of the octez binary signer protocol's TCP listener; 0 picks a free port
    /// [default: 7732 when the host is given; off otherwise].
    #[arg(long, env = "PALISADE_TEZOS_TCP_LISTEN_PORT")]
    pub tezos_tcp_listen_port: Option<u16>,
    /// Serve the octez binary signer protocol on this Unix socket (`unix:///PATH/<pkh>` in
    /// octez-client), created with mode 0600 (0660 with `--tezos-unix-socket-group`).
    #[arg(long, env = "PALISADE_TEZOS_UNIX_SOCKET")]
    pub tezos_unix_socket: Option<PathBuf>,
    /// Group (name or number) given read and write access to `--tezos-unix-socket` (mode 0660).
    #[arg(long, env = "PALISADE_TEZOS_UNIX_SOCKET_GROUP")]
    pub tezos_unix_socket_group: Option<String>,
    /// Magic bytes the Tezos API signs at all, e.g. `0x11,0x12,0x13` [default: all known:
    /// 0x01,0x02,0x03,0x05,0x11,0x12,0x13]; key policies narrow it further.
    #[arg(long, env = "PALISADE_TEZOS_MAGIC_BYTES")]
    pub tezos_magic_bytes: Option<String>,
    /// Serve `GET /known_keys` (lists every Tezos pkh) [default: false].
    #[arg(long, env = "PALISADE_TEZOS_ALLOW_LIST_KNOWN_KEYS", num_args = 0..=1, default_missing_value = "true")]
    pub tezos_allow_list_known_keys: Option<bool>,
    /// Require an `authentication` signature by one of `--tezos-authorized-keys` on every
    /// Tezos signing request [default: false].
    #[arg(long, env = "PALISADE_TEZOS_REQUIRE_AUTHENTICATION", num_args = 0..=1, default_missing_value = "true")]
    pub tezos_require_authentication: Option<bool>,
    /// File of authorized public keys (edpk/sppk/p2pk/BLpk), one per line; `#` starts a comment.
    #[arg(long, env = "PALISADE_TEZOS_AUTHORIZED_KEYS")]
    pub tezos_authorized_keys: Option<PathBuf>,
    /// Days of audit records kept; older ones are deleted at start-up and hourly; 0 keeps
    /// them forever [default: 90].
    #[arg(long, env = "PALISADE_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u64>,
    /// Log one line per HTTP request (method, path without query, status, time, client IP)
    /// on target `palisade::access` [default: false].
    #[arg(long, env = "PALISADE_ACCESS_LOG", num_args = 0..=1, default_missing_value = "true")]
    pub access_log: Option<bool>,
    /// Serve Prometheus metrics at `/metrics` on their own listener [default: false].
    #[arg(long, env = "PALISADE_METRICS_ENABLED", num_args = 0..=1, default_missing_value = "true")]
    pub metrics_enabled: Option<bool>,
    /// Address of the metrics listener [default: the eth2 API's host].
    #[arg(long, env = "PALISADE_METRICS_HOST")]
    pub metrics_host: Option<String>,
    /// Port of the metrics listener; 0 picks a free port [default: 9001].
    #[arg(long, env = "PALISADE_METRICS_PORT")]
    pub metrics_port: Option<u16>,
    /// PEM certificate chain for TLS on every listener (with `--tls-key-file`).
    #[arg(long, env = "PALISADE_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `--tls-cert-file` (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "PALISADE_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate issued by one of them.
    #[arg(long, env = "PALISADE_TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,
    /// Comma-separated SHA-256 fingerprints (hex) of the client certificates allowed; with
    /// `--tls-client-ca-file`, both must accept.
    #[arg(long, env = "PALISADE_TLS_ALLOWED_CLIENT_FINGERPRINTS")]
    pub tls_allowed_client_fingerprints: Option<String>,
    /// Host header values accepted by the signing listeners (names without port,
    /// comma-separated; `*` for any) [default: localhost,127.0.0.1,::1].
    #[arg(long, env = "PALISADE_HTTP_HOST_ALLOWLIST")]
    pub http_host_allowlist: Option<String>,
    /// Origins allowed by CORS (comma-separated; `*` for any) [default: none].
    #[arg(long, env = "PALISADE_HTTP_CORS_ORIGINS")]
    pub http_cors_origins: Option<String>,
    /// Serve the Ethereum Keymanager API (`/eth/v1/keystores`) with bearer-token
    /// authentication; imported keystores are written under `--key-config-path` [default: false].
    #[arg(long, env = "PALISADE_KEY_MANAGER_API_ENABLED", num_args = 0..=1, default_missing_value = "true")]
    pub key_manager_api_enabled: Option<bool>,
    /// File holding the Keymanager API bearer token [default: <data-dir>/api-token.txt, made
    /// with a random token at first start].
    #[arg(long, env = "PALISADE_KEY_MANAGER_API_TOKEN_FILE")]
    pub key_manager_api_token_file: Option<PathBuf>,
}

/// Resolves the configuration, prepares the keys, the store and the listeners, and serves
/// until shut down.
///
/// # Errors
/// The configuration is invalid, start-up fails (`cannot start: …`) or a listener fails
/// (`server failed: …`).
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    actix_web::rt::System::new().block_on(async move {
        let prepared = crate::server::prepare(&config)
            .await
            .map_err(anyhow::Error::msg)
            .context("cannot start")?;
        crate::server::serve(&config, prepared)
            .await
            .context("server failed")
    })
}
