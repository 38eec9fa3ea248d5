//! The OpenAPI document: the handlers' annotations, completed here with
//! what every operation of a kind can answer (the extractors' and layers'
//! responses) and with the schema rules the derive cannot spell, so that
//! generated clients and validators agree with the server.

use serde_json::json;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ArrayBuilder, Object, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::webhooks::events;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tern API",
        version = "1.0.0",
        description = "Tern is a self-hosted transactional email platform. Management endpoints take a \
session token from `POST /v1/auth/login`; sending endpoints take a server API key. Both go in \
`Authorization: Bearer ...`. Every error has the body `{\"error\": {\"code\", \"message\", \"field\"}}` \
with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "messages", description = "Send messages and read them back (server API key)"),
        (name = "auth", description = "Sessions for the management API"),
        (name = "organizations", description = "Organizations and members"),
        (name = "servers", description = "Mail servers"),
        (name = "domains", description = "Sending domains, DKIM keys and DNS records"),
        (name = "api-keys", description = "Server API keys"),
        (name = "webhooks", description = "Webhook endpoints and their signing secrets"),
        (name = "routes", description = "Inbound routes: addresses that receive mail, and where it goes"),
        (name = "suppressions", description = "Addresses a server does not send to: hard bounces, complaints, unsubscribes, manual entries"),
        (name = "smtp", description = "The SMTP server's installation-wide settings (instance administrators)"),
        (name = "health", description = "Probes and metrics"),
    ),
    components(schemas(
        crate::api::error::ErrorBody,
        crate::api::error::ErrorDetail,
        events::MessageHeldEvent,
        events::MessageSentEvent,
        events::MessageDeferredEvent,
        events::MessageBouncedEvent,
        events::MessageFailedEvent,
        events::MessageSuppressedEvent,
        events::MessageComplainedEvent,
        events::MessageUnsubscribedEvent,
        events::MessageOpenedEvent,
        events::MessageClickedEvent,
        events::WebhookDisabledEvent,
        events::WebhookTestEvent,
        events::InboundReceivedEvent,
    ))
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut session = Http::new(HttpAuthScheme::Bearer);
        session.bearer_format = Some("JWT".into());
        session.description = Some("Session token from POST /v1/auth/login".into());
        components.add_security_scheme("session", SecurityScheme::Http(session));
        let mut key = Http::new(HttpAuthScheme::Bearer);
        key.bearer_format = Some("tern_<prefix>_<secret>".into());
        key.description = Some("Server API key".into());
        components.add_security_scheme("api_key", SecurityScheme::Http(key));
    }
}

/// Completes the document once the routes are collected (their schemas
/// are only then in it): the schema rules, and the common responses.
pub fn complete(openapi: &mut utoipa::openapi::OpenApi) {
    SchemaRules.modify(openapi);
    complete_responses(openapi);
    openapi.webhooks = Some(webhooks());
}

/// The OpenAPI 3.1 `webhooks` section: what Tern POSTs to endpoints, one
/// entry per event type, with the Standard Webhooks headers.
fn webhooks() -> utoipa::openapi::path::Paths {
    let header = |name: &str, description: &str, example: &str| {
        json!({"name": name, "in": "header", "required": true, "description": description,
               "schema": {"type": "string"}, "example": example})
    };
    let headers = [
        header(
            "webhook-id",
            "The event's id: the same in every retry and replay; receivers drop ids they have seen",
            "evt_1042",
        ),
        header(
            "webhook-timestamp",
            "Unix seconds when this attempt was signed; refuse ones more than 5 minutes away",
            "1764496800",
        ),
        header(
            "webhook-signature",
            "Space-separated `v1,<base64 HMAC-SHA256>` (hmac endpoints) or `v1a,<base64 Ed25519>` \
             (ed25519 endpoints) signatures of `<webhook-id>.<webhook-timestamp>.<body>`; two during a \
             secret rotation",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ];
    let mut paths = serde_json::Map::new();
    for (name, summary, schema) in events::DOCUMENTED {
        paths.insert(
            name.to_string(),
            json!({"post": {
                "operationId": format!("webhook_{}", name.replace('.', "_")),
                "summary": summary,
                "tags": ["webhooks"],
                "parameters": headers,
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"$ref": format!("#/components/schemas/{schema}")}}}},
                "responses": {
                    "2XX": {"description": "Received. Anything else is retried (410 Gone turns the endpoint off)"}
                }
            }}),
        );
    }
    // The shape is fixed above: it always reads back.
    serde_json::from_value(serde_json::Value::Object(paths)).unwrap_or_default()
}

/// Adds to every operation the responses its kind can give, where the
/// annotation does not list them: 401 when it takes credentials, 400, 413,
/// 415 and 422 when it reads a JSON body, 404 when its path names a
/// resource, 400 when it reads a query, and 408 and 500 everywhere (the
/// timeout and panic layers).
fn complete_responses(openapi: &mut utoipa::openapi::OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_common_responses(path, operation);
        }
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
        .into()
}

fn add_common_responses(path: &str, operation: &mut Operation) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = operation.request_body.is_some();
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query));
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description));
    };
    if secured {
        add(
            "401",
            "Missing, invalid or revoked credentials (`unauthorized`, `invalid_api_key`, …)",
        );
    }
    if has_body {
        add(
            "400",
            "The body is not JSON (`invalid_json`) or could not be read (`invalid_body`)",
        );
        add("413", "The body or a part of it is over a size limit");
        add(
            "415",
            "`Content-Type` is not `application/json` (`unsupported_content_type`)",
        );
        add("422", "A field is missing, unknown, of the wrong type or invalid");
    }
    if has_query {
        add("400", "A query parameter is invalid (`invalid_query`)");
    }
    if path.contains('{') {
        add(
            "404",
            "Not found (or not visible to you; a malformed id is not found either)",
        );
    }
    add("500", "Internal error (`internal_error`); nothing was changed");
    operation
        .responses
        .responses
        .entry("408".to_string())
        .or_insert_with(|| {
            ResponseBuilder::new()
                .description("The request took longer than `http.request_timeout_secs`")
                .build()
                .into()
        });
}

/// Rules of request bodies that field attributes cannot express.
struct SchemaRules;

impl Modify for SchemaRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let schemas = &mut components.schemas;
        if let Some(RefOr::T(Schema::Object(send))) = schemas.get_mut("SendMessage") {
            // At least one body, and at least one recipient (in to, cc or bcc).
            let present =
                |field: &str| json!({"required": [field], "properties": {field: {"type": "string"}}});
            let listed = |field: &str| {
                json!({"required": [field], "properties": {field: {"anyOf": [
                    {"type": "string"},
                    {"type": "object"},
                    {"type": "array", "minItems": 1}
                ]}}})
            };
            extend(
                send,
                "allOf",
                json!([
                    {"anyOf": [present("text"), present("html")]},
                    {"anyOf": [listed("to"), listed("cc"), listed("bcc")]}
                ]),
            );
            limit_map(send, "headers", 50, key(1, 76, Some("^[!-9;-~]+$")));
            limit_map(send, "metadata", 20, key(1, 100, None));
        }
        if let Some(RefOr::T(Schema::Object(raw))) = schemas.get_mut("SendRawMessage") {
            limit_map(raw, "metadata", 20, key(1, 100, None));
            // One address, or a non-empty list of them.
            let address = || key(1, 254, None);
            let many = ArrayBuilder::new().items(address()).min_items(Some(1)).build();
            let either = utoipa::openapi::schema::OneOfBuilder::new()
                .item(Schema::Object(address()))
                .item(Schema::Array(many))
                .description(Some(
                    "The envelope recipients (`RCPT TO`): one address or a non-empty list",
                ))
                .examples([json!(["jane@example.org"])])
                .build();
            raw.properties
                .insert("rcpt_to".into(), RefOr::T(Schema::OneOf(either)));
        }
    }
}

/// Sets keywords on an object schema that its type has no field for (they
/// serialise alongside its own); one keyword per call keeps the output order
/// stable.
fn extend(object: &mut Object, keyword: &str, value: serde_json::Value) {
    let extensions = object.extensions.get_or_insert_with(Extensions::default);
    extensions.insert(keyword.to_string(), value);
}

/// A string of `min` to `max` characters, matching `pattern` if given.
fn key(min: usize, max: usize, pattern: Option<&str>) -> Object {
    Object::builder()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(pattern)
        .build()
}

/// Bounds a string-to-string map property: how many entries, and its keys.
fn limit_map(object: &mut Object, property: &str, max: usize, keys: Object) {
    if let Some(RefOr::T(Schema::Object(map))) = object.properties.get_mut(property) {
        map.max_properties = Some(max);
        map.property_names = Some(Box::new(Schema::Object(keys)));
    }
}
