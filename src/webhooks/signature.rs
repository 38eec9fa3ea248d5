//! Standard Webhooks signatures (https://www.standardwebhooks.com). Both
//! schemes sign `id.timestamp.body`:
//! - `v1`: the base64 of HMAC-SHA256, keyed with the secret's bytes;
//! - `v1a`: the base64 of an Ed25519 signature, for receivers that verify
//!   with a public key only.
//!
//! Several signatures go in one header, separated by spaces (during a
//! secret rotation, one per key).

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

/// How an endpoint's deliveries are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Signing {
    /// `v1`: HMAC-SHA256 with a shared secret (`whsec_...`).
    #[default]
    Hmac,
    /// `v1a`: Ed25519; receivers verify with the public key (`whpk_...`).
    Ed25519,
}

impl Signing {
    pub fn as_str(self) -> &'static str {
        match self {
            Signing::Hmac => "hmac",
            Signing::Ed25519 => "ed25519",
        }
    }

    pub fn parse(text: &str) -> Option<Signing> {
        [Signing::Hmac, Signing::Ed25519]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// The `webhook-signature` value for `body` sent as event `id` at
/// `timestamp` (Unix seconds), signed with each key in turn: HMAC keys,
/// or Ed25519 seeds.
pub fn signatures<'a>(
    signing: Signing,
    keys: impl IntoIterator<Item = &'a [u8]>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> anyhow::Result<String> {
    let signed = keys
        .into_iter()
        .map(|key| match signing {
            Signing::Hmac => Ok(format!("v1,{}", STANDARD.encode(hmac(key, id, timestamp, body)))),
            Signing::Ed25519 => {
                let pair = Ed25519KeyPair::from_seed_unchecked(key)
                    .map_err(|_| anyhow::anyhow!("a stored Ed25519 seed is not a key"))?;
                let signature = pair.sign(&content(id, timestamp, body));
                Ok(format!("v1a,{}", STANDARD.encode(signature.as_ref())))
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(signed.join(" "))
}

/// The public key of an Ed25519 seed.
pub fn ed25519_public_key(seed: &[u8]) -> anyhow::Result<Vec<u8>> {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed)
        .map_err(|_| anyhow::anyhow!("an Ed25519 seed is 32 bytes"))?;
    Ok(pair.public_key().as_ref().to_vec())
}

fn content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(id.len() + body.len() + 24);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    signed
}

fn hmac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(&content(id, timestamp, body));
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
        let two = signatures(
            Signing::Hmac,
            [key.as_slice(), b"other".as_slice()],
            "id",
            1,
            b"x",
        )
        .unwrap();
        assert_eq!(two.split(' ').count(), 2);
        let same = signatures(
            Signing::Hmac,
            [key.as_slice()],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
        );
        assert_eq!(same.unwrap(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    /// RFC 8032's first test vector signs the empty message; here the
    /// signed content is `id.timestamp.body`, checked with the public key.
    #[test]
    fn ed25519_signatures_verify_with_the_public_key() {
        use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
        let seed = [7u8; 32];
        let header = signatures(Signing::Ed25519, [seed.as_slice()], "evt_1", 1700000000, b"{}").unwrap();
        let signature = STANDARD.decode(header.strip_prefix("v1a,").unwrap()).unwrap();
        let public = ed25519_public_key(&seed).unwrap();
        let key = UnparsedPublicKey::new(&ED25519, &public);
        assert!(key.verify(b"evt_1.1700000000.{}", &signature).is_ok());
        assert!(key.verify(b"evt_1.1700000000.{ }", &signature).is_err());
        assert!(signatures(Signing::Ed25519, [b"short".as_slice()], "e", 1, b"").is_err());
    }
}
