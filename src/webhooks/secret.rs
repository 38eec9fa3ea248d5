//! Signing keys in the Standard Webhooks forms: HMAC secrets are `whsec_`
//! and the base64 of random bytes (24 to 64 of them; Tern makes 32);
//! Ed25519 public keys are `whpk_` and the base64 of the key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::Redacted;

/// The prefix every secret carries.
pub const PREFIX: &str = "whsec_";

/// A new secret: its text (shown once) and its bytes (sealed and kept).
pub fn generate() -> (Redacted<String>, Redacted<Vec<u8>>) {
    let bytes: [u8; 32] = rand::random();
    (
        Redacted::new(format!("{PREFIX}{}", STANDARD.encode(bytes))),
        Redacted::new(bytes.to_vec()),
    )
}

/// The prefix of Ed25519 public keys.
pub const PUBLIC_PREFIX: &str = "whpk_";

/// A new Ed25519 key: the seed (sealed and kept) and the public key.
pub fn generate_ed25519() -> anyhow::Result<(Redacted<Vec<u8>>, Vec<u8>)> {
    let seed: [u8; 32] = rand::random();
    let public = super::signature::ed25519_public_key(&seed)?;
    Ok((Redacted::new(seed.to_vec()), public))
}

/// A public key as receivers configure it: `whpk_` and base64.
pub fn public_key_text(public: &[u8]) -> String {
    format!("{PUBLIC_PREFIX}{}", STANDARD.encode(public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_whsec_and_32_random_bytes() {
        let (text, bytes) = generate();
        let encoded = text.expose().strip_prefix(PREFIX).unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap(), *bytes.expose());
        assert_eq!(bytes.expose().len(), 32);
        assert_ne!(generate().0.expose(), text.expose());
    }
}
