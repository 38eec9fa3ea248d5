//! Session tokens for the management API: HS256 JWTs.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The claims Tern puts in a session token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    /// Audience: always `tern-session`, so no other HS256 token of ours
    /// (later: webhook or link tokens) passes as a session.
    pub aud: String,
}

const AUDIENCE: &str = "tern-session";

/// Signs and checks session tokens with one shared secret.
pub struct SessionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: chrono::Duration,
}

impl SessionKeys {
    pub fn new(secret: &[u8], ttl_secs: u64) -> SessionKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 5;
        SessionKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl: chrono::Duration::seconds(i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2)),
        }
    }

    /// Issues a token for `user`; returns it with its expiry.
    pub fn issue(&self, user: Uuid) -> anyhow::Result<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires = now + self.ttl;
        let claims = Claims {
            sub: user,
            iat: now.timestamp(),
            exp: expires.timestamp(),
            aud: AUDIENCE.into(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, expires))
    }

    /// Returns the user of a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Option<Uuid> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let keys = SessionKeys::new(&[7u8; 32], 3600);
        let user = Uuid::new_v4();
        let (token, _) = keys.issue(user).unwrap();
        assert_eq!(keys.verify(&token), Some(user));
        let other = SessionKeys::new(&[8u8; 32], 3600);
        assert_eq!(other.verify(&token), None);
        assert_eq!(keys.verify("not.a.token"), None);
    }
}
