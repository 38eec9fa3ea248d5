//! The inbound phase: `smtp-source` sends DKIM-signed 4 KB messages (their
//! domain's SPF and DKIM records in a dnsmasq on loopback) over parallel
//! sessions to one `endpoint` route of `tern serve --role smtp`, and a
//! `--role webhooks` dispatcher POSTs each to a loopback receiver. Figures:
//! messages/s accepted (stored with every check done, before each `250`),
//! messages/s at the endpoint, and store-to-arrival p50/p99, next to
//! `smtp-source` into `smtp-sink` with the same file and sessions.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use sqlx::PgPool;
use uuid::Uuid;

/// The sending domain of the inbound messages.
pub const SENDER_DOMAIN: &str = "sender.bench";
const SELECTOR: &str = "bench";
/// The route's address (the demo domain).
pub const ROUTE: &str = "inbound@example.com";

/// What the phase needs from the start of the run: DNS with the sender's
/// records, and the signed message.
pub struct Setup {
    pub dns: Child,
    pub dns_port: u16,
    pub smtp_port: u16,
    pub message: PathBuf,
    pub self_signed_dir: PathBuf,
}

impl Setup {
    /// Starts dnsmasq with the sender's SPF, DKIM and DMARC records and
    /// writes a signed message of about `size` bytes of text.
    pub fn start(size: usize, dns_port: u16, smtp_port: u16, tag: &str) -> anyhow::Result<Setup> {
        let key = tern::mail::keys::generate(tern::domain::DkimAlgorithm::Ed25519)?;
        let record = tern::mail::keys::dkim_record(tern::domain::DkimAlgorithm::Ed25519, &key.public_b64);
        let dns = Command::new("dnsmasq")
            .args([
                "-k",
                "-C",
                "/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
            ])
            .args([
                "--listen-address=127.0.0.1",
                "--user=nobody",
                "--pid-file=",
                "--address=/#/",
            ])
            .arg(format!("--port={dns_port}"))
            // Records live five minutes, as real ones do (and longer): the
            // resolver caches them.
            .args(["--local-ttl=300", "--neg-ttl=300"])
            .arg(format!("--txt-record={SENDER_DOMAIN},v=spf1 ip4:127.0.0.1 -all"))
            .arg(format!(
                "--txt-record={SELECTOR}._domainkey.{SENDER_DOMAIN},{record}"
            ))
            .arg(format!("--txt-record=_dmarc.{SENDER_DOMAIN},v=DMARC1; p=reject"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting dnsmasq (Debian package dnsmasq-base)")?;
        let line = "The quick brown fox jumps over the lazy dog 0123456789.\r\n";
        let text = line.repeat(size / line.len() + 1);
        let unsigned = format!(
            "From: Sender <news@{SENDER_DOMAIN}>\r\nTo: <{ROUTE}>\r\nSubject: Inbound benchmark\r\n\
             Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench@{SENDER_DOMAIN}>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}"
        );
        let domain = tern::domain::SigningDomain {
            id: Uuid::now_v7(),
            name: SENDER_DOMAIN.into(),
            dkim_algorithm: tern::domain::DkimAlgorithm::Ed25519,
            dkim_selector: SELECTOR.into(),
            sealed_dkim_key: tern::domain::Redacted::new(Vec::new()),
            verified: true,
        };
        let private = key.private_pkcs8.clone();
        let signed = tern::mail::dkim::SignerCache::default()
            .sign(
                &domain,
                |_| Ok(tern::domain::Redacted::new(private)),
                unsigned.as_bytes(),
            )
            .context("signing the benchmark message")?;
        // smtp-source -F appends CRLF to each line itself: the file has LFs.
        let message = std::env::temp_dir().join(format!("{tag}-inbound.eml"));
        let lf: Vec<u8> = signed.iter().copied().filter(|&b| b != b'\r').collect();
        std::fs::write(&message, lf)?;
        Ok(Setup {
            dns,
            dns_port,
            smtp_port,
            message,
            self_signed_dir: std::env::temp_dir().join(format!("{tag}-smtp-tls")),
        })
    }

    /// The settings the run's config file gets.
    pub fn config(&self) -> String {
        format!(
            "[dns]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_ms = 1000\n\
             [smtp]\nlisten = [\"127.0.0.1:{}\"]\nself_signed_dir = \"{}\"\nmax_sessions_per_ip = 1000\n",
            self.dns_port,
            self.smtp_port,
            self.self_signed_dir.display()
        )
    }

    pub fn stop(mut self) {
        let _ = self.dns.kill();
        let _ = self.dns.wait();
        let _ = std::fs::remove_file(&self.message);
        let _ = std::fs::remove_dir_all(&self.self_signed_dir);
    }
}

/// Gives the demo domain an `endpoint` route for [`ROUTE`] to `url`.
pub async fn add_route(db: &PgPool, secrets_key: &[u8; 32], url: &str) -> anyhow::Result<()> {
    let endpoint = Uuid::now_v7();
    let key = tern::sealing::SealingKey::from_bytes(secrets_key)?;
    let secret: [u8; 32] = rand::random();
    let local = ROUTE.split('@').next().unwrap_or_default();
    sqlx::query(
        "WITH w AS (
            INSERT INTO webhook_endpoints (id, server_id, url, secret, purpose)
            SELECT $1, server_id, $2, $3, 'route' FROM domains WHERE name = 'example.com'
            RETURNING id, server_id
         )
         INSERT INTO routes (id, server_id, domain_id, local_part, action, endpoint_id, format)
         SELECT $4, w.server_id, d.id, $5, 'endpoint', w.id, 'parsed'
         FROM w JOIN domains d ON d.server_id = w.server_id AND d.name = 'example.com'",
    )
    .bind(endpoint)
    .bind(url)
    .bind(key.seal(&secret, endpoint.as_bytes()))
    .bind(Uuid::now_v7())
    .bind(local)
    .execute(db)
    .await?;
    Ok(())
}

/// Runs smtp-source with the message file; its wall time.
pub fn smtp_source(
    file: &Path,
    sessions: usize,
    messages: usize,
    to: &str,
    port: u16,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = Command::new("smtp-source")
        .args(["-s", &sessions.to_string(), "-m", &messages.to_string()])
        .arg("-F")
        .arg(file)
        .args(["-f", &format!("news@{SENDER_DOMAIN}"), "-t", to])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .status()
        .context("running smtp-source")?;
    if !status.success() {
        bail!("smtp-source failed: {status}");
    }
    Ok(start.elapsed())
}

/// Store-to-arrival percentiles (ms): each message's `created_at` (it is
/// written once its checks are done, just before the `250`) to the
/// receiver's arrival of its `webhook-id`.
pub async fn latencies(db: &PgPool, arrivals: &[(String, SystemTime)]) -> anyhow::Result<(f64, f64)> {
    let stored: Vec<(String, f64)> = sqlx::query_as(
        "SELECT d.event_id, extract(epoch FROM m.created_at)::float8
         FROM inbound_messages i
         JOIN webhook_deliveries d ON d.id = i.delivery_id
         JOIN messages m ON m.id = i.message_id",
    )
    .fetch_all(db)
    .await?;
    let stored: std::collections::HashMap<String, f64> = stored.into_iter().collect();
    let mut waits: Vec<f64> = arrivals
        .iter()
        .filter_map(|(id, at)| {
            let arrived = at.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
            stored.get(id).map(|s| (arrived - s) * 1000.0)
        })
        .collect();
    if waits.is_empty() {
        bail!("no arrival matched a stored message");
    }
    waits.sort_by(f64::total_cmp);
    let at = |q: f64| waits[((waits.len() as f64 * q) as usize).min(waits.len() - 1)];
    Ok((at(0.5), at(0.99)))
}

/// A Postfix instance of its own (config and queue in a temporary
/// directory): `smtpd` on loopback taking mail for one domain and
/// delivering it into a maildir (`virtual`), the reference the inbound
/// phase is compared with. No SPF, DKIM or DMARC checks: Postfix does
/// those only with milters or policy services.
pub struct Postfix {
    dir: PathBuf,
    master: Child,
    pub port: u16,
}

/// The domain the Postfix peer takes mail for.
pub const POSTFIX_DOMAIN: &str = "bench-in.test";

impl Postfix {
    pub fn start(port: u16, tag: &str) -> anyhow::Result<Postfix> {
        let dir = std::env::temp_dir().join(format!("{tag}-postfix"));
        let conf = dir.join("conf");
        let mail = dir.join("mail");
        for sub in [&conf, &dir.join("queue"), &mail] {
            std::fs::create_dir_all(sub)?;
        }
        let nobody = |flag: &str| -> anyhow::Result<String> {
            let out = Command::new("id").args([flag, "nobody"]).output()?;
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let (uid, gid) = (nobody("-u")?, nobody("-g")?);
        Command::new("chown").arg(&uid).arg(&mail).status()?;
        let master = std::fs::read_to_string("/etc/postfix/master.cf")
            .context("reading /etc/postfix/master.cf (Debian package postfix)")?
            .lines()
            .map(|line| {
                if line.starts_with("smtp ") && line.contains("inet") {
                    format!("127.0.0.1:{port} inet n - n - - smtpd")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(conf.join("master.cf"), master + "\n")?;
        std::fs::write(
            conf.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {queue}\ndata_directory = {queue}/data\n\
                 myhostname = pfbench.test\nmydestination =\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
                 mynetworks = 127.0.0.0/8\nalias_maps =\nalias_database =\nmaillog_file = /dev/stdout\n\
                 smtpd_relay_restrictions = permit_mynetworks reject\nbounce_queue_lifetime = 0\n\
                 virtual_mailbox_domains = {POSTFIX_DOMAIN}\nvirtual_mailbox_base = {mail}\n\
                 virtual_mailbox_maps = static:inbox/\nvirtual_uid_maps = static:{uid}\n\
                 virtual_gid_maps = static:{gid}\ndefault_process_limit = 100\n",
                queue = dir.join("queue").display(),
                mail = mail.display(),
            ),
        )?;
        let master = Command::new("postfix")
            .arg("-c")
            .arg(&conf)
            .arg("start-fg")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting Postfix (Debian package postfix)")?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("Postfix's smtpd did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Postfix { dir, master, port })
    }

    /// Messages delivered into the maildir so far.
    pub fn delivered(&self) -> usize {
        std::fs::read_dir(self.dir.join("mail/inbox/new")).map_or(0, |entries| entries.count())
    }

    pub fn stop(mut self) {
        let conf = self.dir.join("conf");
        let _ = Command::new("postfix").arg("-c").arg(&conf).arg("stop").status();
        let _ = self.master.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
