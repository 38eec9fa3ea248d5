//! Server API keys: `tern_<prefix>_<secret>`, shown once, stored as SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every API key starts with this, so they are easy to tell from session
/// tokens and to find with secret scanners.
pub const KEY_PREFIX: &str = "tern_";

/// A freshly generated key; `secret` is never stored.
pub struct NewKey {
    pub secret: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

/// Generates a key with 256 random bits.
pub fn generate() -> NewKey {
    let mut rng = rand::rng();
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let prefix = format!("{KEY_PREFIX}{}", hex::encode(id));
    let secret = format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(secret));
    NewKey {
        hash: hash(&secret),
        prefix,
        secret,
    }
}

/// The stored form of a key.
pub fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_unique_and_prefixed() {
        let a = super::generate();
        let b = super::generate();
        assert!(a.secret.starts_with(&a.prefix));
        assert_ne!(a.secret, b.secret);
        assert_eq!(super::hash(&a.secret), a.hash);
        assert_eq!(a.prefix.len(), 5 + 12);
    }
}
