//! What signing a message for a sending domain needs.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The DKIM signing algorithm of a domain's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    /// RSA-2048 with SHA-256 (`rsa-sha256`), understood by every receiver.
    Rsa,
    /// Ed25519 with SHA-256 (`ed25519-sha256`, RFC 8463).
    Ed25519,
}

/// A sending domain as the signer needs it: its key and whether it passed
/// its DNS check.
#[derive(Debug, Clone)]
pub struct SigningDomain {
    pub id: Uuid,
    pub name: String,
    pub dkim_algorithm: DkimAlgorithm,
    pub dkim_selector: String,
    /// The PKCS#8 DER private key, sealed (`crate::sealing`) to the
    /// domain's id.
    pub sealed_dkim_key: super::Redacted<Vec<u8>>,
    pub verified: bool,
}
