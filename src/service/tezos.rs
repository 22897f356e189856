//! The Tezos signing service: one octez signer request (a public key hash, the bytes to sign,
//! the caller's optional authentication signature and signature version), from the decoded
//! request to the released signature, with no HTTP types. The octez HTTP API (`api::tezos`)
//! calls it; a socket transport calls the same functions.
//!
//! The flow ([`TezosService::sign`]): authenticate the caller (before the key is looked up,
//! so that keys cannot be enumerated); find the key; parse the bytes by fixed offsets
//! (`chain::tezos::payload`); apply the global magic-byte list and the key's policy; sign on
//! the pool the backend asks for; for block, preattestation and attestation check and record
//! the high watermark with the audit entry in one transaction (an exact repeat of the bytes
//! last signed at the mark gets the stored signature), for the others the audit entry alone;
//! release the signature only with the store's proof of commit.

use std::sync::Arc;
use std::time::Instant;

use crate::chain::tezos::authentication_message;
use crate::chain::tezos::base58::{self, Prefix};
use crate::chain::tezos::payload::{self, Payload, magic_byte_name};
use crate::crypto::tezos::{Curve, PublicKey, Signature, blake2b_256, decode_pkh_bytes};
use crate::keys::dispatch::{self, DispatchError};
use crate::keys::tezos::TezosKey;
use crate::keys::{BackendError, Keys};
use crate::metrics::METRICS;
use crate::protection::audit::AuditEntry;
use crate::protection::order::{ArrivalOrder, MarkKey};
use crate::protection::release::{self, Committed, Pending, ReleaseError};
use crate::protection::watermark::{TezosWatermarkRequest, WatermarkDecision};
use crate::protection::{ProtectionError, ProtectionStore};

/// Signature version used when a request names none: 2 (tz4: proof-of-possession
/// ciphersuite; other curves ignore it).
pub const DEFAULT_SIGNATURE_VERSION: u8 = 2;

/// The first signature version with ML-DSA-44 (tz5) keys, octez's `Signature.V3`.
pub const MLDSA44_SIGNATURE_VERSION: u8 = 3;

/// Longest base58 signature of tz1–tz4 keys: `BLsig…`, 142 characters (with some margin).
const MAX_SHORT_SIGNATURE_CHARS: usize = 150;

/// Why a request got no signature. A transport maps each to its own answer (HTTP: 401, 403,
/// 404, 400, 409, 503, 500).
#[derive(Debug, thiserror::Error)]
pub enum TezosSignError {
    /// Authentication is required and the request carries none.
    #[error("this signer requires an authentication signature (query parameter `authentication`)")]
    MissingAuthentication,
    /// The authentication signature is not by an authorized key (or over another pkh).
    #[error("the authentication signature is not by an authorized key")]
    BadAuthentication,
    /// No loaded Tezos key has this public key hash.
    #[error("no key for {0}")]
    UnknownKey(String),
    /// The request is malformed: the bytes, the version, the key's curve for the operation.
    #[error("{0}")]
    Malformed(String),
    /// Refused by the magic-byte list or the key's policy (nothing signed).
    #[error("{0}")]
    Policy(String),
    /// Refused by the high watermark, or the database is unavailable (nothing released).
    #[error(transparent)]
    Protection(#[from] ProtectionError),
    /// The backend did not answer within its timeout (milliseconds).
    #[error("signing backend did not answer within {0} ms")]
    BackendTimeout(u128),
    /// The backend failed to sign.
    #[error("{0}")]
    Backend(BackendError),
    /// An internal fault: a dropped pool job, an unreadable stored signature, a proof of
    /// another subject.
    #[error("{0}")]
    Internal(String),
}

impl From<ReleaseError> for TezosSignError {
    fn from(e: ReleaseError) -> Self {
        TezosSignError::Internal(e.to_string())
    }
}

/// The keys allowed to authenticate signing requests, with their pkhs computed once
/// (octez-client asks `GET /authorized_keys` before every signature).
#[derive(Debug)]
pub struct AuthorizedKeys {
    keys: Vec<PublicKey>,
    pkhs: Vec<String>,
}

impl AuthorizedKeys {
    /// Wraps the authorized public keys.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        let pkhs = keys.iter().map(PublicKey::pkh_b58).collect();
        AuthorizedKeys { keys, pkhs }
    }

    /// The authorized keys' public key hashes (base58, `tz1…`–`tz5…`), in file order.
    pub fn pkhs(&self) -> &[String] {
        &self.pkhs
    }

    /// The authorized public keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}

/// An `authentication` value, base58-decoded once: a signature with its scheme's prefix,
/// or the scheme-less `sig…` form (64 bytes, for ed25519, secp256k1 and P-256 keys).
enum Authentication {
    Typed(Signature),
    Generic(Vec<u8>),
}

/// An authentication signature as a transport received it.
#[derive(Debug, Clone, Copy)]
pub enum AuthenticationInput<'a> {
    /// Base58 (`edsig…`, `spsig1…`, `p2sig…`, `BLsig…`, `mdsig…` or the scheme-less `sig…`), as
    /// the HTTP API's `authentication` query parameter carries it.
    Base58(&'a str),
    /// Raw bytes, as the binary protocol carries them: 64 bytes (Ed25519, or ECDSA r‖s), 96
    /// (BLS) or 2420 (ML-DSA-44); octez's `Signature.V3` tells the kind by the length.
    Raw(&'a [u8]),
}

impl Authentication {
    /// Decodes a signature a transport received; `None` if it is no Tezos signature.
    fn from_input(input: AuthenticationInput<'_>) -> Option<Authentication> {
        match input {
            AuthenticationInput::Base58(s) => Self::decode(s),
            AuthenticationInput::Raw(raw) => match raw.len() {
                64 => Some(Authentication::Generic(raw.to_vec())),
                96 => Signature::from_raw(Curve::Bls, raw)
                    .ok()
                    .map(Authentication::Typed),
                2420 => Signature::from_raw(Curve::Mldsa44, raw)
                    .ok()
                    .map(Authentication::Typed),
                _ => None,
            },
        }
    }

    /// Decodes `s`; `None` if it is no Tezos signature.
    fn decode(s: &str) -> Option<Authentication> {
        let mut candidates = Curve::ALL.map(Curve::signature_prefix).to_vec();
        candidates.push(Prefix::GenericSignature);
        let (prefix, raw) = base58::decode_any(s, &candidates).ok()?;
        match Curve::ALL
            .into_iter()
            .find(|c| c.signature_prefix() == prefix)
        {
            Some(curve) => Signature::from_raw(curve, &raw)
                .ok()
                .map(Authentication::Typed),
            None => Some(Authentication::Generic(raw)),
        }
    }

    /// Whether this signature over `message` is by `pk`: one verification, or for tz4 keys
    /// two (signature version 2, proof-of-possession ciphersuite, then 1, AUG).
    fn is_by(&self, pk: &PublicKey, message: &[u8]) -> bool {
        let versions: &[u8] = if pk.curve() == Curve::Bls {
            &[2, 1]
        } else {
            &[2]
        };
        let verify = |sig: &Signature| versions.iter().any(|v| pk.verify(message, sig, *v));
        match self {
            Authentication::Typed(sig) => sig.curve() == pk.curve() && verify(sig),
            Authentication::Generic(raw) => {
                // `sig…` is 64 bytes: never a BLS or ML-DSA-44 signature.
                matches!(pk.curve(), Curve::Ed25519 | Curve::Secp256k1 | Curve::P256)
                    && Signature::from_raw(pk.curve(), raw).is_ok_and(|sig| verify(&sig))
            }
        }
    }
}

/// Checks the `authentication` signature over `0x04 0x01 || pkh || data` (octez's
/// `Signer_messages.Sign.Request` authentication bytes) against every authorized key, where
/// `pkh` is the binary form of the request's public key hash. It does not look the key up: an
/// unknown or malformed pkh fails exactly like a wrong signature, so that keys cannot be
/// enumerated.
///
/// # Errors
/// [`TezosSignError::MissingAuthentication`] without a signature,
/// [`TezosSignError::BadAuthentication`] for any other failure.
pub fn authenticate(
    authorized: &[PublicKey],
    pkh: &str,
    data: &[u8],
    authentication: Option<AuthenticationInput<'_>>,
) -> Result<(), TezosSignError> {
    let auth = authentication.ok_or(TezosSignError::MissingAuthentication)?;
    let Ok(pkh_bytes) = decode_pkh_bytes(pkh) else {
        return Err(TezosSignError::BadAuthentication);
    };
    // Base58 decoding is quadratic in the length: a string longer than every signature but
    // `mdsig…` (3,316 characters) is decoded only when a tz5 key could have made it.
    if let AuthenticationInput::Base58(s) = auth
        && s.len() > MAX_SHORT_SIGNATURE_CHARS
        && !authorized.iter().any(|pk| pk.curve() == Curve::Mldsa44)
    {
        return Err(TezosSignError::BadAuthentication);
    }
    let auth = Authentication::from_input(auth).ok_or(TezosSignError::BadAuthentication)?;
    let message = authentication_message(&pkh_bytes, data);
    if authorized.iter().any(|pk| auth.is_by(pk, &message)) {
        Ok(())
    } else {
        Err(TezosSignError::BadAuthentication)
    }
}

/// The hash a high watermark keeps of the signed bytes: blake2b-256 of the bytes, except for
/// tz4 keys signing with the AUG ciphersuite (version 1), where it covers `"AUG" || bytes`, so
/// that an exact repeat is only answered with a stored signature of the same ciphersuite (a
/// repeat in the other ciphersuite is refused like any other conflicting request).
/// `digest` is blake2b-256 of `data`, already computed for the audit trail.
fn watermark_hash(curve: Curve, version: u8, data: &[u8], digest: [u8; 32]) -> [u8; 32] {
    if curve == Curve::Bls && version == 1 {
        let mut tagged = b"AUG".to_vec();
        tagged.extend_from_slice(data);
        blake2b_256(&tagged)
    } else {
        digest
    }
}

impl From<DispatchError> for TezosSignError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::Backend(e) => TezosSignError::Backend(e),
            DispatchError::Timeout(ms) => TezosSignError::BackendTimeout(ms),
            DispatchError::Dropped => TezosSignError::Internal(e.to_string()),
        }
    }
}

/// Parses the signature version of a request for a key of `curve`.
///
/// # Errors
/// [`TezosSignError::Malformed`] for a version that is not a number, version 0 for a tz4
/// key, or a version below 3 for a tz5 key (ML-DSA-44 exists only in octez's
/// `Signature.V3`; octez-signer refuses it in V0–V2, `src/lib_client_base/client_keys.ml`).
/// Without a version a tz5 key signs with version 3, the others with
/// [`DEFAULT_SIGNATURE_VERSION`].
pub fn parse_version(raw: Option<&str>, curve: Curve) -> Result<u8, TezosSignError> {
    let version = match raw {
        None if curve == Curve::Mldsa44 => MLDSA44_SIGNATURE_VERSION,
        None => DEFAULT_SIGNATURE_VERSION,
        Some(v) => v
            .parse::<u8>()
            .map_err(|_| TezosSignError::Malformed(format!("version `{v}` is not a number")))?,
    };
    if curve == Curve::Bls && version == 0 {
        return Err(TezosSignError::Malformed(
            "BLS (tz4) keys need signature version 1 (AUG) or 2 and later (proof of possession)"
                .into(),
        ));
    }
    if curve == Curve::Mldsa44 && version < MLDSA44_SIGNATURE_VERSION {
        return Err(TezosSignError::Malformed(format!(
            "ML-DSA-44 (tz5) keys need signature version 3 or later, got version {version}"
        )));
    }
    Ok(version)
}

/// The audit trail's kind of a non-consensus operation, by magic byte.
fn audit_kind(magic: u8) -> &'static str {
    match magic {
        0x03 => "generic_operation",
        0x05 => "michelson_data",
        0x01 => "legacy_block",
        0x02 => "legacy_endorsement",
        _ => "unknown",
    }
}

/// One sign request as a transport decoded it.
pub struct TezosSignRequest<'a> {
    /// The key's public key hash (`tz1…`–`tz5…`), as the caller wrote it.
    pub pkh: &'a str,
    /// The bytes to sign, magic byte first.
    pub data: Vec<u8>,
    /// The caller's authentication signature, if any.
    pub authentication: Option<AuthenticationInput<'a>>,
    /// The signature version (decimal), if any ([`DEFAULT_SIGNATURE_VERSION`] otherwise).
    pub version: Option<&'a str>,
    /// The caller (an IP address), for the audit trail.
    pub caller: Option<String>,
}

/// The Tezos signing service over the keys, the protection store, the magic-byte list and
/// the authorized keys. Cheap to make (four references): a transport makes one per request.
pub struct TezosService<'a> {
    /// The keys being served (the Tezos part is used).
    pub keys: &'a Keys,
    /// Where the high watermarks and the audit trail live.
    pub store: &'a dyn ProtectionStore,
    /// Magic bytes signed at all (`--tezos-magic-bytes`).
    pub magic_bytes: &'a [u8],
    /// `Some` when every signing request must be authenticated by one of these keys.
    pub authorized_keys: Option<&'a AuthorizedKeys>,
    /// The arrival order of the consensus requests of each high watermark, shared by every
    /// transport of this process ([`ArrivalOrder`]).
    pub order: &'a Arc<ArrivalOrder>,
}

impl TezosService<'_> {
    /// The key of `pkh`, if loaded.
    ///
    /// # Errors
    /// [`TezosSignError::UnknownKey`].
    pub fn key(&self, pkh: &str) -> Result<Arc<TezosKey>, TezosSignError> {
        self.keys
            .current()
            .tezos(pkh)
            .ok_or_else(|| TezosSignError::UnknownKey(pkh.to_string()))
    }

    /// Signs one request. Returns the kind of what was asked (`block`, `attestation`,
    /// `generic_operation`, …; `"unknown"` until the bytes are parsed, for the transport's
    /// metrics) and the signature or why there is none. Every decision after the bytes are
    /// parsed (signed, refused by policy or by the high watermark) is in the audit trail; a
    /// signature is released only after its record committed.
    pub async fn sign(
        &self,
        request: TezosSignRequest<'_>,
    ) -> (&'static str, Result<Signature, TezosSignError>) {
        let mut kind = "unknown";
        let result = self.sign_inner(request, &mut kind).await;
        (kind, result)
    }

    async fn sign_inner(
        &self,
        request: TezosSignRequest<'_>,
        kind_label: &mut &'static str,
    ) -> Result<Signature, TezosSignError> {
        let TezosSignRequest {
            pkh,
            data,
            authentication,
            version,
            caller,
        } = request;
        if let Some(authorized) = self.authorized_keys {
            authenticate(&authorized.keys, pkh, &data, authentication)?;
        }
        let key = self.key(pkh)?;
        let curve = key.signer.public_key().curve();
        let version = parse_version(version, curve)?;
        let parsed = payload::parse(&data).map_err(|e| TezosSignError::Malformed(e.to_string()))?;
        let magic = data[0];
        let consensus = match &parsed {
            Payload::Consensus(c) => Some(c.clone()),
            _ => None,
        };
        let digest = blake2b_256(&data);
        let audit = {
            let kind = match &consensus {
                Some(c) => c.kind.as_str(),
                None => audit_kind(magic),
            };
            *kind_label = kind;
            let entry = AuditEntry::tezos(&key.pkh, kind, Some(digest)).with_caller(caller);
            match &consensus {
                Some(c) => entry.with_level_round(c.level, c.round),
                None => entry,
            }
        };
        let refused_by_policy = if !self.magic_bytes.contains(&magic) {
            Some(format!(
                "magic byte 0x{magic:02x} ({}) is not in this signer's allowed magic bytes",
                magic_byte_name(magic).unwrap_or("unknown")
            ))
        } else if curve == Curve::Mldsa44 && consensus.is_some() {
            // Whatever the policy says: the protocol refuses tz5 delegates and consensus keys
            // (025 `delegate_storage.ml`, `Tz5_cannot_be_a_delegate`), so such a signature can
            // only be a mistake.
            Some(
                "a tz5 (ML-DSA-44) key cannot be a delegate or consensus key: it signs no block, \
                  preattestation or attestation"
                    .to_string(),
            )
        } else {
            key.policy
                .check(&parsed, &key.signer.public_key().pkh_bytes())
                .err()
                .map(|e| e.to_string())
        };
        if let Some(reason) = refused_by_policy {
            METRICS
                .policy_rejections
                .with_label_values(&["tezos"])
                .inc();
            // The refusal is answered even if it cannot be recorded.
            if let Err(e) = self.store.append_audit(&audit.refused(&reason)).await {
                tracing::warn!(reason = %e, "could not record a refusal in the audit log");
            }
            return Err(TezosSignError::Policy(reason));
        }
        // The request's place among the consensus requests of its high watermark, taken
        // before signing: every step above is synchronous, so this is the order in which
        // requests entered the service, on every transport. Signing then runs in parallel;
        // the record waits for the earlier arrivals (`Place::wait_turn`), so a later level
        // that finished signing first cannot move the mark under an earlier one.
        let mut place = consensus.as_ref().map(|c| {
            self.order.reserve(MarkKey {
                chain_id: c.chain_id,
                pkh: key.pkh.clone(),
                kind: c.kind,
            })
        });
        let data = Arc::new(data);
        let (signer_key, to_sign) = (key.clone(), data.clone());
        let t = Instant::now();
        let signature = dispatch::run(key.signer.execution(), "sign", move || async move {
            signer_key.signer.sign(&to_sign, version).await
        })
        .await?;
        if let Some(place) = place.as_mut() {
            METRICS.stage("tezos", "sign", t.elapsed());
            let t = Instant::now();
            place.wait_turn().await;
            METRICS.stage("tezos", "arrival_order_wait", t.elapsed());
        }
        let (pending, proof): (Pending<Signature>, Committed) = match consensus {
            None => {
                // No high watermark: the audit entry alone is committed before release.
                let t = Instant::now();
                let appended = release::audit_only(self.store, &audit, digest).await;
                METRICS.db_call("audit_append", t.elapsed(), appended.is_err());
                (Pending::new(digest, signature), appended?)
            }
            Some(c) => {
                let request = TezosWatermarkRequest {
                    chain_id: c.chain_id,
                    pkh: key.pkh.clone(),
                    kind: c.kind,
                    level: c.level,
                    round: c.round,
                    payload_hash: watermark_hash(curve, version, &data, digest),
                    signature: signature.as_bytes().to_vec(),
                };
                let t = Instant::now();
                let decided =
                    release::tezos_check_and_record(self.store, &request, audit, digest).await;
                METRICS.stage("tezos", "record", t.elapsed());
                // Recorded (or refused): the next arrival of this mark may go.
                drop(place);
                METRICS.db_call(
                    "tezos_check_and_record",
                    t.elapsed(),
                    decided.as_ref().is_err_and(ProtectionError::is_unavailable),
                );
                if matches!(decided, Err(ProtectionError::Watermark(_))) {
                    METRICS
                        .tezos_watermark_rejections
                        .with_label_values(&[c.kind.as_str()])
                        .inc();
                }
                match decided {
                    Ok((WatermarkDecision::SignAndRecord, proof)) => {
                        (Pending::new(digest, signature), proof)
                    }
                    Ok((WatermarkDecision::Repeat(stored), proof)) => {
                        let stored = Signature::from_raw(curve, &stored).map_err(|e| {
                            TezosSignError::Internal(format!("stored signature unreadable: {e}"))
                        })?;
                        (Pending::new(digest, stored), proof)
                    }
                    Err(e) => {
                        tracing::warn!(pkh = %key.pkh, kind = c.kind.as_str(), level = c.level, round = c.round, reason = %e, "tezos signing refused");
                        return Err(e.into());
                    }
                }
            }
        };
        Ok(pending.release(proof)?)
    }

    /// Whether the key of `pkh` can compute deterministic nonces (octez
    /// `supports_deterministic_nonces`): in-memory keys can, keys in an HSM or a vault cannot.
    ///
    /// # Errors
    /// [`TezosSignError::UnknownKey`].
    pub fn supports_deterministic_nonces(&self, pkh: &str) -> Result<bool, TezosSignError> {
        Ok(self.key(pkh)?.signer.deterministic_nonces().is_some())
    }

    /// octez's deterministic nonce of `data` for the key of `pkh` (HMAC-SHA256 keyed with the
    /// raw secret key), or with `hash` its blake2b-256 hash: 32 bytes either way. The caller
    /// is authenticated first, over `0x04 0x01 || pkh || data` as for signing (octez's client
    /// and signer both use the Sign tag there). A nonce is no signature and moves no
    /// watermark; it is refused for keys that cannot compute one.
    ///
    /// # Errors
    /// [`TezosSignError::MissingAuthentication`] / [`TezosSignError::BadAuthentication`];
    /// [`TezosSignError::UnknownKey`]; [`TezosSignError::Malformed`] for a key whose backend
    /// cannot compute nonces; the backend's errors.
    pub async fn deterministic_nonce(
        &self,
        pkh: &str,
        data: Vec<u8>,
        authentication: Option<AuthenticationInput<'_>>,
        hash: bool,
    ) -> Result<Vec<u8>, TezosSignError> {
        if let Some(authorized) = self.authorized_keys {
            authenticate(&authorized.keys, pkh, &data, authentication)?;
        }
        let key = self.key(pkh)?;
        if key.signer.deterministic_nonces().is_none() {
            return Err(TezosSignError::Malformed(format!(
                "the backend of {} ({}) cannot compute deterministic nonces",
                key.pkh,
                key.signer.backend()
            )));
        }
        let execution = key.signer.execution();
        Ok(
            dispatch::run(execution, "deterministic_nonce", move || async move {
                let Some(n) = key.signer.deterministic_nonces() else {
                    return Err(BackendError("no deterministic-nonce capability".into()));
                };
                if hash {
                    n.deterministic_nonce_hash(&data).await.map(|h| h.to_vec())
                } else {
                    n.deterministic_nonce(&data).await.map(|v| v.to_vec())
                }
            })
            .await?,
        )
    }

    /// A proof of possession of the tz4 key of `pkh` (or of `bls_pk`, base58 `BLpk…`), for
    /// keys whose policy sets `provePossession: true`.
    ///
    /// # Errors
    /// [`TezosSignError::UnknownKey`]; [`TezosSignError::Malformed`] for a key that is not
    /// tz4 or a `bls_pk` that is not a BLS public key; [`TezosSignError::Policy`] when the
    /// policy does not allow it; the backend's errors.
    pub async fn prove_possession(
        &self,
        pkh: &str,
        bls_pk: Option<&str>,
    ) -> Result<Signature, TezosSignError> {
        let key = self.key(pkh)?;
        if key.signer.public_key().curve() != Curve::Bls {
            return Err(TezosSignError::Malformed(format!(
                "{} is not a BLS (tz4) key: no proof of possession",
                key.pkh
            )));
        }
        if !key.policy.allows_prove_possession() {
            return Err(TezosSignError::Policy(
                "policy of this key does not allow proofs of possession (provePossession: true)"
                    .into(),
            ));
        }
        let override_pk = match bls_pk {
            None => None,
            Some(b58) => {
                let pk = PublicKey::from_b58(b58)
                    .map_err(|e| TezosSignError::Malformed(format!("bls_pk: {e}")))?;
                if pk.curve() != Curve::Bls {
                    return Err(TezosSignError::Malformed(
                        "bls_pk must be a BLpk public key".into(),
                    ));
                }
                Some(pk)
            }
        };
        if key.signer.possession().is_none() {
            return Err(TezosSignError::Malformed(format!(
                "the backend of {} ({}) cannot prove possession of its key",
                key.pkh,
                key.signer.backend()
            )));
        }
        let execution = key.signer.execution();
        Ok(dispatch::run(execution, "sign", move || async move {
            match key.signer.possession() {
                Some(p) => p.prove_possession(override_pk.as_ref()).await,
                None => Err(BackendError("no proof-of-possession capability".into())),
            }
        })
        .await?)
    }
}
