//! The sender checks of a received message: SPF (HELO and MAIL FROM),
//! every DKIM signature, DMARC with alignment, ARC, and forward-confirmed
//! reverse DNS of the client, all with mail-auth over Tern's resolver. The
//! results go into the stored `Authentication-Results` header (RFC 8601),
//! the message's record and the webhook payload.

use std::net::IpAddr;

use mail_auth::dmarc::Policy;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, IprevOutput, IprevResult,
    MessageAuthenticator, SpfOutput, SpfResult,
};

use crate::webhooks::events::{AuthResult, DkimCheck, DmarcCheck, InboundChecks, SpamVerdict, SpfCheck};

/// What the checks found, and the header that says so.
pub struct Checked {
    pub checks: InboundChecks,
    /// `Authentication-Results: ...\r\n`, to prepend.
    pub header: String,
    /// DMARC failed under a `p=reject` policy.
    pub dmarc_reject: bool,
}

/// The client as the checks see it.
pub struct Client<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    pub mail_from: &'a str,
}

/// What depends only on the client and its HELO name, checked once per
/// session (or per HELO) rather than per message.
#[derive(Default)]
pub struct SessionChecks {
    /// The HELO name the results are for, and the results.
    helo: Option<(String, SpfOutput, IprevOutput)>,
}

impl SessionChecks {
    async fn get(
        &mut self,
        authenticator: &MessageAuthenticator,
        authserv_id: &str,
        ip: IpAddr,
        helo: &str,
    ) -> (SpfOutput, IprevOutput) {
        if let Some((name, spf, iprev)) = &self.helo
            && name == helo
        {
            return (spf.clone(), iprev.clone());
        }
        let (spf, iprev) = tokio::join!(
            authenticator.verify_spf(SpfParameters::verify_ehlo(ip, helo, authserv_id)),
            authenticator.verify_iprev(ip),
        );
        self.helo = Some((helo.to_string(), spf.clone(), iprev.clone()));
        (spf, iprev)
    }
}

/// Runs every check on `raw` (the message as received).
pub async fn run(
    authenticator: &MessageAuthenticator,
    authserv_id: &str,
    session: &mut SessionChecks,
    client: &Client<'_>,
    raw: &[u8],
) -> Checked {
    let helo = client.helo;
    let ip = client.ip;
    let (spf_helo, iprev) = session.get(authenticator, authserv_id, ip, helo).await;
    let spf = if client.mail_from.is_empty() {
        spf_helo.clone()
    } else {
        authenticator
            .verify_spf(SpfParameters::verify_mail_from(
                ip,
                helo,
                authserv_id,
                client.mail_from,
            ))
            .await
    };
    let mail_from_domain = client
        .mail_from
        .rsplit_once('@')
        .map_or(helo, |(_, domain)| domain)
        .to_ascii_lowercase();
    let mut results = AuthenticationResults::new(authserv_id)
        .with_spf_ehlo_result(&spf_helo, ip, helo)
        .with_spf_mailfrom_result(&spf, ip, client.mail_from, helo)
        .with_iprev_result(&iprev, ip);
    let fcrdns = iprev_result(iprev.result());
    let client_name = match iprev.result() {
        IprevResult::Pass => iprev
            .ptr
            .as_ref()
            .and_then(|names| names.first())
            .map(|n| n.trim_end_matches('.').to_string()),
        _ => None,
    };
    let spf_check = |output: &mail_auth::SpfOutput| SpfCheck {
        result: spf_result(output.result()),
        domain: output.domain().to_string(),
    };
    let mut checks = InboundChecks {
        spf: spf_check(&spf),
        spf_helo: spf_check(&spf_helo),
        dkim: Vec::new(),
        dmarc: DmarcCheck {
            result: AuthResult::None,
            domain: String::new(),
            policy: None,
        },
        arc: AuthResult::None,
        fcrdns,
        client_name,
        spam: SpamVerdict::Unknown,
        spam_score: None,
    };
    let mut dmarc_reject = false;
    // A message mail-auth cannot read has no signatures and no From.
    if let Some(message) = AuthenticatedMessage::parse(raw) {
        let dkim = authenticator.verify_dkim(&message).await;
        let arc = authenticator.verify_arc(&message).await;
        let dmarc = authenticator
            .verify_dmarc(mail_auth::dmarc::verify::DmarcParameters::new(
                &message,
                &dkim,
                &mail_from_domain,
                &spf,
            ))
            .await;
        checks.dkim = dkim
            .iter()
            .map(|output| DkimCheck {
                result: dkim_result(output.result()),
                domain: output.signature().map(|s| s.d.clone()),
                selector: output.signature().map(|s| s.s.clone()),
            })
            .collect();
        checks.arc = dkim_result(arc.result());
        let policy = dmarc.policy();
        checks.dmarc = DmarcCheck {
            result: dmarc_result(&dmarc.result()),
            domain: dmarc.domain().to_string(),
            policy: match policy {
                Policy::None => Some("none".into()),
                Policy::Quarantine => Some("quarantine".into()),
                Policy::Reject => Some("reject".into()),
                Policy::Unspecified => None,
            },
        };
        dmarc_reject = checks.dmarc.result == AuthResult::Fail && policy == Policy::Reject;
        results = results
            .with_dkim_results(&dkim, message.from())
            .with_arc_result(&arc, ip)
            .with_dmarc_result(&dmarc);
    }
    Checked {
        checks,
        header: format!("Authentication-Results: {results}\r\n"),
        dmarc_reject,
    }
}

fn spf_result(result: SpfResult) -> AuthResult {
    match result {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::Softfail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::TempError => AuthResult::Temperror,
        SpfResult::PermError => AuthResult::Permerror,
        SpfResult::None => AuthResult::None,
    }
}

fn dkim_result(result: &DkimResult) -> AuthResult {
    match result {
        DkimResult::Pass => AuthResult::Pass,
        DkimResult::Neutral(_) => AuthResult::Neutral,
        DkimResult::Fail(_) => AuthResult::Fail,
        DkimResult::PermError(_) => AuthResult::Permerror,
        DkimResult::TempError(_) => AuthResult::Temperror,
        DkimResult::None => AuthResult::None,
    }
}

fn dmarc_result(result: &DmarcResult) -> AuthResult {
    match result {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::Temperror,
        DmarcResult::PermError(_) => AuthResult::Permerror,
        DmarcResult::None => AuthResult::None,
    }
}

fn iprev_result(result: &IprevResult) -> AuthResult {
    match result {
        IprevResult::Pass => AuthResult::Pass,
        IprevResult::Fail(_) => AuthResult::Fail,
        IprevResult::TempError(_) => AuthResult::Temperror,
        IprevResult::PermError(_) => AuthResult::Permerror,
        IprevResult::None => AuthResult::None,
    }
}
