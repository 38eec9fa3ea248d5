//! Checks a webhook endpoint's URL: `https` (or `http` where allowed), a
//! host and no credentials, and — unless `webhooks.allow_private_targets` —
//! no loopback, private, link-local or otherwise reserved address, whether
//! given as a literal or found through DNS (SSRF: a tenant must not make
//! Tern call internal services or a cloud metadata endpoint).

use std::net::IpAddr;

use hickory_resolver::TokioResolver;
use url::{Host, Url};

use crate::config::WebhookSettings;
use crate::domain::{Invalid, is_private_address};

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

fn invalid(code: &'static str, message: impl Into<String>) -> Invalid {
    Invalid::new(code, message).field("url")
}

/// Parses and checks `text` as an endpoint URL; returns it normalised.
pub async fn check(text: &str, settings: &WebhookSettings, resolver: &TokioResolver) -> Result<Url, Invalid> {
    if text.len() > MAX_URL_LEN {
        return Err(invalid(
            "invalid_url",
            format!("the URL is longer than {MAX_URL_LEN} bytes"),
        ));
    }
    let url = Url::parse(text).map_err(|e| invalid("invalid_url", format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if settings.allow_http => {}
        "http" => return Err(invalid("insecure_url", "endpoints must use https")),
        other => {
            return Err(invalid(
                "invalid_url",
                format!("`{other}` URLs cannot receive webhooks"),
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "invalid_url",
            "put no credentials in the URL: verify the signature instead",
        ));
    }
    let addresses: Vec<IpAddr> = match url.host() {
        None => return Err(invalid("invalid_url", "the URL has no host")),
        Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(Host::Domain(name)) => {
            if settings.allow_private_targets {
                return Ok(url);
            }
            resolve(resolver, name).await?
        }
    };
    if !settings.allow_private_targets && addresses.iter().any(|ip| is_private_address(*ip)) {
        return Err(invalid(
            "private_url",
            "the URL leads to a loopback, private or reserved address",
        ));
    }
    Ok(url)
}

/// The addresses of a host name; a name without any is refused.
pub async fn resolve(resolver: &TokioResolver, name: &str) -> Result<Vec<IpAddr>, Invalid> {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let found: Vec<IpAddr> = match resolver.lookup_ip(fqdn.as_str()).await {
        Ok(ips) => ips.iter().collect(),
        Err(err) if err.is_no_records_found() || err.is_nx_domain() => Vec::new(),
        Err(err) => {
            return Err(invalid(
                "unresolvable_url",
                format!("{name} could not be resolved: {err}"),
            ));
        }
    };
    if found.is_empty() {
        return Err(invalid("unresolvable_url", format!("{name} has no address")));
    }
    Ok(found)
}
