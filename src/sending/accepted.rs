//! The answer to an accepted send: the message's ids and each recipient's
//! first status. Also what an idempotent replay returns.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::messages::NewMessage;
use crate::domain::{RecipientKind, RecipientStatus, SuppressionNote};

/// A recipient as accepted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AcceptedRecipient {
    pub id: Uuid,
    #[schema(example = "jane@example.org")]
    pub address: String,
    pub kind: RecipientKind,
    /// `queued` (live servers), `held` (development servers) or `suppressed`.
    pub status: RecipientStatus,
    /// `suppressed`: the suppression entry (reason, since when).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<SuppressionNote>,
}

/// The answer to a send: the message's id and one entry per recipient.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SendResponse {
    /// Tern's id of the message, for `GET /v1/messages/{id}`.
    pub id: Uuid,
    /// The `Message-ID` header, without angle brackets.
    #[schema(example = "0190f1c2-7b1e-7cc3-9f0a-2b4c6d8e0f12@tern.example.com")]
    pub message_id: String,
    pub recipients: Vec<AcceptedRecipient>,
}

impl SendResponse {
    pub(super) fn for_message(message: &NewMessage) -> SendResponse {
        SendResponse {
            id: message.id,
            message_id: message.message_id.clone(),
            recipients: message
                .recipients
                .iter()
                .map(|r| AcceptedRecipient {
                    id: r.id,
                    address: r.address.clone(),
                    kind: r.kind,
                    status: r.status,
                    suppression: r.suppression.clone(),
                })
                .collect(),
        }
    }
}

/// What [`super::send`] returns.
#[derive(Debug)]
pub struct Accepted {
    pub answer: SendResponse,
    /// The answer of an earlier request with the same idempotency key.
    pub replayed: bool,
}
