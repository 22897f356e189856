//! Key ceremonies: offline generation of validator and baker keys, Shamir backups of their
//! secrets, launchpad deposit data, and a transcript of public data only.
//!
//! - [`eth2`]: `palisade ceremony eth2` (mnemonic, EIP-2333 keys, EIP-2335 keystores,
//!   deposit data, shares of the mnemonic's entropy).
//! - [`tezos`]: `palisade ceremony tezos` (one key per ceremony, octez `encrypted:` form,
//!   shares of the secret).
//! - `combine` and `verify` check shares, keystores and deposit data against a transcript.
//!
//! Nothing secret is logged or written to the transcript; secrets are written only as
//! encrypted keystores / octez `encrypted:` keys and as shares.

pub mod deposit;
pub mod eth2;
pub mod shares;
pub mod tezos;
pub mod transcript;

use std::path::{Path, PathBuf};

use transcript::Transcript;

/// A ceremony failure, for operators (never carries secret material).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CeremonyError(pub String);

impl CeremonyError {
    /// A new error with `msg`.
    pub fn new(msg: impl Into<String>) -> Self {
        CeremonyError(msg.into())
    }
}

/// A random v4 UUID naming a ceremony.
///
/// # Errors
/// When the OS random number generator fails.
pub fn new_ceremony_id() -> Result<String, CeremonyError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| CeremonyError::new(format!("OS random number generator: {e}")))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

/// Creates `out`, or accepts it if it exists and is empty (so nothing is ever overwritten).
///
/// # Errors
/// When `out` is a non-empty directory or cannot be created.
pub fn prepare_out_dir(out: &Path) -> Result<(), CeremonyError> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(CeremonyError::new(format!(
                "{} exists and is not empty; give a new directory",
                out.display()
            )));
        }
        return Ok(());
    }
    std::fs::create_dir_all(out)
        .map_err(|e| CeremonyError::new(format!("cannot create {}: {e}", out.display())))
}

/// Creates `path` exclusively with `mode` and writes `bytes`, synced.
///
/// # Errors
/// A message naming the file (it may exist already).
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CeremonyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| CeremonyError::new(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| CeremonyError::new(format!("cannot write {}: {e}", path.display())))
}

/// Writes each share to `out/shares/share-j-of-M.txt` (mode 0600; and `.png` QR codes when
/// `qr`); returns each share's index, fingerprint and relative file for the transcript.
///
/// # Errors
/// A write failure.
pub fn write_share_files(
    out: &Path,
    shares: &[shares::Share],
    qr: bool,
) -> Result<Vec<transcript::TranscriptShare>, CeremonyError> {
    let dir = out.join("shares");
    std::fs::create_dir_all(&dir)
        .map_err(|e| CeremonyError::new(format!("cannot create {}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for share in shares {
        let stem = format!("share-{}-of-{}", share.index(), share.total());
        let text = shares::to_text(share);
        write_new(&dir.join(format!("{stem}.txt")), text.as_bytes(), 0o600)?;
        if qr {
            let png = shares::to_qr_png(share).map_err(|e| {
                CeremonyError::new(format!("QR code of share {}: {e}", share.index()))
            })?;
            write_new(&dir.join(format!("{stem}.png")), &png, 0o600)?;
        }
        written.push(transcript::TranscriptShare {
            index: share.index(),
            fingerprint: shares::fingerprint(share),
            file: format!("shares/{stem}.txt"),
        });
    }
    Ok(written)
}

/// Records in `transcript` that every K-subset of `shares` reconstructs `secret` and that
/// K−1 shares are refused.
pub fn check_all_subsets(transcript: &mut Transcript, shares: &[shares::Share], secret: &[u8]) {
    let k = shares.first().map_or(0, |s| s.threshold() as usize);
    let mut subsets = 0usize;
    let mut bad = Vec::new();
    for combo in combinations(shares.len(), k) {
        subsets += 1;
        let picked: Vec<shares::Share> = combo.iter().map(|&i| shares[i].clone()).collect();
        match shares::combine(&picked) {
            Ok(s) if s.as_slice() == secret => {}
            _ => bad.push(format!(
                "{:?}",
                combo.iter().map(|i| i + 1).collect::<Vec<_>>()
            )),
        }
    }
    transcript.record(
        "every K-subset of the shares reconstructs the secret",
        bad.is_empty() && subsets > 0,
        if bad.is_empty() {
            format!("{subsets} subsets of {k}")
        } else {
            format!("failed: {}", bad.join(", "))
        },
    );
    let refused = combinations(shares.len(), k.saturating_sub(1)).all(|combo| {
        let picked: Vec<shares::Share> = combo.iter().map(|&i| shares[i].clone()).collect();
        shares::combine(&picked).is_err()
    });
    transcript.record(
        "every subset of K-1 shares is refused",
        refused,
        format!("K-1 = {}", k.saturating_sub(1)),
    );
}

/// All `k`-element index subsets of `0..n`, in lexicographic order.
fn combinations(n: usize, k: usize) -> impl Iterator<Item = Vec<usize>> {
    let mut current: Option<Vec<usize>> = (k <= n).then(|| (0..k).collect());
    std::iter::from_fn(move || {
        let out = current.clone()?;
        let mut next = out.clone();
        let mut i = k;
        loop {
            if i == 0 {
                current = None;
                break;
            }
            i -= 1;
            if next[i] < n - k + i {
                next[i] += 1;
                for j in i + 1..k {
                    next[j] = next[j - 1] + 1;
                }
                current = Some(next);
                break;
            }
        }
        Some(out)
    })
}

/// Writes `transcript.json` and `transcript.md` into `out` (mode 0644: public data).
///
/// # Errors
/// A write failure.
pub fn write_transcript(out: &Path, transcript: &Transcript) -> Result<(), CeremonyError> {
    let json =
        serde_json::to_string_pretty(transcript).map_err(|e| CeremonyError::new(e.to_string()))?;
    write_new(&out.join("transcript.json"), json.as_bytes(), 0o644)?;
    write_new(
        &out.join("transcript.md"),
        transcript.to_markdown().as_bytes(),
        0o644,
    )
}

/// Reads share files, checking each one's own checksum.
///
/// # Errors
/// A message naming the file that is unreadable or corrupted.
pub fn read_shares(files: &[PathBuf]) -> Result<Vec<shares::Share>, CeremonyError> {
    files
        .iter()
        .map(|f| {
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(f).map_err(|e| {
                    CeremonyError::new(format!("cannot read {}: {e}", f.display()))
                })?);
            shares::from_text(&text)
                .map_err(|e| CeremonyError::new(format!("share {}: {e}", f.display())))
        })
        .collect()
}

/// Combines shares after checking they belong to `transcript`'s ceremony and that their
/// fingerprints are the transcript's.
///
/// # Errors
/// Shares from another ceremony, unknown fingerprints, too few or corrupted shares.
pub fn combine_for(
    transcript: &Transcript,
    shares: &[shares::Share],
) -> Result<zeroize::Zeroizing<Vec<u8>>, CeremonyError> {
    for s in shares {
        if s.ceremony_id() != transcript.ceremony_id {
            return Err(CeremonyError::new(format!(
                "share {} belongs to ceremony {}, not {}",
                s.index(),
                s.ceremony_id(),
                transcript.ceremony_id
            )));
        }
        let fp = shares::fingerprint(s);
        if !transcript
            .shares
            .iter()
            .any(|t| t.index == s.index() && t.fingerprint == fp)
        {
            return Err(CeremonyError::new(format!(
                "share {} (fingerprint {fp}) is not the one this transcript recorded",
                s.index()
            )));
        }
    }
    shares::combine(shares).map_err(|e| CeremonyError::new(format!("cannot combine: {e}")))
}

/// What `ceremony verify` checks: keystores (and their deposit data) in a directory, and/or
/// share files, against a transcript. Returns each step; none of them writes anything.
///
/// # Errors
/// Only for unreadable inputs; failed checks are steps with `ok: false`.
pub fn verify(
    transcript: &Transcript,
    keystores: Option<&Path>,
    password: Option<&str>,
    share_files: &[PathBuf],
) -> Result<Vec<transcript::Verification>, CeremonyError> {
    let mut report = Transcript {
        verifications: vec![],
        ..transcript.clone()
    };
    if let Some(dir) = keystores {
        if transcript.kind == "eth2" {
            verify_keystores(&mut report, transcript, dir, password)?;
            verify_deposit_data(&mut report, transcript, dir)?;
        } else {
            verify_octez_dir(&mut report, transcript, dir, password)?;
        }
    }
    if !share_files.is_empty() {
        let shares = read_shares(share_files)?;
        let known = shares.iter().all(|s| {
            s.ceremony_id() == transcript.ceremony_id
                && transcript
                    .shares
                    .iter()
                    .any(|t| t.index == s.index() && t.fingerprint == shares::fingerprint(s))
        });
        report.record(
            "shares belong to this ceremony and match the recorded fingerprints",
            known,
            format!("{} shares", shares.len()),
        );
        let threshold = shares.first().map_or(0, |s| s.threshold() as usize);
        if known && shares.len() >= threshold {
            let outcome = combine_for(transcript, &shares).and_then(|secret| {
                derive_public(transcript, &secret).map(|keys| keys == public_keys(transcript))
            });
            report.record(
                "the shares reconstruct the transcript's keys",
                matches!(outcome, Ok(true)),
                match outcome {
                    Ok(true) => format!("{} keys", transcript.keys.len()),
                    Ok(false) => "they reconstruct other keys".into(),
                    Err(e) => e.to_string(),
                },
            );
        }
    }
    Ok(report.verifications)
}

fn public_keys(transcript: &Transcript) -> Vec<String> {
    transcript
        .keys
        .iter()
        .map(|k| k.public_key.clone())
        .collect()
}

/// The public keys a reconstructed secret gives for the transcript's keys.
fn derive_public(transcript: &Transcript, secret: &[u8]) -> Result<Vec<String>, CeremonyError> {
    if transcript.kind == "eth2" {
        let entropy: [u8; 32] = secret
            .try_into()
            .map_err(|_| CeremonyError::new("reconstructed secret is not 32 bytes"))?;
        let mnemonic =
            crate::crypto::eip2333::entropy_to_mnemonic(&zeroize::Zeroizing::new(entropy));
        let seed = crate::crypto::eip2333::mnemonic_to_seed(&mnemonic, "")
            .map_err(|e| CeremonyError::new(format!("BIP-39: {e}")))?;
        transcript
            .keys
            .iter()
            .map(|k| {
                eth2::validator_secret(seed.as_slice(), k.index)
                    .map(|sk| format!("0x{}", hex::encode(sk.public_key())))
            })
            .collect()
    } else {
        let curve =
            tezos::parse_curve(transcript.parameters["curve"].as_str().unwrap_or_default())?;
        let sk = crate::crypto::tezos::SecretKey::from_raw(curve, secret)
            .map_err(|e| CeremonyError::new(format!("reconstructed secret: {e}")))?;
        Ok(vec![sk.public_key().to_b58()])
    }
}

fn verify_keystores(
    report: &mut Transcript,
    transcript: &Transcript,
    dir: &Path,
    password: Option<&str>,
) -> Result<(), CeremonyError> {
    let mut found = std::collections::HashMap::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CeremonyError::new(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "json")
            && let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(pk) = v["pubkey"].as_str()
        {
            found.insert(format!("0x{}", pk.trim_start_matches("0x")), (path, text));
        }
    }
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for key in &transcript.keys {
        match found.get(&key.public_key) {
            None => missing.push(key.path.clone()),
            Some((path, text)) => {
                if let Some(pw) = password {
                    match crate::keys::eip2335::decrypt_bls(text, pw) {
                        Ok(sk)
                            if format!("0x{}", hex::encode(sk.public_key())) == key.public_key => {}
                        Ok(_) => wrong.push(format!("{}: another key", path.display())),
                        Err(e) => wrong.push(format!("{}: {e}", path.display())),
                    }
                }
            }
        }
    }
    report.record(
        "a keystore for every key of the transcript",
        missing.is_empty(),
        if missing.is_empty() {
            format!("{} keystores", transcript.keys.len())
        } else {
            format!("missing: {}", missing.join(", "))
        },
    );
    if password.is_some() {
        report.record(
            "keystores decrypt to the transcript's keys",
            wrong.is_empty() && missing.is_empty(),
            wrong.join("; "),
        );
    }
    Ok(())
}

fn verify_deposit_data(
    report: &mut Transcript,
    transcript: &Transcript,
    dir: &Path,
) -> Result<(), CeremonyError> {
    let Some(name) = transcript
        .files
        .iter()
        .find(|f| f.starts_with("deposit_data-"))
    else {
        return Ok(());
    };
    let candidates = [dir.join(name), dir.join("..").join(name)];
    let Some(text) = candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
    else {
        // Keystores rebuilt by `combine` come without deposit data.
        report.record(
            "deposit data",
            true,
            format!("not checked: {name} is not in or beside the keystores directory"),
        );
        return Ok(());
    };
    let data = deposit::parse_deposit_data_json(&text)
        .map_err(|e| CeremonyError::new(format!("{name}: {e}")))?;
    let all_verify = data.iter().all(|d| d.verify().is_ok());
    let roots: Vec<(String, String)> = data
        .iter()
        .map(|d| {
            (
                format!("0x{}", hex::encode(d.pubkey.as_slice())),
                format!("0x{}", hex::encode(d.deposit_data_root.as_slice())),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = transcript
        .keys
        .iter()
        .map(|k| {
            (
                k.public_key.clone(),
                k.deposit_data_root.clone().unwrap_or_default(),
            )
        })
        .collect();
    report.record(
        "deposit data verifies and matches the transcript's roots",
        all_verify && roots == expected,
        format!("{} deposits", data.len()),
    );
    Ok(())
}

fn verify_octez_dir(
    report: &mut Transcript,
    transcript: &Transcript,
    dir: &Path,
    password: Option<&str>,
) -> Result<(), CeremonyError> {
    let key = transcript
        .keys
        .first()
        .ok_or_else(|| CeremonyError::new("the transcript lists no key"))?;
    let text = std::fs::read_to_string(dir.join("secret_keys")).map_err(|e| {
        CeremonyError::new(format!("cannot read {}/secret_keys: {e}", dir.display()))
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CeremonyError::new(format!("secret_keys: {e}")))?;
    let uri = v[0]["value"].as_str().unwrap_or_default();
    let outcome = match password {
        Some(pw) => crate::keys::tezos::decode_secret_key(uri, Some(pw.as_bytes()))
            .map(|sk| Some(sk.public_key().pkh_b58()) == key.pkh),
        None => Ok(uri.starts_with("encrypted:")),
    };
    report.record(
        if password.is_some() {
            "secret_keys decrypts to the transcript's pkh"
        } else {
            "secret_keys holds an encrypted key (give --password-file to decrypt it)"
        },
        matches!(outcome, Ok(true)),
        match outcome {
            Err(e) => e,
            _ => key.pkh.clone().unwrap_or_default(),
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::combinations;

    #[test]
    fn combinations_enumerate_every_subset_once() {
        let all: Vec<Vec<usize>> = combinations(5, 3).collect();
        assert_eq!(all.len(), 10);
        assert_eq!(all[0], vec![0, 1, 2]);
        assert_eq!(all[9], vec![2, 3, 4]);
        let mut dedup = all.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), 10);
        assert_eq!(combinations(3, 0).count(), 1);
        assert_eq!(combinations(2, 3).count(), 0);
    }
}
