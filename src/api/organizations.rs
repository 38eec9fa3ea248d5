//! Organizations and their members.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::UserSession;
use super::extract::{ApiJson, ApiPath, require_write, valid_name};
use crate::api::error::{ApiError, ErrorBody};
use crate::db;
use crate::db::organizations::OrganizationRow;
use crate::domain::Role;
use crate::state::AppState;

/// An organization, with the caller's role in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Organization {
    pub id: Uuid,
    #[schema(example = "Acme Inc.")]
    pub name: String,
    /// The calling user's role.
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<db::organizations::OrganizationRow> for Organization {
    fn from(row: db::organizations::OrganizationRow) -> Self {
        Organization {
            id: row.id,
            name: row.name,
            role: row.role,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A user's membership of an organization.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<db::organizations::MemberRow> for Member {
    fn from(row: db::organizations::MemberRow) -> Self {
        Member {
            user_id: row.user_id,
            email: row.email,
            name: row.name,
            role: row.role,
            created_at: row.created_at,
        }
    }
}

/// Input for creating or renaming an organization.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme Inc."}))]
pub struct OrganizationInput {
    /// 1 to 100 characters (after trimming), no control characters.
    #[schema(
        example = "Acme Inc.",
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
}

/// Organizations the caller belongs to.
#[derive(Serialize, ToSchema)]
pub struct OrganizationList {
    pub data: Vec<Organization>,
}

/// Members of an organization.
#[derive(Serialize, ToSchema)]
pub struct MemberList {
    pub data: Vec<Member>,
}

/// Adds an existing user to an organization, or changes their role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "colleague@example.com", "role": "viewer"}))]
pub struct MemberInput {
    /// An existing user's email address.
    #[schema(example = "colleague@example.com", min_length = 1, max_length = 254)]
    pub email: String,
    pub role: Role,
}

/// The organization if the caller is a member, else a 404.
pub async fn visible(state: &AppState, user: Uuid, id: Uuid) -> Result<OrganizationRow, ApiError> {
    db::organizations::get_for_user(&state.db, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))
}

fn require_owner(role: Role) -> Result<(), ApiError> {
    if role == Role::Owner {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "insufficient_role",
            "only an owner can do this",
        ))
    }
}

/// Lists the caller's organizations.
#[utoipa::path(get, path = "/v1/organizations", operation_id = "list_organizations", tag = "organizations",
    security(("session" = [])),
    responses((status = 200, description = "OK", body = OrganizationList), (status = 401, description = "Missing or invalid credentials", body = ErrorBody)))]
pub async fn list_organizations(
    State(state): State<AppState>,
    session: UserSession,
) -> Result<Json<OrganizationList>, ApiError> {
    let data = db::organizations::list_for_user(&state.db, session.user_id).await?;
    Ok(Json(OrganizationList {
        data: data.into_iter().map(Organization::from).collect(),
    }))
}

/// Creates an organization; the caller becomes its owner.
#[utoipa::path(post, path = "/v1/organizations", operation_id = "create_organization", tag = "organizations",
    security(("session" = [])), request_body = OrganizationInput,
    responses((status = 201, description = "Created", body = Organization), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn create_organization(
    State(state): State<AppState>,
    session: UserSession,
    ApiJson(input): ApiJson<OrganizationInput>,
) -> Result<(StatusCode, Json<Organization>), ApiError> {
    let name = valid_name("name", &input.name)?;
    let org = db::organizations::create(&state.db, session.user_id, &name).await?;
    Ok((StatusCode::CREATED, Json(org.into())))
}

/// Gets one organization.
#[utoipa::path(get, path = "/v1/organizations/{organization_id}", operation_id = "get_organization", tag = "organizations",
    security(("session" = [])), params(("organization_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = Organization), (status = 401, description = "Missing or invalid credentials", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn get_organization(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Organization>, ApiError> {
    Ok(Json(visible(&state, session.user_id, id).await?.into()))
}

/// Renames an organization (owner or admin).
#[utoipa::path(patch, path = "/v1/organizations/{organization_id}", operation_id = "update_organization", tag = "organizations",
    security(("session" = [])), params(("organization_id" = Uuid, Path)), request_body = OrganizationInput,
    responses((status = 200, description = "OK", body = Organization), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn update_organization(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<OrganizationInput>,
) -> Result<Json<Organization>, ApiError> {
    let org = visible(&state, session.user_id, id).await?;
    require_write(org.role)?;
    let name = valid_name("name", &input.name)?;
    db::organizations::rename(&state.db, id, &name).await?;
    Ok(Json(visible(&state, session.user_id, id).await?.into()))
}

/// Deletes an organization with everything in it (owner only).
#[utoipa::path(delete, path = "/v1/organizations/{organization_id}", operation_id = "delete_organization", tag = "organizations",
    security(("session" = [])), params(("organization_id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn delete_organization(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let org = visible(&state, session.user_id, id).await?;
    require_owner(org.role)?;
    db::organizations::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the members of an organization.
#[utoipa::path(get, path = "/v1/organizations/{organization_id}/members", operation_id = "list_members", tag = "organizations",
    security(("session" = [])), params(("organization_id" = Uuid, Path)),
    responses((status = 200, description = "OK", body = MemberList), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<MemberList>, ApiError> {
    visible(&state, session.user_id, id).await?;
    let data = db::organizations::members(&state.db, id).await?;
    Ok(Json(MemberList {
        data: data.into_iter().map(Member::from).collect(),
    }))
}

/// Adds an existing user as a member, or changes a member's role (owner only).
#[utoipa::path(post, path = "/v1/organizations/{organization_id}/members", operation_id = "add_member", tag = "organizations",
    security(("session" = [])), params(("organization_id" = Uuid, Path)), request_body = MemberInput,
    responses((status = 201, description = "Created", body = Member), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody),
        (status = 409, description = "Would leave no owner", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn add_member(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<MemberInput>,
) -> Result<(StatusCode, Json<Member>), ApiError> {
    let org = visible(&state, session.user_id, id).await?;
    require_owner(org.role)?;
    let user = db::users::find_by_email(&state.db, &input.email)
        .await?
        .ok_or_else(|| ApiError::unprocessable("unknown_user", "no user has that email").field("email"))?;
    if user.id == session.user_id && input.role != Role::Owner {
        return Err(ApiError::conflict(
            "last_owner",
            "owners cannot demote themselves",
        ));
    }
    let member = db::organizations::upsert_member(&state.db, id, user.id, input.role).await?;
    Ok((StatusCode::CREATED, Json(member.into())))
}

/// Removes a member (owner only); the last owner cannot be removed.
#[utoipa::path(delete, path = "/v1/organizations/{organization_id}/members/{user_id}", operation_id = "remove_member", tag = "organizations",
    security(("session" = [])), params(("organization_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204, description = "Removed"), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody), (status = 409, description = "Conflicts with the current state", body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath((id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    let org = visible(&state, session.user_id, id).await?;
    require_owner(org.role)?;
    let members = db::organizations::members(&state.db, id).await?;
    if !members.iter().any(|m| m.user_id == user_id) {
        return Err(ApiError::not_found("member"));
    }
    if !db::organizations::remove_member(&state.db, id, user_id).await? {
        return Err(ApiError::conflict(
            "last_owner",
            "an organization needs at least one owner",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
