//! Axum extractors whose rejections use Tern's error body.

use axum::extract::{FromRequest, FromRequestParts};

use crate::error::ApiError;

/// `Json<T>`, rejecting with [`ApiError`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Path<T>`; a malformed id is a 404.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query<T>`, rejecting with a 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A trimmed name of 1 to 100 characters without control characters.
pub fn valid_name(field: &str, name: &str) -> Result<String, ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            format!("`{field}` must be 1 to 100 characters without control characters"),
        )
        .field(field));
    }
    Ok(trimmed.to_string())
}

/// Refuses writes from viewers.
pub fn require_write(role: crate::db::Role) -> Result<(), ApiError> {
    if role.can_write() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "insufficient_role",
            "your role in this organization does not allow changes",
        ))
    }
}
