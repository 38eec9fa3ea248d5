//! Whether an open or a click looks automatic. Such hits are recorded with
//! `machine: true`, not dropped: counting them apart keeps the numbers
//! honest without losing anything.
//!
//! The heuristics (documented in the README):
//! - a `HEAD` request (link checkers; a person's client sends `GET`);
//! - within `tracking.machine_window_secs` of delivery (10 s): Apple Mail
//!   Privacy Protection fetches images as the message arrives, and link
//!   scanners of receiving servers follow links before anyone reads them;
//! - a client address in Apple's 17.0.0.0/8 (Mail Privacy Protection's
//!   proxies);
//! - a user agent of an image proxy (Gmail's `GoogleImageProxy`, Yahoo's)
//!   or of a scanner, crawler or HTTP library.

use std::net::IpAddr;

/// User-agent fragments of proxies, scanners and libraries (lower case).
const MACHINE_AGENTS: [&str; 16] = [
    "googleimageproxy",
    "yahoomailproxy",
    "bot",
    "spider",
    "crawler",
    "scanner",
    "barracuda",
    "mimecast",
    "proofpoint",
    "python-requests",
    "curl/",
    "wget/",
    "go-http-client",
    "headlesschrome",
    "microsoft office existence discovery",
    "symantec",
];

/// What the request looked like.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    pub head: bool,
    pub user_agent: Option<&'a str>,
    pub ip: Option<IpAddr>,
    /// Seconds since the recipient's message was delivered (`None`: not
    /// delivered, or unknown).
    pub since_delivery: Option<f64>,
}

/// Whether the hit looks automatic, given the window after delivery.
pub fn is_machine(hit: &Hit<'_>, window_secs: f64) -> bool {
    if hit.head {
        return true;
    }
    if hit.since_delivery.is_some_and(|secs| secs < window_secs) {
        return true;
    }
    if let Some(IpAddr::V4(ip)) = hit.ip
        && ip.octets()[0] == 17
    {
        return true;
    }
    let agent = hit.user_agent.unwrap_or_default().to_ascii_lowercase();
    agent.is_empty() || MACHINE_AGENTS.iter().any(|m| agent.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

    fn hit(user_agent: &str) -> Hit<'_> {
        Hit {
            head: false,
            user_agent: Some(user_agent),
            ip: Some("198.51.100.7".parse().unwrap()),
            since_delivery: Some(600.0),
        }
    }

    #[test]
    fn people_and_machines_are_told_apart() {
        assert!(!is_machine(&hit(FIREFOX), 10.0));
        assert!(is_machine(
            &hit("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"),
            10.0
        ));
        assert!(is_machine(&hit("python-requests/2.32"), 10.0));
        assert!(is_machine(&hit(""), 10.0));
        assert!(is_machine(
            &Hit {
                head: true,
                ..hit(FIREFOX)
            },
            10.0
        ));
        assert!(is_machine(
            &Hit {
                since_delivery: Some(2.0),
                ..hit(FIREFOX)
            },
            10.0
        ));
        assert!(is_machine(
            &Hit {
                ip: Some("17.58.1.2".parse().unwrap()),
                ..hit(FIREFOX)
            },
            10.0
        ));
        assert!(!is_machine(
            &Hit {
                since_delivery: None,
                ..hit(FIREFOX)
            },
            10.0
        ));
    }
}
