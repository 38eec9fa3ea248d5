//! The SMTP server's IP rules: installation-wide, so only instance
//! administrators (`tern admin create-user --instance-admin`) see and
//! change them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, UserSession};
use crate::api::error::{ApiError, ErrorBody};
use crate::db;
use crate::db::smtp_rules::IpRuleRow;
use crate::domain::Invalid;
use crate::state::AppState;

/// What a rule does to the clients it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IpRuleAction {
    /// Refused at connect with `554 5.7.1`.
    Block,
    /// Never blocked, and not looked up in DNS blocklists.
    Allow,
}

/// An IP rule of the SMTP server.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IpRule {
    pub id: Uuid,
    /// CIDR notation.
    #[schema(example = "192.0.2.0/24")]
    pub network: String,
    pub action: IpRuleAction,
    pub note: String,
    pub created_at: DateTime<Utc>,
}

impl From<IpRuleRow> for IpRule {
    fn from(row: IpRuleRow) -> Self {
        IpRule {
            id: row.id,
            network: row.network,
            action: if row.action == "allow" {
                IpRuleAction::Allow
            } else {
                IpRuleAction::Block
            },
            note: row.note,
            created_at: row.created_at,
        }
    }
}

/// Input for a new rule.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"network": "192.0.2.0/24", "action": "block", "note": "spam run"}))]
pub struct CreateIpRule {
    /// An address or a CIDR network, IPv4 or IPv6.
    #[schema(max_length = 64)]
    pub network: String,
    pub action: IpRuleAction,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub note: String,
}

/// Every rule.
#[derive(Serialize, ToSchema)]
pub struct IpRuleList {
    pub data: Vec<IpRule>,
}

async fn require_instance_admin(state: &AppState, session: &UserSession) -> Result<(), ApiError> {
    if db::users::is_instance_admin(&state.db, session.user_id).await? {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "not_instance_admin",
            "only instance administrators manage the SMTP server's IP rules",
        ))
    }
}

/// The network in canonical CIDR form, or why it is not one.
fn network(text: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::from(
            Invalid::new(
                "invalid_network",
                "`network` must be an IP address or a CIDR network",
            )
            .field("network"),
        )
    };
    let (address, prefix) = match text.trim().split_once('/') {
        Some((address, prefix)) => (address, Some(prefix.parse::<u8>().map_err(|_| invalid())?)),
        None => (text.trim(), None),
    };
    let ip: std::net::IpAddr = address.parse().map_err(|_| invalid())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    if prefix > max {
        return Err(invalid());
    }
    // The host bits must be zero, as PostgreSQL's cidr requires.
    let masked = match ip {
        std::net::IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            std::net::IpAddr::from((u32::from(v4) & mask).to_be_bytes())
        }
        std::net::IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            std::net::IpAddr::from((u128::from(v6) & mask).to_be_bytes())
        }
    };
    if masked != ip {
        return Err(invalid());
    }
    Ok(format!("{ip}/{prefix}"))
}

/// Lists the IP rules (instance administrators).
#[utoipa::path(get, path = "/v1/smtp/ip-rules", operation_id = "list_ip_rules", tag = "smtp",
    security(("session" = [])),
    responses((status = 200, description = "OK", body = IpRuleList),
        (status = 403, description = "Not an instance administrator", body = ErrorBody)))]
pub async fn list_ip_rules(
    State(state): State<AppState>,
    session: UserSession,
) -> Result<Json<IpRuleList>, ApiError> {
    require_instance_admin(&state, &session).await?;
    let data = db::smtp_rules::list(&state.db).await?;
    Ok(Json(IpRuleList {
        data: data.into_iter().map(IpRule::from).collect(),
    }))
}

/// Adds an IP rule (instance administrators); it applies from the next
/// connection on.
#[utoipa::path(post, path = "/v1/smtp/ip-rules", operation_id = "create_ip_rule", tag = "smtp",
    security(("session" = [])), request_body = CreateIpRule,
    responses((status = 201, description = "Created", body = IpRule),
        (status = 403, description = "Not an instance administrator", body = ErrorBody),
        (status = 409, description = "The network has a rule already (`ip_rule_exists`)", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn create_ip_rule(
    State(state): State<AppState>,
    session: UserSession,
    ApiJson(input): ApiJson<CreateIpRule>,
) -> Result<(StatusCode, Json<IpRule>), ApiError> {
    require_instance_admin(&state, &session).await?;
    let network = network(&input.network)?;
    let note = input.note.trim();
    if note.chars().count() > 200 || note.chars().any(char::is_control) {
        return Err(Invalid::new(
            "invalid_note",
            "`note` must be at most 200 characters without control characters",
        )
        .field("note")
        .into());
    }
    let action = match input.action {
        IpRuleAction::Block => "block",
        IpRuleAction::Allow => "allow",
    };
    let row = db::smtp_rules::create(&state.db, &network, action, note)
        .await?
        .ok_or_else(|| ApiError::conflict("ip_rule_exists", format!("{network} has a rule already")))?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Deletes an IP rule (instance administrators).
#[utoipa::path(delete, path = "/v1/smtp/ip-rules/{rule_id}", operation_id = "delete_ip_rule", tag = "smtp",
    security(("session" = [])), params(("rule_id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not an instance administrator", body = ErrorBody)))]
pub async fn delete_ip_rule(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_instance_admin(&state, &session).await?;
    if db::smtp_rules::delete(&state.db, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("IP rule"))
    }
}

#[cfg(test)]
mod tests {
    use super::network;

    #[test]
    fn networks_are_canonical_cidrs() {
        assert_eq!(network("192.0.2.7").unwrap(), "192.0.2.7/32");
        assert_eq!(network("192.0.2.0/24").unwrap(), "192.0.2.0/24");
        assert_eq!(network("2001:db8::/32").unwrap(), "2001:db8::/32");
        assert_eq!(network("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        for bad in ["192.0.2.7/24", "192.0.2.0/33", "example.org", "1.2.3.4/x", ""] {
            assert!(network(bad).is_err(), "{bad}");
        }
    }
}
