//! Sending domains: DKIM keys and the DNS records to publish.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::UserSession;
use super::extract::{ApiJson, ApiPath, require_write};
use super::servers::visible as visible_server;
use crate::api::error::{ApiError, ErrorBody, ResultExt};
use crate::db;
use crate::db::domains::{DomainRow, NewDomain};
use crate::dns::records::{self, DnsRecord};
use crate::domain::DkimAlgorithm;
use crate::domain::DomainName;
use crate::mail::keys;
use crate::state::AppState;

/// Input for adding a sending domain.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "mail.example.com", "dkim_algorithm": "ed25519"}))]
pub struct CreateDomain {
    /// A domain name of at least two labels.
    #[schema(
        example = "example.com",
        max_length = 253,
        pattern = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
    )]
    pub name: String,
    /// Defaults to `rsa` (RSA-2048), which every receiver verifies.
    #[serde(default = "rsa")]
    pub dkim_algorithm: DkimAlgorithm,
    /// DKIM selector (one DNS label); default `tern-` and six random hex digits.
    #[schema(max_length = 63, pattern = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")]
    pub dkim_selector: Option<String>,
}

fn rsa() -> DkimAlgorithm {
    DkimAlgorithm::Rsa
}

/// A sending domain with the records its owner must publish.
#[derive(Serialize, ToSchema)]
pub struct DomainView {
    pub id: Uuid,
    pub server_id: Uuid,
    #[schema(example = "example.com")]
    pub name: String,
    pub dkim_algorithm: DkimAlgorithm,
    #[schema(example = "tern-3fa9c1")]
    pub dkim_selector: String,
    /// SPF, DKIM and return path all checked and found.
    pub verified: bool,
    pub verified_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub dns_records: Vec<DnsRecord>,
}

/// Domains of a server.
#[derive(Serialize, ToSchema)]
pub struct DomainList {
    pub data: Vec<DomainView>,
}

fn view(state: &AppState, d: DomainRow) -> DomainView {
    DomainView {
        dns_records: records::for_domain(&d.dns(), &state.settings),
        id: d.id,
        server_id: d.server_id,
        name: d.name,
        dkim_algorithm: d.dkim_algorithm,
        dkim_selector: d.dkim_selector,
        verified: d.verified_at.is_some(),
        verified_at: d.verified_at,
        last_checked_at: d.last_checked_at,
        created_at: d.created_at,
    }
}

async fn visible(state: &AppState, user: Uuid, id: Uuid) -> Result<DomainRow, ApiError> {
    db::domains::get_for_user(&state.db, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("domain"))
}

fn selector(input: Option<&str>) -> Result<String, ApiError> {
    match input {
        None => Ok(format!("tern-{}", hex::encode(rand::random::<[u8; 3]>()))),
        Some(s) => match DomainName::parse(s) {
            Ok(label) if !label.as_str().contains('.') && label.as_str().len() <= 63 => Ok(label.to_string()),
            _ => Err(
                ApiError::unprocessable("invalid_selector", "the DKIM selector must be one DNS label")
                    .field("dkim_selector"),
            ),
        },
    }
}

/// Lists a server's sending domains.
#[utoipa::path(get, path = "/v1/servers/{server_id}/domains", operation_id = "list_domains", tag = "domains",
    security(("session" = [])), params(("server_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = DomainList), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn list_domains(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
) -> Result<Json<DomainList>, ApiError> {
    visible_server(&state, session.user_id, server).await?;
    let data = db::domains::list(&state.db, session.user_id, server)
        .await?
        .into_iter()
        .map(|d| view(&state, d))
        .collect();
    Ok(Json(DomainList { data }))
}

/// Adds a sending domain and generates its DKIM key (owner or admin).
#[utoipa::path(post, path = "/v1/servers/{server_id}/domains", operation_id = "create_domain", tag = "domains",
    security(("session" = [])), params(("server_id" = Uuid, Path)), request_body = CreateDomain,
    responses((status = 201, description = "Created", body = DomainView), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody),
        (status = 409, description = "The server has this domain already", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn create_domain(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(server): ApiPath<Uuid>,
    ApiJson(input): ApiJson<CreateDomain>,
) -> Result<(StatusCode, Json<DomainView>), ApiError> {
    require_write(visible_server(&state, session.user_id, server).await?.role)?;
    let name = DomainName::parse(&input.name)
        .ok()
        .filter(|n| n.as_str().contains('.'))
        .ok_or_else(|| {
            ApiError::unprocessable("invalid_domain", "`name` is not a valid domain name").field("name")
        })?;
    let selector = selector(input.dkim_selector.as_deref())?;
    let algorithm = input.dkim_algorithm;
    let key = tokio::task::spawn_blocking(move || keys::generate(algorithm))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    let return_path_host = format!("{}.{}", state.settings.dns.return_path_prefix, name);
    let id = Uuid::now_v7();
    let sealed = state.sealing()?.seal(&key.private_pkcs8, id.as_bytes());
    let domain = db::domains::create(
        &state.db,
        session.user_id,
        NewDomain {
            id,
            server_id: server,
            name: name.as_str(),
            algorithm,
            selector: &selector,
            sealed_private_key: &sealed,
            public_key: &key.public_b64,
            return_path_host: &return_path_host,
        },
    )
    .await
    .on_unique_violation("domain_exists", "this server has that domain already")?;
    Ok((StatusCode::CREATED, Json(view(&state, domain))))
}

/// Gets a domain with its DNS records and their last check.
#[utoipa::path(get, path = "/v1/domains/{domain_id}", operation_id = "get_domain", tag = "domains",
    security(("session" = [])), params(("domain_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = DomainView), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn get_domain(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DomainView>, ApiError> {
    Ok(Json(view(&state, visible(&state, session.user_id, id).await?)))
}

/// Deletes a sending domain and its key (owner or admin).
#[utoipa::path(delete, path = "/v1/domains/{domain_id}", operation_id = "delete_domain", tag = "domains",
    security(("session" = [])), params(("domain_id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn delete_domain(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_write(visible(&state, session.user_id, id).await?.role)?;
    db::domains::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Looks the domain's records up in DNS now and stores the result.
#[utoipa::path(post, path = "/v1/domains/{domain_id}/verify", operation_id = "verify_domain", tag = "domains",
    security(("session" = [])), params(("domain_id" = Uuid, Path)),
    responses((status = 200, description = "Checked; see each record's status", body = DomainView),
        (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn verify_domain(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DomainView>, ApiError> {
    let domain = visible(&state, session.user_id, id).await?;
    require_write(domain.role)?;
    let result = crate::dns::verify::check(&state.resolver, &domain.dns(), &state.settings).await;
    db::domains::record_check(&state.db, id, &result).await?;
    Ok(Json(view(&state, visible(&state, session.user_id, id).await?)))
}
