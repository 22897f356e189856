//! Deposit data for new validators: the `deposit_data-<timestamp>.json` file of the
//! Ethereum staking launchpad, byte-for-byte as `ethstaker-deposit` 1.3.1 writes it.
//!
//! # What is signed (consensus-specs phase0, `DepositMessage` / `DepositData`)
//!
//! * `deposit_message = DepositMessage { pubkey, withdrawal_credentials, amount }`
//! * `domain = compute_domain(DOMAIN_DEPOSIT = 0x03000000, GENESIS_FORK_VERSION, 0x00…00)`:
//!   deposits always use the network's *genesis* fork version and a zero genesis validators root,
//!   so they stay valid across forks and can be made before genesis.
//! * `signature = BLS.Sign(sk, compute_signing_root(deposit_message, domain))`
//! * `deposit_message_root = hash_tree_root(deposit_message)`,
//!   `deposit_data_root = hash_tree_root(DepositData { pubkey, withdrawal_credentials, amount, signature })`
//!   (the last one is what the deposit contract's `deposit(...)` call checks).
//!
//! # Withdrawal credentials (32 bytes)
//!
//! `prefix (1 byte) ‖ 0x00 × 11 ‖ execution address (20 bytes)`, with prefix `0x01`
//! (`ETH1_ADDRESS_WITHDRAWAL_PREFIX`, balance capped at 32 ETH, excess swept) or `0x02`
//! (`COMPOUNDING_WITHDRAWAL_PREFIX`, EIP-7251, balance up to 2048 ETH). `0x00` BLS
//! credentials are not written by `ethstaker-deposit`'s deposit tooling and are refused here.
//!
//! # The file (`ethstaker_deposit/utils/export_data.py`)
//!
//! `json.dump(list_of_dicts, f, default=lambda x: x.hex())` with Python's defaults: one line,
//! no trailing newline, `", "` between items, `": "` between key and value, ASCII only
//! (`ensure_ascii=True`). Each object has, in this order:
//!
//! | key | encoding |
//! |---|---|
//! | `pubkey` | 48 bytes, lower-case hex, **no `0x`** |
//! | `withdrawal_credentials` | 32 bytes, hex, no `0x` |
//! | `amount` | Gwei as a JSON **number** (e.g. `32000000000`) |
//! | `signature` | 96 bytes, hex, no `0x` |
//! | `deposit_message_root` | 32 bytes, hex, no `0x` |
//! | `deposit_data_root` | 32 bytes, hex, no `0x` |
//! | `fork_version` | the genesis fork version, 4 bytes, hex, no `0x` |
//! | `network_name` | string, e.g. `mainnet` |
//! | `deposit_cli_version` | string, `1.3.1` |
//!
//! The file is named `deposit_data-<unix seconds>.json` and created exclusively with mode `0400`.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use alloy_primitives::Address;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tree_hash::TreeHash;

use crate::chain::eth2::containers::{
    DepositData, DepositMessage, PubkeyBytes, Root, SignatureBytes, Version,
};
use crate::chain::eth2::network::NetworkConfig;
use crate::chain::eth2::signing::{compute_domain, compute_signing_root, domain};
use crate::crypto::bls::{self, SecretKey};

/// The `deposit_cli_version` written into every datum: `ethstaker-deposit`'s own version
/// (`ethstaker_deposit/VERSION`, 1.3.1).
///
/// palisade writes the same value on purpose. The launchpad reads this field only to refuse
/// files from deposit tools older than its minimum version (the field is not signed and not
/// part of any root); writing the version of the tool whose output we reproduce byte for byte
/// keeps our files accepted and identical to that tool's.
pub const DEPOSIT_CLI_VERSION: &str = "1.3.1";

/// Gwei per ether (`ETH2GWEI`).
pub const GWEI_PER_ETH: u64 = 1_000_000_000;
/// Smallest deposit `ethstaker-deposit` signs, in Gwei of the deposit message (1 ETH; on gnosis
/// 1/32 GNO × multiplier 32, the same number).
pub const MIN_DEPOSIT_AMOUNT_GWEI: u64 = GWEI_PER_ETH;
/// The amount of every `0x01` deposit `ethstaker-deposit` writes, in Gwei (32 ETH;
/// on gnosis 1 GNO × multiplier 32, the same number).
pub const ACTIVATION_AMOUNT_GWEI: u64 = 32 * GWEI_PER_ETH;
/// Largest deposit (`MAX_DEPOSIT_AMOUNT = 2**11 * ETH2GWEI`, 2048 ETH, EIP-7251's
/// `MAX_EFFECTIVE_BALANCE_ELECTRA`).
pub const MAX_DEPOSIT_AMOUNT_GWEI: u64 = 2048 * GWEI_PER_ETH;

/// Errors building, reading or checking deposit data. They never contain key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DepositError {
    /// A withdrawal address that is not `0x` and 40 hex digits (the text given).
    #[error("withdrawal address must be 0x followed by 40 hex digits, got {0:?}")]
    InvalidAddress(String),
    /// A mixed-case withdrawal address that is not its EIP-55 checksum spelling.
    #[error("withdrawal address {given} has a bad EIP-55 checksum (expected {expected})")]
    AddressChecksum {
        /// The address as given.
        given: String,
        /// Its EIP-55 spelling, `0x` and 40 hex digits.
        expected: String,
    },
    /// A network name not in [`BUILT_IN_DEPOSIT_NETWORKS`] (the name given).
    #[error(
        "network {0:?} is not one ethstaker-deposit 1.3.1 knows (mainnet, sepolia, hoodi, \
         plataberget, ephemery, gnosis, chiado); use a custom network for devnets"
    )]
    UnknownNetwork(String),
    /// 32-byte withdrawal credentials (hex, without `0x`) that are not `0x01`/`0x02`, 11 zero
    /// bytes and a 20-byte execution address.
    #[error(
        "withdrawal credentials 0x{0} are not 0x01/0x02 followed by 11 zero bytes and an address"
    )]
    WithdrawalCredentials(String),
    /// A deposit amount outside [`MIN_DEPOSIT_AMOUNT_GWEI`]..=[`MAX_DEPOSIT_AMOUNT_GWEI`].
    #[error(
        "deposit amount {amount} Gwei is outside {min}..={max} Gwei (1 to 2048 ETH)",
        min = MIN_DEPOSIT_AMOUNT_GWEI,
        max = MAX_DEPOSIT_AMOUNT_GWEI
    )]
    AmountOutOfRange {
        /// The amount given, in Gwei.
        amount: u64,
    },
    /// A `0x01` deposit of another amount than [`ACTIVATION_AMOUNT_GWEI`] (the amount in Gwei).
    #[error(
        "a 0x01 (execution address) deposit must be exactly {ACTIVATION_AMOUNT_GWEI} Gwei \
         (32 ETH), got {0}; use 0x02 (compounding) credentials for other amounts"
    )]
    Eth1AddressAmount(u64),
    /// A datum's `deposit_message_root` or `deposit_data_root` differs from the root
    /// recomputed from its fields.
    #[error("deposit datum field {field} does not match its recomputed value")]
    Mismatch {
        /// The field that differs (`deposit_message_root`, `deposit_data_root`).
        field: &'static str,
    },
    /// A datum's signature does not verify for its pubkey over the deposit signing root, or
    /// is not a valid BLS signature or public key (the reason).
    #[error("deposit signature does not verify: {0}")]
    Signature(String),
}

/// The kind of withdrawal credentials, named by their first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WithdrawalType {
    /// `0x01`: withdrawals to an execution address; effective balance capped at 32 ETH.
    Eth1Address,
    /// `0x02`: compounding (EIP-7251); effective balance up to 2048 ETH.
    Compounding,
}

impl WithdrawalType {
    /// The credentials' first byte: `0x01` or `0x02`.
    pub fn prefix(self) -> u8 {
        match self {
            WithdrawalType::Eth1Address => 0x01,
            WithdrawalType::Compounding => 0x02,
        }
    }

    /// The type of a credentials prefix byte, if it is `0x01` or `0x02`.
    pub fn from_prefix(prefix: u8) -> Option<Self> {
        match prefix {
            0x01 => Some(WithdrawalType::Eth1Address),
            0x02 => Some(WithdrawalType::Compounding),
            _ => None,
        }
    }
}

/// `prefix ‖ 0x00 × 11 ‖ address`: the 32-byte withdrawal credentials for `address`.
pub fn withdrawal_credentials(kind: WithdrawalType, address: &[u8; 20]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[0] = kind.prefix();
    out[12..].copy_from_slice(address);
    out
}

/// Splits 32-byte withdrawal credentials into their type and execution address.
///
/// # Errors
/// [`DepositError::WithdrawalCredentials`] unless the first byte is `0x01` or `0x02` and the
/// next 11 bytes are zero (the check `ethstaker-deposit`'s `validate_deposit` makes).
pub fn parse_withdrawal_credentials(
    credentials: &[u8; 32],
) -> Result<(WithdrawalType, [u8; 20]), DepositError> {
    let bad = || DepositError::WithdrawalCredentials(hex::encode(credentials));
    let kind = WithdrawalType::from_prefix(credentials[0]).ok_or_else(bad)?;
    if credentials[1..12].iter().any(|b| *b != 0) {
        return Err(bad());
    }
    let mut address = [0u8; 20];
    address.copy_from_slice(&credentials[12..]);
    Ok((kind, address))
}

/// Parses an execution address: `0x` (or `0X`) and 40 hex digits.
///
/// All-lower-case and all-upper-case hex is accepted as is. Mixed case must be a valid EIP-55
/// checksum (keccak-256 of the lower-case hex decides each letter's case).
///
/// Note: `ethstaker-deposit` itself is stricter. Its `validate_withdrawal_address` insists on
/// `is_checksum_address`, so it refuses an all-lower-case address whose checksummed spelling
/// has capital letters. The bytes written are the same either way.
///
/// # Errors
/// [`DepositError::InvalidAddress`] for a wrong prefix, length or non-hex digit;
/// [`DepositError::AddressChecksum`] for mixed case that is not the EIP-55 spelling.
pub fn parse_address(s: &str) -> Result<[u8; 20], DepositError> {
    let invalid = || DepositError::InvalidAddress(s.to_string());
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(invalid)?;
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let mut bytes = [0u8; 20];
    hex::decode_to_slice(digits, &mut bytes).map_err(|_| invalid())?;
    let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        let expected = Address::from(bytes).to_checksum(None);
        if expected[2..] != *digits {
            return Err(DepositError::AddressChecksum {
                given: s.to_string(),
                expected,
            });
        }
    }
    Ok(bytes)
}

/// `(network_name, GENESIS_FORK_VERSION)` of every chain in `ethstaker_deposit/settings.py`
/// 1.3.1 (`ALL_CHAINS`), in its order. holesky is not among them: 1.3.1 dropped it.
pub const BUILT_IN_DEPOSIT_NETWORKS: [(&str, [u8; 4]); 7] = [
    ("mainnet", [0x00, 0x00, 0x00, 0x00]),
    ("sepolia", [0x90, 0x00, 0x00, 0x69]),
    ("hoodi", [0x10, 0x00, 0x09, 0x10]),
    ("plataberget", [0x10, 0x73, 0x31, 0x83]),
    ("ephemery", [0x10, 0x00, 0x10, 0x1b]),
    ("gnosis", [0x00, 0x00, 0x00, 0x64]),
    ("chiado", [0x00, 0x00, 0x00, 0x6f]),
];

/// What a deposit needs of a network: the name written as `network_name` and the genesis fork
/// version that goes into the deposit domain and `fork_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositNetwork {
    /// `network_name`, e.g. `mainnet`.
    pub name: String,
    /// `GENESIS_FORK_VERSION`.
    pub genesis_fork_version: Version,
}

impl DepositNetwork {
    /// One of [`BUILT_IN_DEPOSIT_NETWORKS`] by its exact (lower-case) name.
    ///
    /// # Errors
    /// [`DepositError::UnknownNetwork`] for any other name.
    pub fn by_name(name: &str) -> Result<Self, DepositError> {
        BUILT_IN_DEPOSIT_NETWORKS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, v)| DepositNetwork {
                name: (*n).to_string(),
                genesis_fork_version: Version::from(*v),
            })
            .ok_or_else(|| DepositError::UnknownNetwork(name.to_string()))
    }

    /// A devnet (`ethstaker-deposit --devnet_chain_setting`): any name and genesis fork version.
    pub fn custom(name: impl Into<String>, genesis_fork_version: Version) -> Self {
        DepositNetwork {
            name: name.into(),
            genesis_fork_version,
        }
    }

    /// From a palisade network config: the built-in entry of the same name when there is one,
    /// otherwise [`DepositNetwork::custom`] with the config's name and genesis fork version.
    pub fn from_config(config: &NetworkConfig) -> Self {
        match Self::by_name(&config.name) {
            Ok(n) if n.genesis_fork_version == config.genesis_fork_version => n,
            _ => Self::custom(config.name.clone(), config.genesis_fork_version),
        }
    }

    /// `compute_domain(DOMAIN_DEPOSIT, genesis_fork_version, 0x00 × 32)`.
    pub fn deposit_domain(&self) -> Root {
        compute_domain(domain::DEPOSIT, self.genesis_fork_version, Root::ZERO)
    }
}

/// One entry of `deposit_data-*.json` (see the module docs for the encodings). Serializes and
/// deserializes with the launchpad's spelling: bare lower-case hex, `amount` as a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepositDatum {
    /// The validator's 48-byte compressed BLS public key.
    #[serde(with = "bare_hex")]
    pub pubkey: PubkeyBytes,
    /// The 32-byte withdrawal credentials.
    #[serde(with = "bare_hex")]
    pub withdrawal_credentials: Root,
    /// Amount in Gwei.
    pub amount: u64,
    /// The 96-byte BLS signature over the deposit signing root.
    #[serde(with = "bare_hex")]
    pub signature: SignatureBytes,
    /// `hash_tree_root(DepositMessage)`.
    #[serde(with = "bare_hex")]
    pub deposit_message_root: Root,
    /// `hash_tree_root(DepositData)`, the root the deposit contract checks.
    #[serde(with = "bare_hex")]
    pub deposit_data_root: Root,
    /// The network's genesis fork version.
    #[serde(with = "bare_hex")]
    pub fork_version: Version,
    /// The network's name.
    pub network_name: String,
    /// [`DEPOSIT_CLI_VERSION`] for files palisade writes.
    pub deposit_cli_version: String,
}

impl DepositDatum {
    /// Checks the datum as `ethstaker-deposit`'s `validate_deposit` does: 0x01/0x02 credentials,
    /// the amount bounds, the signature over the deposit signing root for `fork_version`, and both
    /// roots. (Python only compares `deposit_data_root`; this also compares `deposit_message_root`.)
    ///
    /// # Errors
    /// The first [`DepositError`] found.
    pub fn verify(&self) -> Result<(), DepositError> {
        let (kind, _) = parse_withdrawal_credentials(&self.withdrawal_credentials.0)?;
        check_amount(kind, self.amount)?;
        let message = DepositMessage {
            pubkey: self.pubkey,
            withdrawal_credentials: self.withdrawal_credentials,
            amount: self.amount,
        };
        let message_root = message.tree_hash_root();
        if message_root != self.deposit_message_root {
            return Err(DepositError::Mismatch {
                field: "deposit_message_root",
            });
        }
        let domain = DepositNetwork::custom("", self.fork_version).deposit_domain();
        let signing_root = compute_signing_root(message_root, domain);
        match bls::verify(
            self.pubkey.as_slice(),
            signing_root.as_slice(),
            self.signature.as_slice(),
        ) {
            Ok(true) => {}
            Ok(false) => return Err(DepositError::Signature("wrong signature".into())),
            Err(e) => return Err(DepositError::Signature(e.to_string())),
        }
        let data_root = DepositData {
            pubkey: self.pubkey,
            withdrawal_credentials: self.withdrawal_credentials,
            amount: self.amount,
            signature: self.signature,
        }
        .tree_hash_root();
        if data_root != self.deposit_data_root {
            return Err(DepositError::Mismatch {
                field: "deposit_data_root",
            });
        }
        Ok(())
    }
}

/// The version string written as `deposit_cli_version`: [`DEPOSIT_CLI_VERSION`] (`1.3.1`), the
/// `ethstaker-deposit` version whose output palisade reproduces. See the constant for why.
pub fn deposit_cli_version() -> &'static str {
    DEPOSIT_CLI_VERSION
}

fn check_amount(kind: WithdrawalType, amount: u64) -> Result<(), DepositError> {
    if !(MIN_DEPOSIT_AMOUNT_GWEI..=MAX_DEPOSIT_AMOUNT_GWEI).contains(&amount) {
        return Err(DepositError::AmountOutOfRange { amount });
    }
    if kind == WithdrawalType::Eth1Address && amount != ACTIVATION_AMOUNT_GWEI {
        return Err(DepositError::Eth1AddressAmount(amount));
    }
    Ok(())
}

/// Signs a deposit for `secret` and returns the file entry.
///
/// `amount_gwei` is the amount of the deposit message: `0x01` credentials need exactly
/// [`ACTIVATION_AMOUNT_GWEI`] (what `ethstaker-deposit` always writes for them), `0x02`
/// credentials anything in `MIN_DEPOSIT_AMOUNT_GWEI..=MAX_DEPOSIT_AMOUNT_GWEI` (1 to 2048 ETH;
/// gnosis amounts are in mGNO Gwei, i.e. GNO × 32, like the tool's `MULTIPLIER`).
///
/// # Errors
/// [`DepositError::WithdrawalCredentials`] unless the credentials are `0x01`/`0x02` + 11 zero
/// bytes + address; [`DepositError::AmountOutOfRange`] / [`DepositError::Eth1AddressAmount`]
/// for amounts the tool would not sign.
pub fn deposit_datum(
    secret: &SecretKey,
    withdrawal_credentials: [u8; 32],
    amount_gwei: u64,
    network: &DepositNetwork,
) -> Result<DepositDatum, DepositError> {
    let (kind, _) = parse_withdrawal_credentials(&withdrawal_credentials)?;
    check_amount(kind, amount_gwei)?;
    let pubkey = PubkeyBytes::from(secret.public_key());
    let withdrawal_credentials = Root::from(withdrawal_credentials);
    let message = DepositMessage {
        pubkey,
        withdrawal_credentials,
        amount: amount_gwei,
    };
    let deposit_message_root = message.tree_hash_root();
    let signing_root = compute_signing_root(deposit_message_root, network.deposit_domain());
    let signature = SignatureBytes::from(secret.sign(signing_root.as_slice()));
    let deposit_data_root = DepositData {
        pubkey,
        withdrawal_credentials,
        amount: amount_gwei,
        signature,
    }
    .tree_hash_root();
    Ok(DepositDatum {
        pubkey,
        withdrawal_credentials,
        amount: amount_gwei,
        signature,
        deposit_message_root,
        deposit_data_root,
        fork_version: network.genesis_fork_version,
        network_name: network.name.clone(),
        deposit_cli_version: DEPOSIT_CLI_VERSION.to_string(),
    })
}

/// The whole file's text, exactly as Python's `json.dump(data, f)` writes it: one line, no
/// trailing newline, `", "` and `": "` separators, non-ASCII escaped as `\uXXXX`.
pub fn deposit_data_json(data: &[DepositDatum]) -> String {
    let mut out = Vec::with_capacity(data.len() * 700 + 2);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonJsonFormatter);
    data.serialize(&mut ser)
        .expect("serializing deposit data to memory cannot fail");
    String::from_utf8(out).expect("the formatter writes ASCII only")
}

/// Parses a `deposit_data-*.json` file's text (any JSON spacing).
///
/// # Errors
/// The `serde_json` error for malformed JSON, unknown fields or bad hex.
pub fn parse_deposit_data_json(text: &str) -> Result<Vec<DepositDatum>, serde_json::Error> {
    serde_json::from_str(text)
}

/// `deposit_data-<timestamp>.json` (the tool uses `int(time.time())`).
pub fn deposit_data_file_name(timestamp_secs: u64) -> String {
    format!("deposit_data-{timestamp_secs}.json")
}

/// Writes [`deposit_data_json`] to `dir/deposit_data-<timestamp>.json` the way the tool does:
/// created exclusively (fails if the file exists) with mode `0400` on Unix.
///
/// # Errors
/// The I/O error, e.g. `AlreadyExists`.
pub fn write_deposit_data_file(
    dir: &Path,
    timestamp_secs: u64,
    data: &[DepositDatum],
) -> io::Result<PathBuf> {
    let path = dir.join(deposit_data_file_name(timestamp_secs));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o400);
    let mut file = options.open(&path)?;
    file.write_all(deposit_data_json(data).as_bytes())?;
    file.sync_all()?;
    Ok(path)
}

/// A `serde_json` formatter with the output of CPython's `json.dumps` defaults
/// (`separators=(', ', ': ')`, `ensure_ascii=True`, `indent=None`).
///
/// serde_json already escapes `"`, `\`, `\b \f \n \r \t` and other C0 controls as `\u00xx`
/// (lower-case hex) like CPython; this adds CPython's `\uXXXX` escapes for DEL (U+007F) and
/// every non-ASCII character (UTF-16, surrogate pairs above U+FFFF, lower-case hex).
struct PythonJsonFormatter;

impl serde_json::ser::Formatter for PythonJsonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() && c != '\u{7f}' {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serde for fixed byte arrays as bare lower-case hex (no `0x`), as Python's `bytes.hex()`.
mod bare_hex {
    use super::*;

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v.as_ref()))
    }

    pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: for<'a> TryFrom<&'a [u8]>,
    {
        let s = String::deserialize(d)?;
        let bytes = hex::decode(&s).map_err(|e| D::Error::custom(format!("{s:?}: {e}")))?;
        T::try_from(&bytes).map_err(|_| D::Error::custom(WrongLength(bytes.len())))
    }

    struct WrongLength(usize);

    impl fmt::Display for WrongLength {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "hex value has the wrong length ({} bytes)", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::eth2::network::BUILT_IN_NETWORKS;

    const KATS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/eth2-signing/deposit_kats.json"
    );

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.trim_start_matches("0x")).unwrap()
    }

    fn secret(hex_str: &str) -> SecretKey {
        SecretKey::from_bytes(&unhex(hex_str)).unwrap()
    }

    /// Secret key of `abandon ×11 about`, EIP-2334 path m/12381/3600/0/0/0 (no passphrase), as
    /// `ethstaker_deposit.key_handling.key_derivation.path.mnemonic_and_path_to_key` derives it.
    const ABANDON_SK0: &str = "3ec45abb2792f1f287ab1434acfde9d7aac879eb74c45cf7b59d25f15ba7a650";

    /// Web3Signer's deposit KATs (deposit-cli output for medalla/pyrmont, 0x00 credentials):
    /// the message root, signing root, signature and data root are reproduced byte for byte.
    /// `deposit_datum` refuses 0x00 credentials, so this drives the same primitives it uses.
    #[test]
    fn web3signer_deposit_kats() {
        let text = std::fs::read_to_string(KATS)
            .unwrap_or_else(|e| panic!("cannot read {KATS}: {e} (tests/vectors/ in the crate)"));
        let kats: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = kats["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 4);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let d = &case["request_body"]["deposit"];
            let sk = secret(case["secret_key"].as_str().unwrap());
            let pubkey = PubkeyBytes::from(sk.public_key());
            assert_eq!(
                format!("{pubkey}"),
                case["pubkey"].as_str().unwrap(),
                "{name}"
            );
            let wc = Root::from_slice(&unhex(d["withdrawal_credentials"].as_str().unwrap()));
            let amount: u64 = d["amount"].as_str().unwrap().parse().unwrap();
            let fork = Version::from_slice(&unhex(d["genesis_fork_version"].as_str().unwrap()));
            let network = DepositNetwork::custom(case["network"].as_str().unwrap(), fork);

            let message = DepositMessage {
                pubkey,
                withdrawal_credentials: wc,
                amount,
            };
            let message_root = message.tree_hash_root();
            let signing_root = compute_signing_root(message_root, network.deposit_domain());
            let signature = SignatureBytes::from(sk.sign(signing_root.as_slice()));
            let data_root = DepositData {
                pubkey,
                withdrawal_credentials: wc,
                amount,
                signature,
            }
            .tree_hash_root();
            let expect = |k: &str| case[k].as_str().unwrap().to_string();
            assert_eq!(
                format!("{message_root}"),
                expect("expected_deposit_message_root"),
                "{name}"
            );
            assert_eq!(
                format!("{signing_root}"),
                expect("expected_signing_root"),
                "{name}"
            );
            assert_eq!(
                format!("{signature}"),
                expect("expected_signature"),
                "{name}"
            );
            assert_eq!(
                format!("{data_root}"),
                expect("expected_deposit_data_root"),
                "{name}"
            );

            // These KATs use 0x00 (BLS) credentials, which `verify` refuses as the tool does.
            let datum = DepositDatum {
                pubkey,
                withdrawal_credentials: wc,
                amount,
                signature,
                deposit_message_root: message_root,
                deposit_data_root: data_root,
                fork_version: fork,
                network_name: network.name.clone(),
                deposit_cli_version: DEPOSIT_CLI_VERSION.into(),
            };
            assert!(matches!(
                datum.verify(),
                Err(DepositError::WithdrawalCredentials(_))
            ));
        }
    }

    /// Files written by `ethstaker-deposit` 1.3.1 (`utils.export_data.export_deposit_data_json`,
    /// the CLI's writer, fed `Credential(...).deposit_datum_dict`) for keys of the public test mnemonic
    /// `abandon ×11 about` (EIP-2334 m/12381/3600/i/0/0, as its `Credential` derives them):
    /// `(secret keys, network, withdrawal type, address as typed, amount in Gwei, exact file bytes)`.
    /// Test keys only.
    #[allow(clippy::type_complexity)]
    const PY_FILES: [(&[&str], &str, WithdrawalType, &str, u64, &str); 3] = [
        (
            // existing-mnemonic --validator_start_index 0 --num_validators 1 --chain mainnet
            //   --withdrawal_address 0x5290…9EE7 --regular_withdrawal
            &[ABANDON_SK0],
            "mainnet",
            WithdrawalType::Eth1Address,
            "0x52908400098527886E0F7030069857D2E4169EE7",
            32_000_000_000,
            r#"[{"pubkey": "b3e445d43871965d890a398f719348a1405ac72e35b92727cc570026f54471af7ea7b2040622a8fd0b5bfb2a209b5911", "withdrawal_credentials": "01000000000000000000000052908400098527886e0f7030069857d2e4169ee7", "amount": 32000000000, "signature": "b502d6cdb667403bd833a87ac9eeedc2fca54511ec7dd9b6b9b2274592d9556069a9b51331e099610462485dfee0067a0c20b82a18b766e144c6dc7223f482a8f15e2c3afce8dfd1f1f28094b44908b6e882ac6e8e800a50746c9ca0c035c589", "deposit_message_root": "343c58cb987cd86e88c12363d9dbe640b0e0c75b09e7ae75103e61c296712e07", "deposit_data_root": "9410d57dd98f650c35c1efe3c3ed5775351a63485b1f05da5bbe19df64d6a7aa", "fork_version": "00000000", "network_name": "mainnet", "deposit_cli_version": "1.3.1"}]"#,
        ),
        (
            // --validator_start_index 1 --num_validators 2 --chain hoodi --compounding --amount 1
            &[
                "3b6e255c01a33ccce39927196c7f96ee512e29b9aefcfe98132c2df2e2f04043",
                "39f52a9ac0a2eb05b9633ff2e125bdb1313776f40418bb7b2d82b22ab4ca534a",
            ],
            "hoodi",
            WithdrawalType::Compounding,
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            1_000_000_000,
            r#"[{"pubkey": "aeb399bf5648b0e9980c1731824c269631a41320c3d7f730c40587e1a37a5e1c8b5755fd90080a7b3fb90d3fd419c0a7", "withdrawal_credentials": "020000000000000000000000fb6916095ca1df60bb79ce92ce3ea74c37c5d359", "amount": 1000000000, "signature": "8149b704bf0f2310dd720e4634cc377ca76118a79186fe31b1ccbb2f4ecde8b7aceb7125bae16f1286c6253a09c2d20a07557b33948bfde241fa6c843ab273e5c185a10545fdd0805218abc8a58673b7465900be931150d23714dc937fc46d0a", "deposit_message_root": "0de515bbe8572a232ec40c2c8c6aae604046cc4e25af1ce9a5585ffd823a493f", "deposit_data_root": "5c637e8501d26b2c079eeec43fd4a7945e0fbc4145e68ac1286a3f756bfb9975", "fork_version": "10000910", "network_name": "hoodi", "deposit_cli_version": "1.3.1"}, {"pubkey": "92f46b0dcc7db24f4946b5773b5525efa0bbb0810088588323d9de84f0e42f22df96cbb97065b49a2006c653ec8060f4", "withdrawal_credentials": "020000000000000000000000fb6916095ca1df60bb79ce92ce3ea74c37c5d359", "amount": 1000000000, "signature": "8433b7a02640e8dc0d4f35d15119ca27addea5c5137b32258a4333d28a70d40a632d1f68230082de5823c550c3432d3f15929e16d66461d7be226449d482823cd1dc1744d26fb2c25d71f2af38e1b3fe7228e63604a20f8a3812294aa3e3eff4", "deposit_message_root": "5b45aaf70062d2637b3b25ac15cef7413cced92326373e3534d08f40c9314aef", "deposit_data_root": "87631612caf20c9c72237d78cda8309893175ab527af2f964dc60d019fdb678c", "fork_version": "10000910", "network_name": "hoodi", "deposit_cli_version": "1.3.1"}]"#,
        ),
        (
            // --chain gnosis --compounding --amount 0.5 (GNO; × MULTIPLIER 32 = 16 mGNO)
            &[ABANDON_SK0],
            "gnosis",
            WithdrawalType::Compounding,
            "0x52908400098527886E0F7030069857D2E4169EE7",
            16_000_000_000,
            r#"[{"pubkey": "b3e445d43871965d890a398f719348a1405ac72e35b92727cc570026f54471af7ea7b2040622a8fd0b5bfb2a209b5911", "withdrawal_credentials": "02000000000000000000000052908400098527886e0f7030069857d2e4169ee7", "amount": 16000000000, "signature": "9945e6d47cc188f31b16c1bf4c569b7f43059bf79ca639b5bad9b28393be1477a8157c080c670c22ec45cc1f844144321382713edb04b5906cb8c6e86d9326a23b5a61692f21d00c69472dca44e7d83a1b525d84707c72acd19197ac1d7e9a13", "deposit_message_root": "95c729aaaf1edb10b06ef53097ed5e9a3ea0d051430bd3d0b88b0cd95220ebac", "deposit_data_root": "5e09e59c255d74fc7010db1ebab42245f2042322a08ae6fd0cb79d8cb3e08e60", "fork_version": "00000064", "network_name": "gnosis", "deposit_cli_version": "1.3.1"}]"#,
        ),
    ];

    #[test]
    fn python_reference_files_byte_for_byte() {
        for (secrets, network, kind, address, amount, file) in PY_FILES {
            let network = DepositNetwork::by_name(network).unwrap();
            let wc = withdrawal_credentials(kind, &parse_address(address).unwrap());
            let data: Vec<DepositDatum> = secrets
                .iter()
                .map(|sk| deposit_datum(&secret(sk), wc, amount, &network).unwrap())
                .collect();
            assert_eq!(deposit_data_json(&data), file, "{}", network.name);
            let parsed = parse_deposit_data_json(file).unwrap();
            assert_eq!(parsed, data);
            for d in &parsed {
                d.verify().unwrap();
            }
        }
    }

    #[test]
    fn credentials_layout_and_parse() {
        let addr = parse_address("0x52908400098527886E0F7030069857D2E4169EE7").unwrap();
        let wc = withdrawal_credentials(WithdrawalType::Eth1Address, &addr);
        assert_eq!(
            hex::encode(wc),
            "01000000000000000000000052908400098527886e0f7030069857d2e4169ee7"
        );
        let wc2 = withdrawal_credentials(WithdrawalType::Compounding, &addr);
        assert_eq!(wc2[0], 2);
        assert_eq!(wc2[1..], wc[1..]);
        assert_eq!(
            parse_withdrawal_credentials(&wc2).unwrap(),
            (WithdrawalType::Compounding, addr)
        );
        let mut bad = wc;
        bad[5] = 1;
        assert!(parse_withdrawal_credentials(&bad).is_err());
        bad = wc;
        bad[0] = 0;
        assert!(parse_withdrawal_credentials(&bad).is_err());
        bad[0] = 3;
        assert!(parse_withdrawal_credentials(&bad).is_err());
    }

    #[test]
    fn address_parsing_and_eip55() {
        // EIP-55's own examples.
        for good in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let a = parse_address(good).unwrap();
            assert_eq!(parse_address(&good.to_lowercase()).unwrap(), a);
            assert_eq!(
                parse_address(&format!("0x{}", good[2..].to_uppercase())).unwrap(),
                a
            );
        }
        assert!(matches!(
            parse_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
            Err(DepositError::AddressChecksum { .. })
        ));
        for bad in [
            "",
            "0x",
            "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg",
            "0x+aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAé",
        ] {
            assert!(
                matches!(parse_address(bad), Err(DepositError::InvalidAddress(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn networks_match_settings_py_and_palisade_configs() {
        let mainnet = DepositNetwork::by_name("mainnet").unwrap();
        assert_eq!(
            hex::encode(mainnet.deposit_domain()),
            "03000000f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9"
        );
        assert_eq!(
            DepositNetwork::by_name("holesky").unwrap_err(),
            DepositError::UnknownNetwork("holesky".into())
        );
        assert!(DepositNetwork::by_name("Mainnet").is_err());
        // Where palisade and ethstaker-deposit both know a network, the genesis versions agree.
        let mut shared = 0;
        for name in BUILT_IN_NETWORKS {
            let config = NetworkConfig::from_name_or_path(name).unwrap();
            let from_config = DepositNetwork::from_config(&config);
            assert_eq!(
                from_config.genesis_fork_version,
                config.genesis_fork_version
            );
            if let Ok(builtin) = DepositNetwork::by_name(name) {
                shared += 1;
                assert_eq!(builtin, from_config, "{name}");
                assert_eq!(from_config.name, name);
            }
        }
        assert_eq!(shared, 4, "mainnet, sepolia, hoodi, gnosis");
    }

    #[test]
    fn amounts_follow_the_tool() {
        let sk = secret(ABANDON_SK0);
        let addr = [0x11u8; 20];
        let n = DepositNetwork::by_name("hoodi").unwrap();
        let eth1 = withdrawal_credentials(WithdrawalType::Eth1Address, &addr);
        let comp = withdrawal_credentials(WithdrawalType::Compounding, &addr);
        assert!(deposit_datum(&sk, eth1, ACTIVATION_AMOUNT_GWEI, &n).is_ok());
        assert_eq!(
            deposit_datum(&sk, eth1, 33 * GWEI_PER_ETH, &n).unwrap_err(),
            DepositError::Eth1AddressAmount(33 * GWEI_PER_ETH)
        );
        for ok in [
            MIN_DEPOSIT_AMOUNT_GWEI,
            ACTIVATION_AMOUNT_GWEI,
            MAX_DEPOSIT_AMOUNT_GWEI,
        ] {
            deposit_datum(&sk, comp, ok, &n).unwrap().verify().unwrap();
        }
        for bad in [
            0,
            MIN_DEPOSIT_AMOUNT_GWEI - 1,
            MAX_DEPOSIT_AMOUNT_GWEI + 1,
            u64::MAX,
        ] {
            assert_eq!(
                deposit_datum(&sk, comp, bad, &n).unwrap_err(),
                DepositError::AmountOutOfRange { amount: bad }
            );
        }
        let mut bls_wc = [0u8; 32];
        bls_wc[31] = 1;
        assert!(matches!(
            deposit_datum(&sk, bls_wc, ACTIVATION_AMOUNT_GWEI, &n),
            Err(DepositError::WithdrawalCredentials(_))
        ));
    }

    #[test]
    fn verify_catches_tampering() {
        let sk = secret(ABANDON_SK0);
        let comp = withdrawal_credentials(WithdrawalType::Compounding, &[0x22; 20]);
        let n = DepositNetwork::by_name("sepolia").unwrap();
        let good = deposit_datum(&sk, comp, 64 * GWEI_PER_ETH, &n).unwrap();
        good.verify().unwrap();

        let mut d = good.clone();
        d.amount += GWEI_PER_ETH;
        assert_eq!(
            d.verify().unwrap_err(),
            DepositError::Mismatch {
                field: "deposit_message_root"
            }
        );
        let mut d = good.clone();
        d.fork_version = Version::ZERO;
        assert!(matches!(d.verify(), Err(DepositError::Signature(_))));
        let mut d = good.clone();
        d.deposit_data_root = Root::ZERO;
        assert_eq!(
            d.verify().unwrap_err(),
            DepositError::Mismatch {
                field: "deposit_data_root"
            }
        );
        let mut d = good;
        d.signature = SignatureBytes::ZERO;
        assert!(matches!(d.verify(), Err(DepositError::Signature(_))));
    }

    #[test]
    fn json_layout_round_trips() {
        let sk = secret(ABANDON_SK0);
        let wc = withdrawal_credentials(WithdrawalType::Eth1Address, &[0xab; 20]);
        let n = DepositNetwork::by_name("gnosis").unwrap();
        let d = deposit_datum(&sk, wc, ACTIVATION_AMOUNT_GWEI, &n).unwrap();
        let one = deposit_data_json(std::slice::from_ref(&d));
        let expected = format!(
            "[{{\"pubkey\": \"{}\", \"withdrawal_credentials\": \"{}\", \"amount\": 32000000000, \
             \"signature\": \"{}\", \"deposit_message_root\": \"{}\", \"deposit_data_root\": \"{}\", \
             \"fork_version\": \"00000064\", \"network_name\": \"gnosis\", \
             \"deposit_cli_version\": \"1.3.1\"}}]",
            hex::encode(d.pubkey),
            hex::encode(wc),
            hex::encode(d.signature),
            hex::encode(d.deposit_message_root),
            hex::encode(d.deposit_data_root),
        );
        assert_eq!(one, expected);
        assert_eq!(deposit_data_json(&[]), "[]");
        let two = deposit_data_json(&[d.clone(), d.clone()]);
        assert_eq!(
            two,
            format!("[{}, {}]", &one[1..one.len() - 1], &one[1..one.len() - 1])
        );
        assert_eq!(parse_deposit_data_json(&two).unwrap(), vec![d.clone(), d]);
        assert!(
            parse_deposit_data_json(&one.replace("\"pubkey\": \"", "\"pubkey\": \"0x")).is_err()
        );
        assert!(parse_deposit_data_json(&one.replace("}]", ", \"x\": 1}]")).is_err());
    }

    #[test]
    fn strings_escape_like_python_ensure_ascii() {
        let sk = secret(ABANDON_SK0);
        let wc = withdrawal_credentials(WithdrawalType::Eth1Address, &[1; 20]);
        // json.dumps("dév\"\\\n\x01\x7f€😀") in CPython.
        let n = DepositNetwork::custom("dév\"\\\n\u{1}\u{7f}€😀", Version::from([1, 2, 3, 4]));
        let d = deposit_datum(&sk, wc, ACTIVATION_AMOUNT_GWEI, &n).unwrap();
        let text = deposit_data_json(&[d]);
        assert!(
            text.contains(r#""network_name": "d\u00e9v\"\\\n\u0001\u007f\u20ac\ud83d\ude00""#),
            "{text}"
        );
        assert!(text.is_ascii());
    }

    #[test]
    fn file_is_created_exclusively_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let sk = secret(ABANDON_SK0);
        let wc = withdrawal_credentials(WithdrawalType::Compounding, &[7; 20]);
        let n = DepositNetwork::by_name("mainnet").unwrap();
        let data = vec![deposit_datum(&sk, wc, 40 * GWEI_PER_ETH, &n).unwrap()];
        let path = write_deposit_data_file(dir.path(), 1_700_000_000, &data).unwrap();
        assert_eq!(path.file_name().unwrap(), "deposit_data-1700000000.json");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            deposit_data_json(&data)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o400);
        }
        let err = write_deposit_data_file(dir.path(), 1_700_000_000, &data).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    }
}
