//! The records the operator publishes once for the whole installation, and
//! `tern doctor`, which checks them. Every sending domain's return-path
//! host is a CNAME to `rp.<public_hostname>`, so what receivers find there
//! decides SPF for all of them and where their bounces go:
//!
//! - `rp.<public_hostname>  TXT  v=spf1 include:<spf include> -all`
//! - `rp.<public_hostname>  MX   10 <public_hostname>` (bounces come back)
//! - `<spf include>         TXT  v=spf1 ip4:<sending addresses> -all`
//! - `<public_hostname>     A/AAAA` (the inbound SMTP server, the MX target)

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{RData, RecordType};
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::Spf;

use super::records::expected_spf;
use super::resolver::{self, LookupError};
use super::verify;
use crate::config::Settings;
use crate::domain::RecordStatus;

/// One record of the installation and what a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub record_type: &'static str,
    pub name: String,
    /// What to publish.
    pub expected: String,
    pub status: RecordStatus,
}

fn status(result: Result<RecordStatus, LookupError>) -> RecordStatus {
    result.unwrap_or(RecordStatus::Error)
}

async fn mx(resolver: &TokioResolver, name: &str, target: &str) -> Result<RecordStatus, LookupError> {
    let records = resolver::lookup(resolver, name, RecordType::MX).await?;
    if records.is_empty() {
        return Ok(RecordStatus::Missing);
    }
    let matches = records
        .iter()
        .any(|r| matches!(r, RData::MX(mx) if verify::same_host(&mx.exchange.to_ascii(), target)));
    Ok(if matches {
        RecordStatus::Ok
    } else {
        RecordStatus::Mismatch
    })
}

/// The SPF host lists the sending addresses: one `v=spf1` record that parses.
async fn spf_host(resolver: &TokioResolver, name: &str) -> Result<RecordStatus, LookupError> {
    let records = resolver::txt(resolver, name).await?;
    Ok(verify::single_record(&records, "v=spf1", |one| {
        Spf::parse(one.as_bytes()).is_ok()
    }))
}

async fn address(resolver: &TokioResolver, name: &str) -> Result<RecordStatus, LookupError> {
    let (v4, v6) = tokio::join!(
        resolver::lookup(resolver, name, RecordType::A),
        resolver::lookup(resolver, name, RecordType::AAAA),
    );
    Ok(if v4?.is_empty() && v6?.is_empty() {
        RecordStatus::Missing
    } else {
        RecordStatus::Ok
    })
}

/// Looks every installation record up (concurrently).
pub async fn check(resolver: &TokioResolver, settings: &Settings) -> Vec<Finding> {
    let host = settings.public_hostname.as_str();
    let return_path = settings.return_path_target();
    let include = settings.spf_include();
    let (spf, bounces, senders, inbound) = tokio::join!(
        verify::spf(resolver, &return_path, &include),
        mx(resolver, &return_path, host),
        spf_host(resolver, &include),
        address(resolver, host),
    );
    vec![
        Finding {
            record_type: "TXT",
            name: return_path.clone(),
            expected: expected_spf(settings),
            status: status(spf),
        },
        Finding {
            record_type: "MX",
            name: return_path,
            expected: format!("10 {host}"),
            status: status(bounces),
        },
        Finding {
            record_type: "TXT",
            name: include,
            expected: "v=spf1 ip4:<each sending address> ip6:<…> -all".into(),
            status: status(senders),
        },
        Finding {
            record_type: "A/AAAA",
            name: host.to_string(),
            expected: "the address of Tern's inbound SMTP server".into(),
            status: status(inbound),
        },
    ]
}

/// The findings as a table, and whether all passed.
pub fn report(findings: &[Finding]) -> (String, bool) {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{:<9} {:<7} {:<32} {}\n",
            f.status.as_str(),
            f.record_type,
            f.name,
            f.expected
        ));
    }
    let failing = findings.iter().filter(|f| f.status != RecordStatus::Ok).count();
    if failing == 0 {
        out.push_str("every installation record is in place\n");
    } else {
        out.push_str(&format!(
            "{failing} of {} installation records need attention: publish them as shown\n",
            findings.len()
        ));
    }
    (out, failing == 0)
}
