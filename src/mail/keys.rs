//! DKIM key pairs for new sending domains.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_auth::common::crypto::Ed25519Key;

use crate::domain::DkimAlgorithm;

/// A generated key: PKCS#8 private key and the DNS `p=` value.
pub struct GeneratedKey {
    pub private_pkcs8: Vec<u8>,
    /// Base64 of the SubjectPublicKeyInfo (RSA) or raw key (Ed25519,
    /// RFC 8463 §4), as published in the DKIM TXT record.
    pub public_b64: String,
}

/// Generates a key pair. RSA-2048 takes tens of milliseconds: call from a
/// blocking task.
pub fn generate(algorithm: DkimAlgorithm) -> anyhow::Result<GeneratedKey> {
    match algorithm {
        DkimAlgorithm::Rsa => {
            let pair = KeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
            let private = pair
                .as_der()
                .map_err(|_| anyhow::anyhow!("RSA key encoding failed"))?;
            let public = aws_lc_rs::signature::KeyPair::public_key(&pair)
                .as_der()
                .map_err(|_| anyhow::anyhow!("RSA public key encoding failed"))?;
            Ok(GeneratedKey {
                private_pkcs8: private.as_ref().to_vec(),
                public_b64: STANDARD.encode(public.as_ref()),
            })
        }
        DkimAlgorithm::Ed25519 => {
            let pkcs8 = Ed25519Key::generate_pkcs8()
                .map_err(|e| anyhow::anyhow!("Ed25519 key generation failed: {e}"))?;
            let key = Ed25519Key::from_pkcs8_der(&pkcs8)
                .map_err(|e| anyhow::anyhow!("Ed25519 key encoding failed: {e}"))?;
            Ok(GeneratedKey {
                public_b64: STANDARD.encode(key.public_key()),
                private_pkcs8: pkcs8,
            })
        }
    }
}

/// The TXT record value for a public key.
pub fn dkim_record(algorithm: DkimAlgorithm, public_b64: &str) -> String {
    let k = match algorithm {
        DkimAlgorithm::Rsa => "rsa",
        DkimAlgorithm::Ed25519 => "ed25519",
    };
    format!("v=DKIM1; k={k}; p={public_b64}")
}
