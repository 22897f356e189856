//! `type: file-raw`: a 32-byte BLS secret key written in the key config, hex (Web3Signer's
//! raw key file), held in memory ([`MemoryKey`]).
//!
//! ```yaml
//! type: file-raw
//! keyType: BLS      # optional
//! privateKey: 0x…   # 32-byte big-endian scalar, hex
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::keystore::check_key_type;
use super::{Backend, KeyLoad, LoadContext, LoadedKey, parse};
use crate::crypto::bls::SecretKey;
use crate::keys::LoadError;
use crate::keys::memory::MemoryKey;
use crate::protection::audit::Chain;

/// The `file-raw` backend.
pub struct FileRaw;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    key_type: Option<String>,
    private_key: Zeroizing<String>,
}

impl Backend for FileRaw {
    fn kind(&self) -> &'static str {
        "file-raw"
    }
    fn fields_hint(&self) -> &'static str {
        "privateKey"
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        None
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let config: Config = parse(text, self)?;
        check_key_type(config.key_type.as_deref())?;
        Ok(Box::new(Raw {
            file: file.to_path_buf(),
            secret_hex: config.private_key,
        }))
    }
}

/// A raw secret key (hex) from a `file-raw` key config.
struct Raw {
    file: PathBuf,
    secret_hex: Zeroizing<String>,
}

impl KeyLoad for Raw {
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        (Some(Chain::Eth2), None)
    }

    fn load(self: Box<Self>, _context: &LoadContext<'_>) -> Result<LoadedKey, LoadError> {
        let fail = |reason: &str| LoadError {
            file: self.file.clone(),
            reason: reason.to_string(),
        };
        let bytes = Zeroizing::new(
            hex::decode(self.secret_hex.trim().trim_start_matches("0x"))
                .map_err(|_| fail("privateKey is not hex"))?,
        );
        let sk = SecretKey::from_bytes(&bytes).map_err(|e| fail(&format!("privateKey: {e}")))?;
        Ok(LoadedKey::Eth2 {
            key: Arc::new(MemoryKey::new(sk)),
            backend: "file-raw".into(),
            source: self.file,
        })
    }
}
