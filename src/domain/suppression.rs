//! Why an address is on a server's suppression list.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The receiver refused the address for good (a 5xx about the address,
    /// during delivery or in a DSN).
    HardBounce,
    /// The recipient reported a message as spam (a feedback report).
    Complaint,
    /// The recipient unsubscribed (List-Unsubscribe).
    Unsubscribe,
    /// Added through the API.
    Manual,
}

impl SuppressionReason {
    pub const ALL: [SuppressionReason; 4] = [
        SuppressionReason::HardBounce,
        SuppressionReason::Complaint,
        SuppressionReason::Unsubscribe,
        SuppressionReason::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::HardBounce => "hard_bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::Unsubscribe => "unsubscribe",
            SuppressionReason::Manual => "manual",
        }
    }

    pub fn parse(text: &str) -> Option<SuppressionReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Why a recipient was not sent to: its suppression entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SuppressionNote {
    pub reason: SuppressionReason,
    /// When the address was suppressed.
    pub since: chrono::DateTime<chrono::Utc>,
    /// When the entry stops counting; `null`: never.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A suppressed address with its entry (what a send looks up).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SuppressedAddress {
    pub address: String,
    #[serde(flatten)]
    pub note: SuppressionNote,
}
