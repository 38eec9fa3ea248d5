//! Typed settings: defaults, then an optional TOML file, then `TERN_*`
//! environment variables (`__` separates nesting: `TERN_DATABASE__URL`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::domain::Redacted;

/// Everything Tern reads at start-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Host name of this Tern installation: used in Message-IDs, the SPF
    /// include, the return-path CNAME target and the MX record.
    pub public_hostname: String,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub dns: DnsSettings,
    pub limits: Limits,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub delivery: DeliverySettings,
    #[serde(default)]
    pub secrets: SecretsSettings,
    #[serde(default)]
    pub webhooks: WebhookSettings,
    #[serde(default)]
    pub smtp: SmtpSettings,
    #[serde(default)]
    pub suppression: SuppressionSettings,
    #[serde(default)]
    pub tracking: TrackingSettings,
}

/// Open and click tracking.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingSettings {
    /// Opens and clicks this soon after delivery are flagged `machine`
    /// (privacy proxies and link scanners fetch on arrival), in seconds.
    pub machine_window_secs: u64,
    /// Store the client's IP address with opens and clicks (off: only used
    /// to flag known proxy ranges, then dropped).
    pub store_ip: bool,
    /// A recipient's repeated open (or click on one link) within this many
    /// seconds of the last one is not recorded again.
    pub repeat_window_secs: u64,
}

impl Default for TrackingSettings {
    fn default() -> Self {
        TrackingSettings {
            machine_window_secs: 10,
            store_ip: false,
            repeat_window_secs: 60,
        }
    }
}

/// How long each kind of suppression entry lasts (days; none: for ever),
/// unless an entry is given its own expiry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuppressionSettings {
    pub hard_bounce_days: Option<u32>,
    pub complaint_days: Option<u32>,
    pub unsubscribe_days: Option<u32>,
    pub manual_days: Option<u32>,
}

impl Default for SuppressionSettings {
    fn default() -> Self {
        SuppressionSettings {
            hard_bounce_days: Some(30),
            complaint_days: None,
            unsubscribe_days: None,
            manual_days: None,
        }
    }
}

impl SuppressionSettings {
    /// The default lifetime of an entry with `reason`, in seconds.
    pub fn lifetime_secs(&self, reason: crate::domain::SuppressionReason) -> Option<f64> {
        use crate::domain::SuppressionReason as R;
        let days = match reason {
            R::HardBounce => self.hard_bounce_days,
            R::Complaint => self.complaint_days,
            R::Unsubscribe => self.unsubscribe_days,
            R::Manual => self.manual_days,
        };
        days.map(|d| f64::from(d) * 86_400.0)
    }
}

/// The inbound SMTP server (`tern serve --role smtp`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    /// Addresses to listen on. Plain `tern serve` runs the SMTP server only
    /// when this is set; `--role smtp` falls back to 127.0.0.1:2525.
    pub listen: Vec<SocketAddr>,
    /// Name in the greeting and the `Authentication-Results` authserv-id
    /// (default: `public_hostname`).
    pub hostname: Option<String>,
    /// PEM certificate chain and private key for STARTTLS. Without them a
    /// self-signed certificate is made on first start and kept in
    /// `self_signed_dir`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub self_signed_dir: PathBuf,
    /// Largest message taken (announced with SIZE, enforced while reading).
    pub max_message_bytes: usize,
    /// Recipients of one transaction (RFC 5321 §4.5.3.1.8 asks for 100).
    pub max_recipients: usize,
    /// Longest line of a message, CRLF included (RFC 5321 §4.5.3.1.6:
    /// 1000). A longer one refuses the message; nothing is truncated.
    pub max_line_bytes: usize,
    /// Longest command line, CRLF included (512 in RFC 5321 §4.5.3.1.4,
    /// more for extensions' parameters).
    pub max_command_bytes: usize,
    /// Wait for the next command, in seconds (RFC 5321 §4.5.3.2.7: 5 min).
    pub command_timeout_secs: u64,
    /// Wait for the whole of a message's DATA, in seconds.
    pub data_timeout_secs: u64,
    /// Longest session, in seconds.
    pub session_timeout_secs: u64,
    /// Refused commands before the server hangs up.
    pub max_errors: u32,
    /// Sessions at once, in all and from one client address.
    pub max_sessions: usize,
    pub max_sessions_per_ip: usize,
    /// Transactions (messages) in one session.
    pub max_transactions: u32,
    /// Attachments of a `parsed` payload larger than this are left out,
    /// with a link to fetch them through the API.
    pub max_payload_attachment_bytes: usize,
    /// DNS blocklist zones (RFC 5782) asked about each client on connect; a
    /// listed client is refused with `554 5.7.1`. None by default.
    pub dnsbl_zones: Vec<String>,
    /// Feedback-loop addresses (`fbl@rp.example.com`) that take ARF
    /// complaint reports from mailbox providers; the report names the
    /// message. Return paths take reports without being listed here.
    pub feedback_addresses: Vec<String>,
    /// Domains whose feedback reports are believed at those addresses: a
    /// report acts only if a DKIM signature of one of them (or of a
    /// subdomain) verifies. Empty: any report (anyone can write there).
    pub feedback_senders: Vec<String>,
    pub spam: SpamSettings,
}

/// The spam scanner of received mail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpamSettings {
    /// rspamd's normal worker, e.g. `http://127.0.0.1:11333`; none: no
    /// scanning (verdict `unknown`).
    pub rspamd_url: Option<String>,
    /// How long a scan may take, in milliseconds; then the verdict is
    /// `unknown` and the message goes on.
    pub timeout_ms: u64,
}

impl Default for SpamSettings {
    fn default() -> Self {
        SpamSettings {
            rspamd_url: None,
            timeout_ms: 5000,
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            listen: Vec::new(),
            hostname: None,
            tls_cert: None,
            tls_key: None,
            self_signed_dir: "tern-smtp-tls".into(),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 100,
            max_line_bytes: 1000,
            max_command_bytes: 2048,
            command_timeout_secs: 300,
            data_timeout_secs: 600,
            session_timeout_secs: 1800,
            max_errors: 10,
            max_sessions: 1000,
            max_sessions_per_ip: 20,
            max_transactions: 100,
            max_payload_attachment_bytes: 10 * 1024 * 1024,
            dnsbl_zones: Vec::new(),
            feedback_addresses: Vec::new(),
            feedback_senders: Vec::new(),
            spam: SpamSettings::default(),
        }
    }
}

/// Webhook endpoints and their delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Accept endpoints whose host is or resolves to a loopback, private,
    /// link-local or otherwise reserved address (metadata services
    /// included). Off: a tenant could make Tern call internal services.
    pub allow_private_targets: bool,
    /// Accept `http://` endpoints (default: `https://` only).
    pub allow_http: bool,
    /// After a secret rotation, how long the previous secret keeps signing
    /// alongside the new one, in seconds.
    pub secret_overlap_secs: u64,
    /// Endpoints one server may have.
    pub max_per_server: u32,
    /// Waits before each retry of a failed delivery, in seconds (about
    /// three days in all); then the delivery is `failed`. ±10% jitter.
    pub retry_schedule_secs: Vec<u64>,
    /// Connect timeout of one delivery, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Whole-request timeout of one delivery, in milliseconds.
    pub timeout_ms: u64,
    /// Deliveries to one endpoint at once, per dispatcher.
    pub per_endpoint_concurrency: usize,
    /// Deliveries a dispatcher runs at once.
    pub concurrency: usize,
    /// An endpoint whose every attempt has failed for this long (seconds;
    /// default three days) is turned off, and the server's other endpoints
    /// get a `webhook.disabled` event.
    pub disable_after_secs: u64,
    /// How long a dispatcher owns the deliveries it claimed: one that dies
    /// mid-send leaves them to others after this many seconds.
    pub lease_secs: u64,
    /// How often a dispatcher looks for due deliveries, in milliseconds:
    /// the longest an event waits before it is sent (a backlog is taken
    /// without waiting). Polling rather than notifications: a `NOTIFY` in
    /// every transaction that writes an event would serialise their
    /// commits and wake every listening connection of the database.
    pub poll_interval_ms: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private_targets: false,
            allow_http: false,
            secret_overlap_secs: 24 * 3600,
            max_per_server: 20,
            retry_schedule_secs: vec![
                5, 300, 1800, 7200, 18000, 36000, 36000, 36000, 36000, 36000, 36000,
            ],
            connect_timeout_ms: 5000,
            timeout_ms: 15000,
            per_endpoint_concurrency: 4,
            concurrency: 64,
            disable_after_secs: 3 * 24 * 3600,
            lease_secs: 120,
            poll_interval_ms: 50,
        }
    }
}

/// The key that seals secrets stored in the database (DKIM private keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSettings {
    /// Base64 of 32 random bytes (`openssl rand -base64 32`). Every API
    /// process needs the same one.
    #[serde(default)]
    pub key: Option<Redacted<String>>,
    /// Where the key is kept when `key` is not set: read if it exists,
    /// else created with a new random key (mode 0600) on first start.
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
}

fn default_key_file() -> PathBuf {
    "tern-secrets.key".into()
}

impl Default for SecretsSettings {
    fn default() -> Self {
        SecretsSettings {
            key: None,
            key_file: default_key_file(),
        }
    }
}

/// PostgreSQL connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May carry a password.
    pub url: Redacted<String>,
    pub max_connections: u32,
}

/// HTTP API listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// Optional second listener serving only `/healthz`, `/readyz` and
    /// `/metrics`: how a `--role worker` process is probed and scraped.
    pub ops_listen: Option<SocketAddr>,
    /// Whole-request timeout in seconds.
    pub request_timeout_secs: u64,
}

/// DNS used to check sending domains' records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSettings {
    /// Nameservers as `ip:port`; empty means the system's resolv.conf.
    pub nameservers: Vec<SocketAddr>,
    pub timeout_ms: u64,
    /// Label put in front of a sending domain for its VERP return path.
    pub return_path_prefix: String,
    /// Host the SPF record includes; default `_spf.<public_hostname>`.
    pub spf_include: Option<String>,
}

/// Bounds on what a client may submit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Size of a built or raw message, in bytes.
    pub max_message_bytes: usize,
    /// Distinct envelope recipients per message.
    pub max_recipients: usize,
    pub max_attachments: usize,
    /// Length of one header value (custom headers, raw header lines).
    pub max_header_bytes: usize,
    /// Number of custom headers per message.
    pub max_custom_headers: usize,
    /// Subject length in characters.
    pub max_subject_chars: usize,
    /// Entries in `metadata`; keys and values are bounded by `max_header_bytes`.
    pub max_metadata_entries: usize,
    /// Sustained sends per second of one API key, per API process (0: no
    /// limit). Over it: 429 with Retry-After.
    pub sends_per_second_per_key: u32,
    /// Sends one key may make at once above that rate (0: the rate).
    pub burst_per_key: u32,
    /// Sends of one key in progress at once, per API process (0: no limit).
    pub concurrent_sends_per_key: usize,
}

/// How mail leaves: MX lookup, or a smart host and per-domain rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    /// Port of receiving servers: 25, or a high port for tests.
    pub port: u16,
    /// Send everything through this `host[:port]` instead of MX hosts.
    pub smart_host: Option<String>,
    /// STARTTLS policy towards the smart host.
    #[serde(default)]
    pub smart_host_tls: TlsPolicy,
    /// PEM file of the CA certificates that may sign the smart host's
    /// certificate under `verify` (default: the Mozilla roots of webpki-roots).
    #[serde(default)]
    pub smart_host_ca_file: Option<PathBuf>,
    /// Per-domain routes, checked before the smart host and MX.
    pub transports: Vec<TransportRule>,
    /// Waits before each retry of a temporary failure, in seconds; when they
    /// run out the recipient is `failed`. ±10% jitter is added.
    pub retry_schedule_secs: Vec<u64>,
    /// How long a worker owns the recipients it claimed.
    pub lease_secs: u64,
    /// Recipients claimed at once.
    pub batch_size: i64,
    /// Fallback poll when no notification arrives, in milliseconds.
    pub poll_interval_ms: u64,
    /// TCP connect timeout per address, in seconds.
    pub connect_timeout_secs: u64,
    /// Timeout of a TLS handshake after STARTTLS, in seconds.
    #[serde(default = "default_tls_timeout_secs")]
    pub tls_timeout_secs: u64,
    /// SMTP transactions a worker runs at once.
    pub concurrency: usize,
    /// Of those, at most this many to one recipient domain.
    pub per_domain_concurrency: usize,
    /// Deliver to special-use names (`.test`, `.local`, `localhost`, …) and
    /// to loopback, private, link-local and unique-local addresses found
    /// through MX or the implicit MX. Off: a tenant could otherwise make
    /// Tern talk SMTP to internal hosts. Transport rules and the smart host
    /// reach any address regardless. On in tests with loopback sinks.
    #[serde(default)]
    pub allow_private_destinations: bool,
    /// Which address families to connect to, in which order.
    #[serde(default)]
    pub ip_strategy: IpStrategy,
}

/// The order in which a destination's addresses are tried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpStrategy {
    /// IPv4 addresses first: large receivers refuse or distrust mail over
    /// IPv6 from senders without IPv6 reverse DNS and SPF.
    #[default]
    Ipv4ThenIpv6,
    Ipv6ThenIpv4,
    Ipv4Only,
    Ipv6Only,
}

fn default_tls_timeout_secs() -> u64 {
    30
}

/// How a route uses STARTTLS (RFC 3207), after Postfix's security levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsPolicy {
    /// Never STARTTLS (Postfix `none`).
    None,
    /// STARTTLS when offered, certificate not checked; a refused STARTTLS
    /// or a failed handshake falls back to clear text (RFC 7435, Postfix
    /// `may`). What MX hosts found through DNS get.
    #[default]
    Opportunistic,
    /// Never in clear text, certificate not checked (Postfix `encrypt`).
    Required,
    /// Never in clear text, and the certificate chain must lead to a
    /// trusted root and name the host (Postfix `verify`).
    Verify,
}

impl TlsPolicy {
    /// Whether the route must not send in clear text.
    pub fn is_mandatory(self) -> bool {
        matches!(self, TlsPolicy::Required | TlsPolicy::Verify)
    }
}

/// A route for one recipient domain, as in Postfix's transport maps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportRule {
    pub domain: String,
    pub host: String,
    /// Default: `delivery.port`.
    pub port: Option<u16>,
    /// STARTTLS policy; default `opportunistic`.
    #[serde(default)]
    pub tls: TlsPolicy,
    /// PEM file of the CA certificates that may sign this host's
    /// certificate under `verify` (default: the Mozilla roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Older spelling of `tls = "verify"`.
    #[serde(default)]
    pub require_tls: bool,
}

impl TransportRule {
    /// The policy in force: `require_tls` raises it to `verify`.
    pub fn tls_policy(&self) -> TlsPolicy {
        if self.require_tls {
            TlsPolicy::Verify
        } else {
            self.tls
        }
    }
}

/// Sessions for the management API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Session lifetime in seconds.
    pub session_ttl_secs: u64,
    /// HMAC secret for session tokens; default: one generated and kept in
    /// the database, shared by every process.
    pub jwt_secret: Option<Redacted<String>>,
}

/// Log output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `human` or `json`.
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. `info,tern=debug`.
    pub filter: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_hostname: "tern.localhost".into(),
            database: DatabaseSettings {
                url: Redacted::new("postgres://postgres@127.0.0.1:5432/tern".into()),
                max_connections: 10,
            },
            http: HttpSettings {
                listen: SocketAddr::from(([127, 0, 0, 1], 8025)),
                ops_listen: None,
                request_timeout_secs: 30,
            },
            dns: DnsSettings {
                nameservers: Vec::new(),
                timeout_ms: 3000,
                return_path_prefix: "rp".into(),
                spf_include: None,
            },
            limits: Limits {
                max_message_bytes: 10 * 1024 * 1024,
                max_recipients: 50,
                max_attachments: 20,
                max_header_bytes: 2000,
                max_custom_headers: 50,
                max_subject_chars: 998,
                max_metadata_entries: 20,
                sends_per_second_per_key: 100,
                burst_per_key: 200,
                concurrent_sends_per_key: 32,
            },
            auth: AuthSettings {
                session_ttl_secs: 12 * 3600,
                jwt_secret: None,
            },
            log: LogSettings {
                format: LogFormat::Human,
                filter: "info".into(),
            },
            delivery: DeliverySettings {
                port: 25,
                smart_host: None,
                smart_host_tls: TlsPolicy::Opportunistic,
                smart_host_ca_file: None,
                transports: Vec::new(),
                // 18 retries over about two days.
                retry_schedule_secs: vec![
                    60, 120, 300, 600, 900, 1800, 3600, 3600, 7200, 7200, 10800, 10800, 14400, 14400, 21600,
                    21600, 28800, 28800,
                ],
                lease_secs: 300,
                batch_size: 50,
                poll_interval_ms: 5000,
                connect_timeout_secs: 30,
                tls_timeout_secs: default_tls_timeout_secs(),
                concurrency: 20,
                per_domain_concurrency: 5,
                allow_private_destinations: false,
                ip_strategy: IpStrategy::Ipv4ThenIpv6,
            },
            secrets: SecretsSettings::default(),
            webhooks: WebhookSettings::default(),
            smtp: SmtpSettings::default(),
            suppression: SuppressionSettings::default(),
            tracking: TrackingSettings::default(),
        }
    }
}

/// A setting that is present but unusable; names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("invalid configuration key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Settings {
    /// Loads defaults, then `file` if given (it must exist), then `TERN_*`.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid {
                    key: "--config",
                    reason: format!("file {} does not exist", path.display()),
                });
            }
            figment = figment.merge(Toml::file(path));
        }
        let settings: Settings = figment
            .merge(
                Env::prefixed("TERN_")
                    // Variables of the CLI and of the test suite, not settings.
                    .filter(|key| {
                        let key = key.as_str().to_ascii_lowercase();
                        key != "config" && key != "admin_password" && !key.starts_with("test_")
                    })
                    .split("__"),
            )
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: ranges and formats.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.to_string(),
            })
        };
        if crate::domain::DomainName::parse(&self.public_hostname).is_err() {
            return invalid("public_hostname", "must be a domain name");
        }
        let url = self.database.url.expose();
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return invalid("database.url", "must be a postgres:// URL");
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1");
        }
        if self.http.request_timeout_secs == 0 {
            return invalid("http.request_timeout_secs", "must be at least 1");
        }
        if crate::domain::DomainName::parse(&self.dns.return_path_prefix).is_err()
            || self.dns.return_path_prefix.contains('.')
        {
            return invalid("dns.return_path_prefix", "must be one DNS label");
        }
        let limits = [
            ("limits.max_message_bytes", self.limits.max_message_bytes),
            ("limits.max_recipients", self.limits.max_recipients),
            ("limits.max_header_bytes", self.limits.max_header_bytes),
            ("limits.max_subject_chars", self.limits.max_subject_chars),
        ];
        for (key, value) in limits {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if self.limits.max_message_bytes > 50 * 1024 * 1024 {
            return invalid("limits.max_message_bytes", "must be at most 50 MiB");
        }
        let smtp = [
            ("smtp.max_message_bytes", self.smtp.max_message_bytes),
            ("smtp.max_recipients", self.smtp.max_recipients),
            ("smtp.max_sessions", self.smtp.max_sessions),
            ("smtp.max_sessions_per_ip", self.smtp.max_sessions_per_ip),
        ];
        for (key, value) in smtp {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if self.smtp.max_line_bytes < 1000 {
            return invalid("smtp.max_line_bytes", "must be at least 1000 (RFC 5321)");
        }
        if self.smtp.max_command_bytes < 512 {
            return invalid("smtp.max_command_bytes", "must be at least 512 (RFC 5321)");
        }
        if self.smtp.tls_cert.is_some() != self.smtp.tls_key.is_some() {
            return invalid("smtp.tls_cert", "smtp.tls_cert and smtp.tls_key go together");
        }
        if self.delivery.lease_secs < 10 {
            return invalid("delivery.lease_secs", "must be at least 10");
        }
        if self.delivery.batch_size < 1 {
            return invalid("delivery.batch_size", "must be at least 1");
        }
        if self.delivery.poll_interval_ms < 10 {
            return invalid("delivery.poll_interval_ms", "must be at least 10");
        }
        if !(10..=60_000).contains(&self.webhooks.poll_interval_ms) {
            return invalid("webhooks.poll_interval_ms", "must be from 10 to 60000");
        }
        if self.delivery.concurrency == 0 || self.delivery.per_domain_concurrency == 0 {
            return invalid("delivery.concurrency", "concurrency limits must be at least 1");
        }
        if self.delivery.port == 0 {
            return invalid("delivery.port", "must be a port number");
        }
        if self
            .delivery
            .transports
            .iter()
            .any(|t| t.host.is_empty() || t.domain.is_empty())
        {
            return invalid("delivery.transports", "every rule needs a domain and a host");
        }
        for rule in &self.delivery.transports {
            if rule.require_tls && !matches!(rule.tls, TlsPolicy::Opportunistic | TlsPolicy::Verify) {
                return invalid(
                    "delivery.transports",
                    "require_tls is the older spelling of tls = \"verify\"; set one of them",
                );
            }
            if rule.ca_file.is_some() && rule.tls_policy() != TlsPolicy::Verify {
                return invalid(
                    "delivery.transports",
                    "ca_file is used only with tls = \"verify\"",
                );
            }
        }
        if self.delivery.smart_host_ca_file.is_some() && self.delivery.smart_host_tls != TlsPolicy::Verify {
            return invalid(
                "delivery.smart_host_ca_file",
                "is used only with smart_host_tls = \"verify\"",
            );
        }
        if self.delivery.tls_timeout_secs == 0 {
            return invalid("delivery.tls_timeout_secs", "must be at least 1");
        }
        if self.auth.session_ttl_secs < 60 {
            return invalid("auth.session_ttl_secs", "must be at least 60");
        }
        if let Some(secret) = &self.auth.jwt_secret
            && secret.expose().len() < 32
        {
            return invalid("auth.jwt_secret", "must be at least 32 characters");
        }
        Ok(())
    }

    /// The host an SPF record of a sending domain includes.
    pub fn spf_include(&self) -> String {
        self.dns
            .spf_include
            .clone()
            .unwrap_or_else(|| format!("_spf.{}", self.public_hostname))
    }

    /// The SMTP server's name (greeting, authserv-id).
    pub fn smtp_hostname(&self) -> &str {
        self.smtp.hostname.as_deref().unwrap_or(&self.public_hostname)
    }

    /// Where each domain's return-path host points (CNAME target).
    pub fn return_path_target(&self) -> String {
        format!("{}.{}", self.dns.return_path_prefix, self.public_hostname)
    }

    /// The largest request body the HTTP layer reads: a message at the size
    /// limit, base64-encoded, plus room for the JSON around it.
    pub fn max_request_bytes(&self) -> usize {
        self.limits.max_message_bytes / 3 * 4 + 64 * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().expect("defaults validate");
    }

    #[test]
    fn the_example_file_loads() {
        let settings = Settings::load(Some(Path::new("tern.example.toml"))).expect("example loads");
        assert_eq!(settings.public_hostname, "tern.example.com");
    }

    #[test]
    fn tls_settings_that_contradict_each_other_are_refused() {
        let rule = |tls, require_tls, ca_file: Option<&str>| TransportRule {
            domain: "a.test".into(),
            host: "relay".into(),
            port: None,
            tls,
            ca_file: ca_file.map(Into::into),
            require_tls,
        };
        let check = |rule| {
            let mut settings = Settings::default();
            settings.delivery.transports = vec![rule];
            settings.validate()
        };
        assert!(check(rule(TlsPolicy::Verify, false, Some("/ca.pem"))).is_ok());
        assert!(check(rule(TlsPolicy::Opportunistic, true, Some("/ca.pem"))).is_ok());
        assert!(check(rule(TlsPolicy::Required, true, None)).is_err());
        assert!(check(rule(TlsPolicy::Required, false, Some("/ca.pem"))).is_err());
        let mut settings = Settings::default();
        settings.delivery.smart_host_ca_file = Some("/ca.pem".into());
        assert!(settings.validate().is_err());
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let mut settings = Settings::default();
        settings.limits.max_recipients = 0;
        let message = settings.validate().unwrap_err().to_string();
        assert!(message.contains("limits.max_recipients"), "{message}");
    }
}
