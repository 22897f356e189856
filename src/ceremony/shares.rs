//! Shamir secret sharing for `palisade ceremony`: K-of-M split of a secret
//! (the 16–64-byte BIP-39 entropy of a mnemonic, or a 32-byte Tezos secret
//! key), one [`Share`] per custodian, and reconstruction from any K of them.
//!
//! # Scheme
//!
//! The secret is shared byte-wise over GF(2⁸) by [`vsss_rs::Gf256`]
//! (constant-time, no lookup tables); share `i` (1 ≤ `i` ≤ M) holds the
//! polynomials evaluated at `x = i`, i.e. a payload exactly as long as the
//! secret. The polynomial arithmetic is vsss-rs's; this module only adds the
//! framing around it:
//!
//! * a **check** (8 bytes) on every share: the first 8 bytes of a
//!   domain-separated SHA-256 over the ceremony id, format version, index,
//!   K, M, payload and commitment. It catches a mistyped word, an edited
//!   header line or a flipped byte (a random error slips through with
//!   probability 2⁻⁶⁴). It is not a MAC: it protects against accidents, the
//!   commitment and the transcript's fingerprints protect against forgery.
//! * a **commitment** (8 bytes), the same in every share of one split: the
//!   first 8 bytes of SHA-256 over `"palisade-shamir-commitment-v1"`, the
//!   ceremony id and the secret (each length-prefixed). After interpolation
//!   [`combine`] recomputes it from the result and refuses a mismatch, so a
//!   forged share, a share from another split, or interpolation through too
//!   few points yields an error instead of a wrong secret (a wrong result
//!   passes with probability 2⁻⁶⁴ per attempt; an attacker cannot aim better
//!   than that without knowing the secret).
//!
//!   Why storing it in every share is acceptable: Shamir sharing alone is
//!   information-theoretically hiding, the commitment makes it
//!   *computationally* hiding. A coalition of K−1 custodians that also knows
//!   the commitment can confirm a guess of the secret, but it must search the
//!   whole secret space — at least 2¹²⁸ hash evaluations for the minimum
//!   16-byte secret ([`MIN_SECRET_LEN`]), 2²⁵⁶ for 32-byte entropy or a
//!   Tezos key — and the 64-bit truncation leaves 2⁽⁸ᴸ⁻⁶⁴⁾ candidates that it
//!   cannot tell apart. That is why secrets shorter than 16 bytes are
//!   refused. The ceremony id in the hash keeps commitments of the same
//!   secret unlinkable across ceremonies.
//! * a **fingerprint** (16 bytes, shown as 8 groups of 4 hex digits): the
//!   first 16 bytes of a domain-separated SHA-256 over the ceremony id and
//!   the whole checked share record (so it is derived from, and changes with,
//!   the check). It is public — it goes into the ceremony transcript — and
//!   reveals nothing useful about the payload: each payload is uniformly
//!   random on its own and at least 128 bits long, so a 128-bit hash of it
//!   (even all M of them plus K−1 payloads) leaves a ≥ 2¹²⁸ search. Matching
//!   a share against a transcript fingerprint authenticates it with 128-bit
//!   second-preimage resistance.
//!
//! # Share text (one share per file)
//!
//! ```text
//! palisade shamir share v1
//! ceremony: eth-2026-11-22
//! share: 2 of 5 (threshold 3)
//! fingerprint: 3f2a-9c01-77de-0b4e-a5c3-1190-fe02-6d8b
//! words: abandon ability able … (39 words for a 32-byte secret)
//! ```
//!
//! The words encode the share record
//! `version(1) ‖ index(1) ‖ K(1) ‖ M(1) ‖ secret_len(1) ‖ payload(secret_len)
//!  ‖ commitment(8) ‖ check(8)` — `29 + secret_len` bytes — as a big-endian
//! bit string cut into 11-bit groups, each an index into the BIP-39 English
//! word list; the last group is padded with zero bits. The word count is
//! therefore `ceil(8 × (29 + secret_len) / 11)` (39 for a 32-byte secret, 28
//! for 16 bytes, 63 for 64 bytes), and decoding requires exactly that count
//! and zero padding, so every share has exactly one spelling. The `share:`
//! line repeats index, M and K for people and must agree with the words; the
//! `ceremony:` line is not in the words but is bound by the check.
//!
//! When reading, [`from_text`] accepts CR-LF line ends, blank lines, any case
//! and any run of whitespace between words, words continued on following
//! lines, and a word abbreviated to its first four (or more) letters (BIP-39
//! English words are unique in their first four letters).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;

use bip39::Language;
use getrandom::rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};
use vsss_rs::{Gf256, IdentifierGf256};
use zeroize::{Zeroize, Zeroizing};

/// Smallest threshold K.
pub const MIN_THRESHOLD: u8 = 2;
/// Largest number of shares M.
pub const MAX_SHARES: u8 = 16;
/// Shortest secret accepted, in bytes (128 bits; see the module docs for why).
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret accepted, in bytes.
pub const MAX_SECRET_LEN: usize = 64;
/// Longest ceremony id, in bytes. Ids are ASCII letters, digits and `.`, `_`, `-`, `:`.
pub const MAX_CEREMONY_ID_LEN: usize = 64;
/// Length of the secret commitment stored in every share, in bytes.
pub const COMMITMENT_LEN: usize = 8;
/// Length of the per-share check, in bytes.
pub const CHECK_LEN: usize = 8;
/// Length of a fingerprint, in bytes (shown as 32 hex digits in 8 groups of 4).
pub const FINGERPRINT_LEN: usize = 16;
/// First line of every share text.
pub const TEXT_HEADER: &str = "palisade shamir share v1";

const RECORD_VERSION: u8 = 1;
/// version, index, K, M, secret_len, commitment, check: everything but the payload.
const RECORD_FIXED_LEN: usize = 5 + COMMITMENT_LEN + CHECK_LEN;
const BITS_PER_WORD: usize = 11;

const TAG_COMMITMENT: &[u8] = b"palisade-shamir-commitment-v1";
const TAG_CHECK: &[u8] = b"palisade-shamir-check-v1";
const TAG_FINGERPRINT: &[u8] = b"palisade-shamir-fingerprint-v1";

/// Errors of splitting, reading and combining shares.
///
/// Messages name shares by index and ceremony id (public data) and never
/// contain a payload, a word of a share or a secret byte.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ShareError {
    /// K or M out of range.
    #[error(
        "invalid threshold {threshold} of {total} shares: need {MIN_THRESHOLD} <= threshold <= shares <= {MAX_SHARES}"
    )]
    InvalidParameters {
        /// The threshold K asked for.
        threshold: u8,
        /// The number of shares M asked for.
        total: u8,
    },
    /// The secret is too short or too long.
    #[error("secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes long, got {len} bytes")]
    InvalidSecretLength {
        /// Its length in bytes.
        len: usize,
    },
    /// The ceremony id is empty, too long or has a character outside `[A-Za-z0-9._:-]`.
    #[error(
        "invalid ceremony id: it must be 1 to {MAX_CEREMONY_ID_LEN} ASCII letters, digits, '.', '_', '-' or ':'"
    )]
    InvalidCeremonyId,
    /// The operating system's random number generator failed while splitting.
    #[error("the operating system's random number generator failed; no shares were made")]
    Rng,
    /// The secret-sharing library refused (should not happen after our own checks).
    #[error("secret sharing failed: {0}")]
    Sharing(String),
    /// `combine` was called with no share at all.
    #[error("no shares given")]
    NoShares,
    /// Fewer than K distinct shares.
    #[error(
        "not enough shares: this ceremony needs {threshold} distinct shares to reconstruct the secret, {given} given"
    )]
    NotEnoughShares {
        /// K.
        threshold: u8,
        /// How many distinct shares were given.
        given: usize,
    },
    /// Shares from different ceremonies.
    #[error(
        "share {index} is from ceremony '{found}', not from ceremony '{expected}' like the first share"
    )]
    CeremonyMismatch {
        /// The first share's ceremony id.
        expected: String,
        /// The odd share's ceremony id.
        found: String,
        /// The odd share's index.
        index: u8,
    },
    /// Shares of one ceremony id that disagree on K, M or secret length.
    #[error("share {index} of ceremony '{ceremony_id}' does not match the first share: {detail}")]
    ParameterMismatch {
        /// The ceremony id.
        ceremony_id: String,
        /// The odd share's index.
        index: u8,
        /// Which parameter differs (public numbers only).
        detail: String,
    },
    /// Shares of one ceremony id that come from different splits (their commitments differ).
    #[error(
        "share {index} of ceremony '{ceremony_id}' comes from a different split than the first share (the secret commitments differ)"
    )]
    SplitMismatch {
        /// The ceremony id.
        ceremony_id: String,
        /// The odd share's index.
        index: u8,
    },
    /// The same share given twice.
    #[error("share {index} of ceremony '{ceremony_id}' was given more than once")]
    DuplicateShare {
        /// The ceremony id.
        ceremony_id: String,
        /// The repeated index.
        index: u8,
    },
    /// Two different shares claiming the same index.
    #[error("two different shares claim to be share {index} of ceremony '{ceremony_id}'")]
    ConflictingShares {
        /// The ceremony id.
        ceremony_id: String,
        /// The contested index.
        index: u8,
    },
    /// The reconstructed secret does not match the commitment in the shares.
    #[error(
        "the secret reconstructed from the shares of ceremony '{ceremony_id}' does not match its commitment: at least one share is forged, damaged in a way its check missed, or from another split; nothing was reconstructed"
    )]
    CommitmentMismatch {
        /// The ceremony id.
        ceremony_id: String,
    },
    /// The share text is not in the expected format.
    #[error("{share}: malformed share text: {reason}")]
    Malformed {
        /// Which share (as far as known: "share 2 of ceremony 'x'" or "share text").
        share: String,
        /// What is wrong (positions and public fields only).
        reason: String,
    },
    /// The share's own check does not match: a mistyped word, an edited line or a flipped byte.
    #[error("{share} is corrupted: {reason}")]
    Corrupted {
        /// Which share.
        share: String,
        /// What did not match.
        reason: String,
    },
    /// The `share:` line disagrees with the index/K/M encoded in the words.
    #[error("{share}: the share line says {stated} but the words encode {encoded}")]
    HeaderMismatch {
        /// Which share (as stated by the file's lines).
        share: String,
        /// What the `share:` line says.
        stated: String,
        /// What the words encode.
        encoded: String,
    },
    /// The `fingerprint:` line does not match the share's contents.
    #[error(
        "{share}: the fingerprint line does not match the share's contents (mistyped fingerprint, or the share was altered)"
    )]
    FingerprintMismatch {
        /// Which share.
        share: String,
    },
    /// The QR code could not be rendered.
    #[error("cannot render the share as a QR code: {0}")]
    Qr(String),
}

/// One Shamir share, as held by one custodian.
///
/// Fields are private: a `Share` comes from [`split`] or [`from_text`], both
/// of which produce only well-formed, checked shares; [`combine`] re-checks
/// anyway. The payload (as long as the secret) lives in a [`Zeroizing`]
/// buffer and is never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    ceremony_id: String,
    threshold: u8,
    total: u8,
    index: u8,
    /// GF(2⁸) polynomial values at `x = index`, one byte per secret byte.
    payload: Zeroizing<Vec<u8>>,
    /// Secret commitment, the same in every share of one split.
    commitment: [u8; COMMITMENT_LEN],
    /// Check over ceremony id, version, index, K, M, payload and commitment.
    check: [u8; CHECK_LEN],
}

impl Share {
    /// The ceremony id (public).
    pub fn ceremony_id(&self) -> &str {
        &self.ceremony_id
    }

    /// The threshold K: how many shares reconstruct the secret.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The number of shares M made by the split.
    pub fn total(&self) -> u8 {
        self.total
    }

    /// This share's index, 1..=M (its x coordinate).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// Length of the shared secret in bytes (= payload length).
    pub fn secret_len(&self) -> usize {
        self.payload.len()
    }

    fn label(&self) -> String {
        share_label(&self.ceremony_id, self.index)
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("ceremony_id", &self.ceremony_id)
            .field("threshold", &self.threshold)
            .field("total", &self.total)
            .field("index", &self.index)
            .field("secret_len", &self.payload.len())
            .field("payload", &"<redacted>")
            .field("fingerprint", &fingerprint(self))
            .finish()
    }
}

fn share_label(ceremony_id: &str, index: u8) -> String {
    format!("share {index} of ceremony '{ceremony_id}'")
}

/// Splits `secret` into `total` shares, any `threshold` of which reconstruct it.
///
/// * `secret`: [`MIN_SECRET_LEN`]..=[`MAX_SECRET_LEN`] bytes (e.g. the 32-byte
///   BIP-39 entropy of a 24-word mnemonic, or a 32-byte Tezos secret key).
/// * `threshold` K and `total` M: 2 ≤ K ≤ M ≤ [`MAX_SHARES`].
/// * `ceremony_id`: 1..=[`MAX_CEREMONY_ID_LEN`] characters of `[A-Za-z0-9._:-]`,
///   bound into every share's check, commitment and fingerprint.
///
/// Returns shares with indices 1..=M in order. Randomness comes from the
/// operating system (`getrandom`); if it fails, [`ShareError::Rng`] is
/// returned and no share is. Before returning, the first K and the last K
/// shares are combined again as a self-test.
pub fn split(
    secret: &[u8],
    threshold: u8,
    total: u8,
    ceremony_id: &str,
) -> Result<Vec<Share>, ShareError> {
    validate_parameters(threshold, total)?;
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
        return Err(ShareError::InvalidSecretLength { len: secret.len() });
    }
    validate_ceremony_id(ceremony_id)?;

    let mut rng = SystemRng::default();
    let raw = Gf256::split_bytes_with_participant_ids_iter(
        usize::from(threshold),
        usize::from(total),
        secret,
        &mut rng,
        (1..=total).map(|i| IdentifierGf256(Gf256(i))),
    );
    // Each raw share is `x ‖ y_1 … y_len`; wrap them before anything can fail.
    let raw: Vec<Zeroizing<Vec<u8>>> = raw
        .map_err(|e| ShareError::Sharing(e.to_string()))?
        .into_iter()
        .map(Zeroizing::new)
        .collect();
    if rng.failed {
        return Err(ShareError::Rng);
    }

    let commitment = commitment(ceremony_id, secret);
    let mut shares = Vec::with_capacity(raw.len());
    for (raw_share, expected_index) in raw.iter().zip(1..=total) {
        if raw_share.len() != secret.len() + 1 || raw_share[0] != expected_index {
            return Err(ShareError::Sharing(
                "unexpected share layout from the sharing library".into(),
            ));
        }
        let mut share = Share {
            ceremony_id: ceremony_id.to_owned(),
            threshold,
            total,
            index: expected_index,
            payload: Zeroizing::new(raw_share[1..].to_vec()),
            commitment,
            check: [0; CHECK_LEN],
        };
        share.check = compute_check(&share);
        shares.push(share);
    }
    if shares.len() != usize::from(total) {
        return Err(ShareError::Sharing(
            "the sharing library made the wrong number of shares".into(),
        ));
    }

    // Self-test: two different K-subsets must give the secret back.
    let k = usize::from(threshold);
    for subset in [&shares[..k], &shares[shares.len() - k..]] {
        let back = combine(subset)?;
        if back.as_slice() != secret {
            return Err(ShareError::Sharing(
                "self-test failed: the new shares do not reconstruct the secret".into(),
            ));
        }
    }
    Ok(shares)
}

/// Reconstructs the secret from at least K distinct shares of one split.
///
/// Refuses, before interpolating: an empty list; a share whose check fails
/// ([`ShareError::Corrupted`]); shares of different ceremonies, K, M, secret
/// length or split; the same index given twice; fewer than K distinct shares
/// ([`ShareError::NotEnoughShares`], naming K and the count given). After
/// interpolating through all given shares it recomputes the commitment and
/// refuses a mismatch ([`ShareError::CommitmentMismatch`]), so a forged or
/// foreign share cannot yield a wrong secret. Returns the secret
/// ([`Share::secret_len`] bytes).
pub fn combine(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>, ShareError> {
    let first = shares.first().ok_or(ShareError::NoShares)?;
    for share in shares {
        verify_check(share)?;
    }
    for share in &shares[1..] {
        if share.ceremony_id != first.ceremony_id {
            return Err(ShareError::CeremonyMismatch {
                expected: first.ceremony_id.clone(),
                found: share.ceremony_id.clone(),
                index: share.index,
            });
        }
        let mismatch = |detail: String| ShareError::ParameterMismatch {
            ceremony_id: first.ceremony_id.clone(),
            index: share.index,
            detail,
        };
        if (share.threshold, share.total) != (first.threshold, first.total) {
            return Err(mismatch(format!(
                "it is from a {}-of-{} split, the first share from a {}-of-{} split",
                share.threshold, share.total, first.threshold, first.total
            )));
        }
        if share.secret_len() != first.secret_len() {
            return Err(mismatch(format!(
                "it shares a {}-byte secret, the first share a {}-byte secret",
                share.secret_len(),
                first.secret_len()
            )));
        }
        if share.commitment != first.commitment {
            return Err(ShareError::SplitMismatch {
                ceremony_id: first.ceremony_id.clone(),
                index: share.index,
            });
        }
    }
    let mut by_index: BTreeMap<u8, &Share> = BTreeMap::new();
    for share in shares {
        if let Some(seen) = by_index.insert(share.index, share) {
            return Err(if seen.payload == share.payload {
                ShareError::DuplicateShare {
                    ceremony_id: first.ceremony_id.clone(),
                    index: share.index,
                }
            } else {
                ShareError::ConflictingShares {
                    ceremony_id: first.ceremony_id.clone(),
                    index: share.index,
                }
            });
        }
    }
    if shares.len() < usize::from(first.threshold) {
        return Err(ShareError::NotEnoughShares {
            threshold: first.threshold,
            given: shares.len(),
        });
    }

    let secret = interpolate(shares)?;
    if commitment(&first.ceremony_id, &secret) != first.commitment {
        return Err(ShareError::CommitmentMismatch {
            ceremony_id: first.ceremony_id.clone(),
        });
    }
    Ok(secret)
}

/// Low-level Lagrange interpolation at 0 through the given shares, with no
/// count, consistency or commitment check (vsss-rs only refuses fewer than 2
/// shares and duplicate indices). [`combine`] is the only caller outside tests.
fn interpolate(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>, ShareError> {
    let raw: Zeroizing<Vec<Vec<u8>>> = Zeroizing::new(
        shares
            .iter()
            .map(|s| {
                let mut v = Vec::with_capacity(s.payload.len() + 1);
                v.push(s.index);
                v.extend_from_slice(&s.payload);
                v
            })
            .collect(),
    );
    Gf256::combine_bytes(raw.as_slice())
        .map(Zeroizing::new)
        .map_err(|e| ShareError::Sharing(e.to_string()))
}

/// The share's public fingerprint: 16 bytes as 32 lowercase hex digits in 8
/// dash-separated groups of 4 (`3f2a-9c01-…-6d8b`, 39 characters).
///
/// It is the first 16 bytes of SHA-256 over `"palisade-shamir-fingerprint-v1"`,
/// the ceremony id and the whole share record including its check (each
/// length-prefixed), so it identifies this exact share and goes into the
/// ceremony transcript; it reveals nothing useful about the payload (see the
/// module docs).
pub fn fingerprint(share: &Share) -> String {
    format_fingerprint(&fingerprint_bytes(share))
}

fn fingerprint_bytes(share: &Share) -> [u8; FINGERPRINT_LEN] {
    let record = record_bytes(share);
    let digest = tagged_sha256(TAG_FINGERPRINT, &[share.ceremony_id.as_bytes(), &record]);
    let mut out = [0; FINGERPRINT_LEN];
    out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
    out
}

fn format_fingerprint(bytes: &[u8; FINGERPRINT_LEN]) -> String {
    let hex = hex::encode(bytes);
    let groups: Vec<&str> = (0..hex.len()).step_by(4).map(|i| &hex[i..i + 4]).collect();
    groups.join("-")
}

/// Renders a share as its text file (see the module docs), ending in a
/// newline. The text holds the share's payload (in the words), so it comes
/// back in a [`Zeroizing`] string: write it to the custodian's file and drop it.
pub fn to_text(share: &Share) -> Zeroizing<String> {
    let record = record_bytes(share);
    let words = bytes_to_words(&record);
    let mut text = Zeroizing::new(String::with_capacity(
        160 + words.iter().map(|w| w.len() + 1).sum::<usize>(),
    ));
    text.push_str(TEXT_HEADER);
    text.push('\n');
    text.push_str(&format!("ceremony: {}\n", share.ceremony_id));
    text.push_str(&format!(
        "share: {} of {} (threshold {})\n",
        share.index, share.total, share.threshold
    ));
    text.push_str(&format!("fingerprint: {}\n", fingerprint(share)));
    text.push_str("words:");
    for word in &words {
        text.push(' ');
        text.push_str(word);
    }
    text.push('\n');
    text
}

/// Parses and verifies a share text written by [`to_text`] (or typed back
/// from paper).
///
/// Verifies the format, every word against the BIP-39 English list, the word
/// count and padding, the share's check (which binds the `ceremony:` line),
/// that the `share:` line agrees with the words, and the `fingerprint:` line.
/// Any mismatch is an error naming the share (by the file's own `share:` and
/// `ceremony:` lines) and, for a bad word, its position — never the word.
pub fn from_text(text: &str) -> Result<Share, ShareError> {
    let fields = parse_fields(text)?;
    let label = match (fields.ceremony_id, fields.stated) {
        (Some(id), Some((index, _, _))) if validate_ceremony_id(id).is_ok() => {
            share_label(id, index)
        }
        _ => "share text".to_owned(),
    };
    let malformed = |reason: &str| ShareError::Malformed {
        share: label.clone(),
        reason: reason.to_owned(),
    };
    let ceremony_id = fields
        .ceremony_id
        .ok_or_else(|| malformed("the 'ceremony:' line is missing"))?;
    let (stated_index, stated_total, stated_threshold) = fields
        .stated
        .ok_or_else(|| malformed("the 'share:' line is missing"))?;
    let stated_fingerprint = fields
        .fingerprint
        .ok_or_else(|| malformed("the 'fingerprint:' line is missing"))?;
    if fields.words.is_empty() {
        return Err(malformed("the 'words:' line is missing or empty"));
    }
    if validate_ceremony_id(ceremony_id).is_err() {
        return Err(malformed(
            "the ceremony id must be 1 to 64 ASCII letters, digits, '.', '_', '-' or ':'",
        ));
    }

    let corrupted = |reason: String| ShareError::Corrupted {
        share: label.clone(),
        reason,
    };
    let bytes = words_to_bytes(&fields.words).map_err(|e| match e {
        WordError::Unknown(position) => corrupted(format!(
            "word {position} is not a BIP-39 English word (or an unambiguous prefix of one)"
        )),
    })?;
    let share = parse_record(ceremony_id, &bytes, fields.words.len()).map_err(corrupted)?;
    verify_check(&share).map_err(|_| {
        corrupted(
            "its check does not match (a mistyped or swapped word, or an edited 'ceremony:' line)"
                .into(),
        )
    })?;
    if (share.index, share.total, share.threshold) != (stated_index, stated_total, stated_threshold)
    {
        return Err(ShareError::HeaderMismatch {
            share: label,
            stated: format!("{stated_index} of {stated_total} (threshold {stated_threshold})"),
            encoded: format!(
                "{} of {} (threshold {})",
                share.index, share.total, share.threshold
            ),
        });
    }
    if fingerprint_bytes(&share) != stated_fingerprint {
        return Err(ShareError::FingerprintMismatch { share: label });
    }
    Ok(share)
}

/// Renders [`to_text`] as a PNG QR code (8-bit grey, error-correction level M,
/// 6 pixels per module, with the standard quiet zone) for a paper backup.
///
/// The PNG holds the share's payload, so it comes back in a [`Zeroizing`]
/// buffer. The QR and image libraries' own intermediate buffers are not
/// zeroized.
pub fn to_qr_png(share: &Share) -> Result<Zeroizing<Vec<u8>>, ShareError> {
    use image::ImageEncoder as _;

    let text = to_text(share);
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ShareError::Qr(e.to_string()))?;
    let img = code
        .render::<image::Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(6, 6)
        .build();
    let (width, height) = img.dimensions();
    let pixels = Zeroizing::new(img.into_raw());
    let mut png = Zeroizing::new(Vec::with_capacity(pixels.len() / 4 + 4096));
    image::codecs::png::PngEncoder::new(&mut *png)
        .write_image(&pixels, width, height, image::ExtendedColorType::L8)
        .map_err(|e| ShareError::Qr(e.to_string()))?;
    Ok(png)
}

// ---------------------------------------------------------------------------
// Validation, hashing, record layout

fn validate_parameters(threshold: u8, total: u8) -> Result<(), ShareError> {
    if threshold < MIN_THRESHOLD || threshold > total || total > MAX_SHARES {
        return Err(ShareError::InvalidParameters { threshold, total });
    }
    Ok(())
}

fn validate_ceremony_id(id: &str) -> Result<(), ShareError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CEREMONY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err(ShareError::InvalidCeremonyId)
    }
}

/// SHA-256 over a tag and parts, each prefixed by its length (u32 big-endian),
/// so that no two different inputs hash the same bytes.
fn tagged_sha256(tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in std::iter::once(tag).chain(parts.iter().copied()) {
        let len = u32::try_from(part.len()).expect("hashed parts are short");
        hasher.update(len.to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut out = [0; 32];
    out.copy_from_slice(&digest);
    out
}

fn commitment(ceremony_id: &str, secret: &[u8]) -> [u8; COMMITMENT_LEN] {
    let digest = tagged_sha256(TAG_COMMITMENT, &[ceremony_id.as_bytes(), secret]);
    let mut out = [0; COMMITMENT_LEN];
    out.copy_from_slice(&digest[..COMMITMENT_LEN]);
    out
}

fn compute_check(share: &Share) -> [u8; CHECK_LEN] {
    let digest = tagged_sha256(
        TAG_CHECK,
        &[
            share.ceremony_id.as_bytes(),
            &[RECORD_VERSION, share.index, share.threshold, share.total],
            &share.payload,
            &share.commitment,
        ],
    );
    let mut out = [0; CHECK_LEN];
    out.copy_from_slice(&digest[..CHECK_LEN]);
    out
}

fn verify_check(share: &Share) -> Result<(), ShareError> {
    let structurally_ok = validate_parameters(share.threshold, share.total).is_ok()
        && (1..=share.total).contains(&share.index)
        && (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&share.payload.len());
    if !structurally_ok || compute_check(share) != share.check {
        return Err(ShareError::Corrupted {
            share: share.label(),
            reason: "its check does not match its contents".into(),
        });
    }
    Ok(())
}

/// `version ‖ index ‖ K ‖ M ‖ secret_len ‖ payload ‖ commitment ‖ check`.
fn record_bytes(share: &Share) -> Zeroizing<Vec<u8>> {
    let mut record = Zeroizing::new(Vec::with_capacity(RECORD_FIXED_LEN + share.payload.len()));
    record.extend_from_slice(&[
        RECORD_VERSION,
        share.index,
        share.threshold,
        share.total,
        u8::try_from(share.payload.len()).expect("secret length is at most 64"),
    ]);
    record.extend_from_slice(&share.payload);
    record.extend_from_slice(&share.commitment);
    record.extend_from_slice(&share.check);
    record
}

fn word_count_for(record_len: usize) -> usize {
    (record_len * 8).div_ceil(BITS_PER_WORD)
}

/// Parses a decoded record (`bytes`, `floor(11 × word_count / 8)` bytes long)
/// into a share. Does not verify the check. Errors are public-only reasons.
fn parse_record(ceremony_id: &str, bytes: &[u8], word_count: usize) -> Result<Share, String> {
    if bytes.len() < RECORD_FIXED_LEN {
        return Err(format!("too few words ({word_count})"));
    }
    if bytes[0] != RECORD_VERSION {
        return Err("the words encode an unknown format version (a mistyped first word?)".into());
    }
    let (index, threshold, total, secret_len) =
        (bytes[1], bytes[2], bytes[3], usize::from(bytes[4]));
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret_len) {
        return Err("the words encode an impossible secret length (a mistyped word?)".into());
    }
    let record_len = RECORD_FIXED_LEN + secret_len;
    let expected_words = word_count_for(record_len);
    if word_count != expected_words {
        return Err(format!(
            "expected {expected_words} words for a {secret_len}-byte secret, found {word_count}"
        ));
    }
    // Bits past the record (at most 10, so at most one whole byte) must be zero.
    if bytes[record_len..].iter().any(|&b| b != 0) {
        return Err("the last word's padding bits are not zero (a mistyped last word?)".into());
    }
    if validate_parameters(threshold, total).is_err() || !(1..=total).contains(&index) {
        return Err("the words encode an impossible index or threshold (a mistyped word?)".into());
    }
    let payload_end = 5 + secret_len;
    let mut commitment = [0; COMMITMENT_LEN];
    commitment.copy_from_slice(&bytes[payload_end..payload_end + COMMITMENT_LEN]);
    let mut check = [0; CHECK_LEN];
    check.copy_from_slice(&bytes[payload_end + COMMITMENT_LEN..record_len]);
    Ok(Share {
        ceremony_id: ceremony_id.to_owned(),
        threshold,
        total,
        index,
        payload: Zeroizing::new(bytes[5..payload_end].to_vec()),
        commitment,
        check,
    })
}

// ---------------------------------------------------------------------------
// Words: 11 bits per BIP-39 English word, big-endian, zero-padded

fn bytes_to_words(bytes: &[u8]) -> Vec<&'static str> {
    let list = Language::English.word_list();
    let mut words = Vec::with_capacity(word_count_for(bytes.len()));
    let mut acc: u32 = 0;
    let mut bits = 0usize;
    for &byte in bytes {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        if bits >= BITS_PER_WORD {
            bits -= BITS_PER_WORD;
            words.push(list[((acc >> bits) & 0x7ff) as usize]);
            acc &= (1 << bits) - 1;
        }
    }
    if bits > 0 {
        words.push(list[((acc << (BITS_PER_WORD - bits)) & 0x7ff) as usize]);
    }
    acc.zeroize();
    words
}

enum WordError {
    /// 1-based position of a word not in the list.
    Unknown(usize),
}

/// Decodes words into `floor(11 × n / 8)` bytes; leftover bits (< 8) must be
/// zero, otherwise the last byte is kept so that `parse_record` refuses it.
fn words_to_bytes(words: &[&str]) -> Result<Zeroizing<Vec<u8>>, WordError> {
    let mut out = Zeroizing::new(Vec::with_capacity(words.len() * BITS_PER_WORD / 8 + 1));
    let mut acc: u32 = 0;
    let mut bits = 0usize;
    for (position, word) in words.iter().enumerate() {
        let index = lookup_word(word).ok_or(WordError::Unknown(position + 1))?;
        acc = (acc << BITS_PER_WORD) | u32::from(index);
        bits += BITS_PER_WORD;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if acc != 0 {
        // Non-zero padding: append it as an extra byte, which parse_record refuses.
        out.push(0xff);
    }
    acc.zeroize();
    Ok(out)
}

/// Index of a word (any case) in the BIP-39 English list, or of the only
/// word starting with it if it has at least 4 letters.
fn lookup_word(word: &str) -> Option<u16> {
    let lower = Zeroizing::new(word.to_ascii_lowercase());
    let english = Language::English;
    if let Some(index) = english.find_word(&lower) {
        return Some(index);
    }
    if lower.len() < 4 {
        return None;
    }
    match english.words_by_prefix(&lower) {
        [only] => english.find_word(only),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Text fields

struct Fields<'a> {
    ceremony_id: Option<&'a str>,
    /// (index, total, threshold) as stated on the `share:` line.
    stated: Option<(u8, u8, u8)>,
    fingerprint: Option<[u8; FINGERPRINT_LEN]>,
    words: Vec<&'a str>,
}

fn parse_fields(text: &str) -> Result<Fields<'_>, ShareError> {
    let malformed = |reason: String| ShareError::Malformed {
        share: "share text".into(),
        reason,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    match lines.next() {
        Some((_, line)) if line == TEXT_HEADER => {}
        Some((n, _)) => {
            return Err(malformed(format!(
                "line {n}: expected the first line to be '{TEXT_HEADER}'"
            )));
        }
        None => return Err(malformed("the text is empty".into())),
    }
    let mut fields = Fields {
        ceremony_id: None,
        stated: None,
        fingerprint: None,
        words: Vec::new(),
    };
    let mut words_seen = false;
    for (n, line) in lines {
        if words_seen {
            // Words may continue on following lines.
            fields.words.extend(line.split_whitespace());
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(malformed(format!("line {n}: expected 'key: value'")));
        };
        let value = value.trim();
        let duplicate = || malformed(format!("line {n}: '{}:' appears twice", key.trim()));
        match key.trim() {
            "ceremony" => {
                if fields.ceremony_id.replace(value).is_some() {
                    return Err(duplicate());
                }
            }
            "share" => {
                let stated = parse_share_line(value).ok_or_else(|| {
                    malformed(format!(
                        "line {n}: expected 'share: I of M (threshold K)' with numbers 1 to 255"
                    ))
                })?;
                if fields.stated.replace(stated).is_some() {
                    return Err(duplicate());
                }
            }
            "fingerprint" => {
                let fp = parse_fingerprint(value).ok_or_else(|| {
                    malformed(format!(
                        "line {n}: expected a fingerprint of 32 hex digits (8 groups of 4)"
                    ))
                })?;
                if fields.fingerprint.replace(fp).is_some() {
                    return Err(duplicate());
                }
            }
            "words" => {
                words_seen = true;
                fields.words.extend(value.split_whitespace());
            }
            _ => {
                return Err(malformed(format!(
                    "line {n}: unknown field (expected ceremony, share, fingerprint or words)"
                )));
            }
        }
    }
    Ok(fields)
}

/// `I of M (threshold K)` → (I, M, K).
fn parse_share_line(value: &str) -> Option<(u8, u8, u8)> {
    let spaced = value.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    match tokens.as_slice() {
        [index, "of", total, "(", "threshold", threshold, ")"] => Some((
            parse_number(index)?,
            parse_number(total)?,
            parse_number(threshold)?,
        )),
        _ => None,
    }
}

fn parse_number(s: &str) -> Option<u8> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// 32 hex digits in any case, optionally grouped by `-` or spaces.
fn parse_fingerprint(value: &str) -> Option<[u8; FINGERPRINT_LEN]> {
    let hex: String = value
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .collect();
    let mut out = [0; FINGERPRINT_LEN];
    hex::decode_to_slice(&hex, &mut out).ok()?;
    Some(out)
}

// ---------------------------------------------------------------------------
// Randomness

/// The OS random number generator as an infallible `CryptoRng` for vsss-rs:
/// a failure fills with zeros and sets `failed`, which `split` turns into
/// [`ShareError::Rng`] (and drops the shares) instead of panicking.
#[derive(Default)]
struct SystemRng {
    failed: bool,
}

impl SystemRng {
    fn fill(&mut self, dest: &mut [u8]) {
        if getrandom::fill(dest).is_err() {
            self.failed = true;
            dest.fill(0);
        }
    }
}

impl TryRng for SystemRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.fill(&mut bytes);
        let value = u32::from_le_bytes(bytes);
        bytes.zeroize();
        Ok(value)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.fill(&mut bytes);
        let value = u64::from_le_bytes(bytes);
        bytes.zeroize();
        Ok(value)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dest);
        Ok(())
    }
}

impl TryCryptoRng for SystemRng {}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_secret(len: usize) -> Zeroizing<Vec<u8>> {
        let mut secret = Zeroizing::new(vec![0; len]);
        getrandom::fill(&mut secret).unwrap();
        secret
    }

    /// All subsets of `0..n` with exactly `k` elements.
    fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
        (0u32..1 << n)
            .filter(|mask| mask.count_ones() as usize == k)
            .map(|mask| (0..n).filter(|i| mask & (1 << i) != 0).collect())
            .collect()
    }

    fn pick(shares: &[Share], subset: &[usize]) -> Vec<Share> {
        subset.iter().map(|&i| shares[i].clone()).collect()
    }

    /// Hex of every 4-byte window of `bytes`: what must not leak.
    fn hex_windows(bytes: &[u8]) -> Vec<String> {
        bytes.windows(4).map(hex::encode).collect()
    }

    #[test]
    fn every_k_subset_reconstructs() {
        for (k, m) in [(2u8, 3u8), (3, 5)] {
            for len in [MIN_SECRET_LEN, 32, MAX_SECRET_LEN] {
                let secret = random_secret(len);
                let shares = split(&secret, k, m, "ceremony-1").unwrap();
                assert_eq!(shares.len(), usize::from(m));
                for (i, share) in shares.iter().enumerate() {
                    assert_eq!(usize::from(share.index()), i + 1);
                    assert_eq!((share.threshold(), share.total()), (k, m));
                    assert_eq!(share.secret_len(), len);
                }
                for size in usize::from(k)..=usize::from(m) {
                    for subset in subsets(usize::from(m), size) {
                        let mut chosen = pick(&shares, &subset);
                        assert_eq!(combine(&chosen).unwrap().as_slice(), secret.as_slice());
                        chosen.reverse();
                        assert_eq!(combine(&chosen).unwrap().as_slice(), secret.as_slice());
                    }
                }
                // Also through the text files.
                let reread: Vec<Share> = shares
                    .iter()
                    .map(|s| from_text(&to_text(s)).unwrap())
                    .collect();
                for subset in subsets(usize::from(m), usize::from(k)) {
                    let chosen = pick(&reread, &subset);
                    assert_eq!(combine(&chosen).unwrap().as_slice(), secret.as_slice());
                }
            }
        }
    }

    #[test]
    fn every_k_minus_one_subset_is_refused() {
        for (k, m) in [(2u8, 3u8), (3, 5)] {
            let secret = random_secret(32);
            let shares = split(&secret, k, m, "ceremony-1").unwrap();
            let given = usize::from(k - 1);
            for subset in subsets(usize::from(m), given) {
                let err = combine(&pick(&shares, &subset)).unwrap_err();
                assert_eq!(
                    err,
                    ShareError::NotEnoughShares {
                        threshold: k,
                        given
                    }
                );
                let msg = err.to_string();
                assert!(msg.contains(&format!("needs {k} distinct shares")), "{msg}");
                assert!(msg.contains(&format!("{given} given")), "{msg}");
            }
        }
        assert_eq!(combine(&[]), Err(ShareError::NoShares));
    }

    #[test]
    fn forced_interpolation_of_k_minus_one_shares_is_wrong_and_caught_by_commitment() {
        let secret = random_secret(32);
        let shares = split(&secret, 3, 5, "ceremony-1").unwrap();
        for subset in subsets(5, 2) {
            let chosen = pick(&shares, &subset);
            let wrong = interpolate(&chosen).unwrap();
            assert_ne!(wrong.as_slice(), secret.as_slice());
            assert_ne!(commitment("ceremony-1", &wrong), chosen[0].commitment);
        }
        // The genuine secret does match the commitment.
        assert_eq!(commitment("ceremony-1", &secret), shares[0].commitment);
    }

    #[test]
    fn forged_share_with_valid_check_is_caught_by_commitment() {
        let secret = random_secret(32);
        let shares = split(&secret, 3, 5, "ceremony-1").unwrap();
        // K−1 genuine shares plus a forged share 3 whose check is recomputed,
        // so only the commitment can catch it.
        let mut forged = shares[2].clone();
        getrandom::fill(&mut forged.payload).unwrap();
        forged.check = compute_check(&forged);
        assert!(verify_check(&forged).is_ok());
        let expected = ShareError::CommitmentMismatch {
            ceremony_id: "ceremony-1".into(),
        };
        let set = vec![shares[0].clone(), shares[1].clone(), forged.clone()];
        assert_eq!(combine(&set), Err(expected.clone()));
        // Even with more than K shares the forged one spoils the result.
        let set = vec![
            shares[0].clone(),
            shares[1].clone(),
            forged,
            shares[3].clone(),
        ];
        assert_eq!(combine(&set), Err(expected));
    }

    #[test]
    fn text_format_and_round_trip() {
        let secret = random_secret(32);
        let shares = split(&secret, 3, 5, "eth-2026-11-22").unwrap();
        for share in &shares {
            let text = to_text(share);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 5);
            assert_eq!(lines[0], TEXT_HEADER);
            assert_eq!(lines[1], "ceremony: eth-2026-11-22");
            assert_eq!(
                lines[2],
                format!("share: {} of 5 (threshold 3)", share.index())
            );
            assert_eq!(lines[3], format!("fingerprint: {}", fingerprint(share)));
            let words: Vec<&str> = lines[4]
                .strip_prefix("words: ")
                .unwrap()
                .split(' ')
                .collect();
            assert_eq!(words.len(), 39);
            assert_eq!(word_count_for(RECORD_FIXED_LEN + 32), 39);
            assert!(
                words
                    .iter()
                    .all(|w| Language::English.find_word(w).is_some())
            );
            assert_eq!(&from_text(&text).unwrap(), share);

            // Lenient reading: CR-LF, blank lines, case, spacing, words over
            // several lines, 4-letter abbreviations.
            let mut variant = format!("\r\n  {TEXT_HEADER}\r\n\r\n");
            variant.push_str(&format!(
                "fingerprint: {}\r\n",
                fingerprint(share).to_uppercase().replace('-', " ")
            ));
            variant.push_str(&format!("share:{} of 5 ( threshold 3 )\r\n", share.index()));
            variant.push_str("ceremony:   eth-2026-11-22\r\n");
            variant.push_str("words:\r\n");
            for (i, word) in words.iter().enumerate() {
                let word = if i % 3 == 0 {
                    word.to_uppercase()
                } else {
                    (*word).to_owned()
                };
                let word = if i % 2 == 0 && word.len() > 4 {
                    word[..4].to_owned()
                } else {
                    word
                };
                variant.push_str(&word);
                variant.push_str(if i % 8 == 7 { "\r\n" } else { "  \t" });
            }
            variant.push_str("\r\n\r\n");
            assert_eq!(&from_text(&variant).unwrap(), share);
        }
    }

    #[test]
    fn every_single_byte_change_of_the_text_is_detected_or_harmless() {
        let secret = random_secret(32);
        let shares = split(&secret, 3, 5, "ceremony-1").unwrap();
        let share = &shares[1];
        let text = to_text(share);
        let mut detected = 0;
        for pos in 0..text.len() {
            for replacement in [
                b'x',
                b'0',
                b'9',
                b'a',
                b'e',
                b' ',
                b'-',
                text.as_bytes()[pos] ^ 1,
            ] {
                if replacement == text.as_bytes()[pos] || !replacement.is_ascii() {
                    continue;
                }
                let mut bytes = text.as_bytes().to_vec();
                bytes[pos] = replacement;
                let mutated = String::from_utf8(bytes).unwrap();
                match from_text(&mutated) {
                    Err(_) => detected += 1,
                    // Only a change that means the same share may pass
                    // (e.g. a space for another kind of whitespace).
                    Ok(parsed) => assert_eq!(&parsed, share, "undetected change at byte {pos}"),
                }
            }
        }
        assert!(detected > text.len() * 5, "{detected}");
    }

    #[test]
    fn a_mistyped_fingerprint_digit_is_detected() {
        let secret = random_secret(32);
        let shares = split(&secret, 2, 3, "ceremony-1").unwrap();
        let text = to_text(&shares[0]);
        let start = text.find("fingerprint: ").unwrap() + "fingerprint: ".len();
        for pos in start..start + 39 {
            let c = text.as_bytes()[pos];
            if c == b'-' {
                continue;
            }
            for d in b"0123456789abcdef" {
                if *d == c {
                    continue;
                }
                let mut bytes = text.as_bytes().to_vec();
                bytes[pos] = *d;
                let err = from_text(std::str::from_utf8(&bytes).unwrap()).unwrap_err();
                assert_eq!(
                    err,
                    ShareError::FingerprintMismatch {
                        share: "share 1 of ceremony 'ceremony-1'".into()
                    }
                );
            }
        }
    }

    #[test]
    fn a_word_replaced_by_another_valid_word_is_detected() {
        let secret = random_secret(32);
        let shares = split(&secret, 3, 5, "ceremony-1").unwrap();
        let share = &shares[3];
        let text = to_text(share);
        let (head, words_line) = text.split_at(text.find("words: ").unwrap());
        let words: Vec<&str> = words_line["words: ".len()..].split_whitespace().collect();
        let list = Language::English.word_list();
        for pos in 0..words.len() {
            let original = Language::English.find_word(words[pos]).unwrap() as usize;
            for delta in [1, 2, 7, 100, 1024, 2047] {
                let mut changed = words.clone();
                changed[pos] = list[(original + delta) % 2048];
                let mutated = format!("{head}words: {}\n", changed.join(" "));
                let err = from_text(&mutated).unwrap_err();
                let msg = err.to_string();
                assert!(
                    msg.contains("share 4 of ceremony 'ceremony-1'"),
                    "word {pos}: {msg}"
                );
                assert!(
                    matches!(
                        err,
                        ShareError::Corrupted { .. } | ShareError::HeaderMismatch { .. }
                    ),
                    "word {pos}: {err:?}"
                );
            }
        }
        // Swapping two different words is detected too.
        let mut swapped = words.clone();
        let j = (1..words.len()).find(|&j| words[j] != words[0]).unwrap();
        swapped.swap(0, j);
        assert!(from_text(&format!("{head}words: {}\n", swapped.join(" "))).is_err());
        // A dropped or an extra word is detected.
        assert!(from_text(&format!("{head}words: {}\n", words[1..].join(" "))).is_err());
        assert!(from_text(&format!("{head}words: {} abandon\n", words.join(" "))).is_err());
    }

    #[test]
    fn an_unknown_word_is_reported_by_position_only() {
        let secret = random_secret(32);
        let shares = split(&secret, 2, 3, "ceremony-1").unwrap();
        let text = to_text(&shares[1]);
        let words_at = text.find("words: ").unwrap() + "words: ".len();
        let third_word = text[words_at..].split(' ').nth(2).unwrap();
        let mutated = text.replacen(&format!(" {third_word}"), " qqqzzz", 1);
        // (replacen hits the first occurrence; it must be in the words line.)
        let err = from_text(&mutated).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("share 2 of ceremony 'ceremony-1' is corrupted"),
            "{msg}"
        );
        assert!(msg.contains("word "), "{msg}");
        assert!(!msg.contains("qqqzzz"), "{msg}");
        // Abbreviations need 4 letters (BIP-39 English words are unique in
        // their first four); shorter ones and non-prefixes are refused.
        assert_eq!(lookup_word("abs"), None);
        assert_eq!(lookup_word("zzzz"), None);
        assert_eq!(lookup_word("acti"), Language::English.find_word("action"));
        assert_eq!(lookup_word("act"), Language::English.find_word("act"));
        assert_eq!(lookup_word("abso"), Language::English.find_word("absorb"));
        assert_eq!(lookup_word("ABANDON"), Some(0));
    }

    #[test]
    fn altered_header_lines_are_detected() {
        let secret = random_secret(32);
        let shares = split(&secret, 3, 5, "ceremony-1").unwrap();
        let text = to_text(&shares[1]);
        let cases = [
            ("share: 2 of 5", "share: 3 of 5"),
            ("of 5 (", "of 6 ("),
            ("(threshold 3)", "(threshold 2)"),
        ];
        for (from, to) in cases {
            let err = from_text(&text.replacen(from, to, 1)).unwrap_err();
            assert!(
                matches!(err, ShareError::HeaderMismatch { .. }),
                "{from}: {err:?}"
            );
            assert!(
                err.to_string()
                    .contains("the words encode 2 of 5 (threshold 3)")
            );
        }
        let err = from_text(&text.replacen("ceremony: ceremony-1", "ceremony: ceremony-2", 1))
            .unwrap_err();
        assert!(matches!(err, ShareError::Corrupted { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("share 2 of ceremony 'ceremony-2' is corrupted")
        );

        for broken in [
            text.replacen(TEXT_HEADER, "palisade shamir share v2", 1),
            text.replacen(
                "share: 2 of 5 (threshold 3)",
                "share: two of 5 (threshold 3)",
                1,
            ),
            text.replacen(
                "share: 2 of 5 (threshold 3)",
                "share: 2 of 500 (threshold 3)",
                1,
            ),
            text.replacen("fingerprint: ", "fingerprint: 0", 1),
            text.replacen("ceremony: ceremony-1", "ceremony: cere mony", 1),
            text.replacen("ceremony: ", "colour: ", 1),
            text.replacen("ceremony: ceremony-1\n", "", 1),
            format!(
                "{}ceremony: ceremony-1\n",
                text.split("words:").next().unwrap()
            ),
            String::new(),
        ] {
            assert!(
                matches!(from_text(&broken), Err(ShareError::Malformed { .. })),
                "{broken:?}"
            );
        }
    }

    #[test]
    fn a_flipped_byte_in_a_share_is_detected_by_combine() {
        let secret = random_secret(32);
        let shares = split(&secret, 2, 3, "ceremony-1").unwrap();
        for i in 0..32 {
            let mut bad = shares[0].clone();
            bad.payload[i] ^= 0x01;
            let err = combine(&[bad, shares[1].clone()]).unwrap_err();
            assert_eq!(
                err,
                ShareError::Corrupted {
                    share: "share 1 of ceremony 'ceremony-1'".into(),
                    reason: "its check does not match its contents".into(),
                }
            );
        }
        let mut bad = shares[2].clone();
        bad.index = 2; // claims another index, check now wrong
        assert!(matches!(
            combine(&[shares[0].clone(), bad]),
            Err(ShareError::Corrupted { .. })
        ));
        let mut bad = shares[2].clone();
        bad.commitment[0] ^= 0x80;
        assert!(matches!(
            combine(&[shares[0].clone(), bad]),
            Err(ShareError::Corrupted { .. })
        ));
    }

    #[test]
    fn shares_from_different_ceremonies_or_splits_refuse_to_combine() {
        let secret = random_secret(32);
        let a = split(&secret, 2, 3, "ceremony-a").unwrap();
        let b = split(&secret, 2, 3, "ceremony-b").unwrap();
        assert_eq!(
            combine(&[a[0].clone(), b[1].clone()]),
            Err(ShareError::CeremonyMismatch {
                expected: "ceremony-a".into(),
                found: "ceremony-b".into(),
                index: 2,
            })
        );
        // Same id, another secret: the commitments differ.
        let other = split(&random_secret(32), 2, 3, "ceremony-a").unwrap();
        assert_eq!(
            combine(&[a[0].clone(), other[1].clone()]),
            Err(ShareError::SplitMismatch {
                ceremony_id: "ceremony-a".into(),
                index: 2,
            })
        );
        // Same id and secret split twice: equal commitments, but the mixed
        // polynomials give a wrong secret, which the commitment refuses.
        let again = split(&secret, 2, 3, "ceremony-a").unwrap();
        assert_eq!(
            combine(&[a[0].clone(), again[1].clone()]),
            Err(ShareError::CommitmentMismatch {
                ceremony_id: "ceremony-a".into()
            })
        );
        // Same id and secret, other K/M or length.
        let wider = split(&secret, 3, 5, "ceremony-a").unwrap();
        let err = combine(&[a[0].clone(), wider[1].clone(), wider[2].clone()]).unwrap_err();
        assert!(
            matches!(err, ShareError::ParameterMismatch { index: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("3-of-5 split"), "{err}");
        let shorter = split(&secret[..16], 2, 3, "ceremony-a").unwrap();
        let err = combine(&[a[0].clone(), shorter[1].clone()]).unwrap_err();
        assert!(err.to_string().contains("16-byte secret"), "{err}");
    }

    #[test]
    fn duplicate_indices_are_refused() {
        let secret = random_secret(32);
        let shares = split(&secret, 3, 5, "ceremony-1").unwrap();
        let err = combine(&[shares[0].clone(), shares[0].clone(), shares[1].clone()]).unwrap_err();
        assert_eq!(
            err,
            ShareError::DuplicateShare {
                ceremony_id: "ceremony-1".into(),
                index: 1
            }
        );
        // Same ceremony, secret and K/M, split twice: same commitment, so
        // only the index clash tells them apart.
        let again = split(&secret, 3, 5, "ceremony-1").unwrap();
        let err = combine(&[shares[0].clone(), shares[1].clone(), again[0].clone()]).unwrap_err();
        assert_eq!(
            err,
            ShareError::ConflictingShares {
                ceremony_id: "ceremony-1".into(),
                index: 1
            }
        );
    }

    #[test]
    fn fingerprints_are_distinct_and_reveal_no_payload() {
        let secret = random_secret(32);
        let shares = split(&secret, 3, 5, "ceremony-1").unwrap();
        let fps: Vec<String> = shares.iter().map(fingerprint).collect();
        for (i, fp) in fps.iter().enumerate() {
            assert_eq!(fp.len(), 39);
            let groups: Vec<&str> = fp.split('-').collect();
            assert_eq!(groups.len(), 8);
            assert!(groups.iter().all(|g| {
                g.len() == 4
                    && g.bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            }));
            assert!(fps[i + 1..].iter().all(|other| other != fp));
            assert_eq!(fp, &fingerprint(&shares[i]), "deterministic");
            let compact = fp.replace('-', "");
            let debug = format!("{:?}", shares[i]);
            for window in hex_windows(&shares[i].payload)
                .into_iter()
                .chain(hex_windows(&secret))
            {
                assert!(!compact.contains(&window));
                assert!(!debug.contains(&window), "{debug}");
            }
            assert!(debug.contains("<redacted>"));
        }
        // The same share from a different ceremony has a different fingerprint.
        let other = split(&secret, 3, 5, "ceremony-2").unwrap();
        assert!(other.iter().all(|s| !fps.contains(&fingerprint(s))));
    }

    #[test]
    fn error_messages_contain_no_secret_or_payload() {
        let secret = random_secret(32);
        let shares = split(&secret, 3, 5, "ceremony-1").unwrap();
        let mut forged = shares[2].clone();
        getrandom::fill(&mut forged.payload).unwrap();
        forged.check = compute_check(&forged);
        let mut flipped = shares[0].clone();
        flipped.payload[0] ^= 1;
        let errors = [
            combine(&shares[..2]).unwrap_err(),
            combine(&[shares[0].clone(), shares[1].clone(), forged.clone()]).unwrap_err(),
            combine(&[flipped.clone(), shares[1].clone(), shares[2].clone()]).unwrap_err(),
            from_text(&to_text(&shares[0]).replacen("share: 1", "share: 2", 1)).unwrap_err(),
        ];
        let mut forbidden = hex_windows(&secret);
        for s in shares.iter().chain([&forged, &flipped]) {
            forbidden.extend(hex_windows(&s.payload));
        }
        for err in &errors {
            let text = format!("{err} {err:?}");
            for window in &forbidden {
                assert!(!text.contains(window), "{text}");
            }
        }
    }

    #[test]
    fn parameters_are_validated() {
        let secret = random_secret(32);
        for (k, m) in [(1, 3), (0, 0), (4, 3), (2, 17), (17, 17)] {
            assert_eq!(
                split(&secret, k, m, "c").unwrap_err(),
                ShareError::InvalidParameters {
                    threshold: k,
                    total: m
                }
            );
        }
        assert!(split(&secret, 16, 16, "c").is_ok());
        assert!(split(&secret, 2, 2, "c").is_ok());
        for len in [0, 15, 65] {
            let err = split(&vec![7; len], 2, 3, "c").unwrap_err();
            assert_eq!(err, ShareError::InvalidSecretLength { len });
        }
        let long_id = "x".repeat(MAX_CEREMONY_ID_LEN + 1);
        for id in ["", "a b", "a\nwords: x", "é", long_id.as_str()] {
            assert_eq!(
                split(&secret, 2, 3, id).unwrap_err(),
                ShareError::InvalidCeremonyId
            );
        }
        assert!(split(&secret, 2, 3, &"x".repeat(MAX_CEREMONY_ID_LEN)).is_ok());
        assert!(split(&secret, 2, 3, "eth_2026-11-22T10:00Z.v1").is_ok());
    }

    #[test]
    fn word_encoding_is_reversible_for_every_length() {
        for len in 1..=(RECORD_FIXED_LEN + MAX_SECRET_LEN) {
            let bytes = random_secret(len);
            let words = bytes_to_words(&bytes);
            assert_eq!(words.len(), word_count_for(len));
            let decoded = words_to_bytes(&words).ok().unwrap();
            assert_eq!(&decoded[..len], bytes.as_slice());
            assert!(decoded[len..].iter().all(|&b| b == 0));
            assert!(decoded.len() <= len + 1);
        }
    }

    #[test]
    fn qr_png_decodes_back_to_the_share() {
        let secret = random_secret(32);
        let shares = split(&secret, 3, 5, "ceremony-1").unwrap();
        let png = to_qr_png(&shares[4]).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .unwrap()
            .to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
            img.width() as usize,
            img.height() as usize,
            |x, y| img.get_pixel(x as u32, y as u32).0[0],
        );
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content.as_str(), to_text(&shares[4]).as_str());
        assert_eq!(from_text(&content).unwrap(), shares[4]);
    }
}
