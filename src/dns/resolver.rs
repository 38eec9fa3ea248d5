//! A hickory resolver built from Tern's settings, and plain lookups.

use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};

use crate::config::DnsSettings;

/// Builds a resolver: the configured nameservers, or the system's.
pub fn build(settings: &DnsSettings) -> anyhow::Result<TokioResolver> {
    let mut builder = if settings.nameservers.is_empty() {
        TokioResolver::builder_tokio()?
    } else {
        let servers = settings
            .nameservers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                server.connections = vec![udp, tcp];
                server
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    let options = builder.options_mut();
    options.timeout = Duration::from_millis(settings.timeout_ms);
    options.attempts = 2;
    Ok(builder.build()?)
}

/// A lookup that could not be answered (as opposed to "no such record").
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {name} {kind} failed: {reason}")]
pub struct LookupError {
    pub name: String,
    pub kind: RecordType,
    pub reason: String,
}

/// Looks up records of one type; an empty answer or NXDOMAIN is `Ok(vec![])`.
pub async fn lookup(
    resolver: &TokioResolver,
    name: &str,
    kind: RecordType,
) -> Result<Vec<RData>, LookupError> {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    match resolver.lookup(fqdn.as_str(), kind).await {
        Ok(found) => Ok(found
            .answers()
            .iter()
            .filter(|r| r.record_type() == kind)
            .map(|r| r.data.clone())
            .collect()),
        Err(err) if err.is_no_records_found() || err.is_nx_domain() => Ok(Vec::new()),
        Err(err) => Err(LookupError {
            name: name.to_string(),
            kind,
            reason: err.to_string(),
        }),
    }
}

/// TXT records of `name`, each with its strings joined (RFC 7208 §3.3).
pub async fn txt(resolver: &TokioResolver, name: &str) -> Result<Vec<String>, LookupError> {
    Ok(lookup(resolver, name, RecordType::TXT)
        .await?
        .into_iter()
        .filter_map(|data| match data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}
