//! Tracking tokens: what an open pixel or a tracked link is about, signed.
//!
//! A token is base64url (no padding) of a kind byte (`o` open, `c` click),
//! the recipient's 16-byte id, the link's index (2 bytes, big-endian; 0 for
//! opens) and the first 12 bytes of HMAC-SHA256(key, all of that): 42
//! characters. The link's URL is never in the token: it is stored with the
//! message, so an edited or forged token can only be refused (no open
//! redirect).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

const MAC_LEN: usize = 12;
const BODY_LEN: usize = 1 + 16 + 2;
/// The length of every token.
pub const TOKEN_CHARS: usize = 42;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    Open { recipient: Uuid },
    Click { recipient: Uuid, link: u16 },
}

/// Signs and checks tokens with one instance-wide key.
#[derive(Clone)]
pub struct Tokens {
    /// The keyed HMAC, cloned for each token (keying hashes the key pads:
    /// done once).
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(..)")
    }
}

impl Tokens {
    pub fn new(key: &[u8]) -> Tokens {
        Tokens {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    fn tag(&self, body: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; MAC_LEN];
        tag.copy_from_slice(&full[..MAC_LEN]);
        tag
    }

    pub fn token(&self, tracked: Tracked) -> String {
        let (kind, recipient, link) = match tracked {
            Tracked::Open { recipient } => (b'o', recipient, 0),
            Tracked::Click { recipient, link } => (b'c', recipient, link),
        };
        let mut bytes = Vec::with_capacity(BODY_LEN + MAC_LEN);
        bytes.push(kind);
        bytes.extend_from_slice(recipient.as_bytes());
        bytes.extend_from_slice(&link.to_be_bytes());
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// What a token was made for; `None` for anything not made with this
    /// key, however close.
    pub fn check(&self, token: &str) -> Option<Tracked> {
        if token.len() != TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != BODY_LEN + MAC_LEN {
            return None;
        }
        let (body, tag) = bytes.split_at(BODY_LEN);
        let mut mac = self.mac.clone();
        mac.update(body);
        mac.verify_truncated_left(tag).ok()?;
        let recipient = Uuid::from_slice(&body[1..17]).ok()?;
        let link = u16::from_be_bytes([body[17], body[18]]);
        match body[0] {
            b'o' if link == 0 => Some(Tracked::Open { recipient }),
            b'c' => Some(Tracked::Click { recipient, link }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_any_edit_is_refused() {
        let tokens = Tokens::new(b"key");
        let recipient = Uuid::now_v7();
        for tracked in [Tracked::Open { recipient }, Tracked::Click { recipient, link: 7 }] {
            let token = tokens.token(tracked);
            assert_eq!(token.len(), TOKEN_CHARS);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(tokens.check(&token), Some(tracked));
            for i in 0..token.len() {
                let mut edited = token.clone().into_bytes();
                edited[i] = if edited[i] == b'A' { b'B' } else { b'A' };
                let edited = String::from_utf8(edited).unwrap();
                assert_eq!(tokens.check(&edited), None, "edit at {i}");
            }
        }
        assert_eq!(
            Tokens::new(b"other").check(&tokens.token(Tracked::Open { recipient })),
            None
        );
        assert_eq!(tokens.check(""), None);
        assert_eq!(tokens.check(&"A".repeat(TOKEN_CHARS)), None);
    }
}
