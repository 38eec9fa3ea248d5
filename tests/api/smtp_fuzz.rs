//! A randomized run of the SMTP server, on the stable toolchain, in every
//! test run (the cargo-fuzz target fuzz/fuzz_targets/smtp_session.rs
//! drives the same state machine under libFuzzer: scripts/fuzz). Sessions
//! are made of valid commands, broken ones, random bytes, bare CRs and
//! LFs, long lines, dots and pipelining, sent in random chunks over real
//! TCP. Every reply line must be well formed, no session task may panic,
//! and the server must still serve a normal session afterwards.
//! `TERN_FUZZ_SESSIONS` sets how many sessions (default 200; `scripts/fuzz`
//! runs many more).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{json_of, spawn_app_with};

/// One random piece of a session.
fn piece(rng: &mut StdRng) -> Vec<u8> {
    let addresses = [
        "support@fuzz.example.com",
        "x+tag@fuzz.example.com",
        "someone@elsewhere.test",
        "a%b@fuzz.example.com",
        "\"q\"@fuzz.example.com",
        "@a,@b:c@fuzz.example.com",
        "",
        "b+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@rp.tern.test",
    ];
    let address = addresses[rng.random_range(0..addresses.len())];
    match rng.random_range(0..16) {
        0 => b"EHLO fuzz.test\r\n".to_vec(),
        1 => b"HELO fuzz.test\r\n".to_vec(),
        2 => format!("MAIL FROM:<{address}>\r\n").into_bytes(),
        3 => format!(
            "MAIL FROM:<{address}> SIZE={} BODY=8BITMIME SMTPUTF8\r\n",
            rng.random::<u32>()
        )
        .into_bytes(),
        4 => format!("RCPT TO:<{address}>\r\n").into_bytes(),
        5 => b"DATA\r\n".to_vec(),
        6 => {
            // A message body, perhaps with bare newlines, dots and long lines.
            let mut body = b"Subject: fuzz\r\n\r\n".to_vec();
            for _ in 0..rng.random_range(0..20) {
                match rng.random_range(0..8) {
                    0 => body.extend_from_slice(b".\r\n"),
                    1 => body.extend_from_slice(b"..dot\r\n"),
                    2 => body.push(b'\n'),
                    3 => body.push(b'\r'),
                    4 => body.extend(std::iter::repeat_n(b'x', rng.random_range(900..1200))),
                    5 => body.extend_from_slice("ümlaut 🐦\r\n".as_bytes()),
                    _ => body.extend_from_slice(b"line\r\n"),
                }
            }
            body.extend_from_slice(b"\r\n.\r\n");
            body
        }
        7 => b"RSET\r\n".to_vec(),
        8 => b"NOOP\r\n".to_vec(),
        9 => [
            &b"VRFY "[..],
            &b"EXPN "[..],
            &b"HELP\r\n"[..],
            &b"AUTH PLAIN AAAA\r\n"[..],
            &b"BDAT 10 LAST\r\n"[..],
        ][rng.random_range(0..5)]
        .to_vec(),
        10 => (0..rng.random_range(1..64)).map(|_| rng.random::<u8>()).collect(),
        11 => std::iter::repeat_n(b'A', rng.random_range(500..5000))
            .chain(*b"\r\n")
            .collect(),
        12 => b"\r\n".to_vec(),
        13 => b"MAIL FROM:<a@b.test>\nRCPT TO:<support@fuzz.example.com>\n".to_vec(),
        14 => b"STARTTLS\r\n".to_vec(),
        _ => b"QUIT\r\n".to_vec(),
    }
}

/// Whether every line the server wrote is a reply line: three digits, a
/// space or a dash, ending in CRLF.
/// (After `220 2.0.0 Ready to start TLS` comes TLS.)
fn well_formed(output: &[u8]) -> bool {
    let ready = b"220 2.0.0 Ready to start TLS\r\n";
    let output = match output.windows(ready.len()).position(|w| w == ready) {
        Some(at) => &output[..at + ready.len()],
        None => output,
    };
    output.split_inclusive(|&b| b == b'\n').all(|line| {
        line.len() >= 6
            && line[..3].iter().all(u8::is_ascii_digit)
            && (line[3] == b' ' || line[3] == b'-')
            && line.ends_with(b"\r\n")
    })
}

#[tokio::test]
async fn random_sessions_get_well_formed_replies_and_never_crash_the_server() {
    let panics = Arc::new(AtomicUsize::new(0));
    let counted = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    let app = spawn_app_with(|s| {
        s.smtp.listen = vec!["127.0.0.1:0".parse().unwrap()];
        s.smtp.self_signed_dir = std::env::temp_dir().join(format!("tern-fuzz-{}", uuid::Uuid::new_v4()));
        s.smtp.command_timeout_secs = 2;
        s.smtp.max_sessions_per_ip = 1000;
    })
    .await;
    let t = app
        .tenant("fuzz@example.com", "fuzz.example.com", "live", "ed25519")
        .await;
    json_of(
        app.post(
            &format!("/v1/servers/{}/routes", t.server_id),
            &t.token,
            &json!({"address": "support@fuzz.example.com", "action": "hold"}),
        )
        .await,
        201,
    )
    .await;
    let state = tern::state::AppState::without_sealing(app.db.clone(), app.settings.clone())
        .await
        .unwrap();
    let server = tern::inbound::SmtpServer::bind(state, None).await.unwrap();
    let addr = server.local_addrs()[0];
    tokio::spawn(server.run(std::future::pending()));

    let sessions: u64 = std::env::var("TERN_FUZZ_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("TERN_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(rand::random);
    for session in 0..sessions {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(session));
        let mut input = Vec::new();
        for _ in 0..rng.random_range(1..12) {
            input.extend(piece(&mut rng));
        }
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // Random chunks; the server may close early, which is fine.
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = rng.random_range(1..=rest.len().min(4096));
            if stream.write_all(&rest[..n]).await.is_err() {
                break;
            }
            rest = &rest[n..];
        }
        let _ = stream.shutdown().await;
        let mut output = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut output)).await;
        assert!(read.is_ok(), "session {session} (seed {seed}) hung");
        assert!(
            well_formed(&output),
            "session {session} (seed {seed}) got {:?}",
            String::from_utf8_lossy(&output)
        );
    }
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "a session panicked (seed {seed})"
    );

    // Still serving: a plain session delivers a message.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"EHLO ok.test\r\nMAIL FROM:<a@ok.test>\r\nRCPT TO:<support@fuzz.example.com>\r\nDATA\r\n\
              Subject: after\r\n\r\nstill here\r\n.\r\nQUIT\r\n",
        )
        .await
        .unwrap();
    let mut output = Vec::new();
    stream.read_to_end(&mut output).await.unwrap();
    let text = String::from_utf8_lossy(&output);
    assert!(text.contains("250 2.0.0 OK queued as"), "{text}");
}
