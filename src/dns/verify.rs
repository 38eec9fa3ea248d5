//! Checks a sending domain's published records against what Tern expects.

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{RData, RecordType};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::spf::{Macro, Mechanism, Spf};

use super::resolver::{self, LookupError};
use crate::config::Settings;
use crate::domain::{CheckResult, DomainDns, RecordStatus};
use crate::observability::logs::chain;

fn status(result: Result<RecordStatus, LookupError>) -> RecordStatus {
    result.unwrap_or_else(|err| {
        tracing::info!(error = %chain(&err), "DNS check failed");
        RecordStatus::Error
    })
}

pub(super) fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Whether an SPF record (as mail-auth parses it) includes `host`.
fn includes(spf: &Spf, host: &str) -> bool {
    spf.directives.iter().any(|directive| match &directive.mechanism {
        Mechanism::Include {
            macro_string: Macro::Literal(name),
        } => std::str::from_utf8(name).is_ok_and(|name| same_host(name, host)),
        _ => false,
    })
}

/// An SPF record passes when it includes Tern's SPF host (RFC 7208 §5.2).
/// Records are parsed with mail-auth, the parser Tern's inbound checks use.
pub(super) async fn spf(
    resolver: &TokioResolver,
    domain: &str,
    include: &str,
) -> Result<RecordStatus, LookupError> {
    let records = resolver::txt(resolver, domain).await?;
    // No include, a record receivers cannot parse, or several v=spf1
    // records (a permerror, RFC 7208 §4.5) are a mismatch.
    Ok(single_record(&records, "v=spf1", |one| {
        Spf::parse(one.as_bytes()).is_ok_and(|parsed| includes(&parsed, include))
    }))
}

/// The one record of `records` that starts with `tag` (case-insensitive):
/// `Missing` if none, `Ok` if there is exactly one and `valid` accepts it,
/// else `Mismatch` (several such records mean none applies).
pub(super) fn single_record(records: &[String], tag: &str, valid: impl Fn(&str) -> bool) -> RecordStatus {
    let found: Vec<&String> = records
        .iter()
        .filter(|r| r.to_ascii_lowercase().starts_with(tag))
        .collect();
    match found.as_slice() {
        [] => RecordStatus::Missing,
        [one] if valid(one) => RecordStatus::Ok,
        _ => RecordStatus::Mismatch,
    }
}

/// The DKIM record passes when mail-auth accepts it as a key record (so
/// receivers can verify with it) and its `p=` is the domain's public key.
/// mail-auth keeps only the decoded key, so `p=` itself is compared as text.
async fn dkim(resolver: &TokioResolver, name: &str, public_b64: &str) -> Result<RecordStatus, LookupError> {
    let records = resolver::txt(resolver, name).await?;
    if records.is_empty() {
        return Ok(RecordStatus::Missing);
    }
    let matches = records.iter().any(|record| {
        DomainKey::parse(record.as_bytes()).is_ok()
            && record
                .split(';')
                .filter_map(|tag| tag.split_once('='))
                .any(|(k, v)| {
                    k.trim() == "p"
                        && v.chars().filter(|c| !c.is_whitespace()).collect::<String>() == public_b64
                })
    });
    Ok(if matches {
        RecordStatus::Ok
    } else {
        RecordStatus::Mismatch
    })
}

pub(super) async fn cname(
    resolver: &TokioResolver,
    name: &str,
    target: &str,
) -> Result<RecordStatus, LookupError> {
    let records = resolver::lookup(resolver, name, RecordType::CNAME).await?;
    if records.is_empty() {
        return Ok(RecordStatus::Missing);
    }
    let matches = records
        .iter()
        .any(|r| matches!(r, RData::CNAME(c) if same_host(&c.0.to_ascii(), target)));
    Ok(if matches {
        RecordStatus::Ok
    } else {
        RecordStatus::Mismatch
    })
}

/// Whether a server's tracking host is a CNAME to Tern's public host.
pub async fn tracking_host(resolver: &TokioResolver, host: &str, public_hostname: &str) -> RecordStatus {
    cname(resolver, host, public_hostname)
        .await
        .unwrap_or(RecordStatus::Error)
}

/// A DMARC record passes when mail-auth parses it (RFC 7489 §6.3).
/// Whether the domain's MX records lead to `host` (Tern's SMTP server).
async fn mx(resolver: &TokioResolver, domain: &str, host: &str) -> Result<RecordStatus, LookupError> {
    let records = resolver::lookup(resolver, domain, RecordType::MX).await?;
    if records.is_empty() {
        return Ok(RecordStatus::Missing);
    }
    let matches = records
        .iter()
        .any(|r| matches!(r, RData::MX(mx) if same_host(&mx.exchange.to_ascii(), host)));
    Ok(if matches {
        RecordStatus::Ok
    } else {
        RecordStatus::Mismatch
    })
}

async fn dmarc(resolver: &TokioResolver, domain: &str) -> Result<RecordStatus, LookupError> {
    let records = resolver::txt(resolver, &format!("_dmarc.{domain}")).await?;
    // Unparseable, or several records (RFC 7489 §6.6.3: none applies).
    Ok(single_record(&records, "v=dmarc1", |one| {
        Dmarc::parse(one.as_bytes()).is_ok()
    }))
}

/// Looks every record up (concurrently). The domain is verified when SPF,
/// DKIM and the return path pass; DMARC is advisory. SPF is checked where
/// receivers evaluate it: at the return-path host (the envelope sender's
/// domain), through its CNAME. MX is not checked: no tenant is asked to
/// publish one until inbound routes exist.
pub async fn check(resolver: &TokioResolver, domain: &DomainDns<'_>, settings: &Settings) -> CheckResult {
    let dkim_name = format!("{}._domainkey.{}", domain.dkim_selector, domain.name);
    let (include, target) = (settings.spf_include(), settings.return_path_target());
    let receiving = async {
        if domain.receiving {
            Some(mx(resolver, domain.name, settings.smtp_hostname()).await)
        } else {
            None
        }
    };
    let (spf, dkim, return_path, dmarc, mx) = tokio::join!(
        spf(resolver, domain.return_path_host, &include),
        dkim(resolver, &dkim_name, domain.dkim_public_key),
        cname(resolver, domain.return_path_host, &target),
        dmarc(resolver, domain.name),
        receiving,
    );
    let (spf, dkim, return_path) = (status(spf), status(dkim), status(return_path));
    CheckResult {
        verified: [spf, dkim, return_path].iter().all(|s| *s == RecordStatus::Ok),
        spf,
        dkim,
        return_path,
        dmarc: status(dmarc),
        mx: mx.map_or(RecordStatus::Pending, status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spf_includes_are_read_by_mail_auth() {
        let parsed = |r: &str| Spf::parse(r.as_bytes()).unwrap();
        assert!(includes(
            &parsed("v=spf1 a mx include:SPF.Tern.test. ~all"),
            "spf.tern.test"
        ));
        assert!(!includes(
            &parsed("v=spf1 include:other.test -all"),
            "spf.tern.test"
        ));
        assert!(!includes(&parsed("v=spf1 a:spf.tern.test -all"), "spf.tern.test"));
        assert!(
            Spf::parse(b"v=spf1 include: -all").is_err() || !includes(&parsed("v=spf1 include: -all"), "x")
        );
    }
}
