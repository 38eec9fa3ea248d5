//! What a caller asks Tern to send, after its own parsing and validation:
//! a message to compose (JSON sends) or a complete RFC 5322 message (raw
//! sends, and later SMTP submission).

use crate::domain::{DomainName, EmailAddress, RecipientSet};
use crate::mail::build::Composition;
use crate::mail::raw::RawInfo;

/// A validated send request.
pub enum Request {
    Compose(Compose),
    Raw(RawSubmission),
}

/// A message for Tern to build: every field checked, nothing looked up.
pub struct Compose {
    /// Headers and parts; custom headers already checked against the
    /// reserved list.
    pub content: Composition,
    /// To, Cc and Bcc, de-duplicated.
    pub recipients: RecipientSet,
    pub tag: Option<String>,
    /// A JSON object of strings.
    pub metadata: serde_json::Value,
    /// `List-Unsubscribe` asked for (or refused); `None`: the server's default.
    pub unsubscribe: Option<bool>,
    /// Opens and clicks asked for (or refused); `None`: the server's default.
    pub track_opens: Option<bool>,
    pub track_clicks: Option<bool>,
}

/// A complete message with its envelope, its headers already inspected.
pub struct RawSubmission {
    pub mail_from: EmailAddress,
    pub recipients: RecipientSet,
    /// The message as submitted (line ends not yet normalised).
    pub message: Vec<u8>,
    pub info: RawInfo,
    pub tag: Option<String>,
    pub metadata: serde_json::Value,
    pub unsubscribe: Option<bool>,
}

impl Request {
    /// The domain the message is sent as (the From header's): it must be a
    /// sending domain of the server.
    pub fn sender_domain(&self) -> &DomainName {
        match self {
            Request::Compose(c) => c.content.from.address.domain(),
            Request::Raw(r) => r.info.from.address.domain(),
        }
    }

    /// Where the sender is given, for errors about its domain.
    pub fn sender_field(&self) -> &'static str {
        match self {
            Request::Compose(_) => "from",
            Request::Raw(_) => "raw",
        }
    }

    /// Where the recipients are given, for errors about them.
    pub fn recipients_field(&self) -> &'static str {
        match self {
            Request::Compose(_) => "to",
            Request::Raw(_) => "rcpt_to",
        }
    }

    pub fn recipients(&self) -> &RecipientSet {
        match self {
            Request::Compose(c) => &c.recipients,
            Request::Raw(r) => &r.recipients,
        }
    }
}
