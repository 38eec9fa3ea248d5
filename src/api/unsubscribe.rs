//! The `List-Unsubscribe` URL (`/u/<token>`): a `POST` unsubscribes at once
//! (RFC 8058 one-click, sent by the mail client, or the page's button); a
//! `GET` (a person following the link) shows a page with that button and
//! changes nothing, since link scanners follow links too. The token is the
//! recipient's, HMAC-signed (`mail::verp`); a bad one is a 404.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::extract::ApiPath;
use crate::db;
use crate::inbound::report::unsubscribe_effect;
use crate::mail::verp::VerpTarget;
use crate::state::AppState;

/// No scripts, no styles from anywhere, forms only back here.
const CSP: &str = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>\n"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<p>This unsubscribe link is not valid.</p>",
    )
}

/// The recipient a token names, if it is ours.
fn recipient(state: &AppState, token: &str) -> Option<Uuid> {
    if token.len() > 64 {
        return None;
    }
    match state.verp.decode_token(token) {
        Ok(VerpTarget::Unsubscribe(recipient)) => Some(recipient),
        _ => None,
    }
}

/// Shows the confirmation page (changes nothing).
pub async fn unsubscribe_page(State(state): State<AppState>, ApiPath(token): ApiPath<String>) -> Response {
    let Some(recipient) = recipient(&state, &token) else {
        return not_found();
    };
    match db::messages::recipient_exists(&state.db, recipient).await {
        Ok(true) => page(
            StatusCode::OK,
            "Unsubscribe",
            "<p>Stop receiving these emails at this address?</p>\
             <form method=\"post\"><button type=\"submit\" name=\"confirm\" value=\"1\">Unsubscribe</button></form>",
        ),
        Ok(false) => not_found(),
        Err(err) => {
            tracing::error!(error = %err, "looking up an unsubscribe link failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again later",
                "<p>Please try again later.</p>",
            )
        }
    }
}

/// Unsubscribes: one-click (`List-Unsubscribe=One-Click`) or the page's button.
pub async fn unsubscribe(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    body: Bytes,
) -> Response {
    let Some(recipient) = recipient(&state, &token) else {
        return not_found();
    };
    let one_click = body
        .split(|b| *b == b'&')
        .any(|pair| pair == b"List-Unsubscribe=One-Click");
    let method = if one_click { "one_click" } else { "page" };
    let effect = unsubscribe_effect(&state.settings.suppression, None, Some(recipient), method);
    let applied = async {
        let mut conn = state.db.acquire().await?;
        db::reports::apply(&mut conn, None, &effect).await
    };
    match applied.await {
        Ok(applied) if applied.recipient_id.is_some() => page(
            StatusCode::OK,
            "Unsubscribed",
            "<p>You will not receive these emails at this address any more.</p>",
        ),
        Ok(_) => not_found(),
        Err(err) => {
            tracing::error!(error = %err, "recording an unsubscribe failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again later",
                "<p>Please try again later.</p>",
            )
        }
    }
}
