//! Accepting messages: validate, build, sign, store, answer.
//!
//! `api::send` parses requests; `compose` and `raw` turn them into a signed
//! message plus its recipients; `accept` stores it once (idempotently).

pub mod accept;
pub mod compose;
pub mod idempotency;
pub mod raw;
pub mod recipients;
