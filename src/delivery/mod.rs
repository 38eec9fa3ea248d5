//! Delivery to receiving servers: `worker` claims due recipients from the
//! queue and delivers them as jobs, which `runner` keeps going in the
//! background, `routing` finds where their domain's mail goes, `connect` opens
//! SMTP sessions (`smtp_client` over a `connection`, upgraded by `tls`),
//! `sessions` keeps them open between messages, `pacing` keeps one slow
//! domain from filling a worker's hands; `mail::verp` makes the per-recipient
//! return path.

pub mod attempt;
pub mod connect;
pub mod connection;
pub mod pacing;
pub mod routing;
pub mod runner;
pub mod sessions;
pub mod smtp_client;
pub mod tls;
pub mod worker;
