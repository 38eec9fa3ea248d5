//! Signing secrets in the Standard Webhooks form: `whsec_` and the base64
//! of random bytes (24 to 64 of them; Tern makes 32).

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
