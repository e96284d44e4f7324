//! Tokens at rest: XChaCha20-Poly1305 under the configured key. A sealed value is
//! `version (1) || nonce (24) || ciphertext+tag`, and its associated data names what it is and
//! whose it is, so a ciphertext copied to another store's row does not open.
use std::path::Path;

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use chacha20poly1305::{
    Key, XChaCha20Poly1305, XNonce,
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha512;

use crate::config::{Settings, decode_key};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("sealed value is malformed or was sealed under another key or for another owner")]
    Open,
    #[error("key file {path}: {source}")]
    KeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {0} does not hold base64 of 32 bytes")]
    BadKeyFile(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

#[derive(Clone)]
pub struct TokenCipher {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCipher { key: [REDACTED] }")
    }
}

impl TokenCipher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn aead(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.key))
    }

    pub fn seal(&self, plaintext: &SecretString, aad: &str) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .aead()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &str) -> Result<SecretString, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(CryptoError::Open);
        }
        let nonce = XNonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        let plain = self
            .aead()
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Open)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Open)
    }

    /// A sub-key for another purpose (cookie signing, OAuth state), so the AEAD key itself is used
    /// for one thing only.
    pub fn derive(&self, purpose: &str) -> [u8; 64] {
        let mut mac =
            <Hmac<Sha512> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The key tokens are sealed with, and where a new one is to be kept.
pub struct LoadedKey {
    pub bytes: [u8; 32],
    /// A key file that did not exist: the key is new, and written there by [`LoadedKey::keep`]
    /// only once it is known to fit the database (a refused start writes nothing).
    new_file: Option<std::path::PathBuf>,
}

impl LoadedKey {
    /// Writes a new key to its file (0600; never over a file that appeared meanwhile).
    pub fn keep(&self) -> Result<(), CryptoError> {
        let Some(path) = &self.new_file else {
            return Ok(());
        };
        let io = |source| CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        write_private(path, B64.encode(self.bytes).as_bytes()).map_err(io)?;
        tracing::warn!(path = %path.display(), "created a new encryption key file; back it up");
        Ok(())
    }
}

/// The configured key; on SQLite with none configured, the key file's, or a new one for it
/// (written by [`LoadedKey::keep`]).
pub fn load_key(settings: &Settings) -> Result<LoadedKey, CryptoError> {
    if !settings.security.encryption_key.expose_secret().is_empty() {
        return Ok(LoadedKey {
            bytes: decode_key(&settings.security.encryption_key)?,
            new_file: None,
        });
    }
    // Validation already refused an empty key for PostgreSQL.
    key_file(&settings.security.key_file)
}

fn key_file(path: &Path) -> Result<LoadedKey, CryptoError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bad = || CryptoError::BadKeyFile(path.display().to_string());
            let bytes = B64.decode(text.trim()).map_err(|_| bad())?;
            Ok(LoadedKey {
                bytes: bytes.try_into().map_err(|_| bad())?,
                new_file: None,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LoadedKey {
            bytes: XChaCha20Poly1305::generate_key(&mut OsRng).into(),
            new_file: Some(path.to_owned()),
        }),
        Err(source) => Err(CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Creates `path` readable by its owner only; fails if it already exists.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_tokens_open_only_with_the_same_key_and_owner() {
        let cipher = TokenCipher::new([7; 32]);
        let token = SecretString::from("gpat_secret_token");
        let sealed = cipher.seal(&token, "program:st_1");
        assert!(!sealed.windows(10).any(|w| w == b"gpat_secre"));
        assert_eq!(
            cipher
                .open(&sealed, "program:st_1")
                .unwrap()
                .expose_secret(),
            "gpat_secret_token"
        );
        assert!(cipher.open(&sealed, "program:st_2").is_err());
        assert!(
            TokenCipher::new([8; 32])
                .open(&sealed, "program:st_1")
                .is_err()
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(cipher.open(&tampered, "program:st_1").is_err());
        assert_ne!(
            cipher.seal(&token, "program:st_1"),
            sealed,
            "nonces are random"
        );
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/key");
        let first = key_file(&path).unwrap();
        assert!(!path.exists(), "written only when kept");
        first.keep().unwrap();
        assert_eq!(key_file(&path).unwrap().bytes, first.bytes);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
