//! The kinds of event Tern publishes to webhook endpoints, with their
//! stable names. Some are reserved for parts still to come (tracking,
//! complaints, inbound mail, domain checks): the names are fixed now so
//! that endpoints can subscribe to them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A webhook event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    /// Accepted on a development server: stored, not delivered.
    #[serde(rename = "message.held")]
    MessageHeld,
    /// A receiving server accepted the message for a recipient.
    #[serde(rename = "message.sent")]
    MessageSent,
    /// A temporary failure; Tern tries again later.
    #[serde(rename = "message.deferred")]
    MessageDeferred,
    /// A receiving server refused the message for a recipient.
    #[serde(rename = "message.bounced")]
    MessageBounced,
    /// Tern gave up (retries exhausted, or a permanent failure of its own).
    #[serde(rename = "message.failed")]
    MessageFailed,
    /// Not sent: the recipient is on the server's suppression list.
    #[serde(rename = "message.suppressed")]
    MessageSuppressed,
    /// A recipient marked the message as spam (a feedback report).
    #[serde(rename = "message.complained")]
    MessageComplained,
    /// The message was opened (tracking pixel).
    #[serde(rename = "message.opened")]
    MessageOpened,
    /// A tracked link was clicked.
    #[serde(rename = "message.clicked")]
    MessageClicked,
    /// The recipient unsubscribed (List-Unsubscribe).
    #[serde(rename = "message.unsubscribed")]
    MessageUnsubscribed,
    /// Reserved: mail arrived through an inbound route.
    #[serde(rename = "inbound.received")]
    InboundReceived,
    /// Reserved: a sending domain's DNS check failed.
    #[serde(rename = "domain.verification_failed")]
    DomainVerificationFailed,
    /// Another webhook endpoint of the server was turned off: it answered
    /// 410 Gone, or failed for `webhooks.disable_after_secs`.
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
}

impl EventType {
    /// Every type, in documentation order.
    pub const ALL: [EventType; 13] = [
        EventType::MessageHeld,
        EventType::MessageSent,
        EventType::MessageDeferred,
        EventType::MessageBounced,
        EventType::MessageFailed,
        EventType::MessageSuppressed,
        EventType::MessageComplained,
        EventType::MessageOpened,
        EventType::MessageClicked,
        EventType::MessageUnsubscribed,
        EventType::InboundReceived,
        EventType::DomainVerificationFailed,
        EventType::WebhookDisabled,
    ];

    /// The stable name, as in payloads and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MessageHeld => "message.held",
            EventType::MessageSent => "message.sent",
            EventType::MessageDeferred => "message.deferred",
            EventType::MessageBounced => "message.bounced",
            EventType::MessageFailed => "message.failed",
            EventType::MessageSuppressed => "message.suppressed",
            EventType::MessageComplained => "message.complained",
            EventType::MessageOpened => "message.opened",
            EventType::MessageClicked => "message.clicked",
            EventType::MessageUnsubscribed => "message.unsubscribed",
            EventType::InboundReceived => "inbound.received",
            EventType::DomainVerificationFailed => "domain.verification_failed",
            EventType::WebhookDisabled => "webhook.disabled",
        }
    }

    /// The type of a stable name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde() {
        for t in EventType::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), t);
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("message.nope"), None);
    }
}
