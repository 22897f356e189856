//! `type: tezos-secret`: an octez secret key URI (`unencrypted:` or `encrypted:`), decoded
//! into memory ([`MemoryTezosKey`]); tz1–tz5.
//!
//! ```yaml
//! type: tezos-secret
//! secretKey: encrypted:edesk…      # or unencrypted:edsk…|spsk…|p2sk…|BLsk…|mdsk…
//! passwordFile: baker.password      # only for encrypted keys
//! policy: { allow: [block, preattestation, attestation] }
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Backend, KeyLoad, LoadContext, LoadedKey, base_dir, parse};
use crate::chain::tezos::policy::{Policy, PolicyConfig};
use crate::keys::memory::MemoryTezosKey;
use crate::keys::signer::TezosSigner;
use crate::keys::tezos::{TezosKey, decode_secret_key};
use crate::keys::{LoadError, read_password_file};
use crate::protection::audit::Chain;

/// The `tezos-secret` backend.
pub struct TezosSecret;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    secret_key: Zeroizing<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    policy: Option<PolicyConfig>,
}

impl Backend for TezosSecret {
    fn kind(&self) -> &'static str {
        "tezos-secret"
    }
    fn fields_hint(&self) -> &'static str {
        "secretKey, passwordFile, policy"
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        Some(vec!["type", "secretKey", "passwordFile", "policy"])
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let config: Config = parse(text, self)?;
        Ok(Box::new(Secret {
            file: file.to_path_buf(),
            secret_key: config.secret_key,
            password_file: config.password_file.map(|p| base_dir(file).join(p)),
            policy: policy(config.policy)?,
        }))
    }
}

/// The policy of a Tezos key config; the default policy when it has none.
///
/// # Errors
/// The policy's message for an unknown operation kind or a bad limit.
pub(crate) fn policy(config: Option<PolicyConfig>) -> Result<Policy, String> {
    match config {
        Some(p) => Policy::from_config(&p),
        None => Ok(Policy::default()),
    }
}

/// A Tezos secret key URI and its password file, from a `tezos-secret` key config.
struct Secret {
    file: PathBuf,
    secret_key: Zeroizing<String>,
    password_file: Option<PathBuf>,
    policy: Policy,
}

impl KeyLoad for Secret {
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        (Some(Chain::Tezos), None)
    }

    fn load(self: Box<Self>, _context: &LoadContext<'_>) -> Result<LoadedKey, LoadError> {
        let fail = |reason: String| LoadError {
            file: self.file.clone(),
            reason,
        };
        let password = self
            .password_file
            .as_deref()
            .map(read_password_file)
            .transpose()
            .map_err(fail)?;
        let password = password.as_ref().map(|p| p.as_bytes());
        let secret = decode_secret_key(&self.secret_key, password)
            .map_err(|e| fail(format!("secretKey: {e}")))?;
        let key = MemoryTezosKey::new(secret);
        Ok(LoadedKey::Tezos(TezosKey {
            pkh: key.public_key().pkh_b58(),
            signer: Box::new(key),
            policy: self.policy,
            origin: self.file,
        }))
    }
}
