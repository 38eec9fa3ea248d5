//! The SMTP listeners: accept, admit under the session limits (in all and
//! per client address), refuse blocked clients at connect, and run each
//! session (with its STARTTLS upgrade) under the session timeout.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use mail_auth::MessageAuthenticator;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use super::ip_rules::IpRules;
use super::reply::Reply;
use super::routes::RouteCache;
use super::session::{Ending, Session};
use crate::db;
use crate::mail::verp::Verp;
use crate::state::AppState;

/// How long a stopping server waits for its sessions.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What every session shares.
pub struct Context {
    pub state: AppState,
    /// SPF, DKIM, DMARC, ARC and reverse DNS, over Tern's resolver.
    pub authenticator: MessageAuthenticator,
    /// rspamd, when configured.
    pub scanner: Option<super::spam::Scanner>,
    pub verp: Verp,
    pub tls: Option<TlsAcceptor>,
    /// The greeting's name and the authserv-id.
    pub hostname: String,
    /// `rp.<public_hostname>`: return paths are accepted there too.
    pub return_path_target: String,
    /// Where accepted messages are written (group commit).
    pub store: super::store::Store,
    /// The IP rules, kept current by `follow`.
    pub ip_rules: Arc<IpRules>,
    /// Route lookups, forgotten on change by `follow`.
    pub routes: Arc<RouteCache>,
}

/// Bound SMTP listeners, ready to serve.
pub struct SmtpServer {
    listeners: Vec<TcpListener>,
    ctx: Arc<Context>,
}

impl SmtpServer {
    /// Binds `smtp.listen` (or `fallback` when it is empty) and loads the
    /// TLS certificate (or makes the self-signed one).
    pub async fn bind(state: AppState, fallback: Option<SocketAddr>) -> anyhow::Result<SmtpServer> {
        let settings = &state.settings;
        let mut addresses = settings.smtp.listen.clone();
        if addresses.is_empty() {
            addresses.extend(fallback);
        }
        let mut listeners = Vec::new();
        for address in addresses {
            let listener = TcpListener::bind(address)
                .await
                .with_context(|| format!("binding smtp.listen {address}"))?;
            listeners.push(listener);
        }
        let key = db::secrets::get_or_create(&state.db, "verp_hmac", 32)
            .await
            .context("loading the VERP key")?;
        let tls = super::tls::acceptor(&settings.smtp, settings.smtp_hostname())?;
        let ip_rules = IpRules::load(&state.db)
            .await
            .context("loading the SMTP IP rules")?;

        let ctx = Context {
            // The process's resolver (and its cache), as `dns.*` configures it.
            authenticator: MessageAuthenticator(state.resolver.clone()),
            scanner: super::spam::Scanner::new(&settings.smtp.spam)
                .context("the spam scanner (smtp.spam)")?,
            verp: Verp::new(&key),
            tls: Some(tls),
            hostname: settings.smtp_hostname().to_string(),
            return_path_target: settings.return_path_target(),
            store: super::store::Store::start(state.db.clone()),
            ip_rules: Arc::new(ip_rules),
            routes: Arc::default(),
            state,
        };
        Ok(SmtpServer {
            listeners,
            ctx: Arc::new(ctx),
        })
    }

    /// Runs one session over `io` as if `peer` had connected, greeting
    /// included, up to its end (a STARTTLS request ends it: there is no
    /// TLS in memory). No listener, session limits or IP rules: for the
    /// fuzz targets (fuzz/), which drive sessions without sockets.
    pub async fn serve_in_memory<S>(&self, io: S, peer: SocketAddr) -> std::io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut session = Session::new(&self.ctx, peer);
        session.run(io, Some(greeting(&self.ctx))).await.map(|_| ())
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Accepts until `shutdown`, then waits (up to `SHUTDOWN_GRACE`) for
    /// the sessions under way: one cut between its commit and its `250`
    /// would make the sender send the message again.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let max = self.ctx.state.settings.smtp.max_sessions;
        let limits = Arc::new(Limits {
            total: Arc::new(Semaphore::new(max)),
            per_ip: Mutex::new(HashMap::new()),
        });
        let mut accepting = tokio::task::JoinSet::new();
        accepting.spawn(super::follow::follow(
            self.ctx.state.db.clone(),
            self.ctx.ip_rules.clone(),
            self.ctx.routes.clone(),
        ));
        for listener in self.listeners {
            accepting.spawn(accept_loop(listener, self.ctx.clone(), limits.clone()));
        }
        shutdown.await;
        accepting.abort_all();
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        if tokio::time::timeout(SHUTDOWN_GRACE, limits.total.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("SMTP sessions still open at shutdown were cut off");
        }
        Ok(())
    }
}

/// Sessions open, in all and per client address.
struct Limits {
    total: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// A client's place in the per-address count, given back on drop.
struct PerIp {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for PerIp {
    fn drop(&mut self) {
        let mut counts = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    fn admit_ip(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PerIp> {
        let mut counts = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PerIp {
            limits: self.clone(),
            ip,
        })
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Context>, limits: Arc<Limits>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            // An IPv4 client of a dual-stack listener as IPv4, for the IP
            // rules, the blocklists and the checks.
            Ok((stream, peer)) => (stream, SocketAddr::new(peer.ip().to_canonical(), peer.port())),
            Err(err) => {
                tracing::warn!(error = %err, "accepting an SMTP connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        let limits = limits.clone();
        let session = async move {
            if let Err(err) = admit_and_serve(stream, peer, &ctx, &limits).await {
                tracing::debug!(error = %err, "SMTP session ended with an error");
            }
        };
        tokio::spawn(session.instrument(tracing::info_span!("smtp", client = %peer)));
    }
}

async fn admit_and_serve(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: &Context,
    limits: &Arc<Limits>,
) -> std::io::Result<()> {
    let settings = &ctx.state.settings.smtp;
    let Ok(_slot) = limits.total.clone().try_acquire_owned() else {
        return refuse(
            stream,
            Reply::new(421, "4.7.0", "Too many connections, try again later"),
        )
        .await;
    };
    let Some(_per_ip) = limits.admit_ip(peer.ip(), settings.max_sessions_per_ip) else {
        return refuse(
            stream,
            Reply::new(421, "4.7.0", "Too many connections from your address"),
        )
        .await;
    };
    let verdict = ctx.ip_rules.verdict(peer.ip());
    if verdict.blocked {
        return refuse(stream, Reply::new(554, "5.7.1", "Your address is blocked")).await;
    }
    if !verdict.allowed
        && let Some(zone) = super::dnsbl::listed(&ctx.authenticator.0, peer.ip(), &settings.dnsbl_zones).await
    {
        let text = format!("Your address is listed at {zone}");
        return refuse(stream, Reply::owned(554, "5.7.1", text)).await;
    }
    let _ = stream.set_nodelay(true);
    let session_timeout = Duration::from_secs(settings.session_timeout_secs);
    match tokio::time::timeout(session_timeout, serve(stream, peer, ctx)).await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

fn greeting(ctx: &Context) -> Reply {
    Reply::owned(220, "", format!("{} ESMTP Tern", ctx.hostname))
}

async fn serve(stream: TcpStream, peer: SocketAddr, ctx: &Context) -> std::io::Result<()> {
    let mut session = Session::new(ctx, peer);
    let Ending::StartTls(stream) = session.run(stream, Some(greeting(ctx))).await? else {
        return Ok(());
    };
    let Some(acceptor) = &ctx.tls else {
        return Ok(());
    };
    let timeout = Duration::from_secs(ctx.state.settings.smtp.command_timeout_secs);
    let tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            tracing::debug!(client = %peer, error = %err, "TLS handshake failed");
            return Ok(());
        }
        Err(_) => return Ok(()),
    };
    session.secured();
    session.run(tls, None).await.map(|_| ())
}

async fn refuse(mut stream: TcpStream, reply: Reply) -> std::io::Result<()> {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    stream.write_all(&out).await?;
    let _ = stream.shutdown().await;
    Ok(())
}
