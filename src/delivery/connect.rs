//! Opening an SMTP session to a destination: each of its addresses in
//! turn until one greets, EHLO, and STARTTLS as the route's policy says.
//! Opportunistic TLS (RFC 7435): when the server refuses STARTTLS (454) or
//! the handshake fails or times out, the session is opened again in clear,
//! as Postfix does at its `may` level. Routes whose TLS is mandatory never
//! fall back; `verify` routes also check the certificate.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use tokio::net::TcpStream;

use super::connection::{self, Connection};
use super::routing::{self, Destination};
use super::sessions::Session;
use super::smtp_client::{SmtpClient, SmtpClientError, Timeouts};
use super::tls::{self, Connectors};

use crate::config::{DeliverySettings, IpStrategy, TlsPolicy};
use crate::domain::is_private_address;
use crate::observability::logs::chain;

/// STARTTLS did not give an encrypted session: the server refused it
/// (e.g. 454), or the handshake after its 220 failed or timed out.
#[derive(Debug, thiserror::Error)]
enum TlsFailed {
    #[error("STARTTLS refused: {0}")]
    Refused(String),
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("TLS handshake timed out after {0:?}")]
    TimedOut(Duration),
}

/// A destination found through DNS that leads only to addresses Tern does
/// not deliver to (`delivery.allow_private_destinations` is off).
#[derive(Debug, thiserror::Error)]
#[error("{0} leads only to loopback, private or reserved addresses, which Tern does not deliver to")]
pub struct PrivateDestination(pub String);

/// Opens sessions; one per worker.
pub struct Connector {
    resolver: TokioResolver,
    tls: Connectors,
    /// `delivery.allow_private_destinations`.
    allow_private: bool,
    /// `delivery.ip_strategy`.
    ip_strategy: IpStrategy,
    /// Our name in EHLO.
    hostname: String,
    connect_timeout: Duration,
    tls_timeout: Duration,
}

impl Connector {
    /// Fails when a CA file named by a route cannot be read.
    pub fn new(
        resolver: TokioResolver,
        hostname: String,
        settings: &DeliverySettings,
    ) -> anyhow::Result<Connector> {
        let ca_files = settings
            .transports
            .iter()
            .filter_map(|rule| rule.ca_file.as_deref())
            .chain(settings.smart_host_ca_file.as_deref());
        Ok(Connector {
            resolver,
            tls: Connectors::new(ca_files)?,
            allow_private: settings.allow_private_destinations,
            ip_strategy: settings.ip_strategy,
            hostname,
            connect_timeout: Duration::from_secs(settings.connect_timeout_secs),
            tls_timeout: Duration::from_secs(settings.tls_timeout_secs),
        })
    }

    pub fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }

    /// A session to `destination`, on the first of its addresses that works.
    ///
    /// A destination found through DNS (not named by the operator) never
    /// leads to a private address, nor to an IP literal posing as an MX
    /// host name, unless `delivery.allow_private_destinations` says so:
    /// a tenant's DNS must not make Tern talk SMTP to internal hosts.
    pub async fn open(&self, destination: &Destination) -> anyhow::Result<Session> {
        let guarded = !destination.explicit && !self.allow_private;
        if guarded && destination.host.parse::<std::net::IpAddr>().is_ok() {
            return Err(PrivateDestination(format!("the IP literal {}", destination.host)).into());
        }
        let mut ips = routing::addresses(&self.resolver, &destination.host).await?;
        // The operator's own relays are reached as named; the family order
        // is for receivers found through DNS.
        if !destination.explicit {
            ips = routing::order_addresses(ips, self.ip_strategy);
        }
        if guarded {
            let found = ips.len();
            ips.retain(|ip| !is_private_address(*ip));
            if found > 0 && ips.is_empty() {
                return Err(PrivateDestination(destination.host.clone()).into());
            }
        }
        let mut last = anyhow::anyhow!("no address");
        for ip in ips {
            let addr = SocketAddr::new(ip, destination.port);
            let opened = match self.open_at(destination, addr, true).await {
                Err(err) if err.is::<TlsFailed>() && !destination.tls.is_mandatory() => {
                    tracing::info!(host = %destination.host, %addr, error = %chain(err.as_ref()), "retrying in clear");
                    self.open_at(destination, addr, false).await
                }
                other => other,
            };
            match opened {
                Ok(session) => return Ok(session),
                Err(err) => last = err.context(addr.to_string()),
            }
        }
        Err(last)
    }

    async fn open_at(
        &self,
        destination: &Destination,
        addr: SocketAddr,
        starttls: bool,
    ) -> anyhow::Result<Session> {
        let started = Instant::now();
        let result = self.handshake(destination, addr, starttls).await;
        if result.is_err() {
            crate::observability::metrics::smtp_session(started.elapsed(), false);
        }
        result.map(Session::new)
    }

    async fn handshake(
        &self,
        destination: &Destination,
        addr: SocketAddr,
        starttls: bool,
    ) -> anyhow::Result<SmtpClient<Connection>> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow::anyhow!("connect timed out"))??;
        let mut client = SmtpClient::greet(stream, Timeouts::default()).await?;
        client.ehlo(&self.hostname).await?;
        let policy = destination.tls;
        if starttls && policy != TlsPolicy::None && client.offers_starttls() {
            let stream = match client.starttls().await {
                Ok(stream) => stream,
                Err(SmtpClientError::Refused(reply)) => {
                    return Err(TlsFailed::Refused(reply.to_string()).into());
                }
                Err(err) => return Err(err.into()),
            };
            let connector = self.tls.for_policy(policy, destination.ca_file.as_deref());
            let upgraded = tokio::time::timeout(
                self.tls_timeout,
                tls::upgrade(connector, &destination.host, stream),
            )
            .await
            .map_err(|_| TlsFailed::TimedOut(self.tls_timeout))?
            .map_err(TlsFailed::Handshake)?;
            let mut client = SmtpClient::resume(connection::tls(upgraded), Timeouts::default());
            client.ehlo(&self.hostname).await?;
            return Ok(client);
        }
        if policy.is_mandatory() {
            anyhow::bail!("the server does not offer STARTTLS, which this route requires");
        }
        Ok(client.map_stream(connection::plain))
    }
}
