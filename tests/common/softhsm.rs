//! A fresh SoftHSM2 token per test: its own token directory and `softhsm2.conf` in a
//! temporary directory, initialised with `softhsm2-util` (Debian package `softhsm2`, which
//! `.ci/run` installs). Fails, never skips, when SoftHSM is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Debian's SoftHSM2 PKCS#11 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of test tokens.
pub const PIN: &str = "87654321";

/// A temporary SoftHSM2 token.
pub struct SoftHsm {
    _dir: tempfile::TempDir,
    /// The `softhsm2.conf` to point `SOFTHSM2_CONF` at.
    pub conf: PathBuf,
    /// A file holding the user PIN.
    pub pin_file: PathBuf,
    /// The token label.
    pub label: String,
}

impl SoftHsm {
    /// Creates and initialises a token labelled `label` in a new temporary directory.
    pub fn new(label: &str) -> SoftHsm {
        assert!(
            Path::new(MODULE).exists(),
            "SoftHSM2 is not installed ({MODULE} missing): apt-get install softhsm2 (.ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", "12345678", "--pin", PIN])
            .output()
            .expect("run softhsm2-util (apt-get install softhsm2)");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pin_file = dir.path().join("user.pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        SoftHsm {
            _dir: dir,
            conf,
            pin_file,
            label: label.to_string(),
        }
    }

    /// `SOFTHSM2_CONF=<conf>` for a child process.
    pub fn env(&self) -> (&'static str, &str) {
        ("SOFTHSM2_CONF", self.conf.to_str().unwrap())
    }

    /// Runs `palisade hsm <sub> <args> --module … --token-label … --pin-file …`.
    pub fn hsm(&self, sub: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .env("SOFTHSM2_CONF", &self.conf)
            .arg("hsm")
            .arg(sub)
            .args([
                "--module",
                MODULE,
                "--token-label",
                &self.label,
                "--pin-file",
            ])
            .arg(&self.pin_file)
            .args(args)
            .output()
            .expect("run palisade hsm")
    }

    /// As [`SoftHsm::hsm`], asserting success; returns stdout.
    pub fn hsm_ok(&self, sub: &str, args: &[&str]) -> String {
        let out = self.hsm(sub, args);
        assert!(
            out.status.success(),
            "palisade hsm {sub} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `palisade hsm generate --curve <curve> --label <label>`; returns its JSON
    /// (`label`, `id`, `public_key`, `pkh`).
    pub fn generate(&self, curve: &str, label: &str) -> Value {
        serde_json::from_str(&self.hsm_ok("generate", &["--curve", curve, "--label", label]))
            .unwrap()
    }

    /// The token fields of a key config for this token.
    pub fn token_yaml(&self) -> String {
        format!(
            "module: {MODULE}\ntokenLabel: {}\npinFile: {}\n",
            self.label,
            self.pin_file.display()
        )
    }

    /// Writes `<dir>/<name>.yaml`: a `type: pkcs11` key config for `key_label` with `policy`
    /// (YAML flow mapping, e.g. `{ allow: [attestation] }`).
    pub fn write_key_config(&self, dir: &Path, name: &str, key_label: &str, policy: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join(format!("{name}.yaml")),
            format!(
                "type: pkcs11\n{}keyLabel: {key_label}\npolicy: {policy}\n",
                self.token_yaml()
            ),
        )
        .unwrap();
    }
}
