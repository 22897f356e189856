//! `type: pkcs11-wrapped-bls`: an EIP-2335-shaped keystore whose BLS secret is AES-256-GCM
//! encrypted under an AES key that never leaves a PKCS#11 token; the token decrypts it into
//! memory ([`MemoryKey`]) at load time (see [`super::pkcs11::wrapped`]).
//!
//! ```yaml
//! type: pkcs11-wrapped-bls
//! module: /usr/lib/softhsm/libsofthsm2.so
//! tokenLabel: hsm1                  # or slotId: 1
//! pinFile: /etc/palisade/hsm.pin    # or pinEnv: PALISADE_HSM_PIN
//! wrappedKeystoreFile: validator-0.wrapped.json
//! aesKeyLabel: palisade-wrap        # optional: the label the keystore names
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::keystore::keystore_pubkey;
use super::pkcs11::{TOKEN_FIELDS, Token, TokenFields, TokenRef, wrapped};
use super::{Backend, KeyLoad, LoadContext, LoadedKey, base_dir, parse};
use crate::keys::LoadError;
use crate::keys::memory::MemoryKey;
use crate::protection::audit::Chain;

/// The `pkcs11-wrapped-bls` backend.
pub struct Pkcs11WrappedBls;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(flatten)]
    token: TokenFields,
    wrapped_keystore_file: PathBuf,
    #[serde(default)]
    aes_key_label: Option<String>,
}

impl Backend for Pkcs11WrappedBls {
    fn kind(&self) -> &'static str {
        "pkcs11-wrapped-bls"
    }
    fn fields_hint(&self) -> &'static str {
        "module, tokenLabel|slotId, pinFile|pinEnv, wrappedKeystoreFile, aesKeyLabel"
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        Some([TOKEN_FIELDS, &["wrappedKeystoreFile", "aesKeyLabel"]].concat())
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let config: Config = parse(text, self)?;
        let base = base_dir(file);
        Ok(Box::new(Wrapped {
            file: file.to_path_buf(),
            token: config.token.resolve(base)?,
            wrapped: base.join(config.wrapped_keystore_file),
            aes_key_label: config.aes_key_label,
        }))
    }
}

/// A wrapped keystore and the token holding its AES key.
struct Wrapped {
    file: PathBuf,
    token: TokenRef,
    wrapped: PathBuf,
    aes_key_label: Option<String>,
}

impl KeyLoad for Wrapped {
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        (Some(Chain::Eth2), keystore_pubkey(&self.wrapped))
    }

    fn load(self: Box<Self>, _context: &LoadContext<'_>) -> Result<LoadedKey, LoadError> {
        let fail = |reason: String| LoadError {
            file: self.file.clone(),
            reason,
        };
        let token = Token::open(&self.token).map_err(|e| fail(e.to_string()))?;
        let sk = wrapped::load_file(&token, &self.wrapped, self.aes_key_label.as_deref())
            .map_err(fail)?;
        Ok(LoadedKey::Eth2 {
            key: Arc::new(MemoryKey::new(sk)),
            backend: format!(
                "pkcs11-wrapped keystore {} (token `{}`)",
                self.wrapped.display(),
                token.label()
            ),
            source: self.file,
        })
    }
}
