//! What a running Tern tells its operators: logs and spans (`logs`), and
//! Prometheus metrics (`metrics`).

pub mod logs;
pub mod metrics;
