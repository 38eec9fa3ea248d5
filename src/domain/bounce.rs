//! What a bounce says: final or not, and what it was about (RFC 3463).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether a bounce is final for the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BounceType {
    /// The receiver refused the message for good (5xx, a failed DSN).
    Hard,
    /// A temporary refusal reported after acceptance (a delayed DSN, a
    /// 4.x.x status), or a full mailbox (5.2.2, temporary in practice).
    Soft,
}

/// What a refusal was about (from RFC 3463's subject and detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BounceCategory {
    /// X.1.x (but X.1.7, X.1.8): the address (no such mailbox, bad
    /// domain, moved).
    BadAddress,
    /// X.2.2: the mailbox is full (soft in practice, even as 5.2.2).
    MailboxFull,
    /// X.2.0, X.2.1: the mailbox is disabled or refuses mail.
    MailboxDisabled,
    /// X.2.3, X.3.4, X.6.x: this message (too big, bad content, encoding).
    Message,
    /// X.7.x, and X.1.7/X.1.8 (the sender's address): policy (spam,
    /// authentication, reputation, blocked).
    Policy,
    /// X.2.4, X.3.x, X.4.x, X.5.x: the receiving system, routing or the
    /// protocol; says nothing of the address.
    Network,
    /// Anything else, or no enhanced code.
    Other,
}

impl BounceCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            BounceCategory::BadAddress => "bad_address",
            BounceCategory::MailboxFull => "mailbox_full",
            BounceCategory::MailboxDisabled => "mailbox_disabled",
            BounceCategory::Message => "message",
            BounceCategory::Policy => "policy",
            BounceCategory::Network => "network",
            BounceCategory::Other => "other",
        }
    }
}
