//! `palisade keys …`: the key inventory of a running signer, and octez `secret_keys`
//! import into key configs.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::ListFormat;

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
        #[arg(long, value_enum, default_value = "table", hide_possible_values = true)]
        format: ListFormat,
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

/// Runs a `keys` sub-command.
///
/// # Errors
/// The signer cannot be reached or refuses (`list`); the secret keys file or the output
/// directory (`import-octez`).
pub fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List { url, format } => super::runtime()?.block_on(list(&url, format)),
        KeysCommand::ImportOctez {
            secret_keys,
            out,
            password_file,
        } => {
            let written =
                crate::keys::tezos::import_octez(&secret_keys, &out, password_file.as_deref())
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

/// `palisade keys list`: asks the running signer for its inventory.
async fn list(url: &str, format: ListFormat) -> anyhow::Result<()> {
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
    if format == ListFormat::Json {
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
