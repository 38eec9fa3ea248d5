//! Where mail for a domain goes: transport rules and a smart host first (as
//! Postfix's transport maps and relayhost), else the domain's MX hosts in
//! preference order (RFC 5321 §5.1), the implicit MX (the domain's own
//! address) when it has none, and a permanent failure for a null MX (RFC 7505).

use std::net::IpAddr;
use std::path::PathBuf;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;
use rand::seq::SliceRandom;

use crate::config::{DeliverySettings, IpStrategy, TlsPolicy, TransportRule};

/// A host to try, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: String,
    pub port: u16,
    /// How STARTTLS is used with this destination.
    pub tls: TlsPolicy,
    /// CA certificates for `TlsPolicy::Verify` (default: the Mozilla roots).
    pub ca_file: Option<PathBuf>,
    /// Named by the operator (a transport rule or the smart host), not found
    /// through a tenant's DNS: may be a private address.
    pub explicit: bool,
}

/// How a domain is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Try these in order.
    Hosts(Vec<Destination>),
    /// The domain accepts no mail (RFC 7505): a permanent failure.
    NullMx,
}

/// Why a route could not be found.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    /// The domain does not exist (NXDOMAIN): a permanent failure.
    #[error("domain {0} does not exist")]
    NoSuchDomain(String),
    /// The domain has no MX and no address to be its implicit MX: nowhere
    /// to deliver (RFC 5321 §5.1), a permanent failure.
    #[error("domain {0} has no MX and no A/AAAA record")]
    NoAddress(String),
    /// DNS did not answer properly; try again later.
    #[error("DNS lookup for {0} failed: {1}")]
    Temporary(String, String),
}

/// Orders MX records: lowest preference first, equal preferences shuffled
/// (RFC 5321 §5.1), duplicates dropped. A single `0 .` record is a null MX.
pub fn order_mx(mut records: Vec<(u16, String)>) -> Option<Vec<String>> {
    let is_root = |host: &str| host.trim_end_matches('.').is_empty();
    if records.len() == 1 && is_root(&records[0].1) {
        return None;
    }
    records.retain(|(_, host)| !is_root(host));
    records.shuffle(&mut rand::rng());
    records.sort_by_key(|(preference, _)| *preference);
    let mut hosts: Vec<String> = Vec::with_capacity(records.len());
    for (_, host) in records {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    Some(hosts)
}

/// Splits `host[:port]`.
pub fn host_and_port(value: &str, default_port: u16) -> (String, u16) {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => match port.parse() {
            Ok(port) => (host.trim_matches(['[', ']']).to_string(), port),
            Err(_) => (value.to_string(), default_port),
        },
        _ => (value.to_string(), default_port),
    }
}

fn rule_for<'a>(rules: &'a [TransportRule], domain: &str) -> Option<&'a TransportRule> {
    rules.iter().find(|r| r.domain.eq_ignore_ascii_case(domain))
}

/// Finds the route for `domain`.
pub async fn route(
    resolver: &TokioResolver,
    settings: &DeliverySettings,
    domain: &str,
) -> Result<Route, RouteError> {
    if let Some(rule) = rule_for(&settings.transports, domain) {
        return Ok(Route::Hosts(vec![Destination {
            host: rule.host.clone(),
            port: rule.port.unwrap_or(settings.port),
            tls: rule.tls_policy(),
            ca_file: rule.ca_file.clone(),
            explicit: true,
        }]));
    }
    if let Some(smart) = &settings.smart_host {
        let (host, port) = host_and_port(smart, settings.port);
        return Ok(Route::Hosts(vec![Destination {
            host,
            port,
            tls: settings.smart_host_tls,
            ca_file: settings.smart_host_ca_file.clone(),
            explicit: true,
        }]));
    }
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    let records = match resolver.mx_lookup(fqdn.as_str()).await {
        Ok(found) => found
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                _ => None,
            })
            .collect(),
        Err(err) if err.is_nx_domain() => return Err(RouteError::NoSuchDomain(domain.into())),
        Err(err) if err.is_no_records_found() => Vec::new(),
        Err(err) => {
            crate::observability::metrics::dns_failure("mx");
            return Err(RouteError::Temporary(domain.into(), err.to_string()));
        }
    };
    let hosts = if records.is_empty() {
        // RFC 5321 §5.1: no MX, so the domain itself is the implicit MX;
        // without an address either, there is nowhere to go.
        if addresses(resolver, domain).await?.is_empty() {
            return Err(RouteError::NoAddress(domain.into()));
        }
        vec![domain.to_ascii_lowercase()]
    } else {
        match order_mx(records) {
            Some(hosts) => hosts,
            None => return Ok(Route::NullMx),
        }
    };
    Ok(Route::Hosts(
        hosts
            .into_iter()
            .map(|host| Destination {
                host,
                port: settings.port,
                tls: TlsPolicy::Opportunistic,
                ca_file: None,
                explicit: false,
            })
            .collect(),
    ))
}

/// `ips` in the order `strategy` asks for (the resolver's order within a
/// family), without the family it leaves out.
pub fn order_addresses(ips: Vec<IpAddr>, strategy: IpStrategy) -> Vec<IpAddr> {
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = ips.into_iter().partition(IpAddr::is_ipv4);
    match strategy {
        IpStrategy::Ipv4ThenIpv6 => v4.into_iter().chain(v6).collect(),
        IpStrategy::Ipv6ThenIpv4 => v6.into_iter().chain(v4).collect(),
        IpStrategy::Ipv4Only => v4,
        IpStrategy::Ipv6Only => v6,
    }
}

/// The addresses of a destination host (an IP literal stands for itself).
pub async fn addresses(resolver: &TokioResolver, host: &str) -> Result<Vec<IpAddr>, RouteError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let fqdn = format!("{}.", host.trim_end_matches('.'));
    match resolver.lookup_ip(fqdn.as_str()).await {
        Ok(found) => Ok(found.iter().collect()),
        Err(err) if err.is_nx_domain() || err.is_no_records_found() => Ok(Vec::new()),
        Err(err) => {
            crate::observability::metrics::dns_failure("address");
            Err(RouteError::Temporary(host.into(), err.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_preference_and_recognises_null_mx() {
        let records = vec![
            (20, "b.example.".into()),
            (10, "A.example.".into()),
            (20, "b.example".into()),
        ];
        assert_eq!(
            order_mx(records),
            Some(vec!["a.example".to_string(), "b.example".to_string()])
        );
        assert_eq!(order_mx(vec![(0, ".".into())]), None);
        assert_eq!(
            order_mx(vec![(0, ".".into()), (10, "mx.example".into())]),
            Some(vec!["mx.example".into()])
        );
    }

    #[test]
    fn shuffles_equal_preferences() {
        let records: Vec<(u16, String)> = (0..8).map(|i| (10, format!("mx{i}.example"))).collect();
        let firsts: std::collections::HashSet<String> = (0..50)
            .map(|_| order_mx(records.clone()).unwrap()[0].clone())
            .collect();
        assert!(firsts.len() > 1, "equal preferences are not randomised");
    }

    #[test]
    fn orders_addresses_by_family() {
        let ips: Vec<IpAddr> = ["2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2"]
            .iter()
            .map(|ip| ip.parse().unwrap())
            .collect();
        let text = |strategy| {
            order_addresses(ips.clone(), strategy)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            text(IpStrategy::Ipv4ThenIpv6),
            ["192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"]
        );
        assert_eq!(
            text(IpStrategy::Ipv6ThenIpv4),
            ["2001:db8::1", "2001:db8::2", "192.0.2.1", "192.0.2.2"]
        );
        assert_eq!(text(IpStrategy::Ipv4Only), ["192.0.2.1", "192.0.2.2"]);
        assert_eq!(text(IpStrategy::Ipv6Only), ["2001:db8::1", "2001:db8::2"]);
        assert_eq!(IpStrategy::default(), IpStrategy::Ipv4ThenIpv6);
    }

    #[test]
    fn splits_host_and_port() {
        assert_eq!(
            host_and_port("relay.internal:2525", 25),
            ("relay.internal".into(), 2525)
        );
        assert_eq!(host_and_port("relay.internal", 25), ("relay.internal".into(), 25));
        assert_eq!(host_and_port("[::1]:2525", 25), ("::1".into(), 2525));
    }
}
