//! `palisade hsm …`: PKCS#11 HSM tools (list, generate and import Tezos keys, create the
//! AES key for wrapped BLS keystores, wrap a keystore).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::ListFormat;
use crate::crypto::tezos::Curve;
use crate::keys::pkcs11::{self, PinSource, Token, TokenRef, TokenSelector, admin};

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
        #[arg(long, value_enum, default_value = "table", hide_possible_values = true)]
        format: ListFormat,
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

fn token_ref(args: &HsmTokenArgs) -> anyhow::Result<TokenRef> {
    let token = match (&args.token_label, args.slot_id) {
        (Some(l), None) => TokenSelector::Label(l.clone()),
        (None, Some(s)) => TokenSelector::Slot(s),
        _ => anyhow::bail!("give --token-label or --slot-id"),
    };
    let pin = match (&args.pin_file, &args.pin_env) {
        (Some(f), None) => PinSource::File(f.clone()),
        (None, Some(v)) => PinSource::Env(v.clone()),
        _ => anyhow::bail!("give --pin-file or --pin-env (the PIN is never an argument)"),
    };
    Ok(TokenRef {
        module: args.module.clone(),
        token,
        pin,
        sessions: Some(1),
        timeout_ms: pkcs11::DEFAULT_TIMEOUT_MS,
    })
}

/// The key config an operator puts in --key-config-path for a key on this token.
fn key_config_snippet(args: &HsmTokenArgs, kind: &str, tail: &str) -> String {
    let token = match (&args.token_label, args.slot_id) {
        (Some(l), _) => format!("tokenLabel: {l}"),
        (None, Some(s)) => format!("slotId: {s}"),
        _ => String::new(),
    };
    let pin = match (&args.pin_file, &args.pin_env) {
        (Some(f), _) => format!(
            "pinFile: {}",
            std::fs::canonicalize(f)
                .unwrap_or_else(|_| f.clone())
                .display()
        ),
        (None, Some(v)) => format!("pinEnv: {v}"),
        _ => String::new(),
    };
    format!(
        "type: {kind}\nmodule: {}\n{token}\n{pin}\n{tail}",
        args.module.display()
    )
}

/// Runs an `hsm` sub-command.
///
/// # Errors
/// The token cannot be opened or logged in to, a label is taken, a key or keystore is bad.
pub fn run(cmd: HsmCommand) -> anyhow::Result<()> {
    let open = |args: &HsmTokenArgs| -> anyhow::Result<std::sync::Arc<Token>> {
        Ok(Token::open(&token_ref(args)?)?)
    };
    match cmd {
        HsmCommand::List {
            token,
            wrapped,
            format,
        } => {
            let t = open(&token)?;
            let listing = admin::list(&t, &wrapped)?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&listing)?),
                ListFormat::Table => {
                    println!(
                        "token `{}` (slot {}): {} {} serial {}",
                        listing.label,
                        listing.slot_id,
                        listing.manufacturer,
                        listing.model,
                        listing.serial_number
                    );
                    println!(
                        "{:<6} {:<24} {:<18} {:<10} KEY",
                        "KIND", "LABEL", "ID", "CURVE"
                    );
                    for k in &listing.keys {
                        let what = match (&k.pkh, k.eth2_public_keys.is_empty()) {
                            (Some(pkh), _) => pkh.clone(),
                            (None, false) => k.eth2_public_keys.join(" "),
                            (None, true) => k.unusable.clone().unwrap_or_default(),
                        };
                        println!(
                            "{:<6} {:<24} {:<18} {:<10} {what}",
                            k.kind,
                            k.label,
                            k.id,
                            k.curve.as_deref().unwrap_or("-")
                        );
                    }
                }
            }
            Ok(())
        }
        HsmCommand::Generate {
            token,
            curve,
            label,
        } => {
            let curve = parse_curve(&curve)?;
            let created = admin::generate(&*open(&token)?, curve, &label)?;
            println!("{}", serde_json::to_string_pretty(&created)?);
            eprintln!(
                "key config for --key-config-path:\n{}",
                key_config_snippet(&token, "pkcs11", &format!("keyLabel: {label}"))
            );
            Ok(())
        }
        HsmCommand::ImportTezos {
            token,
            secret_key,
            secret_key_file,
            password_file,
            label,
        } => {
            let uri = match (secret_key, secret_key_file) {
                (Some(v), None) if v == "-" => {
                    let mut buf = zeroize::Zeroizing::new(String::new());
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)?;
                    buf
                }
                (Some(v), None) => zeroize::Zeroizing::new(v),
                (None, Some(f)) => {
                    let text = zeroize::Zeroizing::new(
                        std::fs::read_to_string(&f)
                            .with_context(|| format!("cannot read {}", f.display()))?,
                    );
                    octez_secret_key_value(&text).with_context(|| format!("{}", f.display()))?
                }
                _ => anyhow::bail!("give --secret-key or --secret-key-file"),
            };
            if uri.trim().starts_with("encrypted:") && password_file.is_none() {
                anyhow::bail!("an encrypted: secret key needs --password-file");
            }
            let password = password_file
                .as_deref()
                .map(crate::keys::read_password_file)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let secret = crate::keys::tezos::decode_secret_key(
                &uri,
                password.as_ref().map(|p| p.as_bytes()),
            )
            .map_err(anyhow::Error::msg)?;
            let created = admin::import_tezos(&*open(&token)?, &secret, &label)?;
            println!("{}", serde_json::to_string_pretty(&created)?);
            eprintln!(
                "key config for --key-config-path:\n{}",
                key_config_snippet(&token, "pkcs11", &format!("keyLabel: {label}"))
            );
            Ok(())
        }
        HsmCommand::CreateAesKey { token, label } => {
            let id = admin::create_aes_key(&*open(&token)?, &label)?;
            println!("created AES-256 key `{label}` (id {id})");
            Ok(())
        }
        HsmCommand::WrapKeystore {
            token,
            keystore,
            password_file,
            aes_key_label,
            out,
        } => {
            let out = out.unwrap_or_else(|| {
                let stem = keystore.file_stem().unwrap_or_default().to_string_lossy();
                std::path::PathBuf::from(format!("{stem}.wrapped.json"))
            });
            let password =
                crate::keys::read_password_file(&password_file).map_err(anyhow::Error::msg)?;
            let w =
                admin::wrap_keystore(&*open(&token)?, &keystore, &password, &aes_key_label, &out)
                    .map_err(anyhow::Error::msg)?;
            println!(
                "wrapped 0x{} under AES key `{aes_key_label}` into {}",
                w.pubkey,
                out.display()
            );
            eprintln!(
                "key config for --key-config-path:\n{}",
                key_config_snippet(
                    &token,
                    "pkcs11-wrapped-bls",
                    &format!(
                        "wrappedKeystoreFile: {}",
                        std::fs::canonicalize(&out).unwrap_or(out.clone()).display()
                    )
                )
            );
            Ok(())
        }
    }
}

/// A secret key file's value: the bare key (`encrypted:…`, `edsk…`), or an octez client
/// `secret_keys` file (`[{"name", "value"}]`) holding exactly one key.
fn octez_secret_key_value(text: &str) -> anyhow::Result<zeroize::Zeroizing<String>> {
    if !text.trim_start().starts_with('[') {
        return Ok(zeroize::Zeroizing::new(text.to_string()));
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        value: zeroize::Zeroizing<String>,
    }
    let entries: Vec<Entry> =
        serde_json::from_str(text).map_err(|_| anyhow::anyhow!("not an octez secret_keys file"))?;
    let count = entries.len();
    match entries.into_iter().next() {
        Some(one) if count == 1 => Ok(one.value),
        _ => anyhow::bail!(
            "the secret_keys file holds {count} keys; give one key (its value) per import"
        ),
    }
}

fn parse_curve(s: &str) -> anyhow::Result<Curve> {
    match Curve::from_name(s) {
        Some(Curve::Bls) => {
            anyhow::bail!("BLS keys cannot be generated in a PKCS#11 HSM; use a keystore")
        }
        Some(Curve::Mldsa44) => {
            anyhow::bail!(
                "ML-DSA-44 (tz5) keys cannot be generated in a PKCS#11 HSM; use a tezos-secret key"
            )
        }
        Some(curve) => Ok(curve),
        None => anyhow::bail!("--curve {s}: expected ed25519, secp256k1 or p256"),
    }
}
