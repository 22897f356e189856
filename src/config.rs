//! Configuration of `palisade serve`: TOML file < environment (`PALISADE_<FLAG>`) < flags.
//!
//! Flag names mirror Web3Signer's where the meaning is the same. The TOML file uses the
//! flag names as keys (`http-listen-port = 9000`).

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::chain::tezos::payload::KNOWN_MAGIC_BYTES as TEZOS_KNOWN_MAGIC_BYTES;

/// Command line of the `palisade` binary.
#[derive(Debug, Parser)]
#[command(
    name = "palisade",
    version,
    about = "Remote signer for proof-of-stake validators"
)]
pub struct Cli {
    /// The sub-command to run.
    #[command(subcommand)]
    pub command: Command,
    /// Log line format on stderr (and in `--log-file`): `plain` or `json` [default: plain].
    #[arg(
        long,
        global = true,
        env = "PALISADE_LOGGING_FORMAT",
        value_enum,
        default_value = "plain"
    )]
    pub logging_format: crate::logging::LoggingFormat,
    /// Also append log lines to this file (created with mode 0600).
    #[arg(long, global = true, env = "PALISADE_LOG_FILE")]
    pub log_file: Option<PathBuf>,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Web3Signer-compatible eth2 signing API.
    Serve(Box<ServeArgs>),
    /// Slashing-protection database tools (EIP-3076 import/export, high watermark, pruning).
    #[command(name = "slashing-protection", subcommand)]
    SlashingProtection(SlashingProtectionCommand),
    /// Apply the database migrations and exit (they also run at start-up).
    Migrate(DbArgs),
    /// Key tools.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// PKCS#11 HSM tools: list, generate and import Tezos keys, create the AES key for
    /// wrapped BLS keystores, wrap a keystore.
    #[command(subcommand)]
    Hsm(HsmCommand),
    /// Offline key ceremonies: generate keys with Shamir backups and a transcript, combine
    /// shares, verify outputs against a transcript.
    #[command(subcommand)]
    Ceremony(CeremonyCommand),
    /// The audit trail of signing decisions: export, prune.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `palisade audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the audit records from `--since` (and before `--until`) in insertion order.
    Export {
        /// Start: RFC 3339 (`2026-11-01T00:00:00Z`), a date (`2026-11-01`, UTC) or a duration
        /// back from now (`24h`, `7days`).
        #[arg(long)]
        since: String,
        /// End (exclusive), in the same forms [default: now and later].
        #[arg(long)]
        until: Option<String>,
        /// `jsonl` (one JSON object per line) or `csv` (with a header line).
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Output file [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Delete audit records older than a duration now (serve does it hourly with
    /// `--audit-retention-days`). Per-key totals are kept.
    Prune {
        /// Age of the oldest record kept, e.g. `90days`.
        #[arg(long)]
        older_than: String,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `palisade ceremony …` (runs fully offline; meant for an air-gapped machine).
#[derive(Debug, Subcommand)]
pub enum CeremonyCommand {
    /// Ethereum validator keys: a new 24-word mnemonic, EIP-2333/2334 keys, EIP-2335
    /// keystores, launchpad deposit data, K-of-M Shamir shares of the mnemonic's entropy.
    Eth2 {
        /// Number of validator keys.
        #[arg(long)]
        count: u32,
        /// First EIP-2334 validator index.
        #[arg(long, default_value_t = 0)]
        start_index: u32,
        /// Network of the deposit data (mainnet, sepolia, hoodi, gnosis, chiado, …).
        #[arg(long, default_value = "mainnet")]
        network: String,
        /// Execution-layer withdrawal address (0x + 40 hex; EIP-55 checked if mixed case).
        #[arg(long)]
        withdrawal_address: String,
        /// 0x02 (compounding) withdrawal credentials instead of 0x01.
        #[arg(long)]
        compounding: bool,
        /// Deposit per validator in ETH (0x01: 32; 0x02: 1–2048).
        #[arg(long, default_value = "32")]
        amount_eth: String,
        /// Keystore KDF: scrypt or pbkdf2.
        #[arg(long, default_value = "scrypt")]
        kdf: String,
        /// Shares needed to reconstruct (K).
        #[arg(long, default_value_t = 3)]
        threshold: u8,
        /// Shares to write (M), one per custodian.
        #[arg(long, default_value_t = 5)]
        shares: u8,
        /// Also write each share as a PNG QR code.
        #[arg(long)]
        qr: bool,
        /// Keystore password file [default: prompted twice].
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Use this existing mnemonic (a file) instead of drawing a new one.
        #[arg(long)]
        existing_mnemonic_file: Option<PathBuf>,
        /// Do not print the mnemonic (the shares are then the only backup).
        #[arg(long)]
        no_show_mnemonic: bool,
        /// Output directory (new or empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// One Tezos key: octez `encrypted:` secret key files and K-of-M Shamir shares of it.
    Tezos {
        /// ed25519 (tz1), secp256k1 (tz2), p256 (tz3) or bls (tz4).
        #[arg(long)]
        curve: String,
        /// The octez alias written into the files.
        #[arg(long, default_value = "baker")]
        alias: String,
        /// Shares needed to reconstruct (K).
        #[arg(long, default_value_t = 3)]
        threshold: u8,
        /// Shares to write (M).
        #[arg(long, default_value_t = 5)]
        shares: u8,
        /// Also write each share as a PNG QR code.
        #[arg(long)]
        qr: bool,
        /// Password file for the `encrypted:` key [default: prompted twice].
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Output directory (new or empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Reconstruct keys from K shares; checked against the transcript before anything is
    /// written.
    Combine {
        /// The ceremony's transcript.json.
        #[arg(long)]
        transcript: PathBuf,
        /// Share files (at least K).
        #[arg(long = "share", required = true)]
        shares: Vec<PathBuf>,
        /// Password for the keystores / encrypted key written [default: prompted twice].
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Keystore KDF (eth2): scrypt or pbkdf2.
        #[arg(long, default_value = "scrypt")]
        kdf: String,
        /// Output directory (new or empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check keystores, deposit data and/or shares against a transcript.
    Verify {
        /// The ceremony's transcript.json.
        #[arg(long)]
        transcript: PathBuf,
        /// Directory of the keystores (eth2; deposit data beside or inside it) or of the
        /// octez files (tezos).
        #[arg(long)]
        keystores: Option<PathBuf>,
        /// Share files.
        #[arg(long = "shares", num_args = 1..)]
        shares: Vec<PathBuf>,
        /// Password, to also decrypt the keystores / key.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

/// How `palisade hsm` reaches the token.
#[derive(Debug, Clone, Args)]
pub struct HsmTokenArgs {
    /// The vendor's PKCS#11 library (CloudHSM: /opt/cloudhsm/lib/libcloudhsm_pkcs11.so,
    /// SoftHSM2: /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long, env = "PALISADE_PKCS11_MODULE")]
    pub module: PathBuf,
    /// Token label (one of --token-label, --slot-id).
    #[arg(long, conflicts_with = "slot_id")]
    pub token_label: Option<String>,
    /// Slot id.
    #[arg(long)]
    pub slot_id: Option<u64>,
    /// File holding the user PIN (one of --pin-file, --pin-env).
    #[arg(long, conflicts_with = "pin_env")]
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the user PIN.
    #[arg(long)]
    pub pin_env: Option<String>,
}

/// `palisade hsm …`
#[derive(Debug, Subcommand)]
pub enum HsmCommand {
    /// Token information and every usable key: Tezos key pairs with their pkh, AES keys with
    /// the Ethereum public keys of the given wrapped keystores they open.
    List {
        /// The PKCS#11 module, token and PIN.
        #[command(flatten)]
        token: HsmTokenArgs,
        /// Wrapped keystore files to match against the AES keys.
        #[arg(long)]
        wrapped: Vec<PathBuf>,
        /// `table` or `json`.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Generate a Tezos key pair inside the HSM (non-extractable, sensitive).
    Generate {
        /// The PKCS#11 module, token and PIN.
        #[command(flatten)]
        token: HsmTokenArgs,
        /// ed25519 (tz1), secp256k1 (tz2) or p256 (tz3).
        #[arg(long)]
        curve: String,
        /// CKA_LABEL for the new key pair (must be unused).
        #[arg(long)]
        label: String,
    },
    /// Import a Tezos secret key (e.g. from a key ceremony) as a non-extractable HSM key.
    #[command(name = "import-tezos")]
    ImportTezos {
        /// The PKCS#11 module, token and PIN.
        #[command(flatten)]
        token: HsmTokenArgs,
        /// The secret key (`edsk…`, `spsk…`, `p2sk…`, `unencrypted:…`, `encrypted:…`), or `-`
        /// to read it from standard input. Prefer --secret-key-file: arguments are visible
        /// to other users of the machine.
        #[arg(long, conflicts_with = "secret_key_file")]
        secret_key: Option<String>,
        /// File holding the secret key.
        #[arg(long)]
        secret_key_file: Option<PathBuf>,
        /// Password file for an `encrypted:` secret key.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// CKA_LABEL for the imported key pair (must be unused).
        #[arg(long)]
        label: String,
    },
    /// Create a non-extractable AES-256 key for wrapping BLS keystores.
    #[command(name = "create-aes-key")]
    CreateAesKey {
        /// The PKCS#11 module, token and PIN.
        #[command(flatten)]
        token: HsmTokenArgs,
        /// CKA_LABEL for the key (must be unused).
        #[arg(long)]
        label: String,
    },
    /// Convert an EIP-2335 keystore into a keystore wrapped under the HSM's AES key.
    #[command(name = "wrap-keystore")]
    WrapKeystore {
        /// The PKCS#11 module, token and PIN.
        #[command(flatten)]
        token: HsmTokenArgs,
        /// The EIP-2335 keystore.
        #[arg(long)]
        keystore: PathBuf,
        /// Its password file.
        #[arg(long)]
        password_file: PathBuf,
        /// The AES key to wrap under (see create-aes-key).
        #[arg(long)]
        aes_key_label: String,
        /// Where to write the wrapped keystore [default: <keystore stem>.wrapped.json in the
        /// current directory]. Never overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `palisade keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The key inventory of a running signer (`GET /api/v1/keys`, from the same host): chain,
    /// key, backend, status, load time, last signed message, signed and refused counts.
    List {
        /// Base URL of the signer's eth2 listener.
        #[arg(long, env = "PALISADE_URL", default_value = "http://127.0.0.1:9000")]
        url: String,
        /// `table` or `json`.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Turn an octez client's `secret_keys` file into `tezos-secret` key configs (one
    /// `<alias>.yaml` per key, mode 0600) for `--key-config-path`.
    #[command(name = "import-octez")]
    ImportOctez {
        /// The octez `secret_keys` file (e.g. ~/.tezos-client/secret_keys).
        #[arg(long)]
        secret_keys: PathBuf,
        /// Directory to write the key configs to (your --key-config-path).
        #[arg(long)]
        out: PathBuf,
        /// Password file for `encrypted:` keys: checked against each of them and named in
        /// their configs.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

/// The database a tool works on.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Slashing-protection database URL [default: sqlite://<data-dir>/slashing-protection.sqlite].
    #[arg(long, env = "PALISADE_SLASHING_PROTECTION_DB_URL")]
    pub slashing_protection_db_url: Option<String>,
    /// Directory for palisade's own files [default: ./palisade-data].
    #[arg(long, env = "PALISADE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DbArgs {
    /// The database URL, defaulting as `serve` does.
    pub fn url(&self) -> String {
        self.slashing_protection_db_url.clone().unwrap_or_else(|| {
            let dir = self
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("./palisade-data"));
            format!(
                "sqlite://{}",
                dir.join("slashing-protection.sqlite").display()
            )
        })
    }
}

/// `palisade slashing-protection …`
#[derive(Debug, Subcommand)]
pub enum SlashingProtectionCommand {
    /// Import an EIP-3076 interchange file (merged with what is there; safe while servers run).
    Import {
        /// The interchange JSON file.
        #[arg(long)]
        from: PathBuf,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Export the record as an EIP-3076 interchange file (version 5).
    Export {
        /// Where to write the JSON file.
        #[arg(long)]
        to: PathBuf,
        /// Only these validators (comma-separated 0x-hex public keys).
        #[arg(long, value_delimiter = ',')]
        pubkeys: Option<Vec<String>>,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set (`--epoch E --slot S`), remove (`--remove`) or show (no flags) the global high
    /// watermark: nothing at or above it is signed.
    HighWatermark {
        /// Epoch of the watermark: no attestation with a source or target epoch at or above it.
        #[arg(long, requires = "slot", conflicts_with = "remove")]
        epoch: Option<u64>,
        /// Slot of the watermark: no block at or above it.
        #[arg(long, requires = "epoch", conflicts_with = "remove")]
        slot: Option<u64>,
        /// Remove the watermark.
        #[arg(long)]
        remove: bool,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Prune old records now (low watermarks are raised first, so no rule gets weaker).
    Prune {
        /// Epochs of history to keep below each validator's newest record.
        #[arg(long, default_value_t = 256)]
        epochs_to_keep: u64,
        /// Slots per epoch of the network (32 mainnet, 16 gnosis, 8 minimal).
        #[arg(long, default_value_t = 32)]
        slots_per_epoch: u64,
        /// The database to work on.
        #[command(flatten)]
        db: DbArgs,
    },
}

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

/// Errors resolving the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` TOML file cannot be read, is not TOML, or has an unknown key or a
    /// value of the wrong type.
    #[error("cannot read config file {path}: {reason}")]
    File {
        /// Path of the config file.
        path: String,
        /// The I/O or TOML error.
        reason: String,
    },
    /// A flag's value is invalid, or flags that go together are not given together (TLS
    /// certificate and key, `--tezos-require-authentication` without authorized keys, …).
    #[error("invalid {flag}: {reason}")]
    Invalid {
        /// The flag, spelled as on the command line (`--tezos-magic-bytes`).
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The resolved configuration of the Tezos (octez-signer) listener.
#[derive(Debug, Clone)]
pub struct TezosConfig {
    /// Address of the Tezos listener (`--tezos-http-listen-host`, else the eth2 API's host).
    pub listen_host: String,
    /// TCP port of the Tezos listener; 0 picks a free port (`--tezos-http-listen-port`, 6732).
    pub listen_port: u16,
    /// The listener was asked for explicitly (it also starts when Tezos keys are loaded).
    pub explicitly_enabled: bool,
    /// Magic bytes signed at all.
    pub magic_bytes: Vec<u8>,
    /// Whether `GET /known_keys` lists every Tezos pkh (`--tezos-allow-list-known-keys`).
    pub allow_list_known_keys: bool,
    /// Whether every signing request needs an `authentication` signature by an authorized key.
    pub require_authentication: bool,
    /// File of authorized public keys (edpk/sppk/p2pk/BLpk), one per line.
    pub authorized_keys: Option<PathBuf>,
}

/// Parses `0x11,0x12,13` into bytes; each must be a known magic byte.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the bad entry.
pub fn parse_magic_bytes(list: &str) -> Result<Vec<u8>, ConfigError> {
    let bad = |reason: String| ConfigError::Invalid {
        flag: "--tezos-magic-bytes",
        reason,
    };
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let hex = item.trim_start_matches("0x").trim_start_matches("0X");
        let b =
            u8::from_str_radix(hex, 16).map_err(|_| bad(format!("`{item}` is not a hex byte")))?;
        if !TEZOS_KNOWN_MAGIC_BYTES.contains(&b) {
            return Err(bad(format!(
                "0x{b:02x} is not a known magic byte (known: 0x01, 0x02, 0x03, 0x05, 0x11, 0x12, 0x13)"
            )));
        }
        if !out.contains(&b) {
            out.push(b);
        }
    }
    if out.is_empty() {
        return Err(bad("empty list".into()));
    }
    Ok(out)
}

/// The resolved configuration of `palisade serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address of the eth2 API listener (`--http-listen-host`, 127.0.0.1).
    pub http_listen_host: String,
    /// TCP port of the eth2 API listener; 0 picks a free port (`--http-listen-port`, 9000).
    pub http_listen_port: u16,
    /// Directory for palisade's own files (`--data-dir`, `./palisade-data`).
    pub data_dir: PathBuf,
    /// Built-in network name or path of a consensus-spec `config.yaml` (`--network`, mainnet).
    pub network: String,
    /// Where the keys come from: keystores, their passwords, YAML key configs.
    pub keys: crate::keys::KeySources,
    /// Slashing-protection database URL (`sqlite://…` or `postgres://…`).
    pub slashing_protection_db_url: String,
    /// PostgreSQL connection pool size (`--slashing-protection-db-pool-size`, 16).
    pub slashing_protection_db_pool_size: u32,
    /// `Some(epochs to keep, interval)` when pruning is enabled.
    pub pruning: Option<(u64, std::time::Duration)>,
    /// The Tezos listener.
    pub tezos: TezosConfig,
    /// How long audit records are kept; `None` = forever.
    pub audit_retention: Option<std::time::Duration>,
    /// Whether every HTTP request is logged.
    pub access_log: bool,
    /// `Some((host, port))` when the metrics listener is on.
    pub metrics: Option<(String, u16)>,
    /// TLS on every listener, when configured.
    pub tls: Option<crate::tls::TlsSettings>,
    /// Host header values the signing listeners accept.
    pub host_allowlist: crate::tls::HostAllowlist,
    /// CORS origins (`*` for any); empty: no cross-origin request is allowed.
    pub cors_origins: Vec<String>,
    /// `Some(token file)` when the Keymanager API is on.
    pub key_manager_token_file: Option<PathBuf>,
}

macro_rules! merge {
    ($flags:ident, $file:ident, $($field:ident),*) => {
        ServeArgs { config: $flags.config.clone(), $($field: $flags.$field.clone().or($file.$field.clone()),)* }
    };
}

impl ServeArgs {
    /// Merges the TOML file named by `--config` (lowest precedence) under these flags and
    /// environment values, then applies the defaults.
    ///
    /// # Errors
    /// [`ConfigError::File`] if the file cannot be read or has unknown keys.
    pub fn resolve(&self) -> Result<ServeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        let flags = self;
        let m = merge!(
            flags,
            file,
            http_listen_host,
            http_listen_port,
            data_dir,
            network,
            keystores_path,
            keystores_passwords_path,
            keystores_password_file,
            key_config_path,
            slashing_protection_db_url,
            slashing_protection_db_pool_size,
            slashing_protection_pruning_enabled,
            slashing_protection_pruning_epochs_to_keep,
            slashing_protection_pruning_interval,
            tezos_http_listen_host,
            tezos_http_listen_port,
            tezos_magic_bytes,
            tezos_allow_list_known_keys,
            tezos_require_authentication,
            tezos_authorized_keys,
            audit_retention_days,
            access_log,
            metrics_enabled,
            metrics_host,
            metrics_port,
            tls_cert_file,
            tls_key_file,
            tls_client_ca_file,
            tls_allowed_client_fingerprints,
            http_host_allowlist,
            http_cors_origins,
            key_manager_api_enabled,
            key_manager_api_token_file
        );
        let http_listen_host = m.http_listen_host.unwrap_or_else(|| "127.0.0.1".into());
        let require_authentication = m.tezos_require_authentication.unwrap_or(false);
        if require_authentication && m.tezos_authorized_keys.is_none() {
            return Err(ConfigError::Invalid {
                flag: "--tezos-require-authentication",
                reason: "needs --tezos-authorized-keys FILE".into(),
            });
        }
        let tezos = TezosConfig {
            listen_host: m
                .tezos_http_listen_host
                .clone()
                .unwrap_or_else(|| http_listen_host.clone()),
            listen_port: m.tezos_http_listen_port.unwrap_or(6732),
            explicitly_enabled: m.tezos_http_listen_host.is_some()
                || m.tezos_http_listen_port.is_some(),
            magic_bytes: match &m.tezos_magic_bytes {
                Some(list) => parse_magic_bytes(list)?,
                None => TEZOS_KNOWN_MAGIC_BYTES.to_vec(),
            },
            allow_list_known_keys: m.tezos_allow_list_known_keys.unwrap_or(false),
            require_authentication,
            authorized_keys: m.tezos_authorized_keys,
        };
        let data_dir = m
            .data_dir
            .unwrap_or_else(|| PathBuf::from("./palisade-data"));
        let keystores_path = match (&m.keystores_path, &m.key_config_path) {
            (Some(p), _) => Some(p.clone()),
            (None, None) => Some(PathBuf::from("./keystores")),
            (None, Some(_)) => None,
        };
        let db_url = m.slashing_protection_db_url.unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                data_dir.join("slashing-protection.sqlite").display()
            )
        });
        let tls = match (&m.tls_cert_file, &m.tls_key_file) {
            (Some(cert), Some(key)) => Some(crate::tls::TlsSettings {
                cert_file: cert.clone(),
                key_file: key.clone(),
                client_ca_file: m.tls_client_ca_file.clone(),
                client_fingerprints: match &m.tls_allowed_client_fingerprints {
                    Some(list) => crate::tls::parse_fingerprints(list).map_err(|reason| {
                        ConfigError::Invalid {
                            flag: "--tls-allowed-client-fingerprints",
                            reason,
                        }
                    })?,
                    None => Vec::new(),
                },
            }),
            (None, None) => {
                if m.tls_client_ca_file.is_some() || m.tls_allowed_client_fingerprints.is_some() {
                    return Err(ConfigError::Invalid {
                        flag: "--tls-client-ca-file",
                        reason: "client authentication needs --tls-cert-file and --tls-key-file"
                            .into(),
                    });
                }
                None
            }
            _ => {
                return Err(ConfigError::Invalid {
                    flag: "--tls-cert-file",
                    reason: "--tls-cert-file and --tls-key-file go together".into(),
                });
            }
        };
        let host_allowlist = crate::tls::HostAllowlist::parse(
            m.http_host_allowlist
                .as_deref()
                .unwrap_or("localhost,127.0.0.1,::1"),
        );
        let cors_origins: Vec<String> = m
            .http_cors_origins
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect();
        let key_manager_token_file = if m.key_manager_api_enabled.unwrap_or(false) {
            if m.key_config_path.is_none() {
                return Err(ConfigError::Invalid {
                    flag: "--key-manager-api-enabled",
                    reason: "needs --key-config-path: imported keystores are written there".into(),
                });
            }
            Some(
                m.key_manager_api_token_file
                    .clone()
                    .unwrap_or_else(|| data_dir.join("api-token.txt")),
            )
        } else {
            None
        };
        let metrics = m.metrics_enabled.unwrap_or(false).then(|| {
            (
                m.metrics_host
                    .clone()
                    .unwrap_or_else(|| http_listen_host.clone()),
                m.metrics_port.unwrap_or(9001),
            )
        });
        Ok(ServeConfig {
            http_listen_host,
            http_listen_port: m.http_listen_port.unwrap_or(9000),
            data_dir,
            network: m.network.unwrap_or_else(|| "mainnet".into()),
            keys: crate::keys::KeySources {
                keystores_path,
                keystores_passwords_path: m.keystores_passwords_path,
                keystores_password_file: m.keystores_password_file,
                key_config_path: m.key_config_path,
            },
            slashing_protection_db_url: db_url,
            slashing_protection_db_pool_size: m.slashing_protection_db_pool_size.unwrap_or(16),
            pruning: m
                .slashing_protection_pruning_enabled
                .unwrap_or(false)
                .then(|| {
                    (
                        m.slashing_protection_pruning_epochs_to_keep.unwrap_or(256),
                        std::time::Duration::from_secs(
                            3600 * m.slashing_protection_pruning_interval.unwrap_or(24).max(1),
                        ),
                    )
                }),
            tezos,
            access_log: m.access_log.unwrap_or(false),
            metrics,
            tls,
            host_allowlist,
            cors_origins,
            key_manager_token_file,
            audit_retention: match m.audit_retention_days.unwrap_or(90) {
                0 => None,
                days => Some(std::time::Duration::from_secs(days * 86_400)),
            },
        })
    }
}

/// Parses a point in time for `--since`/`--until`: RFC 3339, a date (UTC midnight) or a
/// duration back from now (`24h`, `7days`). Returns Unix milliseconds.
///
/// # Errors
/// A message naming the forms accepted.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let date_only = t.len() == 10 && t.as_bytes().get(4) == Some(&b'-');
    let stamp = if date_only {
        format!("{t}T00:00:00Z")
    } else {
        t.to_string()
    };
    if let Ok(time) = humantime::parse_rfc3339_weak(&stamp) {
        return Ok(time
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0));
    }
    match humantime::parse_duration(t) {
        Ok(ago) => Ok(crate::protection::audit::now_ms() - ago.as_millis() as i64),
        Err(_) => Err(format!(
            "`{text}` is not a time: give RFC 3339 (2026-11-01T12:00:00Z), a date (2026-11-01) or a duration back from now (24h, 7days)"
        )),
    }
}

fn read_file(path: &Path) -> Result<ServeArgs, ConfigError> {
    let fail = |reason: String| ConfigError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    toml::from_str(&text).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_precedence() {
        let c = ServeArgs::default().resolve().unwrap();
        assert_eq!(c.http_listen_port, 9000);
        assert_eq!(c.http_listen_host, "127.0.0.1");
        assert_eq!(c.keys.keystores_path, Some(PathBuf::from("./keystores")));
        assert_eq!(
            c.slashing_protection_db_url,
            "sqlite://./palisade-data/slashing-protection.sqlite"
        );

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, "http-listen-port = 9100\nnetwork = \"hoodi\"\n").unwrap();
        let args = ServeArgs {
            config: Some(f.clone()),
            http_listen_port: Some(9200),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.http_listen_port, 9200, "flag wins over file");
        assert_eq!(c.network, "hoodi", "file fills what flags leave");

        std::fs::write(&f, "no-such-key = 1\n").unwrap();
        let err = ServeArgs {
            config: Some(f),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("no-such-key"), "{err}");
    }

    #[test]
    fn audit_retention_and_times() {
        let c = ServeArgs::default().resolve().unwrap();
        assert_eq!(
            c.audit_retention,
            Some(std::time::Duration::from_secs(90 * 86_400))
        );
        assert_eq!(c.metrics, None, "metrics are off by default");
        let on = ServeArgs {
            metrics_enabled: Some(true),
            ..Default::default()
        };
        assert_eq!(
            on.resolve().unwrap().metrics,
            Some(("127.0.0.1".into(), 9001))
        );
        let forever = ServeArgs {
            audit_retention_days: Some(0),
            ..Default::default()
        };
        assert_eq!(forever.resolve().unwrap().audit_retention, None);

        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(parse_time("2023-11-14").unwrap(), 1_699_920_000_000);
        let ago = parse_time("1h").unwrap();
        let expected = crate::protection::audit::now_ms() - 3_600_000;
        assert!((ago - expected).abs() < 5_000, "{ago} vs {expected}");
        assert!(
            parse_time("yesterday-ish")
                .unwrap_err()
                .contains("RFC 3339")
        );
    }
}
