//! Names and addresses that are not somewhere to deliver mail on the
//! public Internet: a tenant must not be able to point Tern at them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Top-level names reserved by RFC 6761 (`test`, `localhost`, `invalid`,
/// `example`), RFC 6762 (`local`) and RFC 7686 (`onion`).
const SPECIAL_USE: &[&str] = &["localhost", "local", "test", "invalid", "example", "onion"];

/// Whether `domain` (ASCII, any case, with or without a final dot) is or
/// ends in a special-use name, or looks like an IPv4 address (no top-level
/// name is all digits).
pub fn is_special_use_domain(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.');
    let last = domain.rsplit('.').next().unwrap_or(domain);
    SPECIAL_USE.iter().any(|name| last.eq_ignore_ascii_case(name))
        || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
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
        // 192.0.0.0/24 protocol assignments, 198.18.0.0/15 benchmarking.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Forms that carry an IPv4 address: NAT64 64:ff9b::/96, 6to4
    // 2002::/16, and the old IPv4-compatible ::a.b.c.d.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) || s[..6] == [0; 6] {
        if s[..6] == [0; 6] && s[6] == 0 && s[7] <= 1 {
            return true; // :: and ::1
        }
        return is_private_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_private_v4(embedded(s[1], s[2]));
    }
    // 100::/64, discard only (RFC 6666).
    if s[0] == 0x100 && s[1..4] == [0; 3] {
        return true;
    }
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
            "127.0.0.1",
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
            "192.0.0.8",
            "198.18.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "::127.0.0.1",
            "100::1",
        ] {
            assert!(is_private_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_private_address(ip.parse().unwrap()), "{ip}");
        }
    }
}
