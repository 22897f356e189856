//! Configuration of `palisade serve`: TOML file < environment (`PALISADE_<FLAG>`) < flags.
//!
//! Flag names mirror Web3Signer's where the meaning is the same. The TOML file uses the
//! flag names as keys (`http-listen-port = 9000`). The flags themselves are declared with
//! the `serve` sub-command ([`crate::cli::serve::ServeArgs`]); this module reads the file,
//! merges it under them and applies the defaults ([`ServeArgs::resolve`]).

use std::path::{Path, PathBuf};

use crate::chain::tezos::payload::KNOWN_MAGIC_BYTES as TEZOS_KNOWN_MAGIC_BYTES;
use crate::cli::serve::ServeArgs;

/// `--data-dir` when none is given (`serve` and the database tools).
pub const DEFAULT_DATA_DIR: &str = "./palisade-data";

/// The slashing-protection database URL when `--slashing-protection-db-url` is not given:
/// `sqlite://<data_dir>/slashing-protection.sqlite`.
pub fn default_db_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}",
        data_dir.join("slashing-protection.sqlite").display()
    )
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
    /// `Some((host, port))` when the octez binary protocol's TCP listener is on
    /// (`--tezos-tcp-listen-host/-port`; port 7732 by default, 0 picks a free one).
    pub tcp: Option<(String, u16)>,
    /// The octez binary protocol's Unix socket (`--tezos-unix-socket`).
    pub unix_socket: Option<PathBuf>,
    /// Group given access to the Unix socket (`--tezos-unix-socket-group`, name or number).
    pub unix_socket_group: Option<String>,
}

impl TezosConfig {
    /// Whether an octez binary-protocol listener (TCP or Unix socket) is configured.
    pub fn sockets_enabled(&self) -> bool {
        self.tcp.is_some() || self.unix_socket.is_some()
    }
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
            tezos_tcp_listen_host,
            tezos_tcp_listen_port,
            tezos_unix_socket,
            tezos_unix_socket_group,
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
            tcp: match (&m.tezos_tcp_listen_host, m.tezos_tcp_listen_port) {
                (None, None) => None,
                (host, port) => Some((
                    host.clone().unwrap_or_else(|| "127.0.0.1".into()),
                    port.unwrap_or(7732),
                )),
            },
            unix_socket: m.tezos_unix_socket.clone(),
            unix_socket_group: m.tezos_unix_socket_group.clone(),
        };
        if tezos.unix_socket_group.is_some() && tezos.unix_socket.is_none() {
            return Err(ConfigError::Invalid {
                flag: "--tezos-unix-socket-group",
                reason: "needs --tezos-unix-socket PATH".into(),
            });
        }
        let data_dir = m
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let keystores_path = match (&m.keystores_path, &m.key_config_path) {
            (Some(p), _) => Some(p.clone()),
            (None, None) => Some(PathBuf::from("./keystores")),
            (None, Some(_)) => None,
        };
        let db_url = m
            .slashing_protection_db_url
            .unwrap_or_else(|| default_db_url(&data_dir));
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
