//! The SMTP session state machine (`tern::inbound`) on any bytes a client
//! could send: the input is the client's side of one whole session,
//! pipelined, run in memory against a real SMTP server context (PostgreSQL
//! behind it, `TERN_FUZZ_DATABASE_URL`, a throwaway database that
//! scripts/fuzz drops). The server must not panic or hang, and every reply
//! must be a well-formed SMTP reply line.
//!
//! The demo tenant's domain `example.com` has a `hold` route for
//! `support@`; fuzz/smtp.dict and fuzz/seeds/smtp_session give libFuzzer
//! the commands and addresses to start from.

#![no_main]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tern::inbound::SmtpServer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::runtime::Runtime;

/// One runtime for all runs: the server's store writers live on it.
static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

static SERVER: LazyLock<SmtpServer> = LazyLock::new(|| RUNTIME.block_on(server()));

async fn server() -> SmtpServer {
    let admin = std::env::var("TERN_FUZZ_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("tern_fuzz_{}", std::process::id());
    let postgres = sqlx::PgPool::connect(&format!("{admin}/postgres"))
        .await
        .expect("PostgreSQL (scripts/fuzz starts it)");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
        .execute(&postgres)
        .await
        .expect("dropping an old fuzz database");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&postgres)
        .await
        .expect("creating the fuzz database");
    let mut settings = tern::config::Settings::default();
    settings.database.url = format!("{admin}/{name}").into();
    settings.database.max_connections = 4;
    settings.public_hostname = "tern.test".into();
    // Nothing answers there: every SPF, DKIM and DMARC lookup fails at once.
    settings.dns.nameservers = vec!["127.0.0.1:9".parse().expect("an address")];
    settings.dns.timeout_ms = 200;
    settings.smtp.listen = vec!["127.0.0.1:0".parse().expect("an address")];
    settings.smtp.self_signed_dir = std::env::temp_dir().join(format!("{name}-tls"));
    // Small limits, so that inputs reach them.
    settings.smtp.max_message_bytes = 64 * 1024;
    settings.smtp.max_recipients = 5;
    settings.smtp.max_errors = 20;
    settings.smtp.command_timeout_secs = 2;
    settings.smtp.data_timeout_secs = 2;
    let pool = tern::startup::connect_and_migrate(&settings)
        .await
        .expect("migrating the fuzz database");
    let key = tern::sealing::SealingKey::from_bytes(&[7; 32]).expect("a sealing key");
    tern::bootstrap::demo(&pool, &key).await.expect("the demo tenant");
    sqlx::query(
        "INSERT INTO routes (id, server_id, domain_id, local_part, action)
         SELECT gen_random_uuid(), server_id, id, 'support', 'hold' FROM domains",
    )
    .execute(&pool)
    .await
    .expect("the fuzz route");
    let state = tern::state::AppState::without_sealing(pool, settings)
        .await
        .expect("the server's state");
    SmtpServer::bind(state, None).await.expect("the SMTP server")
}

/// The client's bytes in, the server's replies out.
struct Script<'a> {
    input: &'a [u8],
    output: Vec<u8>,
}

impl AsyncRead for Script<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = buf.remaining().min(self.input.len());
        let (now, later) = self.input.split_at(n);
        buf.put_slice(now);
        self.input = later;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Script<'_> {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        self.output.extend_from_slice(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fuzz_target!(|input: &[u8]| {
    let server = &*SERVER;
    let mut script = Script {
        input,
        output: Vec::new(),
    };
    let peer: SocketAddr = "192.0.2.1:40000".parse().expect("an address");
    let session = server.serve_in_memory(&mut script, peer);
    // The input ends the session (end of stream) long before this.
    let ended = RUNTIME.block_on(async { tokio::time::timeout(Duration::from_secs(30), session).await });
    assert!(ended.is_ok(), "the session did not end at the end of its input");
    assert!(script.output.ends_with(b"\r\n"), "replies end with CRLF");
    for line in script.output.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r").expect("every reply line ends with CRLF");
        assert!(
            line.len() >= 4 && line.len() <= 512,
            "a reply line of {} bytes",
            line.len()
        );
        assert!(line[..3].iter().all(u8::is_ascii_digit), "a reply without a code");
        assert!(matches!(line[3], b' ' | b'-'), "a reply code without a separator");
        assert!(!line.contains(&b'\r'), "a bare CR in a reply");
    }
});
