//! `palisade ceremony …`: offline key generation with Shamir backups and a transcript,
//! combining shares, verifying outputs against a transcript.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};

use crate::keys::keystore_writer::Kdf;

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
        #[arg(
            long,
            value_enum,
            default_value = "scrypt",
            hide_possible_values = true
        )]
        kdf: KdfName,
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
        #[arg(
            long,
            value_enum,
            default_value = "scrypt",
            hide_possible_values = true
        )]
        kdf: KdfName,
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

/// A password from a file, or prompted twice on the terminal.
fn ceremony_password(file: Option<&std::path::Path>) -> anyhow::Result<zeroize::Zeroizing<String>> {
    if let Some(f) = file {
        let password = crate::keys::read_password_file(f).map_err(anyhow::Error::msg)?;
        if password.is_empty() {
            anyhow::bail!(
                "{} is empty: an empty password is not accepted",
                f.display()
            );
        }
        return Ok(password);
    }
    let first = zeroize::Zeroizing::new(rpassword::prompt_password("Password: ")?);
    let second = zeroize::Zeroizing::new(rpassword::prompt_password("Password again: ")?);
    if *first != *second {
        anyhow::bail!("the passwords differ");
    }
    if first.is_empty() {
        anyhow::bail!("an empty password is not accepted");
    }
    Ok(first)
}

/// `"32"`, `"33.5"`, `"1.000000001"` ETH → Gwei.
fn eth_to_gwei(s: &str) -> anyhow::Result<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || frac.len() > 9
        || !(whole.chars().chain(frac.chars())).all(|c| c.is_ascii_digit())
    {
        anyhow::bail!("--amount-eth {s}: a decimal number of ETH with at most 9 decimals");
    }
    let frac = format!("{frac:0<9}");
    whole
        .parse::<u64>()
        .ok()
        .and_then(|w| w.checked_mul(1_000_000_000))
        .and_then(|w| w.checked_add(frac.parse::<u64>().unwrap_or(0)))
        .ok_or_else(|| anyhow::anyhow!("--amount-eth {s}: too large"))
}

/// `--kdf`: the key derivation function of the EIP-2335 keystores written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KdfName {
    /// scrypt (the EIP-2335 default).
    Scrypt,
    /// PBKDF2-HMAC-SHA256.
    Pbkdf2,
}

impl From<KdfName> for Kdf {
    fn from(name: KdfName) -> Kdf {
        match name {
            KdfName::Scrypt => Kdf::Scrypt,
            KdfName::Pbkdf2 => Kdf::Pbkdf2,
        }
    }
}

fn print_verifications(steps: &[crate::ceremony::transcript::Verification]) -> bool {
    for v in steps {
        println!(
            "[{}] {}: {}",
            if v.ok { "ok" } else { "FAILED" },
            v.step,
            v.detail
        );
    }
    steps.iter().all(|v| v.ok)
}

/// Runs a `ceremony` sub-command.
///
/// # Errors
/// Bad parameters, a password mismatch, a share or transcript that does not check, or the
/// output directory.
pub fn run(cmd: CeremonyCommand) -> anyhow::Result<()> {
    use crate::ceremony::{self, deposit, eth2, tezos, transcript::Transcript};
    match cmd {
        CeremonyCommand::Eth2 {
            count,
            start_index,
            network,
            withdrawal_address,
            compounding,
            amount_eth,
            kdf,
            threshold,
            shares,
            qr,
            password_file,
            existing_mnemonic_file,
            no_show_mnemonic,
            out,
        } => {
            let params = eth2::Eth2Params {
                count,
                start_index,
                network: deposit::DepositNetwork::by_name(&network)?,
                withdrawal_address: deposit::parse_address(&withdrawal_address)?,
                withdrawal_type: if compounding {
                    deposit::WithdrawalType::Compounding
                } else {
                    deposit::WithdrawalType::Eth1Address
                },
                amount_gwei: eth_to_gwei(&amount_eth)?,
                kdf: kdf.into(),
                threshold,
                shares,
                qr,
            };
            let entropy = match &existing_mnemonic_file {
                None => None,
                Some(f) => {
                    let words = zeroize::Zeroizing::new(
                        std::fs::read_to_string(f)
                            .with_context(|| format!("cannot read {}", f.display()))?,
                    );
                    let e = crate::crypto::eip2333::mnemonic_to_entropy(words.trim())?;
                    let e: [u8; 32] = e
                        .as_slice()
                        .try_into()
                        .map_err(|_| anyhow::anyhow!("the mnemonic must have 24 words"))?;
                    Some(zeroize::Zeroizing::new(e))
                }
            };
            let password = ceremony_password(password_file.as_deref())?;
            let (transcript, mnemonic) = eth2::run(&params, &password, entropy, &out)?;
            if !no_show_mnemonic && existing_mnemonic_file.is_none() {
                println!(
                    "Mnemonic (write it down, or rely on the shares; it is stored nowhere):\n\n{}\n",
                    mnemonic.as_str()
                );
            }
            print_verifications(&transcript.verifications);
            println!(
                "ceremony {}: {} keys, {} shares (threshold {}), transcript in {}",
                transcript.ceremony_id,
                transcript.keys.len(),
                transcript.shares.len(),
                threshold,
                out.join("transcript.json").display()
            );
            Ok(())
        }
        CeremonyCommand::Tezos {
            curve,
            alias,
            threshold,
            shares,
            qr,
            password_file,
            out,
        } => {
            let params = tezos::TezosParams {
                curve: tezos::parse_curve(&curve)?,
                alias,
                threshold,
                shares,
                qr,
            };
            let password = ceremony_password(password_file.as_deref())?;
            let transcript = tezos::run(&params, &password, &out)?;
            print_verifications(&transcript.verifications);
            println!(
                "ceremony {}: {} ({}), {} shares (threshold {}), transcript in {}",
                transcript.ceremony_id,
                transcript.keys[0].pkh.clone().unwrap_or_default(),
                transcript.keys[0].public_key,
                transcript.shares.len(),
                threshold,
                out.join("transcript.json").display()
            );
            Ok(())
        }
        CeremonyCommand::Combine {
            transcript,
            shares,
            password_file,
            kdf,
            out,
        } => {
            let t = Transcript::read(&transcript).map_err(anyhow::Error::msg)?;
            let shares = ceremony::read_shares(&shares)?;
            let secret = ceremony::combine_for(&t, &shares)?;
            let password = ceremony_password(password_file.as_deref())?;
            if t.kind == "eth2" {
                let written = eth2::combine(&t, &secret, &password, kdf.into(), &out)?;
                println!(
                    "reconstructed and checked {} keys of ceremony {}; keystores written to {}",
                    written.len(),
                    t.ceremony_id,
                    out.display()
                );
            } else {
                let pkh = tezos::combine(&t, &secret, &password, &out)?;
                println!(
                    "reconstructed and checked {pkh} of ceremony {}; octez files written to {}",
                    t.ceremony_id,
                    out.display()
                );
            }
            Ok(())
        }
        CeremonyCommand::Verify {
            transcript,
            keystores,
            shares,
            password_file,
        } => {
            let t = Transcript::read(&transcript).map_err(anyhow::Error::msg)?;
            let password = password_file
                .as_deref()
                .map(crate::keys::read_password_file)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            if keystores.is_none() && shares.is_empty() {
                anyhow::bail!("give --keystores DIR and/or --shares F…");
            }
            let steps = ceremony::verify(
                &t,
                keystores.as_deref(),
                password.as_deref().map(|p| p.as_str()),
                &shares,
            )?;
            if !print_verifications(&steps) {
                anyhow::bail!("verification failed");
            }
            println!("everything given matches ceremony {}", t.ceremony_id);
            Ok(())
        }
    }
}
