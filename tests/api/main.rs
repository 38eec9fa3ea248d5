//! API tests against a real PostgreSQL and real HTTP.

mod auth;
mod delivery;
mod dkim;
mod domains;
mod hardening;
mod health;
mod helpers;
mod idempotency;
mod inbound;
mod layers;
mod list;
mod mx;
mod openapi;
mod peers;
mod queue;
mod raw;
mod receiver;
mod routing;
mod sealing;
mod send;
mod smtp_client;
mod tenancy;
mod tls;
mod validation;
mod webhooks;
mod workers;
