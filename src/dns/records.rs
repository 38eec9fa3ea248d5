//! The DNS records the owner of a sending domain publishes.

use serde::Serialize;
use utoipa::ToSchema;

use crate::config::Settings;
use crate::domain::{DomainDns, RecordStatus};
use crate::mail::keys::dkim_record;

/// What a record is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordPurpose {
    /// Authorises Tern's servers to send for the return-path host, which is
    /// the envelope sender receivers evaluate SPF for (RFC 7208). It comes
    /// through the return-path CNAME: nothing to publish (`publish: false`).
    Spf,
    /// Publishes the DKIM public key (RFC 6376 §3.6.1).
    Dkim,
    /// The VERP return-path host bounces come back to.
    ReturnPath,
    /// A DMARC policy (RFC 7489); recommended, not required.
    Dmarc,
    /// Receives mail for the domain through Tern (inbound routes).
    Mx,
    /// A server's tracking host (open pixel and tracked links): a CNAME to
    /// Tern's public host.
    Tracking,
}

/// One record to publish.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DnsRecord {
    pub purpose: RecordPurpose,
    /// `TXT`, `CNAME` or `MX`.
    #[schema(example = "TXT")]
    pub record_type: String,
    /// Fully qualified owner name.
    #[schema(example = "tern._domainkey.example.com")]
    pub name: String,
    #[schema(example = "v=DKIM1; k=rsa; p=MIIBIjANBgkqh...")]
    pub value: String,
    /// MX preference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    /// Whether sending needs it (for `live` servers).
    pub required: bool,
    /// Whether the domain's owner publishes it. `false` for what Tern checks
    /// but the owner gets through another record (SPF, through the
    /// return-path CNAME).
    pub publish: bool,
    pub status: RecordStatus,
}

/// The record a server's tracking host needs.
pub fn for_tracking(host: &str, status: RecordStatus, settings: &Settings) -> DnsRecord {
    DnsRecord {
        purpose: RecordPurpose::Tracking,
        record_type: "CNAME".into(),
        name: host.to_string(),
        value: settings.public_hostname.clone(),
        priority: None,
        required: false,
        publish: true,
        status,
    }
}

/// Every record for `domain`, with the status of its last check.
pub fn for_domain(domain: &DomainDns<'_>, settings: &Settings) -> Vec<DnsRecord> {
    let record = |purpose, record_type: &str, name: String, value: String, required, status| DnsRecord {
        purpose,
        record_type: record_type.into(),
        name,
        value,
        priority: (purpose == RecordPurpose::Mx).then_some(10),
        required,
        publish: purpose != RecordPurpose::Spf,
        status,
    };
    let mut records = vec![
        // Receivers evaluate SPF for the envelope sender, b+…@<return-path
        // host>; the CNAME below hands that name the TXT record the operator
        // publishes at its target. The domain's own SPF record is left
        // alone: asking for a second one would break it (RFC 7208 §4.5).
        record(
            RecordPurpose::Spf,
            "TXT",
            domain.return_path_host.to_string(),
            expected_spf(settings),
            true,
            domain.last_check.spf,
        ),
        record(
            RecordPurpose::Dkim,
            "TXT",
            format!("{}._domainkey.{}", domain.dkim_selector, domain.name),
            dkim_record(domain.dkim_algorithm, domain.dkim_public_key),
            true,
            domain.last_check.dkim,
        ),
        record(
            RecordPurpose::ReturnPath,
            "CNAME",
            domain.return_path_host.to_string(),
            settings.return_path_target(),
            true,
            domain.last_check.return_path,
        ),
        record(
            RecordPurpose::Dmarc,
            "TXT",
            format!("_dmarc.{}", domain.name),
            format!("v=DMARC1; p=none; rua=mailto:dmarc@{}", domain.name),
            false,
            domain.last_check.dmarc,
        ),
    ];
    // An MX record only for a domain that receives through a route:
    // pointing a domain at Tern takes all of its mail.
    if domain.receiving {
        records.push(record(
            RecordPurpose::Mx,
            "MX",
            domain.name.to_string(),
            settings.smtp_hostname().to_string(),
            false,
            domain.last_check.mx,
        ));
    }
    records
}

/// The SPF record the return-path hosts get, published once by the
/// operator at `rp.<public_hostname>` (see `dns::doctor`).
pub fn expected_spf(settings: &Settings) -> String {
    format!("v=spf1 include:{} -all", settings.spf_include())
}
