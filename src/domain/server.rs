//! Servers and who may manage them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether a server delivers mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ServerMode {
    /// Delivers mail; sending domains must be verified.
    Live,
    /// Never delivers: messages are kept with status `held` for inspection.
    Development,
}

impl ServerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerMode::Live => "live",
            ServerMode::Development => "development",
        }
    }
}

/// What a member may do in an organization.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema, sqlx::Type,
)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Manage servers, domains, keys.
    Admin,
    /// Everything, including members and deleting the organization.
    Owner,
}

impl Role {
    pub fn can_write(self) -> bool {
        self >= Role::Admin
    }
}
