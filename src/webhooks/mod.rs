//! Webhooks: endpoints customers register per server, the signing secrets
//! they verify deliveries with (Standard Webhooks), and the guard that keeps
//! endpoints off internal addresses; the dispatcher, which sends what the
//! outbox (a trigger on `message_events`, see the migrations) holds, and
//! the `message.*` payloads it builds from the events as it sends them.

pub mod dispatcher;
pub mod events;
pub mod message_payload;
pub mod secret;
pub mod signature;
pub mod target;
