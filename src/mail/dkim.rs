//! DKIM signing (RFC 6376) with a per-domain cache of parsed keys: parsing
//! and checking an RSA key costs more than a signature.

use std::sync::Arc;

use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use uuid::Uuid;

use crate::domain::{DkimAlgorithm, Redacted, SigningDomain};

/// Headers Tern signs. The fields a reader sees are listed twice
/// ("oversigned", RFC 6376 §8.15): the second, absent entry signs their
/// absence, so a second copy added in transit breaks the signature.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "Reply-To",
    "Reply-To",
    "Subject",
    "Subject",
    "Date",
    "Date",
    "Message-ID",
    "Message-ID",
    "To",
    "To",
    "Cc",
    "Cc",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
];

type Signer = DkimSigner<DkimKey, Done>;

/// Why a message could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("stored DKIM key of domain {0} cannot be loaded: {1}")]
    BadKey(String, String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Parsed signers by domain id, the least used evicted past the limit.
/// Keys never change under a domain id (a new key means a new domain row),
/// so entries never go stale.
pub struct SignerCache {
    signers: moka::sync::Cache<Uuid, Arc<Signer>>,
}

/// Signers kept; each holds a parsed key (an RSA-2048 key is a few KB).
const CACHE_LIMIT: u64 = 10_000;

impl Default for SignerCache {
    fn default() -> Self {
        SignerCache {
            signers: moka::sync::Cache::new(CACHE_LIMIT),
        }
    }
}

impl SignerCache {
    /// Signs `message` for `domain`; returns the `DKIM-Signature` header
    /// line(s) followed by the message. `unseal` gives the domain's PKCS#8
    /// key from its sealed form, on a cache miss only.
    pub fn sign(
        &self,
        domain: &SigningDomain,
        unseal: impl FnOnce(&SigningDomain) -> Result<Redacted<Vec<u8>>, String>,
        message: &[u8],
    ) -> Result<Vec<u8>, DkimError> {
        let signer = self.signer(domain, unseal)?;
        let signature = signer.sign(message).map_err(|e| DkimError::Sign(e.to_string()))?;
        let header = signature.to_header();
        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        Ok(out)
    }

    fn signer(
        &self,
        domain: &SigningDomain,
        unseal: impl FnOnce(&SigningDomain) -> Result<Redacted<Vec<u8>>, String>,
    ) -> Result<Arc<Signer>, DkimError> {
        if let Some(found) = self.signers.get(&domain.id) {
            return Ok(found);
        }
        let key = unseal(domain).map_err(|e| DkimError::BadKey(domain.name.clone(), e))?;
        let signer = Arc::new(load(domain, key.expose())?);
        self.signers.insert(domain.id, signer.clone());
        Ok(signer)
    }
}

fn load(domain: &SigningDomain, pkcs8: &[u8]) -> Result<Signer, DkimError> {
    let bad = |e: mail_auth::Error| DkimError::BadKey(domain.name.clone(), e.to_string());
    let key: DkimKey = match domain.dkim_algorithm {
        DkimAlgorithm::Rsa => {
            RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)))
                .map_err(bad)?
                .into()
        }
        DkimAlgorithm::Ed25519 => Ed25519Key::from_pkcs8_der(pkcs8).map_err(bad)?.into(),
    };
    Ok(DkimSigner::from_key(key)
        .domain(domain.name.clone())
        .selector(domain.dkim_selector.clone())
        .headers(SIGNED_HEADERS.iter().copied())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed))
}
