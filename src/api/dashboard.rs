//! The dashboard (web/): its built assets, served at `/` with a strict
//! Content-Security-Policy. Release builds embed `web/dist`; debug builds
//! read it from disk, so a rebuilt front end shows without recompiling.
//! Paths that are not assets get `index.html` (the app routes them itself).

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

use super::error::ApiError;

#[derive(Embed)]
#[folder = "web/dist/"]
#[allow_missing = true]
struct Assets;

/// Scripts only from Tern itself: no inline script, no eval. Inline
/// styles are allowed for the HTML preview of messages, which runs in a
/// sandboxed frame without scripts.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: https:; font-src 'self'; connect-src 'self'; frame-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Vite's content-hashed output: safe to cache for a year.
const HASHED_DIR: &str = "assets/";

const NOT_BUILT: &str = "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tern: dashboard not built</title></head>
<body><main>
<h1>The dashboard was not built</h1>
<p>This Tern binary was compiled without the dashboard's assets (<code>web/dist</code>).
The API works as usual under <a href=\"/docs\">/docs</a>.</p>
<p>To build the dashboard, run <code>scripts/run</code>, or build it by hand and then Tern:</p>
<pre>cd web &amp;&amp; npm ci &amp;&amp; npm run build &amp;&amp; cd .. &amp;&amp; cargo build --release</pre>
</main></body></html>
";

/// Serves a dashboard asset, or `index.html` for the app's own routes;
/// every other unknown route stays a JSON 404.
pub async fn serve(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let api_path = ["/v1/", "/docs", "/openapi.json", "/u/", "/o/", "/c/"]
        .iter()
        .any(|prefix| path.starts_with(prefix));
    if api_path || !(method == Method::GET || method == Method::HEAD) {
        return ApiError::not_found("route").into_response();
    }
    let name = path.trim_start_matches('/');
    if name.split('/').any(|part| part == ".." || part.starts_with('.')) || name.contains('\\') {
        return ApiError::not_found("route").into_response();
    }
    if !name.is_empty() {
        if let Some(file) = Assets::get(name) {
            let cache = if name.starts_with(HASHED_DIR) {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            return respond(
                StatusCode::OK,
                file.metadata.mimetype(),
                cache,
                file.data.into_owned(),
            );
        }
        // A missing hashed asset is an old page asking for a file a new
        // build replaced: a 404, not the app.
        if name.starts_with(HASHED_DIR) || name.contains('.') {
            return ApiError::not_found("asset").into_response();
        }
    }
    match Assets::get("index.html") {
        Some(index) => respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "no-cache",
            index.data.into_owned(),
        ),
        None => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/html; charset=utf-8",
            "no-store",
            NOT_BUILT.as_bytes().to_vec(),
        ),
    }
}

fn respond(status: StatusCode, content_type: &str, cache: &'static str, body: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    (status, headers, body).into_response()
}
