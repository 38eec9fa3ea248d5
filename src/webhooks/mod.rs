//! Webhooks: endpoints customers register per server, the signing secrets
//! they verify deliveries with (Standard Webhooks), and the guard that keeps
//! endpoints off internal addresses. The event outbox and the dispatcher
//! build on these.

pub mod secret;
pub mod target;
