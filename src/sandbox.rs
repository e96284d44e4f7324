//! The built-in sandbox (DESIGN §6). For now: a webhook secret of its own, so that a first run
//! works with no configuration at all.
use std::path::Path;

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use rand::RngCore;
use secrecy::SecretString;

use crate::crypto::write_private;

/// Reads the sandbox's webhook secret from `path`, creating a random one (0600) on first use.
pub fn webhook_secret(path: &Path) -> std::io::Result<SecretString> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(SecretString::from(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 24];
            rand::rng().fill_bytes(&mut key);
            let secret = format!("whsec_{}", B64.encode(key));
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            write_private(path, secret.as_bytes())?;
            Ok(SecretString::from(secret))
        }
        Err(e) => Err(e),
    }
}

// Placeholder until the sandbox's fake Amazon and program land (issue 3).
pub const CLIENT_ID: &str = "amzn1.application-oa2-client.sandbox";
pub const CLIENT_SECRET: &str = "sandbox-client-secret";

#[derive(Clone)]
pub struct Sandbox {
    public_url: url::Url,
}

impl Sandbox {
    pub fn authorize_url(&self) -> url::Url {
        self.public_url
            .join("/sandbox/amazon/ap/oa")
            .expect("valid")
    }
    pub fn token_url(&self) -> url::Url {
        self.public_url
            .join("/sandbox/amazon/auth/o2/token")
            .expect("valid")
    }
    pub fn api_url(&self) -> url::Url {
        self.public_url.join("/sandbox/amazon/api").expect("valid")
    }
}
