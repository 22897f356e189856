//! The `palisade` binary.

use anyhow::Context;
use clap::Parser;
use palisade::config::{
    AuditCommand, CeremonyCommand, Cli, Command, HsmCommand, HsmTokenArgs, KeysCommand,
    SlashingProtectionCommand,
};
use palisade::protection::{self, HighWatermark};

use palisade::crypto::tezos::Curve;
use palisade::keys::pkcs11::{self, PinSource, Token, TokenRef, TokenSelector, admin};

/// Refuses core dumps and ptrace attachment, so key material cannot leave through them.
fn harden_process() {
    // SAFETY: plain libc calls with valid arguments; failures are reported, not fatal.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
            tracing::warn!("could not disable core dumps");
        }
        #[cfg(target_os = "linux")]
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            tracing::warn!("could not mark the process non-dumpable");
        }
    }
}

/// Runs the command; an error is printed as one line with its causes (`palisade: …: …`),
/// never with a backtrace, and the process exits with status 1.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palisade: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    palisade::logging::init(cli.logging_format, cli.log_file.as_deref())
        .map_err(anyhow::Error::msg)?;
    harden_process();
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            actix_web::rt::System::new().block_on(async move {
                let prepared = palisade::server::prepare(&config)
                    .await
                    .map_err(anyhow::Error::msg)
                    .context("cannot start")?;
                palisade::server::serve(&config, prepared)
                    .await
                    .context("server failed")
            })
        }
        Command::Migrate(db) => runtime()?.block_on(async move {
            protection::open(&db.url(), 1).await?;
            println!("migrations applied");
            Ok(())
        }),
        Command::SlashingProtection(cmd) => runtime()?.block_on(slashing_protection(cmd)),
        Command::Hsm(cmd) => hsm(cmd),
        Command::Ceremony(cmd) => ceremony(cmd),
        Command::Audit(cmd) => runtime()?.block_on(audit(cmd)),
        Command::Keys(KeysCommand::List { url, format }) => {
            runtime()?.block_on(keys_list(&url, &format))
        }
        Command::Keys(KeysCommand::ImportOctez {
            secret_keys,
            out,
            password_file,
        }) => {
            let written =
                palisade::keys::tezos::import_octez(&secret_keys, &out, password_file.as_deref())
                    .map_err(anyhow::Error::msg)?;
            for k in &written {
                println!(
                    "{}\t{}\t{}",
                    k.name,
                    k.pkh
                        .as_deref()
                        .unwrap_or("(encrypted; pkh known once loaded)"),
                    k.file.display()
                );
            }
            println!("wrote {} key configs to {}", written.len(), out.display());
            Ok(())
        }
    }
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

fn hsm(cmd: HsmCommand) -> anyhow::Result<()> {
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
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&listing)?),
                "table" => {
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
                other => anyhow::bail!("--format {other}: expected table or json"),
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
                .map(palisade::keys::read_password_file)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let secret = palisade::keys::tezos::decode_secret_key(
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
                palisade::keys::read_password_file(&password_file).map_err(anyhow::Error::msg)?;
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

/// A password from a file, or prompted twice on the terminal.
fn ceremony_password(file: Option<&std::path::Path>) -> anyhow::Result<zeroize::Zeroizing<String>> {
    if let Some(f) = file {
        let password = palisade::keys::read_password_file(f).map_err(anyhow::Error::msg)?;
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

fn parse_kdf(s: &str) -> anyhow::Result<palisade::keys::keystore_writer::Kdf> {
    use palisade::keys::keystore_writer::Kdf;
    match s {
        "scrypt" => Ok(Kdf::Scrypt),
        "pbkdf2" => Ok(Kdf::Pbkdf2),
        other => anyhow::bail!("--kdf {other}: expected scrypt or pbkdf2"),
    }
}

fn print_verifications(steps: &[palisade::ceremony::transcript::Verification]) -> bool {
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

fn ceremony(cmd: CeremonyCommand) -> anyhow::Result<()> {
    use palisade::ceremony::{self, deposit, eth2, tezos, transcript::Transcript};
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
                kdf: parse_kdf(&kdf)?,
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
                    let e = palisade::crypto::eip2333::mnemonic_to_entropy(words.trim())?;
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
                let written = eth2::combine(&t, &secret, &password, parse_kdf(&kdf)?, &out)?;
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
                .map(palisade::keys::read_password_file)
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
        Some(curve) => Ok(curve),
        None => anyhow::bail!("--curve {s}: expected ed25519, secp256k1 or p256"),
    }
}

async fn audit(cmd: AuditCommand) -> anyhow::Result<()> {
    use palisade::config::parse_time;
    use palisade::protection::audit::{self, ExportFormat};
    match cmd {
        AuditCommand::Export {
            since,
            until,
            format,
            out,
            db,
        } => {
            let format = ExportFormat::from_name(&format)
                .ok_or_else(|| anyhow::anyhow!("--format must be jsonl or csv, not `{format}`"))?;
            let since_ms = parse_time(&since).map_err(anyhow::Error::msg)?;
            let until_ms = match until {
                Some(u) => parse_time(&u).map_err(anyhow::Error::msg)?,
                None => i64::MAX,
            };
            let store = protection::open(&db.url(), 2).await?;
            let n = match &out {
                Some(path) => {
                    let file = std::fs::File::create_new(path).with_context(|| {
                        format!(
                            "cannot create {} (an existing file is never overwritten)",
                            path.display()
                        )
                    })?;
                    audit::export(store.as_ref(), since_ms, until_ms, format, file).await?
                }
                None => {
                    audit::export(
                        store.as_ref(),
                        since_ms,
                        until_ms,
                        format,
                        std::io::stdout().lock(),
                    )
                    .await?
                }
            };
            eprintln!("exported {n} audit records");
        }
        AuditCommand::Prune { older_than, db } => {
            let age = humantime::parse_duration(&older_than).with_context(|| {
                format!("--older-than `{older_than}` is not a duration (e.g. 90days)")
            })?;
            let store = protection::open(&db.url(), 2).await?;
            let n = store
                .prune_audit(audit::now_ms() - age.as_millis() as i64)
                .await?;
            println!("deleted {n} audit records older than {older_than}");
        }
    }
    Ok(())
}

/// `palisade keys list`: asks the running signer for its inventory.
async fn keys_list(url: &str, format: &str) -> anyhow::Result<()> {
    if format != "table" && format != "json" {
        anyhow::bail!("--format must be table or json, not `{format}`");
    }
    let endpoint = format!("{}/api/v1/keys", url.trim_end_matches('/'));
    let response = reqwest::get(&endpoint)
        .await
        .with_context(|| format!("cannot reach the signer at {endpoint}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("{endpoint} did not answer JSON"))?;
    if !status.is_success() {
        anyhow::bail!(
            "{endpoint} answered {status}: {}",
            body.get("error")
                .and_then(|e| e.as_str())
                .unwrap_or_default()
        );
    }
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let short = |k: String| {
        if k.len() > 20 && k.starts_with("0x") {
            format!("{}…{}", &k[..10], &k[k.len() - 6..])
        } else {
            k
        }
    };
    let mut rows = vec![
        [
            "CHAIN",
            "KEY",
            "BACKEND",
            "STATUS",
            "LOADED AT",
            "LAST SIGNED",
            "SIGNED",
            "REFUSED",
        ]
        .map(String::from),
    ];
    let empty = Vec::new();
    for k in body["keys"].as_array().unwrap_or(&empty) {
        let last = &k["last_signed"];
        let last = if last.is_null() {
            "-".to_string()
        } else {
            let mut parts = vec![text(&last["kind"])];
            for field in ["slot", "epoch", "level", "round"] {
                if let Some(n) = last[field].as_u64() {
                    parts.push(format!("{field} {n}"));
                }
            }
            parts.push(text(&last["time"]));
            parts.join(" ")
        };
        let status = match (k["status"].as_str(), k["reason"].as_str()) {
            (Some("failed"), Some(r)) => format!("failed: {r}"),
            _ => text(&k["status"]),
        };
        rows.push([
            text(&k["chain"]),
            short(text(&k["key"])),
            text(&k["backend"]),
            status,
            text(&k["loaded_at"]),
            last,
            k["signed"].as_u64().unwrap_or(0).to_string(),
            k["refused"].as_u64().unwrap_or(0).to_string(),
        ]);
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    if let Some(e) = body["activity_error"].as_str() {
        eprintln!("warning: signing activity unavailable: {e}");
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn parse_pubkey(s: &str) -> anyhow::Result<[u8; 48]> {
    let bytes = hex::decode(s.trim().trim_start_matches("0x")).context("public key is not hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("public key {s} is not 48 bytes"))
}

async fn slashing_protection(cmd: SlashingProtectionCommand) -> anyhow::Result<()> {
    match cmd {
        SlashingProtectionCommand::Import { from, db } => {
            let text = std::fs::read_to_string(&from)
                .with_context(|| format!("cannot read {}", from.display()))?;
            let prepared = protection::interchange::parse(&text)?;
            let store = protection::open(&db.url(), 2).await?;
            let s = store.import(&prepared).await?;
            println!(
                "imported {} validators, {} blocks, {} attestations",
                s.validators, s.blocks, s.attestations
            );
        }
        SlashingProtectionCommand::Export { to, pubkeys, db } => {
            let keys = pubkeys
                .map(|ks| {
                    ks.iter()
                        .map(|k| parse_pubkey(k))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
                .transpose()?;
            let store = protection::open(&db.url(), 2).await?;
            let interchange = protection::export(store.as_ref(), keys.as_deref()).await?;
            let json = serde_json::to_string_pretty(&interchange)?;
            std::fs::write(&to, json).with_context(|| format!("cannot write {}", to.display()))?;
            println!(
                "exported {} validators to {}",
                interchange.data.len(),
                to.display()
            );
        }
        SlashingProtectionCommand::HighWatermark {
            epoch,
            slot,
            remove,
            db,
        } => {
            let store = protection::open(&db.url(), 1).await?;
            if remove {
                store.set_high_watermark(None).await?;
                println!("high watermark removed");
            } else if let (Some(epoch), Some(slot)) = (epoch, slot) {
                store
                    .set_high_watermark(Some(HighWatermark { epoch, slot }))
                    .await?;
                println!("high watermark set: epoch {epoch}, slot {slot}");
            } else {
                match store.high_watermark().await? {
                    Some(h) => println!("high watermark: epoch {}, slot {}", h.epoch, h.slot),
                    None => println!("no high watermark set"),
                }
            }
        }
        SlashingProtectionCommand::Prune {
            epochs_to_keep,
            slots_per_epoch,
            db,
        } => {
            let store = protection::open(&db.url(), 2).await?;
            let s = store.prune(epochs_to_keep, slots_per_epoch).await?;
            println!(
                "pruned {} blocks and {} attestations",
                s.blocks, s.attestations
            );
        }
    }
    Ok(())
}
