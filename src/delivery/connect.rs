//! Opening an SMTP session to a destination: each of its addresses in
//! turn until one greets, EHLO, and STARTTLS whenever offered. TLS is
//! opportunistic (RFC 7435): when the handshake fails the session is opened
//! again in clear, as Postfix does at its `may` level, unless the route
//! requires TLS.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::connection::{self, Connection};
use super::routing::{self, Destination};
use super::sessions::Session;
use super::smtp_client::{SmtpClient, Timeouts};
use super::tls;

use crate::config::IpStrategy;
use crate::domain::is_private_address;
use crate::observability::logs::chain;

/// A failed TLS handshake after the server's 220 to STARTTLS.
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake failed: {0}")]
struct HandshakeFailed(std::io::Error);

/// A destination found through DNS that leads only to addresses Tern does
/// not deliver to (`delivery.allow_private_destinations` is off).
#[derive(Debug, thiserror::Error)]
#[error("{0} leads only to loopback, private or reserved addresses, which Tern does not deliver to")]
pub struct PrivateDestination(pub String);

/// Opens sessions; one per worker.
pub struct Connector {
    resolver: TokioResolver,
    tls: TlsConnector,
    /// `delivery.allow_private_destinations`.
    allow_private: bool,
    /// `delivery.ip_strategy`.
    ip_strategy: IpStrategy,
    /// Our name in EHLO.
    hostname: String,
    connect_timeout: Duration,
}

impl Connector {
    pub fn new(
        resolver: TokioResolver,
        hostname: String,
        connect_timeout: Duration,
        allow_private: bool,
        ip_strategy: IpStrategy,
    ) -> Connector {
        Connector {
            resolver,
            tls: tls::connector(),
            allow_private,
            ip_strategy,
            hostname,
            connect_timeout,
        }
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
                Err(err) if err.is::<HandshakeFailed>() && !destination.require_tls => {
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
        if starttls && client.offers_starttls() {
            let stream = client.starttls().await?;
            let stream = tls::upgrade(&self.tls, &destination.host, stream)
                .await
                .map_err(HandshakeFailed)?;
            let mut client = SmtpClient::resume(connection::tls(stream), Timeouts::default());
            client.ehlo(&self.hostname).await?;
            return Ok(client);
        }
        if destination.require_tls {
            anyhow::bail!("the server does not offer STARTTLS, which this route requires");
        }
        Ok(client.map_stream(connection::plain))
    }
}
