//! The state of one DNS record of a sending domain.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Result of the last check of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// Not checked yet.
    Pending,
    /// Found as expected.
    Ok,
    /// Not published.
    Missing,
    /// Published with another value.
    Mismatch,
    /// The lookup failed (timeout, SERVFAIL); try again.
    Error,
}

impl RecordStatus {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Pending => "pending",
            RecordStatus::Ok => "ok",
            RecordStatus::Missing => "missing",
            RecordStatus::Mismatch => "mismatch",
            RecordStatus::Error => "error",
        }
    }
}

/// Per-record results of a sending domain's DNS check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckResult {
    pub spf: RecordStatus,
    pub dkim: RecordStatus,
    pub return_path: RecordStatus,
    pub dmarc: RecordStatus,
    pub mx: RecordStatus,
    /// SPF, DKIM and the return path are all [`RecordStatus::Ok`].
    pub verified: bool,
}

/// A sending domain as DNS sees it: what it must publish, and how its last
/// check went.
#[derive(Debug, Clone, Copy)]
pub struct DomainDns<'a> {
    pub name: &'a str,
    pub dkim_algorithm: super::DkimAlgorithm,
    pub dkim_selector: &'a str,
    /// Base64 of the public key, as published in the `p=` tag.
    pub dkim_public_key: &'a str,
    pub return_path_host: &'a str,
    /// Whether a route receives mail at the domain (it then needs an MX
    /// record pointing at Tern).
    pub receiving: bool,
    pub last_check: CheckResult,
}
