//! `palisade ceremony eth2`: an offline Ethereum validator key ceremony.
//!
//! 256 bits from the operating system's CSPRNG become a 24-word BIP-39 mnemonic; validator
//! keys are derived with EIP-2333 along the EIP-2334 signing paths `m/12381/3600/i/0/0`;
//! each is written as an EIP-2335 keystore (`keystores/keystore-m_12381_3600_i_0_0-<ts>.json`,
//! as `ethstaker-deposit` names them) and signed into the launchpad's `deposit_data-<ts>.json`;
//! the mnemonic's entropy is split into K-of-M Shamir shares (`shares/share-j-of-M.txt`).
//! Every output is then checked — keystores decrypt to the derived keys, deposit data
//! verifies, every K-subset of shares reconstructs the entropy, K−1 shares are refused — and
//! the public results go into `transcript.json` / `transcript.md`.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::deposit::{self, DepositDatum, DepositNetwork, WithdrawalType};
use super::shares;
use super::transcript::{Transcript, TranscriptKey, now};
use super::{CeremonyError, check_all_subsets, write_new, write_share_files};
use crate::crypto::bls::SecretKey;
use crate::crypto::eip2333;
use crate::keys::keystore_writer::{self, Kdf};

/// What an eth2 ceremony makes.
#[derive(Debug, Clone)]
pub struct Eth2Params {
    /// Number of validator keys.
    pub count: u32,
    /// First EIP-2334 validator index.
    pub start_index: u32,
    /// Network of the deposit data (its genesis fork version signs the deposits).
    pub network: DepositNetwork,
    /// Execution-layer withdrawal address (20 bytes).
    pub withdrawal_address: [u8; 20],
    /// `0x01` or `0x02` credentials.
    pub withdrawal_type: WithdrawalType,
    /// Deposit amount per validator, in Gwei.
    pub amount_gwei: u64,
    /// Keystore KDF.
    pub kdf: Kdf,
    /// Shares needed to reconstruct (K).
    pub threshold: u8,
    /// Shares written (M).
    pub shares: u8,
    /// Also write each share as a PNG QR code.
    pub qr: bool,
}

/// Derives the validator secret of EIP-2334 index `index` from a BIP-39 seed: its 32
/// big-endian bytes (for the keystore) and the BLS key.
///
/// # Errors
/// [`CeremonyError`] for a derivation failure (not expected for a 64-byte seed).
fn derive_validator(
    seed: &[u8],
    index: u32,
) -> Result<(Zeroizing<[u8; 32]>, SecretKey), CeremonyError> {
    let bytes = eip2333::derive_path(seed, &eip2333::validator_signing_path(index))
        .map_err(|e| CeremonyError::new(format!("EIP-2333: {e}")))?;
    let sk = SecretKey::from_bytes(bytes.as_slice())
        .map_err(|e| CeremonyError::new(format!("derived key is not a BLS key: {e}")))?;
    Ok((bytes, sk))
}

/// Derives the validator secret of EIP-2334 index `index` from a BIP-39 seed.
///
/// # Errors
/// [`CeremonyError`] for a derivation failure (not expected for a 64-byte seed).
pub fn validator_secret(seed: &[u8], index: u32) -> Result<SecretKey, CeremonyError> {
    derive_validator(seed, index).map(|(_, sk)| sk)
}

/// Runs the ceremony into `out` (which must not exist or be empty). `entropy` is drawn from
/// the OS CSPRNG when `None` (`Some` reproduces an existing mnemonic). Returns the
/// transcript and the mnemonic (for display only; it is written nowhere).
///
/// # Errors
/// [`CeremonyError`] for bad parameters, a write failure, or a failed verification (then
/// the transcript is still written, with the failing step, and the error says so).
pub fn run(
    params: &Eth2Params,
    password: &str,
    entropy: Option<Zeroizing<[u8; 32]>>,
    out: &Path,
) -> Result<(Transcript, Zeroizing<String>), CeremonyError> {
    if params.count == 0 {
        return Err(CeremonyError::new("--count must be at least 1"));
    }
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(CeremonyError::new(format!(
            "{} exists and is not empty; give a new directory",
            out.display()
        )));
    }
    let mnemonic_source = if entropy.is_some() {
        "existing mnemonic"
    } else {
        "new, from the OS CSPRNG"
    };
    let entropy = match entropy {
        Some(e) => e,
        None => {
            let mut e = Zeroizing::new([0u8; 32]);
            getrandom::fill(e.as_mut_slice())
                .map_err(|e| CeremonyError::new(format!("OS random number generator: {e}")))?;
            e
        }
    };
    let mnemonic = eip2333::entropy_to_mnemonic(&entropy);
    let seed = eip2333::mnemonic_to_seed(&mnemonic, "")
        .map_err(|e| CeremonyError::new(format!("BIP-39: {e}")))?;
    let (created_at, ts) = now();
    let ceremony_id = super::new_ceremony_id()?;
    let credentials =
        deposit::withdrawal_credentials(params.withdrawal_type, &params.withdrawal_address);

    let mut transcript = Transcript {
        version: super::transcript::TRANSCRIPT_VERSION,
        ceremony_id: ceremony_id.clone(),
        kind: "eth2".into(),
        created_at,
        tool: format!("palisade {}", env!("CARGO_PKG_VERSION")),
        parameters: serde_json::json!({
            "network": params.network.name,
            "genesis_fork_version": format!("0x{}", hex::encode(params.network.genesis_fork_version.as_slice())),
            "count": params.count,
            "start_index": params.start_index,
            "withdrawal_address": format!("0x{}", hex::encode(params.withdrawal_address)),
            "withdrawal_credentials": format!("0x{}", hex::encode(credentials)),
            "amount_gwei": params.amount_gwei,
            "kdf": match params.kdf { Kdf::Scrypt => "scrypt", Kdf::Pbkdf2 => "pbkdf2" },
            "mnemonic_words": 24,
            "mnemonic": mnemonic_source,
            "threshold": params.threshold,
            "shares": params.shares,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
        keys: vec![],
        shares: vec![],
        files: vec![],
        verifications: vec![],
    };

    // Everything is computed (and every parameter checked) before the first file is written,
    // so a refused parameter leaves no partial output.
    let keystore_dir = out.join("keystores");
    let mut pending: Vec<(PathBuf, String)> = Vec::new();
    let mut data: Vec<DepositDatum> = Vec::new();
    let mut keystores: Vec<(PathBuf, [u8; 48])> = Vec::new();
    for index in params.start_index..params.start_index + params.count {
        let path = eip2333::validator_signing_path(index);
        let (secret_bytes, sk) = derive_validator(seed.as_slice(), index)?;
        let keystore =
            keystore_writer::encrypt_keystore(&secret_bytes, password, params.kdf, &path, "")
                .map_err(|e| CeremonyError::new(format!("keystore {path}: {e}")))?;
        let name = format!("keystore-{}-{ts}.json", path.replace('/', "_"));
        let file = keystore_dir.join(&name);
        pending.push((
            file.clone(),
            serde_json::to_string(&keystore).unwrap_or_default(),
        ));
        transcript.files.push(format!("keystores/{name}"));
        let datum = deposit::deposit_datum(&sk, credentials, params.amount_gwei, &params.network)
            .map_err(|e| CeremonyError::new(format!("deposit data for {path}: {e}")))?;
        transcript.keys.push(TranscriptKey {
            index,
            path,
            public_key: format!("0x{}", hex::encode(sk.public_key())),
            pkh: None,
            deposit_data_root: Some(format!(
                "0x{}",
                hex::encode(datum.deposit_data_root.as_slice())
            )),
        });
        keystores.push((file, sk.public_key()));
        data.push(datum);
    }
    let shares = shares::split(
        entropy.as_slice(),
        params.threshold,
        params.shares,
        &ceremony_id,
    )
    .map_err(|e| CeremonyError::new(format!("Shamir split: {e}")))?;

    super::prepare_out_dir(out)?;
    std::fs::create_dir_all(&keystore_dir).map_err(|e| {
        CeremonyError::new(format!("cannot create {}: {e}", keystore_dir.display()))
    })?;
    for (file, json) in &pending {
        write_new(file, json.as_bytes(), 0o600)?;
    }
    deposit::write_deposit_data_file(out, ts, &data)
        .map_err(|e| CeremonyError::new(format!("cannot write deposit data: {e}")))?;
    transcript.files.push(deposit::deposit_data_file_name(ts));
    for share in write_share_files(out, &shares, params.qr)? {
        transcript.files.push(share.file.clone());
        if params.qr {
            transcript.files.push(share.file.replace(".txt", ".png"));
        }
        transcript.shares.push(share);
    }

    // Verification: every output against what was derived.
    let mut opened = 0;
    let mut failures = Vec::new();
    for (file, pk) in &keystores {
        let json = std::fs::read_to_string(file).unwrap_or_default();
        match crate::keys::eip2335::decrypt_bls(&json, password) {
            Ok(sk) if sk.public_key() == *pk => opened += 1,
            Ok(_) => failures.push(format!("{}: wrong key", file.display())),
            Err(e) => failures.push(format!("{}: {e}", file.display())),
        }
    }
    transcript.record(
        "keystores decrypt with the password to the derived keys",
        failures.is_empty(),
        if failures.is_empty() {
            format!("{opened} of {} keystores", keystores.len())
        } else {
            failures.join("; ")
        },
    );
    let deposits_ok = data.iter().all(|d| d.verify().is_ok())
        && std::fs::read_to_string(out.join(deposit::deposit_data_file_name(ts)))
            .ok()
            .and_then(|t| deposit::parse_deposit_data_json(&t).ok())
            .is_some_and(|read| read == data);
    transcript.record(
        "deposit data signatures and roots verify",
        deposits_ok,
        format!("{} deposits, network {}", data.len(), params.network.name),
    );
    check_all_subsets(&mut transcript, &shares, entropy.as_slice());
    let derived_again: Vec<String> = (params.start_index..params.start_index + params.count)
        .map(|i| {
            validator_secret(seed.as_slice(), i)
                .map(|sk| format!("0x{}", hex::encode(sk.public_key())))
        })
        .collect::<Result<_, _>>()?;
    transcript.record(
        "mnemonic re-derives every public key",
        derived_again
            .iter()
            .eq(transcript.keys.iter().map(|k| &k.public_key)),
        format!("{} keys", derived_again.len()),
    );
    super::write_transcript(out, &transcript)?;
    if !transcript.all_ok() {
        return Err(CeremonyError::new(
            "a verification step failed; see transcript.json — do not use these keys",
        ));
    }
    Ok((transcript, mnemonic))
}

/// Reconstructs the mnemonic entropy from shares and checks that it derives every public key
/// of the transcript; then (only then) writes fresh keystores for them into `out`.
///
/// # Errors
/// [`CeremonyError`]: too few, corrupted or foreign shares, or keys that do not match.
pub fn combine(
    transcript: &Transcript,
    entropy: &[u8],
    password: &str,
    kdf: Kdf,
    out: &Path,
) -> Result<Vec<PathBuf>, CeremonyError> {
    let entropy: Zeroizing<[u8; 32]> = Zeroizing::new(
        entropy
            .try_into()
            .map_err(|_| CeremonyError::new("reconstructed secret is not 32 bytes of entropy"))?,
    );
    let mnemonic = eip2333::entropy_to_mnemonic(&entropy);
    let seed = eip2333::mnemonic_to_seed(&mnemonic, "")
        .map_err(|e| CeremonyError::new(format!("BIP-39: {e}")))?;
    let (_, ts) = now();
    let mut pending = Vec::new();
    for key in &transcript.keys {
        let (secret, sk) = derive_validator(seed.as_slice(), key.index)?;
        let pk = format!("0x{}", hex::encode(sk.public_key()));
        if pk != key.public_key {
            return Err(CeremonyError::new(format!(
                "the shares do not reconstruct this ceremony's keys (index {} derives {pk}, the transcript has {})",
                key.index, key.public_key
            )));
        }
        let keystore = keystore_writer::encrypt_keystore(&secret, password, kdf, &key.path, "")
            .map_err(|e| CeremonyError::new(format!("keystore {}: {e}", key.index)))?;
        let file = out.join(format!("keystore-{}-{ts}.json", key.path.replace('/', "_")));
        pending.push((file, serde_json::to_string(&keystore).unwrap_or_default()));
    }
    super::prepare_out_dir(out)?;
    let mut written = Vec::new();
    for (file, json) in pending {
        write_new(&file, json.as_bytes(), 0o600)?;
        written.push(file);
    }
    Ok(written)
}
