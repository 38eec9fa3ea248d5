//! DNS blocklists (DNSBL, RFC 5782) asked about each client on connect:
//! `4.3.2.1.zone` (nibbles for IPv6) having an A record in 127.0.0.0/8
//! means listed. A zone that does not answer lists nobody.

use std::net::IpAddr;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{RData, RecordType};

use crate::dns::resolver::lookup;

/// The name to look up for `ip` in `zone`.
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let reversed = match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}")
        }
        IpAddr::V6(v6) => v6
            .octets()
            .iter()
            .rev()
            .flat_map(|byte| [byte & 0x0f, byte >> 4])
            .map(|nibble| format!("{nibble:x}"))
            .collect::<Vec<_>>()
            .join("."),
    };
    format!("{reversed}.{}.", zone.trim_end_matches('.'))
}

/// The first zone that lists `ip`.
pub async fn listed<'z>(resolver: &TokioResolver, ip: IpAddr, zones: &'z [String]) -> Option<&'z str> {
    for zone in zones {
        // An unanswered lookup lists nobody.
        let answer = lookup(resolver, &query_name(ip, zone), RecordType::A)
            .await
            .unwrap_or_default();
        if answer
            .iter()
            .any(|data| matches!(data, RData::A(a) if a.0.is_loopback()))
        {
            return Some(zone);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc_5782() {
        assert_eq!(
            query_name("192.0.2.99".parse().unwrap(), "bl.example"),
            "99.2.0.192.bl.example."
        );
        let v6 = query_name("2001:db8::1".parse().unwrap(), "bl.example.");
        assert!(v6.starts_with("1.0.0.0.0.0.0.0."), "{v6}");
        assert!(v6.ends_with("8.b.d.0.1.0.0.2.bl.example."), "{v6}");
    }
}
