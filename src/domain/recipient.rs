//! Recipients: how one was addressed, where its delivery stands, and the
//! de-duplicated, bounded set of a message's recipients.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{EmailAddress, Invalid};

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum RecipientStatus {
    /// Waiting for delivery.
    Queued,
    /// Kept, never delivered (development servers).
    Held,
    /// Accepted by the receiving server.
    Sent,
    /// Temporarily failed; will be retried.
    Deferred,
    /// Permanently rejected by the receiving server.
    Bounced,
    /// Given up after the retry schedule ran out.
    Failed,
    /// Not sent: the address is on the server's suppression list.
    Suppressed,
}

impl RecipientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientStatus::Queued => "queued",
            RecipientStatus::Held => "held",
            RecipientStatus::Sent => "sent",
            RecipientStatus::Deferred => "deferred",
            RecipientStatus::Bounced => "bounced",
            RecipientStatus::Failed => "failed",
            RecipientStatus::Suppressed => "suppressed",
        }
    }
}

/// How a recipient was addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum RecipientKind {
    To,
    Cc,
    Bcc,
    /// Given only in the envelope of a raw message.
    Envelope,
}

impl RecipientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientKind::To => "to",
            RecipientKind::Cc => "cc",
            RecipientKind::Bcc => "bcc",
            RecipientKind::Envelope => "envelope",
        }
    }
}

/// Collects recipients in order, dropping later duplicates (compared
/// case-insensitively) so each address gets one delivery.
#[derive(Debug, Default)]
pub struct RecipientSet {
    list: Vec<(EmailAddress, RecipientKind)>,
    /// Lower-cased addresses in `list`: adding stays linear in the input
    /// (it runs on input before authentication).
    seen: HashSet<String>,
}

impl RecipientSet {
    pub fn add(&mut self, address: EmailAddress, kind: RecipientKind) {
        if self.seen.insert(address.to_string().to_lowercase()) {
            self.list.push((address, kind));
        }
    }

    /// The recipients, first occurrence first.
    pub fn iter(&self) -> impl Iterator<Item = &(EmailAddress, RecipientKind)> {
        self.list.iter()
    }

    /// Refuses an empty or oversized set; `field` names it in the error.
    pub fn check(&self, max: usize, field: &str) -> Result<(), Invalid> {
        if self.list.is_empty() {
            return Err(Invalid::new("no_recipients", "give at least one recipient").field(field));
        }
        if self.list.len() > max {
            return Err(Invalid::too_large(
                "too_many_recipients",
                format!(
                    "{} recipients exceed the limit of {max} (limits.max_recipients)",
                    self.list.len()
                ),
            )
            .field(field));
        }
        Ok(())
    }
}
