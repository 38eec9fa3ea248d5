//! Logging: `tracing` to stdout, human-readable or JSON lines.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber; `RUST_LOG` overrides the configured filter.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// An error with every source it wraps, `outer: inner: root`, for a log
/// field: `%err` alone drops the chain (anyhow's context included).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        // Some errors repeat their source in their own message.
        if !text.ends_with(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn chains_keep_every_cause_once() {
        let root = std::io::Error::other("connection refused");
        let err = anyhow::Error::new(root)
            .context("connecting to mx1")
            .context("delivery");
        assert_eq!(
            super::chain(err.as_ref()),
            "delivery: connecting to mx1: connection refused"
        );
    }
}
