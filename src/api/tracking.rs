//! Open and click tracking over HTTP: the pixel (`/o/<token>`) and the
//! tracked links (`/c/<token>`), served without authentication on any host
//! that reaches the API (Tern's own, or a server's tracking host, a CNAME
//! to it); and the check of a server's tracking host.
//!
//! A click redirects only to the URL stored with the message for the
//! token's link: a bad or edited token is a 404 and never a redirect.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, USER_AGENT};
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::extract::{ApiPath, UserSession, require_write};
use super::servers::{Server, view, visible as visible_server};
use crate::api::error::{ApiError, ErrorBody};
use crate::db;
use crate::dns::verify;
use crate::state::AppState;
use crate::tracking::machine::{Hit, is_machine};
use crate::tracking::token::Tracked;

/// A transparent 1×1 GIF.
const PIXEL: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
    0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

fn not_found() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "Not found\n").into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Records a hit and returns the link's URL (clicks), or `None` when the
/// token leads nowhere.
/// What a request says of its client.
struct Client {
    head: bool,
    user_agent: Option<String>,
    ip: Option<std::net::IpAddr>,
}

impl Client {
    fn of(method: &Method, headers: &HeaderMap, extensions: &Extensions) -> Client {
        Client {
            head: method == Method::HEAD,
            user_agent: headers
                .get(USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(500).collect()),
            ip: client_ip(headers, extensions),
        }
    }
}

/// The client's address: the peer's, or, when the peer is a reverse proxy
/// on this machine (loopback), the last address it put in
/// `X-Forwarded-For`. IPv4-mapped IPv6 addresses count as IPv4.
fn client_ip(headers: &HeaderMap, extensions: &Extensions) -> Option<std::net::IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip().to_canonical();
    if !peer.is_loopback() {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|last| last.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_canonical());
    Some(forwarded.unwrap_or(peer))
}

async fn hit(
    state: &AppState,
    token: &str,
    client: Client,
    click: bool,
) -> Result<Option<String>, sqlx::Error> {
    let tracked = state.tracking.check(token);
    let (recipient, link, kind) = match (tracked, click) {
        (Some(Tracked::Open { recipient }), false) => (recipient, None, "opened"),
        (Some(Tracked::Click { recipient, link }), true) => (recipient, Some(link), "clicked"),
        _ => return Ok(None),
    };
    let link = link.map(i32::from);
    let Some(target) = db::tracking::target(&state.db, recipient, link).await? else {
        return Ok(None);
    };
    if click && target.url.is_none() {
        return Ok(None);
    }
    let Client { head, user_agent, ip } = client;
    let since_delivery = target
        .delivered_at
        .map(|at| (chrono::Utc::now() - at).num_milliseconds() as f64 / 1000.0);
    let settings = &state.settings.tracking;
    let machine = is_machine(
        &Hit {
            head,
            user_agent: user_agent.as_deref(),
            ip,
            since_delivery,
        },
        settings.machine_window_secs as f64,
    );
    let mut detail = json!({
        "machine": machine,
        "user_agent": user_agent,
        "ip": if settings.store_ip { ip.map(|ip| ip.to_string()) } else { None },
    });
    if let (Some(link), Some(url), Some(fields)) = (link, &target.url, detail.as_object_mut()) {
        fields.insert("link".into(), link.into());
        fields.insert("url".into(), url.clone().into());
    }
    db::tracking::record(
        &state.db,
        target.message_id,
        recipient,
        kind,
        &detail,
        settings.repeat_window_secs as f64,
    )
    .await?;
    Ok(target.url.or(Some(String::new())))
}

/// The open pixel: a transparent GIF, never cached.
pub async fn open(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    method: Method,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let client = Client::of(&method, &headers, &extensions);
    match hit(&state, &token, client, false).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(),
        // The reader sees the image whatever happened to the count.
        Err(err) => tracing::error!(error = %err, "recording an open failed"),
    }
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("image/gif")),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache, max-age=0"),
            ),
        ],
        PIXEL.as_slice(),
    )
        .into_response()
}

/// A tracked link: `302` to the URL stored for it.
pub async fn click(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    method: Method,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let client = Client::of(&method, &headers, &extensions);
    match hit(&state, &token, client, true).await {
        Ok(Some(url)) => match HeaderValue::from_str(&url) {
            Ok(location) => (
                StatusCode::FOUND,
                [
                    (LOCATION, location),
                    (CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response(),
            Err(_) => not_found(),
        },
        Ok(None) => not_found(),
        Err(err) => {
            tracing::error!(error = %err, "looking up a tracked link failed");
            (StatusCode::SERVICE_UNAVAILABLE, "Try again later\n").into_response()
        }
    }
}

/// Checks that the server's tracking host is a CNAME to Tern's public
/// host; once it is, tracked URLs use it.
#[utoipa::path(post, path = "/v1/servers/{server_id}/tracking/verify", operation_id = "verify_tracking_host", tag = "servers",
    security(("session" = [])), params(("server_id" = Uuid, Path)),
    responses((status = 200, description = "Checked; `tracking.record.status` says how it went", body = Server), (status = 403, description = "Your role does not allow this", body = ErrorBody), (status = 404, description = "Not found (or not visible to you)", body = ErrorBody), (status = 409, description = "The server has no tracking host", body = ErrorBody)))]
pub async fn verify_tracking_host(
    State(state): State<AppState>,
    session: UserSession,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Result<Json<Server>, ApiError> {
    let server = visible_server(&state, session.user_id, id).await?;
    require_write(server.role)?;
    let Some(host) = server.tracking_host.as_deref() else {
        return Err(ApiError::conflict(
            "no_tracking_host",
            "set `tracking_host` first (PATCH /v1/servers/{server_id})",
        ));
    };
    let status = verify::tracking_host(&state.resolver, host, &state.settings.public_hostname).await;
    db::tracking::checked(&state.db, id, host, status == crate::domain::RecordStatus::Ok).await?;
    Ok(Json(view(
        &state.settings,
        visible_server(&state, session.user_id, id).await?,
    )))
}
