//! `palisade ceremony tezos`: an offline Tezos key ceremony for one baker key.
//!
//! The key is drawn from the OS CSPRNG for the chosen curve (tz1 Ed25519, tz2 secp256k1, tz3
//! P-256, tz4 BLS), written as an octez client directory's files — `secret_keys` (the key as
//! `encrypted:…`, importable by `octez-client` and by `palisade keys import-octez`),
//! `public_keys` and `public_key_hashs` — and its 32-byte secret is split into K-of-M Shamir
//! shares. Verification: the encrypted key decrypts with the password to the same pkh, it
//! signs and verifies, every K-subset of shares reconstructs the secret, K−1 are refused.

use std::path::Path;

use zeroize::Zeroizing;

use super::transcript::{Transcript, TranscriptKey, now};
use super::{CeremonyError, check_all_subsets, shares, write_new, write_share_files};
use crate::crypto::tezos::{Curve, ENCRYPTION_SALT_LEN, SecretKey};

/// Parameters of a Tezos ceremony.
#[derive(Debug, Clone)]
pub struct TezosParams {
    /// The key's curve.
    pub curve: Curve,
    /// The octez alias written into the files.
    pub alias: String,
    /// Shares needed (K).
    pub threshold: u8,
    /// Shares written (M).
    pub shares: u8,
    /// Also write PNG QR codes of the shares.
    pub qr: bool,
}

/// Parses `ed25519|secp256k1|p256|bls`.
///
/// # Errors
/// A message listing the curves.
pub fn parse_curve(s: &str) -> Result<Curve, CeremonyError> {
    match Curve::from_name(s) {
        // A baker key ceremony: tz5 keys cannot be delegates or consensus keys (protocol 025,
        // `Tz5_cannot_be_a_delegate`), and their 3872-byte secret is beyond the share format.
        Some(Curve::Mldsa44) => Err(CeremonyError::new(
            "--curve mldsa44: a tz5 key cannot be a baker or consensus key, so it has no \
             ceremony here; generate it with octez-client and load it as a tezos-secret key",
        )),
        Some(curve) => Ok(curve),
        None => Err(CeremonyError::new(format!(
            "--curve {s}: expected ed25519, secp256k1, p256 or bls"
        ))),
    }
}

fn encrypted(secret: &SecretKey, password: &str) -> Result<String, CeremonyError> {
    let mut salt = [0u8; ENCRYPTION_SALT_LEN];
    getrandom::fill(&mut salt)
        .map_err(|e| CeremonyError::new(format!("OS random number generator: {e}")))?;
    Ok(format!(
        "encrypted:{}",
        secret.to_encrypted_b58(password.as_bytes(), salt)
    ))
}

/// Writes the octez client files for `secret` under `alias` into `out` (mode 0600 for
/// `secret_keys`). Returns the relative file names.
fn write_octez_files(
    out: &Path,
    alias: &str,
    secret: &SecretKey,
    password: &str,
) -> Result<Vec<String>, CeremonyError> {
    let pk = secret.public_key();
    let secret_keys = serde_json::json!([{ "name": alias, "value": encrypted(secret, password)? }]);
    let public_keys = serde_json::json!([{
        "name": alias,
        "value": { "locator": format!("unencrypted:{}", pk.to_b58()), "key": pk.to_b58() }
    }]);
    let pkhs = serde_json::json!([{ "name": alias, "value": pk.pkh_b58() }]);
    write_new(
        &out.join("secret_keys"),
        serde_json::to_string_pretty(&secret_keys)
            .unwrap_or_default()
            .as_bytes(),
        0o600,
    )?;
    write_new(
        &out.join("public_keys"),
        serde_json::to_string_pretty(&public_keys)
            .unwrap_or_default()
            .as_bytes(),
        0o644,
    )?;
    write_new(
        &out.join("public_key_hashs"),
        serde_json::to_string_pretty(&pkhs)
            .unwrap_or_default()
            .as_bytes(),
        0o644,
    )?;
    Ok(vec![
        "secret_keys".into(),
        "public_keys".into(),
        "public_key_hashs".into(),
    ])
}

/// Runs the ceremony into `out` (new or empty). Returns the transcript.
///
/// # Errors
/// [`CeremonyError`] for bad parameters, a write failure, or a failed verification (the
/// transcript is still written, with the failing step).
pub fn run(params: &TezosParams, password: &str, out: &Path) -> Result<Transcript, CeremonyError> {
    if password.is_empty() {
        return Err(CeremonyError::new(
            "an empty password would leave the key unencrypted",
        ));
    }
    let secret = SecretKey::generate(params.curve);
    let raw = secret.raw_secret();
    let pk = secret.public_key();
    let ceremony_id = super::new_ceremony_id()?;
    // Split first: bad K/M are refused before anything is written.
    let split = shares::split(
        raw.as_slice(),
        params.threshold,
        params.shares,
        &ceremony_id,
    )
    .map_err(|e| CeremonyError::new(format!("Shamir split: {e}")))?;
    super::prepare_out_dir(out)?;
    let (created_at, _) = now();
    let mut transcript = Transcript {
        version: super::transcript::TRANSCRIPT_VERSION,
        ceremony_id: ceremony_id.clone(),
        kind: "tezos".into(),
        created_at,
        tool: format!("palisade {}", env!("CARGO_PKG_VERSION")),
        parameters: serde_json::json!({
            "curve": params.curve.to_string(),
            "alias": params.alias,
            "encryption": "octez encrypted: (PBKDF2-HMAC-SHA512, NaCl secretbox)",
            "threshold": params.threshold,
            "shares": params.shares,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
        keys: vec![TranscriptKey {
            index: 0,
            path: params.alias.clone(),
            public_key: pk.to_b58(),
            pkh: Some(pk.pkh_b58()),
            deposit_data_root: None,
        }],
        shares: vec![],
        files: vec![],
        verifications: vec![],
    };
    transcript.files = write_octez_files(out, &params.alias, &secret, password)?;
    for share in write_share_files(out, &split, params.qr)? {
        transcript.files.push(share.file.clone());
        if params.qr {
            transcript.files.push(share.file.replace(".txt", ".png"));
        }
        transcript.shares.push(share);
    }

    // Verification.
    let reread = std::fs::read_to_string(out.join("secret_keys"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v[0]["value"]
                .as_str()
                .map(|s| Zeroizing::new(s.to_string()))
        });
    let decrypted = reread
        .as_deref()
        .and_then(|uri| crate::keys::tezos::decode_secret_key(uri, Some(password.as_bytes())).ok());
    transcript.record(
        "secret_keys decrypts with the password to the same key",
        decrypted
            .as_ref()
            .is_some_and(|d| d.public_key().pkh_b58() == pk.pkh_b58()),
        pk.pkh_b58(),
    );
    let probe = b"\x05palisade ceremony signing check";
    let signs = match &decrypted {
        Some(d) => {
            let version = if params.curve == Curve::Bls { 2 } else { 0 };
            d.sign(probe, version)
                .is_ok_and(|sig| pk.verify(probe, &sig, version))
        }
        None => false,
    };
    transcript.record("the key signs and the signature verifies", signs, "");
    check_all_subsets(&mut transcript, &split, raw.as_slice());
    super::write_transcript(out, &transcript)?;
    if !transcript.all_ok() {
        return Err(CeremonyError::new(
            "a verification step failed; see transcript.json — do not use this key",
        ));
    }
    Ok(transcript)
}

/// Turns a reconstructed 32-byte secret back into the key, checks it is the transcript's,
/// and only then writes the octez files (encrypted under `password`) into `out`.
///
/// # Errors
/// A secret that is not the transcript's key, or a write failure.
pub fn combine(
    transcript: &Transcript,
    secret: &[u8],
    password: &str,
    out: &Path,
) -> Result<String, CeremonyError> {
    let key = transcript
        .keys
        .first()
        .ok_or_else(|| CeremonyError::new("the transcript lists no key"))?;
    let curve = parse_curve(transcript.parameters["curve"].as_str().unwrap_or_default())?;
    let sk = SecretKey::from_raw(curve, secret)
        .map_err(|e| CeremonyError::new(format!("reconstructed secret: {e}")))?;
    let pkh = sk.public_key().pkh_b58();
    if Some(&pkh) != key.pkh.as_ref() {
        return Err(CeremonyError::new(format!(
            "the shares reconstruct {pkh}, not this ceremony's {}",
            key.pkh.clone().unwrap_or_default()
        )));
    }
    super::prepare_out_dir(out)?;
    write_octez_files(out, &key.path, &sk, password)?;
    Ok(pkh)
}
