//! Standard Webhooks signatures (https://www.standardwebhooks.com): the
//! `v1` scheme is the base64 of HMAC-SHA256 over `id.timestamp.body`, keyed
//! with the secret's bytes; several signatures go in one header, separated
//! by spaces (during a secret rotation, one per secret).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `webhook-signature` value for `body` sent as event `id` at
/// `timestamp` (Unix seconds), signed with each key in turn.
pub fn header<'a>(keys: impl IntoIterator<Item = &'a [u8]>, id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.into_iter()
        .map(|key| format!("v1,{}", STANDARD.encode(sign(key, id, timestamp, body))))
        .collect::<Vec<_>>()
        .join(" ")
}

fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn matches_the_specification_example() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            header([key.as_slice()], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let two = header([key.as_slice(), b"other".as_slice()], "id", 1, b"x");
        assert_eq!(two.split(' ').count(), 2);
    }
}
