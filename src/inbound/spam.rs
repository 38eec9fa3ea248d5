//! Spam scoring with rspamd (its HTTP `/checkv2` protocol), when
//! `smtp.spam.rspamd_url` is set. rspamd rather than SpamAssassin's spamd:
//! a JSON answer over plain HTTP (no SPAMC framing to write), milliseconds
//! per message where spamd's Perl takes hundreds, and Debian's package runs
//! with its rules as installed. A scanner that is down or slower than
//! `smtp.spam.timeout_ms` leaves the verdict `unknown`: mail keeps flowing.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::config::SpamSettings;
use crate::webhooks::events::SpamVerdict;

/// A configured scanner.
pub struct Scanner {
    client: reqwest::Client,
    url: String,
}

/// What a scan found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scan {
    pub verdict: SpamVerdict,
    pub score: Option<f64>,
}

impl Scan {
    pub const UNKNOWN: Scan = Scan {
        verdict: SpamVerdict::Unknown,
        score: None,
    };
}

/// The part of rspamd's answer Tern reads.
#[derive(Deserialize)]
struct Answer {
    score: f64,
    action: String,
}

/// What the client sent, for the scanner's own checks.
pub struct Envelope<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
}

impl Scanner {
    /// `None` when no scanner is configured.
    pub fn new(settings: &SpamSettings) -> anyhow::Result<Option<Scanner>> {
        let Some(url) = &settings.rspamd_url else {
            return Ok(None);
        };
        let timeout = Duration::from_millis(settings.timeout_ms);
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Some(Scanner {
            client,
            url: format!("{}/checkv2", url.trim_end_matches('/')),
        }))
    }

    /// Scores `raw`; `Scan::UNKNOWN` when the scanner does not answer well.
    pub async fn scan(&self, envelope: &Envelope<'_>, raw: &[u8]) -> Scan {
        let mut request = self
            .client
            .post(&self.url)
            .header("IP", envelope.ip.to_string())
            .header("Helo", header_safe(envelope.helo))
            .header("From", header_safe(envelope.mail_from))
            .body(raw.to_vec());
        for rcpt in envelope.rcpt_to {
            request = request.header("Rcpt", header_safe(rcpt));
        }
        let answer = match request.send().await {
            Ok(response) if response.status().is_success() => response.json::<Answer>().await,
            Ok(response) => {
                tracing::warn!(status = %response.status(), "rspamd refused a scan");
                return Scan::UNKNOWN;
            }
            Err(err) => Err(err),
        };
        match answer {
            Ok(answer) => Scan {
                verdict: match answer.action.as_str() {
                    "reject" | "add header" | "rewrite subject" => SpamVerdict::Spam,
                    _ => SpamVerdict::Ham,
                },
                score: Some(answer.score).filter(|s| s.is_finite()),
            },
            Err(err) => {
                tracing::warn!(error = %err, "rspamd did not answer; the spam verdict is unknown");
                Scan::UNKNOWN
            }
        }
    }
}

/// Printable ASCII only: what a client sent goes into request headers.
fn header_safe(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic()).take(320).collect()
}
