//! Network fork schedules: the built-in networks and consensus-spec `config.yaml` files.
//!
//! The signer needs the schedule for three things that the request does not carry:
//! the genesis fork version (VALIDATOR_REGISTRATION), the Capella fork version and
//! which fork versions are Deneb or later (VOLUNTARY_EXIT, EIP-7044), and the
//! preset's `SLOTS_PER_EPOCH` (fork selection for blocks by slot) and SSZ sizes (the
//! sync committee and committees-per-slot sizes of Altair block bodies, sync committee
//! contributions and Electra aggregates).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::containers::Version;

/// Consensus forks in order of activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ForkName {
    /// Phase0, the genesis fork (`GENESIS_FORK_VERSION`, epoch 0).
    Phase0,
    /// Altair: sync committees (`ALTAIR_FORK_VERSION`, `ALTAIR_FORK_EPOCH`).
    Altair,
    /// Bellatrix: the Merge, execution payloads in blocks.
    Bellatrix,
    /// Capella: withdrawals; from Deneb on its fork version signs every exit (EIP-7044).
    Capella,
    /// Deneb: blobs (EIP-4844); voluntary exits stay in the Capella domain (EIP-7044).
    Deneb,
    /// Electra: attestations with `committee_bits` (EIP-7549, `AttestationElectra`).
    Electra,
    /// Fulu: PeerDAS (EIP-7594).
    Fulu,
}

impl ForkName {
    /// All forks, oldest first.
    pub const ALL: [ForkName; 7] = [
        ForkName::Phase0,
        ForkName::Altair,
        ForkName::Bellatrix,
        ForkName::Capella,
        ForkName::Deneb,
        ForkName::Electra,
        ForkName::Fulu,
    ];

    /// Parses Web3Signer's upper-case version names (`PHASE0`, `ALTAIR`, …, `FULU`), case-insensitively.
    pub fn parse(name: &str) -> Option<ForkName> {
        let upper = name.to_ascii_uppercase();
        ForkName::ALL
            .into_iter()
            .find(|f| f.config_prefix() == upper || (upper == "PHASE0" && *f == ForkName::Phase0))
    }

    /// Prefix of the fork's keys in a consensus-spec config (`ALTAIR` in `ALTAIR_FORK_VERSION`).
    fn config_prefix(self) -> &'static str {
        match self {
            ForkName::Phase0 => "GENESIS",
            ForkName::Altair => "ALTAIR",
            ForkName::Bellatrix => "BELLATRIX",
            ForkName::Capella => "CAPELLA",
            ForkName::Deneb => "DENEB",
            ForkName::Electra => "ELECTRA",
            ForkName::Fulu => "FULU",
        }
    }
}

/// Errors reading a network name or config file.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The config file cannot be read (missing, unreadable, not UTF-8).
    #[error("cannot read network config {path}: {source}")]
    Read {
        /// The path of the config file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config is not valid YAML, or not a mapping.
    #[error("network config {name} is not valid YAML: {reason}")]
    Yaml {
        /// The network name or path given.
        name: String,
        /// The YAML parser's message.
        reason: String,
    },
    /// A key is missing or malformed: no `GENESIS_FORK_VERSION`, a fork version that is
    /// not 4 hex bytes, a fork epoch that is not a `u64`, an unknown `PRESET_BASE`.
    #[error("network config {name}: {reason}")]
    Invalid {
        /// The network name or path given.
        name: String,
        /// Which key is wrong, and its value.
        reason: String,
    },
}

/// A config's `PRESET_BASE`: which consensus-specs preset sizes its SSZ types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetBase {
    /// `mainnet` (mainnet, sepolia, holesky, hoodi).
    Mainnet,
    /// `gnosis`: 16 slots per epoch; SSZ sizes as `mainnet`.
    Gnosis,
    /// `minimal`: 8 slots per epoch, 32-member sync committees, 4 committees per slot.
    Minimal,
}

impl PresetBase {
    /// The `PRESET_BASE` spelling (`mainnet`, `gnosis`, `minimal`).
    pub fn as_str(self) -> &'static str {
        match self {
            PresetBase::Mainnet => "mainnet",
            PresetBase::Gnosis => "gnosis",
            PresetBase::Minimal => "minimal",
        }
    }

    /// `SLOTS_PER_EPOCH` of the preset (mainnet 32, gnosis 16, minimal 8).
    pub fn slots_per_epoch(self) -> u64 {
        match self {
            PresetBase::Mainnet => 32,
            PresetBase::Gnosis => 16,
            PresetBase::Minimal => 8,
        }
    }
}

impl std::fmt::Display for PresetBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One network's fork schedule and the preset values palisade uses.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// `CONFIG_NAME`, or the file name for configs without one.
    pub name: String,
    /// `PRESET_BASE`.
    pub preset: PresetBase,
    /// `SLOTS_PER_EPOCH` of the preset (mainnet 32, gnosis 16, minimal 8).
    pub slots_per_epoch: u64,
    /// `GENESIS_FORK_VERSION`.
    pub genesis_fork_version: Version,
    /// `(fork, version, activation epoch)` for every fork the config names, oldest first.
    pub forks: Vec<(ForkName, Version, u64)>,
}

/// Names accepted by `--network`.
pub const BUILT_IN_NETWORKS: [&str; 6] = [
    "mainnet", "sepolia", "holesky", "hoodi", "gnosis", "minimal",
];

fn built_in_yaml(name: &str) -> Option<&'static str> {
    Some(match name {
        "mainnet" => include_str!("networks/mainnet.yaml"),
        "sepolia" => include_str!("networks/sepolia.yaml"),
        "holesky" => include_str!("networks/holesky.yaml"),
        "hoodi" => include_str!("networks/hoodi.yaml"),
        "gnosis" => include_str!("networks/gnosis.yaml"),
        "minimal" => include_str!("networks/minimal.yaml"),
        _ => return None,
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum YamlScalar {
    Int(u64),
    Str(String),
    Other(serde::de::IgnoredAny),
}

impl NetworkConfig {
    /// A built-in network by name (see [`BUILT_IN_NETWORKS`]) or a path to a consensus-spec `config.yaml`.
    ///
    /// # Errors
    /// [`NetworkError`] when the file cannot be read or lacks `GENESIS_FORK_VERSION`.
    pub fn from_name_or_path(name_or_path: &str) -> Result<Self, NetworkError> {
        if let Some(yaml) = built_in_yaml(name_or_path) {
            return Self::from_yaml(name_or_path, yaml);
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|source| NetworkError::Read {
            path: name_or_path.to_string(),
            source,
        })?;
        Self::from_yaml(name_or_path, &text)
    }

    /// Parses a consensus-spec config (`GENESIS_FORK_VERSION`, `<FORK>_FORK_VERSION`,
    /// `<FORK>_FORK_EPOCH`, `PRESET_BASE`, `CONFIG_NAME`). Other keys are ignored.
    ///
    /// # Errors
    /// [`NetworkError::Yaml`] for invalid YAML, [`NetworkError::Invalid`] for a missing or
    /// malformed genesis fork version, fork version or epoch, or an unknown preset.
    pub fn from_yaml(source_name: &str, yaml: &str) -> Result<Self, NetworkError> {
        let map: HashMap<String, YamlScalar> =
            serde_norway::from_str(yaml).map_err(|e| NetworkError::Yaml {
                name: source_name.to_string(),
                reason: e.to_string(),
            })?;
        let invalid = |reason: String| NetworkError::Invalid {
            name: source_name.to_string(),
            reason,
        };
        let text = |key: &str| -> Option<String> {
            match map.get(key)? {
                YamlScalar::Int(i) => Some(i.to_string()),
                YamlScalar::Str(s) => Some(s.clone()),
                YamlScalar::Other(_) => None,
            }
        };
        let version = |key: &str| -> Result<Option<Version>, NetworkError> {
            // YAML 1.1 readers may turn an unquoted `0x00000064` into the integer 100.
            if let Some(YamlScalar::Int(i)) = map.get(key) {
                let v = u32::try_from(*i)
                    .map_err(|_| invalid(format!("{key} must be 4 bytes: {i}")))?;
                return Ok(Some(Version::from(v.to_be_bytes())));
            }
            match text(key) {
                None => Ok(None),
                Some(s) => {
                    let hex_str = s.strip_prefix("0x").unwrap_or(&s);
                    let bytes = hex::decode(hex_str)
                        .map_err(|_| invalid(format!("{key} is not hex: {s}")))?;
                    let arr: [u8; 4] = bytes
                        .try_into()
                        .map_err(|_| invalid(format!("{key} must be 4 bytes: {s}")))?;
                    Ok(Some(Version::from(arr)))
                }
            }
        };
        let genesis_fork_version = version("GENESIS_FORK_VERSION")?
            .ok_or_else(|| invalid("GENESIS_FORK_VERSION is missing".into()))?;
        let mut forks = vec![(ForkName::Phase0, genesis_fork_version, 0)];
        for fork in &ForkName::ALL[1..] {
            let prefix = fork.config_prefix();
            let Some(v) = version(&format!("{prefix}_FORK_VERSION"))? else {
                continue;
            };
            let epoch_key = format!("{prefix}_FORK_EPOCH");
            let epoch = match text(&epoch_key) {
                Some(e) => e
                    .parse::<u64>()
                    .map_err(|_| invalid(format!("{epoch_key} is not an epoch: {e}")))?,
                None => u64::MAX,
            };
            forks.push((*fork, v, epoch));
        }
        let preset_text = text("PRESET_BASE").unwrap_or_else(|| "mainnet".to_string());
        let preset = match preset_text.trim_matches(['\'', '"']) {
            "mainnet" => PresetBase::Mainnet,
            "gnosis" => PresetBase::Gnosis,
            "minimal" => PresetBase::Minimal,
            other => return Err(invalid(format!("unknown PRESET_BASE {other}"))),
        };
        let slots_per_epoch = preset.slots_per_epoch();
        let name = text("CONFIG_NAME").unwrap_or_else(|| source_name.to_string());
        Ok(NetworkConfig {
            name,
            preset,
            slots_per_epoch,
            genesis_fork_version,
            forks,
        })
    }

    /// The fork whose version is `version`, if the schedule names it.
    pub fn fork_of_version(&self, version: &Version) -> Option<ForkName> {
        self.forks
            .iter()
            .rev()
            .find(|(_, v, _)| v == version)
            .map(|(f, _, _)| *f)
    }

    /// The version of `fork`, if scheduled.
    pub fn fork_version(&self, fork: ForkName) -> Option<Version> {
        self.forks
            .iter()
            .find(|(f, _, _)| *f == fork)
            .map(|(_, v, _)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_network_parses() {
        for name in BUILT_IN_NETWORKS {
            let n = NetworkConfig::from_name_or_path(name).unwrap();
            assert!(n.forks.len() >= 6, "{name} lists its forks");
            assert_eq!(n.forks[0].1, n.genesis_fork_version);
            assert!(
                n.fork_version(ForkName::Capella).is_some(),
                "{name} has capella"
            );
        }
        let mainnet = NetworkConfig::from_name_or_path("mainnet").unwrap();
        assert_eq!(mainnet.slots_per_epoch, 32);
        assert_eq!(mainnet.genesis_fork_version, Version::from([0, 0, 0, 0]));
        assert_eq!(
            mainnet.fork_of_version(&Version::from([4, 0, 0, 0])),
            Some(ForkName::Deneb)
        );
        assert_eq!(
            NetworkConfig::from_name_or_path("minimal")
                .unwrap()
                .slots_per_epoch,
            8
        );
    }

    #[test]
    fn refuses_config_without_genesis_version() {
        let err = NetworkConfig::from_yaml("x", "PRESET_BASE: mainnet\n").unwrap_err();
        assert!(err.to_string().contains("GENESIS_FORK_VERSION"), "{err}");
        assert!(NetworkConfig::from_name_or_path("/nonexistent/config.yaml").is_err());
    }

    #[test]
    fn fork_names_parse_case_insensitively() {
        assert_eq!(ForkName::parse("PHASE0"), Some(ForkName::Phase0));
        assert_eq!(ForkName::parse("electra"), Some(ForkName::Electra));
        assert_eq!(ForkName::parse("GENESIS"), Some(ForkName::Phase0));
        assert_eq!(ForkName::parse("GLOAS"), None);
    }
}
