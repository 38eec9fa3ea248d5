//! The webhook payloads as receivers get them: for each event type, the
//! envelope `{"type", "timestamp", "data"}` and its data. Message payloads
//! are built by the dispatcher from the stored event (`message_payload`);
//! these types are their documentation, listed in the OpenAPI
//! document's `webhooks` section so that generated clients get typed
//! events. The tests check real payloads against these schemas.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::domain::{BounceCategory, BounceType};

/// The SMTP reply an attempt got (or Tern's own, for a failure it decided).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpReply {
    #[schema(example = 250, minimum = 200, maximum = 599)]
    pub code: u16,
    /// The enhanced status code (RFC 3463), when there was one.
    #[schema(example = "2.0.0")]
    pub enhanced_code: Option<String>,
    #[schema(example = "OK queued as 4BCD1")]
    pub text: String,
}

/// The message and recipient an event is about.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageRecipient {
    pub message_id: Uuid,
    pub server_id: Uuid,
    pub recipient_id: Uuid,
    #[schema(example = "user@example.org")]
    pub recipient: String,
    #[schema(example = "welcome")]
    pub tag: Option<String>,
    /// The metadata the message was sent with.
    pub metadata: BTreeMap<String, String>,
}

/// Why a message was held.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeldReason {
    /// The server is in development mode: messages are stored, not sent.
    DevelopmentMode,
}

/// Why a recipient was not sent to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuppressedReason {
    /// The address is on the server's suppression list.
    SuppressionList,
}

/// How Tern learnt of a bounce.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BounceSource {
    /// The receiving server's reply during Tern's own delivery.
    Smtp,
    /// A delivery status notification sent to the return path later.
    Dsn,
}

/// Why Tern gave up on a recipient.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailedReason {
    /// A permanent failure Tern found itself: no mail server (null MX, no
    /// such domain), the message over the receiver's size limit...
    Undeliverable,
    /// The receiver still answered 4xx after the last retry.
    RetriesExhausted,
    /// The attempts never recorded an outcome (the workers stopped).
    AttemptsExhausted,
}

/// `message.held` data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageHeldData {
    #[serde(flatten)]
    pub message: MessageRecipient,
    pub reason: HeldReason,
}

/// `message.suppressed` data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageSuppressedData {
    #[serde(flatten)]
    pub message: MessageRecipient,
    pub reason: SuppressedReason,
}

/// `message.sent` data: the receiving server accepted the message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageSentData {
    #[serde(flatten)]
    pub message: MessageRecipient,
    /// The attempt that succeeded (1 for the first).
    #[schema(minimum = 1)]
    pub attempt: i32,
    /// The server that accepted it.
    #[schema(example = "mx1.example.org")]
    pub host: String,
    /// Whether the connection was encrypted (STARTTLS).
    pub tls: bool,
    pub reply: SmtpReply,
}

/// `message.deferred` data: a temporary failure; Tern tries again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageDeferredData {
    #[serde(flatten)]
    pub message: MessageRecipient,
    #[schema(minimum = 1)]
    pub attempt: i32,
    /// The server that answered; absent when none was reached.
    pub host: Option<String>,
    pub tls: Option<bool>,
    pub reply: SmtpReply,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
}

/// `message.bounced` data: a receiving server refused the message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageBouncedData {
    #[serde(flatten)]
    pub message: MessageRecipient,
    #[schema(minimum = 1)]
    pub attempt: i32,
    pub host: Option<String>,
    pub tls: Option<bool>,
    /// The refusal; its `enhanced_code` is the DSN status.
    pub reply: SmtpReply,
    pub bounce_type: BounceType,
    pub source: BounceSource,
    pub category: BounceCategory,
    /// Whether the address is now on the suppression list (hard bounces
    /// about the address: not policy or message refusals).
    pub suppressed: bool,
    /// `dsn`: the stored report (`GET /v1/messages/{report_id}`).
    pub report_id: Option<Uuid>,
    /// `dsn`: the server that refused it, as the report names it.
    pub remote_mta: Option<String>,
}

/// `message.complained` data: the recipient reported the message as spam
/// (an ARF feedback report from a mailbox provider).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageComplainedData {
    #[serde(flatten)]
    pub message: MessageRecipient,
    /// The report's `Feedback-Type` (`abuse`, `fraud`, `virus`, `other`).
    #[schema(example = "abuse")]
    pub feedback_type: String,
    /// The report's `User-Agent` (the provider's software).
    pub user_agent: Option<String>,
    /// The stored report (`GET /v1/messages/{report_id}`).
    pub report_id: Option<Uuid>,
    /// Whether the address is now on the suppression list (always, so far).
    pub suppressed: bool,
}

/// How a recipient unsubscribed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnsubscribeMethod {
    /// `POST` to the `List-Unsubscribe` URL (RFC 8058), by the mail client.
    OneClick,
    /// The button of the page the URL shows in a browser.
    Page,
    /// Mail to the `List-Unsubscribe` `mailto:` address.
    Mailto,
}

/// `message.unsubscribed` data: the recipient is now suppressed (reason
/// `unsubscribe`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageUnsubscribedData {
    #[serde(flatten)]
    pub message: MessageRecipient,
    pub method: UnsubscribeMethod,
    /// `mailto`: the stored request mail.
    pub report_id: Option<Uuid>,
}

/// `message.failed` data: Tern gave up on the recipient.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageFailedData {
    #[serde(flatten)]
    pub message: MessageRecipient,
    pub attempt: Option<i32>,
    pub host: Option<String>,
    pub tls: Option<bool>,
    /// The last reply, when there was one.
    pub reply: Option<SmtpReply>,
    pub reason: FailedReason,
}

/// `message.opened` data: the open pixel was fetched.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageOpenedData {
    #[serde(flatten)]
    pub message: MessageRecipient,
    /// The recipient's first open.
    pub first: bool,
    /// It looked automatic: a privacy proxy (Apple Mail Privacy
    /// Protection, Gmail's image proxy), a prefetch on delivery, a scanner.
    pub machine: bool,
    pub user_agent: Option<String>,
    /// The client's address, when `tracking.store_ip` is on.
    pub ip: Option<String>,
}

/// `message.clicked` data: a tracked link was followed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageClickedData {
    #[serde(flatten)]
    pub message: MessageRecipient,
    /// The recipient's first click (on any link).
    pub first: bool,
    /// It looked automatic: a link scanner, a prefetch on delivery, `HEAD`.
    pub machine: bool,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// The link's index in the message's HTML (from 0).
    pub link: i32,
    /// Where it led.
    #[schema(example = "https://shop.example.com/orders/1234")]
    pub url: String,
}

/// `webhook.test` data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTestData {
    pub webhook_id: Uuid,
    pub server_id: Uuid,
}

/// Why an endpoint was turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// It answered 410 Gone.
    Gone,
    /// Every attempt failed for `webhooks.disable_after_secs` (three days).
    Failing,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::Gone => "gone",
            DisabledReason::Failing => "failing",
        }
    }

    pub fn parse(text: &str) -> Option<DisabledReason> {
        [DisabledReason::Gone, DisabledReason::Failing]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// `webhook.disabled` data: sent to the server's other endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookDisabledData {
    pub webhook_id: Uuid,
    pub server_id: Uuid,
    pub url: String,
    pub reason: DisabledReason,
    /// Since when it had been failing (`failing`).
    pub failing_since: Option<DateTime<Utc>>,
}

/// The outcome of one sender check (RFC 8601 result names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthResult {
    Pass,
    Fail,
    Softfail,
    Neutral,
    None,
    Temperror,
    Permerror,
}

/// An SPF check of one identity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SpfCheck {
    pub result: AuthResult,
    /// The domain whose record was checked.
    #[schema(example = "example.org")]
    pub domain: String,
}

/// One DKIM signature's check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DkimCheck {
    pub result: AuthResult,
    /// The signing domain (`d=`), when the signature could be read.
    pub domain: Option<String>,
    /// The selector (`s=`).
    pub selector: Option<String>,
}

/// The DMARC check of the From domain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DmarcCheck {
    pub result: AuthResult,
    /// The From header's domain.
    pub domain: String,
    /// The domain's published policy (`none`, `quarantine`, `reject`), if any.
    pub policy: Option<String>,
}

/// The spam scanner's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpamVerdict {
    Ham,
    Spam,
    /// No scanner configured, or it did not answer in time.
    Unknown,
}

/// What Tern checked of a received message and its sender.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboundChecks {
    /// SPF of the MAIL FROM domain (of the HELO name for a null sender).
    pub spf: SpfCheck,
    /// SPF of the HELO name.
    pub spf_helo: SpfCheck,
    /// Every DKIM signature, in order.
    pub dkim: Vec<DkimCheck>,
    pub dmarc: DmarcCheck,
    /// The ARC chain (RFC 8617).
    pub arc: AuthResult,
    /// Forward-confirmed reverse DNS of the client address.
    pub fcrdns: AuthResult,
    /// The client's host name, when FCrDNS passed.
    pub client_name: Option<String>,
    pub spam: SpamVerdict,
    pub spam_score: Option<f64>,
}

/// The SMTP envelope and connection a message came with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboundEnvelope {
    /// `MAIL FROM` (empty for bounces).
    pub mail_from: String,
    /// The `RCPT TO` addresses that reached this route.
    pub rcpt_to: Vec<String>,
    #[schema(example = "192.0.2.10")]
    pub client_ip: String,
    pub helo: String,
    /// Whether the session used STARTTLS.
    pub tls: bool,
}

/// How an `inbound.received` payload carries the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InboundFormat {
    /// The whole message, base64, in `raw`.
    Raw,
    /// Its parts, decoded, in `parsed`.
    Parsed,
}

/// A mailbox of a parsed header.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboundMailbox {
    pub name: Option<String>,
    pub address: Option<String>,
}

/// An attachment (or inline part) of a parsed message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboundAttachment {
    /// Its position among the message's attachments (from 0).
    pub index: usize,
    pub filename: Option<String>,
    #[schema(example = "image/png")]
    pub content_type: String,
    /// For inline parts referred to as `cid:` from the HTML.
    pub content_id: Option<String>,
    pub inline: bool,
    /// Decoded size in bytes.
    pub size: usize,
    /// Base64 of the decoded content; `null` when over the size limit of
    /// payloads (then fetch it from `url` with an API key of the server).
    pub content: Option<String>,
    /// `GET` it with the server's API key: the raw message, for the parts
    /// left out.
    pub url: Option<String>,
}

/// One header field as received (value unfolded, not decoded).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboundHeader {
    pub name: String,
    pub value: String,
}

/// A message taken apart (mail-parser).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboundParsed {
    pub from: Option<InboundMailbox>,
    pub to: Vec<InboundMailbox>,
    pub cc: Vec<InboundMailbox>,
    pub reply_to: Vec<InboundMailbox>,
    pub subject: Option<String>,
    pub date: Option<DateTime<Utc>>,
    /// The `Message-ID` header, without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// The plain-text body (converted from HTML when there is none).
    pub text: Option<String>,
    /// The HTML body; null when the message has none (plain text is not
    /// converted to HTML).
    pub html: Option<String>,
    pub attachments: Vec<InboundAttachment>,
    pub headers: Vec<InboundHeader>,
}

/// `inbound.received` data: a message for one of the server's routes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboundReceivedData {
    /// The stored message (`GET /v1/messages/{message_id}`).
    pub message_id: Uuid,
    pub server_id: Uuid,
    pub route_id: Uuid,
    pub envelope: InboundEnvelope,
    pub checks: InboundChecks,
    /// A check failed that the route's policy accepts but flags.
    pub flagged: bool,
    pub format: InboundFormat,
    /// `raw` format: the message as stored (with Tern's trace headers), base64.
    pub raw: Option<String>,
    /// `parsed` format.
    pub parsed: Option<InboundParsed>,
    /// Size of the stored message in bytes.
    pub size: usize,
}

/// Declares an event's envelope and the one-value type of its `type`.
macro_rules! event {
    ($(#[doc = $doc:literal])* $event:ident, $kind:ident = $name:literal, $data:ty) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $event {
            #[serde(rename = "type")]
            #[schema(inline)]
            pub kind: $kind,
            /// When it happened (RFC 3339, UTC).
            pub timestamp: DateTime<Utc>,
            pub data: $data,
        }

        #[doc = concat!("Always `", $name, "`.")]
        #[derive(Debug, Clone, Copy, Serialize, Deserialize)]
        pub enum $kind {
            #[serde(rename = $name)]
            Value,
        }

        // By hand: the derive does not see a variant's rename made of a
        // macro's literal.
        impl utoipa::PartialSchema for $kind {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$name]))
                    .into()
            }
        }

        impl ToSchema for $kind {}
    };
}

event!(
    /// Accepted on a development server: stored, not delivered.
    MessageHeldEvent, MessageHeldType = "message.held", MessageHeldData
);
event!(
    /// A receiving server accepted the message for a recipient.
    MessageSentEvent, MessageSentType = "message.sent", MessageSentData
);
event!(
    /// A temporary failure for a recipient; Tern tries again later.
    MessageDeferredEvent, MessageDeferredType = "message.deferred", MessageDeferredData
);
event!(
    /// A receiving server refused the message for a recipient.
    MessageBouncedEvent, MessageBouncedType = "message.bounced", MessageBouncedData
);
event!(
    /// Tern gave up on a recipient.
    MessageFailedEvent, MessageFailedType = "message.failed", MessageFailedData
);
event!(
    /// A recipient was not sent to: it is on the suppression list.
    MessageSuppressedEvent, MessageSuppressedType = "message.suppressed", MessageSuppressedData
);
event!(
    /// A recipient reported the message as spam.
    MessageComplainedEvent, MessageComplainedType = "message.complained", MessageComplainedData
);
event!(
    /// A recipient unsubscribed.
    MessageUnsubscribedEvent, MessageUnsubscribedType = "message.unsubscribed", MessageUnsubscribedData
);
event!(
    /// A recipient opened the message (the tracking pixel was fetched).
    MessageOpenedEvent, MessageOpenedType = "message.opened", MessageOpenedData
);
event!(
    /// A recipient followed a tracked link.
    MessageClickedEvent, MessageClickedType = "message.clicked", MessageClickedData
);
event!(
    /// A message arrived for an `endpoint` route.
    InboundReceivedEvent, InboundReceivedType = "inbound.received", InboundReceivedData
);
event!(
    /// Another endpoint of the server was turned off.
    WebhookDisabledEvent, WebhookDisabledType = "webhook.disabled", WebhookDisabledData
);
event!(
    /// Sent by `POST /v1/webhooks/{webhook_id}/test`, to that endpoint only.
    WebhookTestEvent, WebhookTestType = "webhook.test", WebhookTestData
);

/// Every event Tern sends today: its type name, summary and schema name.
pub const DOCUMENTED: [(&str, &str, &str); 13] = [
    (
        "message.held",
        "A message was held (development server)",
        "MessageHeldEvent",
    ),
    (
        "message.sent",
        "A receiving server accepted a message",
        "MessageSentEvent",
    ),
    (
        "message.deferred",
        "A delivery attempt failed for now",
        "MessageDeferredEvent",
    ),
    (
        "message.bounced",
        "A receiving server refused a message",
        "MessageBouncedEvent",
    ),
    (
        "message.failed",
        "Tern gave up on a recipient",
        "MessageFailedEvent",
    ),
    (
        "message.suppressed",
        "A recipient is on the suppression list",
        "MessageSuppressedEvent",
    ),
    (
        "message.complained",
        "A recipient reported a message as spam",
        "MessageComplainedEvent",
    ),
    (
        "message.unsubscribed",
        "A recipient unsubscribed",
        "MessageUnsubscribedEvent",
    ),
    (
        "message.opened",
        "A recipient opened a message",
        "MessageOpenedEvent",
    ),
    (
        "message.clicked",
        "A recipient followed a tracked link",
        "MessageClickedEvent",
    ),
    (
        "webhook.disabled",
        "Another endpoint was turned off",
        "WebhookDisabledEvent",
    ),
    ("webhook.test", "A test event sent on request", "WebhookTestEvent"),
    (
        "inbound.received",
        "A message arrived for an endpoint route",
        "InboundReceivedEvent",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_reads_its_type_and_refuses_another() {
        let event = serde_json::json!({
            "type": "webhook.test",
            "timestamp": "2026-11-30T10:00:00.000000Z",
            "data": {"webhook_id": Uuid::nil(), "server_id": Uuid::nil()},
        });
        let parsed: WebhookTestEvent = serde_json::from_value(event.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap()["type"], "webhook.test");
        let mut other = event;
        other["type"] = "message.sent".into();
        assert!(serde_json::from_value::<WebhookTestEvent>(other).is_err());
    }
}
