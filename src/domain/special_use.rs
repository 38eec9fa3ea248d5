//! Names and addresses that are not somewhere to deliver mail on the
//! public Internet: a tenant must not be able to point Tern at them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Top-level names reserved by RFC 6761 (`test`, `localhost`, `invalid`,
/// `example`), RFC 6762 (`local`) and RFC 7686 (`onion`).
const SPECIAL_USE: &[&str] = &["localhost", "local", "test", "invalid", "example", "onion"];

/// Whether `domain` (ASCII, any case, with or without a final dot) is or
/// ends in a special-use name.
pub fn is_special_use_domain(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.');
    let last = domain.rsplit('.').next().unwrap_or(domain);
    SPECIAL_USE.iter().any(|name| last.eq_ignore_ascii_case(name))
}

/// Whether `ip` is loopback, private (RFC 1918), shared (RFC 6598),
/// link-local, unique-local (RFC 4193), unspecified, multicast, broadcast,
/// documentation or otherwise reserved: not a public mail server.
pub fn is_private_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(v6),
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || a >= 240
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // 2001:db8::/32, documentation (RFC 3849).
        || (ip.segments()[0] == 0x2001 && ip.segments()[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_names() {
        for name in [
            "localhost",
            "x.localhost",
            "printer.local",
            "a.test",
            "b.invalid",
            "c.example",
            "X.TEST.",
        ] {
            assert!(is_special_use_domain(name), "{name}");
        }
        for name in ["example.org", "test.com", "local.example.com.au", "gmail.com"] {
            assert!(!is_special_use_domain(name), "{name}");
        }
    }

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(is_private_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private_address(ip.parse().unwrap()), "{ip}");
        }
    }
}
