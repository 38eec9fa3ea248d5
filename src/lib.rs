//! Tern: a self-hosted, HTTP-API-first transactional email platform.
//!
//! Data flow of a send: `api::send` (HTTP) → `sending` (validate, build with
//! `mail::build`, sign with `mail::dkim`) → `db::messages` (one atomic insert
//! of the message and a row per recipient, which is the delivery queue) →
//! `delivery` (workers claim recipients from `db::queue`, route them, send
//! over SMTP and record each outcome). `monitoring` counts along the way.

pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod db;
pub mod delivery;
pub mod dns;
pub mod domain;
pub mod error;
pub mod mail;
pub mod monitoring;
pub mod sending;
pub mod startup;
pub mod telemetry;
