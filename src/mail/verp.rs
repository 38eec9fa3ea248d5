//! VERP return paths: each delivery's envelope sender is
//! `b+<token>@<return-path host>`, where the token names what a bounce is
//! about and carries an HMAC so that nobody can forge a bounce.
//!
//! A transaction with one recipient names that recipient row. A transaction
//! with several (one message, one destination domain) names the message; the
//! bounce's `Final-Recipient` (RFC 3464) then says which recipient it is.
//!
//! The token is lower-case base32 (RFC 4648 §6, no padding) of a kind byte,
//! the 16-byte id and the first 10 bytes of HMAC-SHA256(key, kind || id): 44
//! characters, so the local part (46) stays under RFC 5321's 64, and it
//! survives MTAs that change the case of local parts (decoding ignores case).

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// Local-part prefix of every return path Tern generates.
pub const PREFIX: &str = "b+";
/// Local-part prefix of the `mailto:` address of `List-Unsubscribe`.
pub const UNSUBSCRIBE_PREFIX: &str = "u+";
const MAC_LEN: usize = 10;

/// What a return path identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerpTarget {
    Recipient(Uuid),
    Message(Uuid),
    /// A recipient's unsubscribe address (`u+<token>@`) or link (`/u/<token>`).
    Unsubscribe(Uuid),
}

impl VerpTarget {
    fn parts(self) -> (u8, Uuid) {
        match self {
            VerpTarget::Recipient(id) => (b'r', id),
            VerpTarget::Message(id) => (b'm', id),
            VerpTarget::Unsubscribe(id) => (b'u', id),
        }
    }

    /// The local-part prefix of addresses for this target.
    pub fn prefix(self) -> &'static str {
        match self {
            VerpTarget::Unsubscribe(_) => UNSUBSCRIBE_PREFIX,
            _ => PREFIX,
        }
    }
}

/// Signs and checks VERP tokens with one instance-wide key.
#[derive(Clone)]
pub struct Verp {
    key: Vec<u8>,
}

/// Why an address is not a valid return path of ours.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerpError {
    #[error("not a VERP address")]
    NotVerp,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
}

impl Verp {
    pub fn new(key: &[u8]) -> Verp {
        Verp { key: key.to_vec() }
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    /// The token for a target.
    pub fn token(&self, target: VerpTarget) -> String {
        let (kind, id) = target.parts();
        let mut bytes = vec![kind];
        bytes.extend_from_slice(id.as_bytes());
        let mut mac = self.mac();
        mac.update(&bytes);
        let tag = mac.finalize().into_bytes();
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        BASE32_NOPAD.encode(&bytes).to_ascii_lowercase()
    }

    /// The envelope sender for a delivery.
    pub fn return_path(&self, target: VerpTarget, host: &str) -> String {
        format!("{}{}@{host}", target.prefix(), self.token(target))
    }

    /// What a return path (or a bare local part) was made for.
    pub fn decode(&self, address: &str) -> Result<VerpTarget, VerpError> {
        let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
        let prefix = local.get(..PREFIX.len()).ok_or(VerpError::NotVerp)?;
        let unsubscribe = prefix.eq_ignore_ascii_case(UNSUBSCRIBE_PREFIX);
        if !unsubscribe && !prefix.eq_ignore_ascii_case(PREFIX) {
            return Err(VerpError::NotVerp);
        }
        let target = self.decode_token(&local[PREFIX.len()..])?;
        // A token is valid only under its own prefix.
        if unsubscribe != matches!(target, VerpTarget::Unsubscribe(_)) {
            return Err(VerpError::Malformed);
        }
        Ok(target)
    }

    /// What a bare token (an unsubscribe link's) was made for.
    pub fn decode_token(&self, token: &str) -> Result<VerpTarget, VerpError> {
        let bytes = BASE32_NOPAD
            .decode(token.to_ascii_uppercase().as_bytes())
            .map_err(|_| VerpError::Malformed)?;
        if bytes.len() != 1 + 16 + MAC_LEN {
            return Err(VerpError::Malformed);
        }
        let (signed, tag) = bytes.split_at(17);
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_truncated_left(tag)
            .map_err(|_| VerpError::BadSignature)?;
        let id = Uuid::from_slice(&signed[1..]).map_err(|_| VerpError::Malformed)?;
        match signed[0] {
            b'r' => Ok(VerpTarget::Recipient(id)),
            b'm' => Ok(VerpTarget::Message(id)),
            b'u' => Ok(VerpTarget::Unsubscribe(id)),
            _ => Err(VerpError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_case() {
        let verp = Verp::new(b"secret key");
        for target in [
            VerpTarget::Recipient(Uuid::now_v7()),
            VerpTarget::Message(Uuid::now_v7()),
            VerpTarget::Unsubscribe(Uuid::now_v7()),
        ] {
            let address = verp.return_path(target, "rp.example.com");
            let local = address.split('@').next().unwrap();
            assert!(local.len() <= 64, "{address}");
            assert_eq!(verp.decode(&address), Ok(target));
            assert_eq!(verp.decode(&address.to_ascii_uppercase()), Ok(target));
        }
    }

    #[test]
    fn refuses_forged_and_foreign_addresses() {
        let verp = Verp::new(b"secret key");
        let other = Verp::new(b"another key");
        let id = VerpTarget::Recipient(Uuid::now_v7());
        assert_eq!(
            verp.decode(&other.return_path(id, "rp.x")),
            Err(VerpError::BadSignature)
        );
        // Same MAC, another id: flip a character of the id part.
        let mut token = verp.token(id).into_bytes();
        token[5] = if token[5] == b'a' { b'b' } else { b'a' };
        let forged = format!("b+{}@rp.x", String::from_utf8(token).unwrap());
        assert_eq!(verp.decode(&forged), Err(VerpError::BadSignature));
        assert_eq!(verp.decode("postmaster@rp.x"), Err(VerpError::NotVerp));
        assert_eq!(verp.decode("b+!!!@rp.x"), Err(VerpError::Malformed));
        assert_eq!(verp.decode("b+abc@rp.x"), Err(VerpError::Malformed));
        assert_eq!(verp.decode(""), Err(VerpError::NotVerp));
        // A token under the other prefix.
        let unsubscribe = verp.token(VerpTarget::Unsubscribe(Uuid::now_v7()));
        assert_eq!(
            verp.decode(&format!("b+{unsubscribe}@rp.x")),
            Err(VerpError::Malformed)
        );
        let bounce = verp.token(id);
        assert_eq!(
            verp.decode(&format!("u+{bounce}@rp.x")),
            Err(VerpError::Malformed)
        );
    }
}
