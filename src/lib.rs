//! Tern: a self-hosted, HTTP-API-first transactional email platform.
//!
//! Data flow of a send: `api::send` (HTTP: parse and validate the request)
//! → `sending::send` (authenticate, idempotency, sender domain, build with
//! `mail::build`, sign with `mail::dkim`, suppression) → `db::messages` (one
//! atomic insert of the message and a row per recipient, which is the
//! delivery queue) → `delivery` (workers claim recipients from `db::queue`,
//! route them, send over SMTP and record each outcome). `observability`
//! counts along the way. ARCHITECTURE.md draws the layers and their rules.

pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod db;
pub mod delivery;
pub mod dns;
pub mod domain;
pub mod inbound;
pub mod mail;
pub mod observability;
pub mod sealing;
pub mod sending;
pub mod startup;
pub mod state;
pub mod tracking;
pub mod webhooks;
