//! Inbound mail (issue 10): routes managed through the API and invisible
//! to other tenants; the SMTP server on loopback, driven by swaks (Debian)
//! and by a plain TCP client for the dialogues swaks cannot script
//! (pipelining, bare LF, silence); messages reach a real HTTP receiver as
//! signed `inbound.received` events in both formats.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tern::inbound::SmtpServer;
use tern::state::AppState;
use tern::webhooks::dispatcher::Dispatcher;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::helpers::{Tenant, TestApp, assert_error, json_of, spawn_app_with};
use crate::receiver::{Receiver, verifies};

/// Test settings for the SMTP server: loopback, a fresh certificate dir.
pub(crate) fn smtp_settings(settings: &mut tern::config::Settings) {
    settings.smtp.listen = vec!["127.0.0.1:0".parse().unwrap()];
    settings.smtp.self_signed_dir = std::env::temp_dir().join(format!("tern-smtp-{}", uuid::Uuid::new_v4()));
}

/// Starts the SMTP server of `app` in this process.
pub(crate) async fn start_smtp(app: &TestApp) -> SocketAddr {
    start_smtp_with(app, |_| {}).await
}

/// Starts another SMTP server on `app`'s database, with changed settings.
pub(crate) async fn start_smtp_with(
    app: &TestApp,
    adjust: impl FnOnce(&mut tern::config::Settings),
) -> SocketAddr {
    let mut settings = app.settings.clone();
    adjust(&mut settings);
    let state = AppState::without_sealing(app.db.clone(), settings).await.unwrap();
    let server = SmtpServer::bind(state, None).await.unwrap();
    let addr = server.local_addrs()[0];
    tokio::spawn(server.run(std::future::pending()));
    addr
}

pub(crate) async fn dispatcher(app: &TestApp) -> Dispatcher {
    let state = AppState::new(app.db.clone(), app.settings.clone()).await.unwrap();
    Dispatcher::new(state).unwrap()
}

/// Runs the dispatcher until `receiver` has `n` requests.
pub(crate) async fn deliver(app: &TestApp, receiver: &Receiver, n: usize) {
    let dispatcher = dispatcher(app).await;
    for _ in 0..200 {
        if receiver.requests().len() >= n {
            return;
        }
        dispatcher.run_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the receiver got {} of {n} requests", receiver.requests().len());
}

/// Creates a route; `local_part` in `body` becomes the address at the
/// tenant's domain.
async fn create_route(app: &TestApp, t: &Tenant, body: Value) -> Value {
    let mut body = body;
    let local = body.as_object_mut().unwrap().remove("local_part").unwrap();
    body["address"] = json!(format!("{}@{}", local.as_str().unwrap(), t.domain));
    json_of(
        app.post(&format!("/v1/servers/{}/routes", t.server_id), &t.token, &body)
            .await,
        201,
    )
    .await
}

/// Runs swaks against `addr`; returns whether it succeeded and its output.
pub(crate) async fn swaks(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new("swaks")
        .args([
            "--server",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ])
        .args(["--helo", "client.test", "--timeout", "30"])
        .args(args)
        .output()
        .await
        .expect("swaks (scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A plain SMTP client: one line out, one (possibly multi-line) reply in.
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> (Client, String) {
        Client::connect_from(addr, "127.0.0.1").await
    }

    /// From another loopback address (127.0.0.x), as another client.
    async fn connect_from(addr: SocketAddr, local: &str) -> (Client, String) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let mut client = Client {
            stream: BufReader::new(stream),
        };
        let greeting = client.reply().await;
        (client, greeting)
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    /// The next reply, all its lines; empty when the server closed.
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut line))
                .await
                .expect("a reply within 10 s")
                .unwrap_or(0);
            if read == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Whether the server has closed the connection.
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(
                Duration::from_secs(5),
                tokio::io::AsyncReadExt::read_to_end(&mut self.stream, &mut rest)
            )
            .await,
            Ok(Ok(_))
        )
    }
}

fn code(reply: &str) -> &str {
    reply.get(..3).unwrap_or(reply)
}

#[tokio::test]
async fn routes_are_managed_per_server_and_invisible_to_other_tenants() {
    let app = spawn_app_with(smtp_settings).await;
    let owner = app
        .tenant("routes-owner@example.com", "in.example.com", "live", "ed25519")
        .await;
    let other = app
        .tenant("routes-other@example.com", "other.example.com", "live", "ed25519")
        .await;
    let path = format!("/v1/servers/{}/routes", owner.server_id);

    let created = create_route(
        &app,
        &owner,
        json!({"local_part": "Support", "action": "endpoint", "url": "http://127.0.0.1:9/in"}),
    )
    .await;
    assert_eq!(created["address"], "support@in.example.com");
    assert_eq!(created["format"], "parsed");
    assert_eq!(created["dmarc_reject"], "reject");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["mx_record"]["value"], "tern.test");
    assert_eq!(created["mx_record"]["priority"], 10);
    let id = created["id"].as_str().unwrap();
    let hold = create_route(&app, &owner, json!({"local_part": "*", "action": "hold"})).await;
    assert!(hold.get("secret").is_none());

    let duplicate = app
        .post(
            &path,
            &owner.token,
            &json!({"address": "SUPPORT@in.example.com", "action": "hold"}),
        )
        .await;
    assert_error(duplicate, 409, "route_exists").await;
    for (body, code) in [
        (
            json!({"address": "a\"b@in.example.com", "action": "hold"}),
            "invalid_address",
        ),
        (
            json!({"address": "x%y@in.example.com", "action": "hold"}),
            "invalid_address",
        ),
        (
            json!({"address": "in.example.com", "action": "hold"}),
            "invalid_address",
        ),
        (
            json!({"address": "x@in.example.com", "action": "endpoint"}),
            "missing_url",
        ),
        (
            json!({"address": "x@in.example.com", "action": "hold", "url": "https://a.example/"}),
            "unexpected_url",
        ),
        (
            json!({"address": "x@in.example.com", "action": "reject", "reject_code": 250}),
            "invalid_reject_code",
        ),
        (
            json!({"address": "x@other.example.com", "action": "hold"}),
            "unknown_domain",
        ),
    ] {
        assert_error(app.post(&path, &owner.token, &body).await, 422, code).await;
    }

    let listed = json_of(app.get(&path, &owner.token).await, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    // A route's endpoint is not one of the server's webhooks.
    let hooks = json_of(
        app.get(&format!("/v1/servers/{}/webhooks", owner.server_id), &owner.token)
            .await,
        200,
    )
    .await;
    assert_eq!(hooks["data"], json!([]));

    let changed = json_of(
        app.patch(
            &format!("/v1/routes/{id}"),
            &owner.token,
            &json!({"format": "raw", "spam_threshold": 7.5}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(changed["format"], "raw");
    assert_eq!(changed["spam_threshold"], 7.5);

    // The other tenant sees nothing and changes nothing.
    let item = format!("/v1/routes/{id}");
    assert_eq!(app.get(&item, &other.token).await.status(), 404);
    assert_eq!(
        app.patch(&item, &other.token, &json!({"format": "parsed"}))
            .await
            .status(),
        404
    );
    assert_eq!(app.delete(&item, &other.token).await.status(), 404);
    assert_eq!(app.get(&path, &other.token).await.status(), 404);

    assert_eq!(app.delete(&item, &owner.token).await.status(), 204);
    assert_eq!(app.get(&item, &owner.token).await.status(), 404);
    assert_eq!(
        app.count("webhook_endpoints").await,
        0,
        "the route's endpoint goes with it"
    );
}

/// A message with a UTF-8 subject, an inline image and a large attachment.
fn rich_message(to: &str, attachment: &[u8]) -> Vec<u8> {
    let image = b"\x89PNG\r\n\x1a\n not really a png".to_vec();
    mail_builder::MessageBuilder::new()
        .from(("Ada", "ada@sender.test"))
        .to(to)
        .subject("Grüße aus Köln 🐦")
        .message_id("rich-1@sender.test")
        .text_body("Hello in text")
        .html_body("<p>Hello in <b>HTML</b> <img src=\"cid:logo\"></p>")
        .inline("image/png", "logo", image)
        .attachment("application/octet-stream", "big.bin", attachment.to_vec())
        .write_to_vec()
        .unwrap()
}

#[tokio::test]
async fn a_message_reaches_its_route_endpoint_signed_in_both_formats() {
    let app = spawn_app_with(|s| {
        smtp_settings(s);
        // The 5 MB attachment is left out of payloads, linked instead.
        s.smtp.max_payload_attachment_bytes = 1024 * 1024;
    })
    .await;
    let t = app
        .tenant("inbound-both@example.com", "in.example.com", "live", "ed25519")
        .await;
    let parsed_receiver = Receiver::start(&[]).await;
    let raw_receiver = Receiver::start(&[]).await;
    let parsed_route = create_route(
        &app,
        &t,
        json!({"local_part": "support", "action": "endpoint", "url": parsed_receiver.url}),
    )
    .await;
    let raw_route = create_route(
        &app,
        &t,
        json!({"local_part": "archive", "action": "endpoint", "url": raw_receiver.url, "format": "raw"}),
    )
    .await;
    let smtp = start_smtp(&app).await;

    let attachment: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let message = rich_message("support@in.example.com", &attachment);
    let file = std::env::temp_dir().join(format!("tern-inbound-{}.eml", uuid::Uuid::new_v4()));
    std::fs::write(&file, &message).unwrap();
    let data = format!("@{}", file.display());
    let (ok, output) = swaks(
        smtp,
        &[
            "--from",
            "ada@sender.test",
            "--to",
            "support+ticket-7@in.example.com,archive@in.example.com",
            "--data",
            &data,
        ],
    )
    .await;
    assert!(ok, "{output}");
    assert!(output.contains("250 2.0.0 OK queued as"), "{output}");

    deliver(&app, &parsed_receiver, 1).await;
    deliver(&app, &raw_receiver, 1).await;

    let (headers, body) = parsed_receiver.requests().remove(0);
    assert!(verifies(
        parsed_route["secret"].as_str().unwrap(),
        &headers,
        &body
    ));
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["type"], "inbound.received");
    let data = &event["data"];
    assert_eq!(data["route_id"], parsed_route["id"]);
    assert_eq!(data["format"], "parsed");
    assert_eq!(data["envelope"]["mail_from"], "ada@sender.test");
    assert_eq!(
        data["envelope"]["rcpt_to"],
        json!(["support+ticket-7@in.example.com"])
    );
    assert_eq!(data["envelope"]["helo"], "client.test");
    let parsed = &data["parsed"];
    assert_eq!(parsed["subject"], "Grüße aus Köln 🐦");
    assert_eq!(parsed["from"]["address"], "ada@sender.test");
    assert_eq!(parsed["message_id"], "rich-1@sender.test");
    assert_eq!(parsed["text"], "Hello in text");
    assert!(parsed["html"].as_str().unwrap().contains("<b>HTML</b>"));
    let attachments = parsed["attachments"].as_array().unwrap();
    let logo = attachments
        .iter()
        .find(|a| a["content_id"] == "logo")
        .expect("the inline image");
    assert_eq!(logo["inline"], true);
    assert_eq!(logo["content_type"], "image/png");
    let big = attachments
        .iter()
        .find(|a| a["filename"] == "big.bin")
        .expect("the attachment");
    assert_eq!(big["size"], attachment.len());
    assert!(big["content"].is_null(), "over the payload limit");
    let fetched = app.get(big["url"].as_str().unwrap(), &t.key).await;
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), attachment);
    assert_eq!(
        STANDARD.decode(logo["content"].as_str().unwrap()).unwrap().len(),
        25
    );
    assert!(
        parsed["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "Authentication-Results"),
        "Tern's results are among the headers"
    );

    let (headers, body) = raw_receiver.requests().remove(0);
    assert!(verifies(raw_route["secret"].as_str().unwrap(), &headers, &body));
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["data"]["format"], "raw");
    assert_eq!(
        event["data"]["envelope"]["rcpt_to"],
        json!(["archive@in.example.com"])
    );
    let raw = STANDARD.decode(event["data"]["raw"].as_str().unwrap()).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("Authentication-Results: tern.test;"),
        "{}",
        &text[..200]
    );
    assert!(text.contains("Received: from client.test"));
    // swaks ends DATA with CRLF . CRLF after the message's own last CRLF.
    assert!(
        raw.trim_ascii_end()
            .ends_with(&message.trim_ascii_end()[message.len() - 200..]),
        "the message is stored as sent"
    );

    crate::helpers::schema_check(&[
        json!({"schema": "InboundReceivedEvent", "valid": true,
               "body": serde_json::from_str::<Value>(&parsed_receiver.requests()[0].1).unwrap()}),
        json!({"schema": "InboundReceivedEvent", "valid": true, "body": event}),
    ])
    .unwrap();

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE direction = 'incoming'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 2, "one copy per route");
    let _ = std::fs::remove_file(file);

    // The API lists and shows received messages, with the endpoint's log.
    let listed = json_of(app.get("/v1/messages?direction=incoming", &t.key).await, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    assert_eq!(listed["data"][0]["direction"], "incoming");
    let outgoing = json_of(app.get("/v1/messages?direction=outgoing", &t.key).await, 200).await;
    assert_eq!(outgoing["data"], json!([]));
    let by_rcpt = json_of(
        app.get("/v1/messages?recipient=archive@in.example.com", &t.key)
            .await,
        200,
    )
    .await;
    assert_eq!(by_rcpt["data"].as_array().unwrap().len(), 1);
    let id = data["message_id"].as_str().unwrap();
    let detail = json_of(app.get(&format!("/v1/messages/{id}"), &t.key).await, 200).await;
    assert_eq!(detail["subject"], "Grüße aus Köln 🐦");
    let inbound = &detail["inbound"];
    assert_eq!(inbound["route_id"], parsed_route["id"]);
    assert_eq!(inbound["envelope"]["helo"], "client.test");
    // (No DNS server answers in this test.)
    assert_eq!(inbound["checks"]["spf"]["result"], "temperror");
    assert_eq!(inbound["endpoint_attempts"][0]["http_status"], 200);
    assert_eq!(inbound["endpoint_attempts"][0]["event_type"], "inbound.received");
    // The route's delivery log, and a delivery sent again (same id).
    let log = json_of(
        app.get(
            &format!("/v1/routes/{}/deliveries", parsed_route["id"].as_str().unwrap()),
            &t.token,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(log["data"][0]["event_type"], "inbound.received");
    let delivery = log["data"][0]["delivery_id"].as_str().unwrap();
    let retry = format!(
        "/v1/routes/{}/deliveries/{delivery}/retry",
        parsed_route["id"].as_str().unwrap()
    );
    assert_eq!(app.post(&retry, &t.token, &json!({})).await.status(), 202);
    deliver(&app, &parsed_receiver, 2).await;
    let requests = parsed_receiver.requests();
    assert_eq!(requests[1].0["webhook-id"], requests[0].0["webhook-id"]);
    // Another tenant's key sees none of it.
    let other = app
        .tenant(
            "inbound-other@example.com",
            "other.example.com",
            "live",
            "ed25519",
        )
        .await;
    assert_eq!(
        app.get(&format!("/v1/messages/{id}"), &other.key).await.status(),
        404
    );
    assert_eq!(
        app.get(big["url"].as_str().unwrap(), &other.key).await.status(),
        404
    );
}

#[tokio::test]
async fn relay_attempts_are_refused_at_rcpt_and_nothing_is_stored() {
    let app = spawn_app_with(smtp_settings).await;
    let t = app
        .tenant("relay-a@example.com", "in.example.com", "live", "ed25519")
        .await;
    let other = app
        .tenant("relay-b@example.com", "b.example.com", "live", "ed25519")
        .await;
    create_route(&app, &t, json!({"local_part": "support", "action": "hold"})).await;
    create_route(&app, &other, json!({"local_part": "sales", "action": "hold"})).await;
    create_route(
        &app,
        &t,
        json!({"local_part": "gone", "action": "reject", "reject_code": 550, "reject_message": "Moved away"}),
    )
    .await;
    let smtp = start_smtp(&app).await;

    let (mut client, greeting) = Client::connect(smtp).await;
    assert_eq!(code(&greeting), "220");
    assert_eq!(code(&client.command("EHLO relay.test").await), "250");
    assert_eq!(
        code(&client.command("MAIL FROM:<spammer@relay.test>").await),
        "250"
    );
    for (rcpt, expected) in [
        ("<someone@gmail.test>", "550 5.7.1"),
        ("<nobody@b.example.com>", "550 5.1.1"),
        ("<support%gmail.test@in.example.com>", "550 5.7.1"),
        ("<gmail.test!support@in.example.com>", "550 5.7.1"),
        ("<\"support@gmail.test\"@in.example.com>", "550 5.7.1"),
        ("<@in.example.com,@b.example.com:someone@gmail.test>", "550 5.7.1"),
        ("<support@[127.0.0.1]>", "550 5.7.1"),
        ("<gone@in.example.com>", "550 5.7.1 Moved away"),
    ] {
        let reply = client.command(&format!("RCPT TO:{rcpt}")).await;
        assert!(
            reply.starts_with(expected) || (expected.starts_with("550") && reply.starts_with("501")),
            "{rcpt}: {reply}"
        );
    }
    assert_eq!(code(&client.command("DATA").await), "554");
    assert_eq!(code(&client.command("QUIT").await), "221");
    // One server's mail per transaction: another tenant's recipient waits
    // for the next one, so no tenant's policy decides another's mail.
    let (mut client, _) = Client::connect(smtp).await;
    assert_eq!(code(&client.command("EHLO relay.test").await), "250");
    assert_eq!(code(&client.command("MAIL FROM:<a@relay.test>").await), "250");
    assert_eq!(
        code(&client.command("RCPT TO:<support@in.example.com>").await),
        "250"
    );
    assert!(
        client
            .command("RCPT TO:<sales@b.example.com>")
            .await
            .starts_with("452 4.5.3")
    );
    assert_eq!(code(&client.command("QUIT").await), "221");
    assert_eq!(app.count("messages").await, 0);

    // swaks, a real client, is refused the same way.
    let (ok, output) = swaks(smtp, &["--from", "a@relay.test", "--to", "victim@gmail.test"]).await;
    assert!(!ok);
    assert!(output.contains("550 5.7.1"), "{output}");
    assert_eq!(app.count("messages").await, 0);
}

#[tokio::test]
async fn limits_smuggling_pipelining_and_timeouts_get_their_replies() {
    let app = spawn_app_with(|s| {
        smtp_settings(s);
        s.smtp.max_recipients = 3;
        s.smtp.max_message_bytes = 64 * 1024;
        s.smtp.command_timeout_secs = 1;
    })
    .await;
    let t = app
        .tenant("limits@example.com", "in.example.com", "live", "ed25519")
        .await;
    create_route(&app, &t, json!({"local_part": "*", "action": "hold"})).await;
    let smtp = start_smtp(&app).await;

    let (mut c, _) = Client::connect(smtp).await;
    let ehlo = c.command("EHLO limits.test").await;
    for keyword in [
        "PIPELINING",
        "SIZE 65536",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(ehlo.contains(keyword), "{keyword} in {ehlo}");
    }
    assert!(
        c.command("MAIL FROM:<a@limits.test> SIZE=100000")
            .await
            .starts_with("552 5.3.4")
    );
    assert_eq!(code(&c.command("MAIL FROM:<a@limits.test>").await), "250");
    for i in 0..3 {
        assert_eq!(
            code(&c.command(&format!("RCPT TO:<u{i}@in.example.com>")).await),
            "250"
        );
    }
    assert!(
        c.command("RCPT TO:<u4@in.example.com>")
            .await
            .starts_with("452 4.5.3")
    );
    assert_eq!(code(&c.command("DATA").await), "354");
    let long = "x".repeat(1200);
    c.send(format!("Subject: long\r\n\r\n{long}\r\n.\r\n").as_bytes())
        .await;
    assert!(c.reply().await.starts_with("550 5.6.0"));
    // The session goes on: too big a body is read through and refused.
    assert_eq!(code(&c.command("MAIL FROM:<a@limits.test>").await), "250");
    assert_eq!(code(&c.command("RCPT TO:<u@in.example.com>").await), "250");
    assert_eq!(code(&c.command("DATA").await), "354");
    let line = format!("{}\r\n", "y".repeat(900));
    c.send(format!("Subject: big\r\n\r\n{}.\r\n", line.repeat(100)).as_bytes())
        .await;
    assert!(c.reply().await.starts_with("552 5.3.4"));

    // Pipelined: three commands in one write, three replies in order.
    c.send(b"MAIL FROM:<a@limits.test>\r\nRCPT TO:<p@in.example.com>\r\nDATA\r\n")
        .await;
    assert_eq!(code(&c.reply().await), "250");
    assert_eq!(code(&c.reply().await), "250");
    assert_eq!(code(&c.reply().await), "354");
    c.send(b"Subject: pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n").await;
    assert!(c.reply().await.starts_with("250 2.0.0"));
    assert_eq!(code(&c.reply().await), "221");
    assert_eq!(app.count("messages").await, 1);

    // Smuggling: a bare LF (or CR) ends the session; what follows it is
    // never read as a second transaction.
    for payload in [
        &b"Subject: a\r\n\r\nhi\n.\nMAIL FROM:<evil@limits.test>\r\nRCPT TO:<s@in.example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"[..],
        &b"Subject: a\r\n\r\nhi\r\n\r.\r\nMAIL FROM:<evil@limits.test>\r\nRCPT TO:<s@in.example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"[..],
    ] {
        let (mut c, _) = Client::connect(smtp).await;
        c.command("EHLO smuggle.test").await;
        c.command("MAIL FROM:<a@limits.test>").await;
        c.command("RCPT TO:<s@in.example.com>").await;
        assert_eq!(code(&c.command("DATA").await), "354");
        c.send(payload).await;
        assert!(c.reply().await.starts_with("550 5.6.0"));
        assert!(c.closed().await, "the session ends");
    }
    assert_eq!(app.count("messages").await, 1, "nothing smuggled in");

    // A client that says nothing is timed out.
    let (mut silent, _) = Client::connect(smtp).await;
    assert!(silent.reply().await.starts_with("421 4.4.2"));

    // STARTTLS, then EHLO again over TLS (swaks), and the server still
    // serves others after all of the above.
    let (ok, output) = swaks(
        smtp,
        &["--tls", "--from", "a@limits.test", "--to", "tls@in.example.com"],
    )
    .await;
    assert!(ok, "{output}");
    assert!(output.contains("220 2.0.0 Ready to start TLS"), "{output}");
    let tls: bool = sqlx::query_scalar(
        "SELECT i.tls FROM inbound_messages i WHERE 'tls@in.example.com' = ANY (i.rcpt_to)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(tls);
}

#[tokio::test]
async fn a_message_accepted_before_a_kill_is_delivered_after_restart() {
    let app = spawn_app_with(smtp_settings).await;
    let t = app
        .tenant("crash-in@example.com", "in.example.com", "live", "ed25519")
        .await;
    let receiver = Receiver::start(&[]).await;
    create_route(
        &app,
        &t,
        json!({"local_part": "support", "action": "endpoint", "url": receiver.url}),
    )
    .await;
    let port = crate::helpers::free_port();
    let config = std::env::temp_dir().join(format!("tern-smtp-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(
        &config,
        format!(
            "public_hostname = \"tern.test\"\n\
             [database]\nurl = \"{}\"\nmax_connections = 4\n\
             [dns]\nnameservers = [\"127.0.0.1:9\"]\ntimeout_ms = 300\n\
             [log]\nfilter = \"warn\"\n\
             [smtp]\nlisten = [\"127.0.0.1:{port}\"]\nself_signed_dir = \"{}\"\n",
            app.settings.database.url.expose(),
            app.settings.smtp.self_signed_dir.display(),
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("--config")
        .arg(&config)
        .args(["serve", "--role", "smtp"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tern --role smtp");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, output) = swaks(
        addr,
        &["--from", "a@sender.test", "--to", "support@in.example.com"],
    )
    .await;
    assert!(ok, "{output}");
    let _ = child.kill(); // SIGKILL, right after the 250
    let _ = child.wait();
    let _ = std::fs::remove_file(config);

    assert_eq!(app.count("messages").await, 1, "stored before the 250");
    deliver(&app, &receiver, 1).await;
    let event: Value = serde_json::from_str(&receiver.requests()[0].1).unwrap();
    assert_eq!(
        event["data"]["envelope"]["rcpt_to"],
        json!(["support@in.example.com"])
    );
}

/// Whether the received message sent to `rcpt` was flagged.
async fn flagged_of(app: &TestApp, rcpt: &str) -> bool {
    sqlx::query_scalar("SELECT flagged FROM inbound_messages WHERE $1 = ANY (rcpt_to)")
        .bind(rcpt)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The stored checks of the received message sent to `rcpt`.
async fn checks_of(app: &TestApp, rcpt: &str) -> Value {
    sqlx::query_scalar("SELECT checks FROM inbound_messages WHERE $1 = ANY (rcpt_to)")
        .bind(rcpt)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn spf_dkim_and_dmarc_are_checked_against_dns_and_dmarc_reject_is_enforced() {
    let dns_port = crate::helpers::free_port();
    let app = spawn_app_with(|s| {
        smtp_settings(s);
        s.dns.nameservers = vec![format!("127.0.0.1:{dns_port}").parse().unwrap()];
    })
    .await;
    let t = app
        .tenant("checks@example.com", "in.example.com", "live", "ed25519")
        .await;
    let signer = app
        .tenant("signer@example.com", "signer.test", "development", "ed25519")
        .await;
    create_route(&app, &t, json!({"local_part": "*", "action": "hold"})).await;
    create_route(
        &app,
        &t,
        json!({"local_part": "lenient", "action": "hold", "dmarc_reject": "flag"}),
    )
    .await;
    let domain = json_of(
        app.get(&format!("/v1/domains/{}", signer.domain_id), &signer.token)
            .await,
        200,
    )
    .await;
    let dkim_name = format!(
        "{}._domainkey.signer.test",
        domain["dkim_selector"].as_str().unwrap()
    );
    let _dns = crate::helpers::Dnsmasq::start(
        dns_port,
        &[
            "--txt-record=pass.test,v=spf1 ip4:127.0.0.2 -all".to_string(),
            "--txt-record=soft.test,v=spf1 ip4:127.0.0.2 ~all".to_string(),
            "--txt-record=strict.test,v=spf1 ip4:127.0.0.9 -all".to_string(),
            "--txt-record=_dmarc.strict.test,v=DMARC1; p=reject".to_string(),
            "--txt-record=_dmarc.signer.test,v=DMARC1; p=reject".to_string(),
            "--mx-host=in.example.com,tern.test,10".to_string(),
            format!("--txt-record={dkim_name},{}", crate::dkim::dkim_txt(&domain)),
        ],
    );
    let smtp = start_smtp(&app).await;

    // A receiving domain is asked for its MX record, and the check finds it.
    let checked = json_of(
        app.post(
            &format!("/v1/domains/{}/verify", t.domain_id),
            &t.token,
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    let mx = crate::domains::record(&checked, "mx");
    assert_eq!(
        (mx["value"].as_str(), mx["status"].as_str()),
        (Some("tern.test"), Some("ok")),
        "{mx}"
    );
    let sender_records = &domain["dns_records"];
    assert!(
        sender_records
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["purpose"] != "mx"),
        "no MX record for a domain that only sends"
    );
    let send = |from: &'static str, to: &'static str, interface: &'static str| async move {
        swaks(
            smtp,
            &[
                "--local-interface",
                interface,
                "--from",
                from,
                "--to",
                to,
                "--h-From",
                from,
            ],
        )
        .await
    };

    let (ok, output) = send("a@pass.test", "spf-pass@in.example.com", "127.0.0.2").await;
    assert!(ok, "{output}");
    let checks = checks_of(&app, "spf-pass@in.example.com").await;
    assert_eq!(checks["spf"]["result"], "pass", "{checks}");
    assert_eq!(checks["spf"]["domain"], "pass.test");
    assert_eq!(checks["spf_helo"]["result"], "none");
    let (ok, output) = send("a@pass.test", "spf-fail@in.example.com", "127.0.0.3").await;
    assert!(ok, "{output}");
    assert_eq!(
        checks_of(&app, "spf-fail@in.example.com").await["spf"]["result"],
        "fail"
    );
    let (ok, output) = send("a@soft.test", "spf-soft@in.example.com", "127.0.0.3").await;
    assert!(ok, "{output}");
    assert_eq!(
        checks_of(&app, "spf-soft@in.example.com").await["spf"]["result"],
        "softfail"
    );

    // A message Tern signed for one tenant verifies when another receives it.
    let sent = app
        .send(
            &signer.key,
            &json!({"from": "news@signer.test", "to": "dkim@in.example.com", "subject": "Signed", "text": "hi"}),
        )
        .await;
    let source = app.source(&signer.key, sent["id"].as_str().unwrap()).await;
    let file = std::env::temp_dir().join(format!("tern-signed-{}.eml", uuid::Uuid::new_v4()));
    std::fs::write(&file, &source).unwrap();
    let data = format!("@{}", file.display());
    let (ok, output) = swaks(
        smtp,
        &[
            "--local-interface",
            "127.0.0.2",
            "--from",
            "news@signer.test",
            "--to",
            "dkim@in.example.com",
            "--data",
            &data,
        ],
    )
    .await;
    let _ = std::fs::remove_file(&file);
    assert!(ok, "{output}");
    let checks = checks_of(&app, "dkim@in.example.com").await;
    assert_eq!(checks["dkim"][0]["result"], "pass", "{checks}");
    assert_eq!(checks["dkim"][0]["domain"], "signer.test");
    assert_eq!(
        checks["dmarc"]["result"], "pass",
        "aligned DKIM passes DMARC: {checks}"
    );
    let id: uuid::Uuid = sqlx::query_scalar(
        "SELECT message_id FROM inbound_messages WHERE 'dkim@in.example.com' = ANY (rcpt_to)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let stored = String::from_utf8(app.source(&t.key, &id.to_string()).await).unwrap();
    assert!(
        stored.starts_with("Authentication-Results: tern.test;"),
        "{stored}"
    );
    assert!(stored.contains("dkim=pass"), "{stored}");

    // DMARC p=reject and no aligned pass: refused at the end of DATA,
    // unless the route only flags it.
    let before = app.count("messages").await;
    let (ok, output) = send("a@strict.test", "dmarc@in.example.com", "127.0.0.2").await;
    assert!(!ok);
    assert!(output.contains("550 5.7.1"), "{output}");
    assert_eq!(app.count("messages").await, before, "nothing stored");
    let (ok, output) = send("a@strict.test", "lenient@in.example.com", "127.0.0.2").await;
    assert!(ok, "{output}");
    assert!(flagged_of(&app, "lenient@in.example.com").await);
    assert_eq!(
        checks_of(&app, "lenient@in.example.com").await["dmarc"]["policy"],
        "reject"
    );
}

#[tokio::test]
async fn bounces_to_signed_return_paths_are_taken_and_forged_ones_refused() {
    let app = spawn_app_with(smtp_settings).await;
    let t = app
        .tenant("bounces@example.com", "out.example.com", "development", "ed25519")
        .await;
    let smtp = start_smtp(&app).await;
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@out.example.com", "to": "gone@far.test", "text": "hi"}),
        )
        .await;
    let message = app.message(&t.key, &sent).await;
    let recipient: uuid::Uuid = message["recipients"][0]["id"].as_str().unwrap().parse().unwrap();
    let key: Vec<u8> = sqlx::query_scalar("SELECT value FROM instance_secrets WHERE name = 'verp_hmac'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let verp = tern::mail::verp::Verp::new(&key);
    let target = tern::mail::verp::VerpTarget::Recipient(recipient);

    for host in ["rp.tern.test", "rp.out.example.com"] {
        let address = verp.return_path(target, host);
        let (ok, output) = swaks(
            smtp,
            &[
                "--from",
                "",
                "--to",
                &address,
                "--h-Subject",
                "Undelivered Mail Returned to Sender",
            ],
        )
        .await;
        assert!(ok, "{address}: {output}");
    }
    let rows: Vec<(String, Option<uuid::Uuid>, String, uuid::Uuid)> = sqlx::query_as(
        "SELECT i.kind, i.about_recipient_id, i.action, m.server_id
         FROM inbound_messages i JOIN messages m ON m.id = i.message_id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    for (kind, about, action, server) in rows {
        assert_eq!(kind, "return_path");
        assert_eq!(about, Some(recipient));
        assert_eq!(action, "unrecognized", "not a DSN: recorded, nothing done");
        assert_eq!(server, t.server_id, "stored for the server that sent the message");
    }

    // `b+` at a domain that is no return-path host is an ordinary address.
    create_route(&app, &t, json!({"local_part": "*", "action": "hold"})).await;
    let (ok, output) = swaks(smtp, &["--from", "a@x.test", "--to", "b+news@out.example.com"]).await;
    assert!(ok, "{output}");
    sqlx::query("DELETE FROM messages WHERE direction = 'incoming' AND NOT EXISTS (SELECT 1 FROM inbound_messages i WHERE i.message_id = messages.id AND i.kind = 'return_path')")
        .execute(&app.db)
        .await
        .unwrap();

    // A token whose signature does not match, or a return path at a host
    // that is none of ours, is refused at RCPT.
    let good = verp.return_path(target, "rp.tern.test");
    let (local, host) = good.split_once('@').unwrap();
    let mut forged = local.to_string();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    let (mut c, _) = Client::connect(smtp).await;
    c.command("EHLO bounce.test").await;
    c.command("MAIL FROM:<>").await;
    assert!(
        c.command(&format!("RCPT TO:<{forged}@{host}>"))
            .await
            .starts_with("550 5.1.1")
    );
    let elsewhere = c.command(&format!("RCPT TO:<{local}@elsewhere.test>")).await;
    assert!(elsewhere.starts_with("550 5.7.1"), "{elsewhere}");
    assert_eq!(code(&c.command("QUIT").await), "221");
    assert_eq!(app.count("inbound_messages").await, 2);
}

#[tokio::test]
async fn ip_rules_and_dns_blocklists_refuse_clients_at_connect() {
    let dns_port = crate::helpers::free_port();
    let app = spawn_app_with(|s| {
        smtp_settings(s);
        s.dns.nameservers = vec![format!("127.0.0.1:{dns_port}").parse().unwrap()];
        s.smtp.dnsbl_zones = vec!["bl.test".into()];
    })
    .await;
    let _dns = crate::helpers::Dnsmasq::start(
        dns_port,
        &[
            // 127.0.0.3 is listed.
            "--address=/3.0.0.127.bl.test/127.0.0.2".to_string(),
            "--host-record=client.test,127.0.0.2".to_string(),
        ],
    );
    let t = app
        .tenant("ip-rules@example.com", "in.example.com", "live", "ed25519")
        .await;
    create_route(&app, &t, json!({"local_part": "*", "action": "hold"})).await;
    let smtp = start_smtp(&app).await;
    let rules = "/v1/smtp/ip-rules";

    // Installation-wide: only instance administrators.
    assert_error(app.get(rules, &t.token).await, 403, "not_instance_admin").await;
    let block = json!({"network": "127.0.0.4", "action": "block", "note": "test"});
    assert_error(app.post(rules, &t.token, &block).await, 403, "not_instance_admin").await;
    sqlx::query("UPDATE users SET instance_admin = true WHERE id = $1")
        .bind(t.user_id)
        .execute(&app.db)
        .await
        .unwrap();
    let created = json_of(app.post(rules, &t.token, &block).await, 201).await;
    assert_eq!(created["network"], "127.0.0.4/32");
    assert_error(app.post(rules, &t.token, &block).await, 409, "ip_rule_exists").await;
    let bad = json!({"network": "127.0.0.4/8", "action": "block"});
    assert_error(app.post(rules, &t.token, &bad).await, 422, "invalid_network").await;

    let greeting = greeting_once(smtp, "127.0.0.4", "554 5.7.1").await;
    assert!(greeting.starts_with("554 5.7.1"), "{greeting}");
    let (_, greeting) = Client::connect_from(smtp, "127.0.0.3").await;
    assert!(
        greeting.starts_with("554 5.7.1") && greeting.contains("bl.test"),
        "{greeting}"
    );
    // An allow rule exempts a client from the blocklists.
    let allow = json!({"network": "127.0.0.3/32", "action": "allow"});
    json_of(app.post(rules, &t.token, &allow).await, 201).await;
    let greeting = greeting_once(smtp, "127.0.0.3", "220 ").await;
    assert!(greeting.starts_with("220 "), "{greeting}");

    let (ok, output) = swaks(
        smtp,
        &[
            "--local-interface",
            "127.0.0.2",
            "--from",
            "a@client.test",
            "--to",
            "fcrdns@in.example.com",
        ],
    )
    .await;
    assert!(ok, "{output}");
    // hickory answers reverse lookups of 127.0.0.0/8 itself (RFC 6761:
    // `localhost`), whatever the DNS server says, and localhost is not
    // 127.0.0.2: loopback clients never pass FCrDNS.
    let checks = checks_of(&app, "fcrdns@in.example.com").await;
    assert_eq!(checks["fcrdns"], "fail", "{checks}");
    assert_eq!(checks["client_name"], Value::Null);

    let listed = json_of(app.get(rules, &t.token).await, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let item = format!("{rules}/{}", created["id"].as_str().unwrap());
    assert_eq!(app.delete(&item, &t.token).await.status(), 204);
    assert_eq!(app.delete(&item, &t.token).await.status(), 404);
    let greeting = greeting_once(smtp, "127.0.0.4", "220 ").await;
    assert!(greeting.starts_with("220 "), "{greeting}");
}

/// What `ask` answers once it starts with `wanted`, or its last answer
/// after 5 s: the SMTP server reloads what it holds in memory (IP rules,
/// routes) on a notification, a moment after a change commits.
async fn eventually<F, Fut>(wanted: &str, mut ask: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = ask().await;
        if answer.starts_with(wanted) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The greeting a client at `ip` gets, once it starts with `wanted`.
async fn greeting_once(smtp: SocketAddr, ip: &str, wanted: &str) -> String {
    eventually(wanted, || async { Client::connect_from(smtp, ip).await.1 }).await
}

/// The reply to `RCPT TO:<rcpt>` in a new session, once it starts with
/// `wanted`.
async fn rcpt_once(smtp: SocketAddr, rcpt: &str, wanted: &str) -> String {
    eventually(wanted, || async {
        let (mut client, _) = Client::connect(smtp).await;
        client.command("EHLO cache.test").await;
        client.command("MAIL FROM:<a@cache.test>").await;
        let reply = client.command(&format!("RCPT TO:<{rcpt}>")).await;
        client.command("QUIT").await;
        reply
    })
    .await
}

#[tokio::test]
async fn route_changes_reach_the_smtp_server_a_moment_after_they_are_saved() {
    let app = spawn_app_with(smtp_settings).await;
    let t = app
        .tenant("cache@example.com", "in.example.com", "live", "ed25519")
        .await;
    let support = create_route(&app, &t, json!({"local_part": "support", "action": "hold"})).await;
    let gone = create_route(
        &app,
        &t,
        json!({"local_part": "gone", "action": "reject", "reject_code": 550, "reject_message": "Moved away"}),
    )
    .await;
    let smtp = start_smtp(&app).await;
    // Each answer is looked up once, then held in memory.
    let asked = [
        ("support@in.example.com", "250"),
        ("sales@in.example.com", "550 5.1.1"),
        ("gone@in.example.com", "550 5.7.1 Moved away"),
    ];
    for _ in 0..2 {
        for (rcpt, wanted) in asked {
            let reply = rcpt_once(smtp, rcpt, wanted).await;
            assert!(reply.starts_with(wanted), "{rcpt}: {reply}");
        }
    }

    // A new route, a changed one and a deleted one.
    create_route(&app, &t, json!({"local_part": "sales", "action": "hold"})).await;
    let path = format!("/v1/routes/{}", gone["id"].as_str().unwrap());
    let changed = app
        .patch(&path, &t.token, &json!({"reject_message": "Gone for good"}))
        .await;
    assert_eq!(changed.status(), 200);
    let path = format!("/v1/routes/{}", support["id"].as_str().unwrap());
    assert_eq!(app.delete(&path, &t.token).await.status(), 204);
    for (rcpt, wanted) in [
        ("sales@in.example.com", "250"),
        ("gone@in.example.com", "550 5.7.1 Gone for good"),
        ("support@in.example.com", "550 5.1.1"),
    ] {
        let reply = rcpt_once(smtp, rcpt, wanted).await;
        assert!(reply.starts_with(wanted), "{rcpt}: {reply}");
    }

    // Without its domain, nothing of it is taken.
    let path = format!("/v1/domains/{}", t.domain_id);
    assert_eq!(app.delete(&path, &t.token).await.status(), 204);
    let reply = rcpt_once(smtp, "sales@in.example.com", "550 5.7.1").await;
    assert!(reply.starts_with("550 5.7.1"), "{reply}");
}

/// rspamd's normal worker, which scripts/test starts.
async fn rspamd_url() -> String {
    let url = std::env::var("TERN_TEST_RSPAMD_URL").unwrap_or_else(|_| "http://127.0.0.1:11333".into());
    let ping = reqwest::get(format!("{url}/ping")).await;
    assert!(
        ping.is_ok_and(|r| r.status().is_success()),
        "rspamd must answer at {url} (scripts/test starts it)"
    );
    url
}

/// The GTUBE test string: every rspamd scores it as spam.
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

#[tokio::test]
async fn rspamd_scores_messages_and_routes_reject_or_flag_spam_and_a_dead_scanner_stops_nothing() {
    let url = rspamd_url().await;
    let app = spawn_app_with(|s| {
        smtp_settings(s);
        s.smtp.spam.rspamd_url = Some(url.clone());
    })
    .await;
    let t = app
        .tenant("spam@example.com", "in.example.com", "live", "ed25519")
        .await;
    create_route(
        &app,
        &t,
        json!({"local_part": "strict", "action": "hold", "spam_threshold": 10.0, "spam_action": "reject"}),
    )
    .await;
    create_route(
        &app,
        &t,
        json!({"local_part": "lenient", "action": "hold", "spam_threshold": 10.0}),
    )
    .await;
    create_route(&app, &t, json!({"local_part": "*", "action": "hold"})).await;
    let smtp = start_smtp(&app).await;

    let (ok, output) = swaks(
        smtp,
        &[
            "--from",
            "a@spam.test",
            "--to",
            "strict@in.example.com",
            "--body",
            GTUBE,
        ],
    )
    .await;
    assert!(!ok);
    assert!(output.contains("550 5.7.1"), "{output}");
    let (ok, output) = swaks(
        smtp,
        &[
            "--from",
            "a@spam.test",
            "--to",
            "lenient@in.example.com",
            "--body",
            GTUBE,
        ],
    )
    .await;
    assert!(ok, "{output}");
    let checks = checks_of(&app, "lenient@in.example.com").await;
    assert_eq!(checks["spam"], "spam", "{checks}");
    assert!(checks["spam_score"].as_f64().unwrap() >= 10.0, "{checks}");
    assert!(flagged_of(&app, "lenient@in.example.com").await);
    let (ok, output) = swaks(
        smtp,
        &[
            "--from",
            "a@fine.test",
            "--to",
            "plain@in.example.com",
            "--body",
            "Hello there",
        ],
    )
    .await;
    assert!(ok, "{output}");
    let checks = checks_of(&app, "plain@in.example.com").await;
    assert_eq!(checks["spam"], "ham", "{checks}");
    assert!(checks["spam_score"].is_number());

    // A scanner that accepts and never answers, and one that is down: the
    // verdict is unknown and the message is taken, within the timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    for (scanner, rcpt) in [
        (silent_url, "slow@in.example.com"),
        ("http://127.0.0.1:9".to_string(), "down@in.example.com"),
    ] {
        let smtp = start_smtp_with(&app, |s| {
            s.smtp.spam.rspamd_url = Some(scanner);
            s.smtp.spam.timeout_ms = 300;
        })
        .await;
        let started = std::time::Instant::now();
        let (ok, output) = swaks(smtp, &["--from", "a@spam.test", "--to", rcpt, "--body", GTUBE]).await;
        assert!(ok, "{output}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let checks = checks_of(&app, rcpt).await;
        assert_eq!(checks["spam"], "unknown", "{checks}");
        assert!(checks["spam_score"].is_null());
    }
}

/// Servers, domains, routes and webhook endpoints are parents without
/// foreign keys pointing at them from the hot tables (the migration
/// `hot_parent_rows` says why): deleting one cascades by trigger.
#[tokio::test]
async fn deleting_a_route_endpoint_domain_or_server_takes_or_keeps_what_it_should() {
    let app = spawn_app_with(smtp_settings).await;
    let t = app
        .tenant("parents@example.com", "in.example.com", "development", "ed25519")
        .await;
    let route = create_route(&app, &t, json!({"local_part": "*", "action": "hold"})).await;
    let hook = json_of(
        app.post(
            &format!("/v1/servers/{}/webhooks", t.server_id),
            &t.token,
            &json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await,
        201,
    )
    .await;
    app.send(
        &t.key,
        &json!({"from": "a@in.example.com", "to": "b@example.org", "text": "x"}),
    )
    .await;
    let smtp = start_smtp(&app).await;
    let (ok, out) = swaks(smtp, &["--from", "x@sender.test", "--to", "u@in.example.com"]).await;
    assert!(ok, "{out}");
    let db = app.db.clone();
    let count = |sql: &'static str| {
        let db = db.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&db).await.unwrap() }
    };
    assert_eq!(count("SELECT count(*) FROM messages").await, 2);
    assert!(count("SELECT count(*) FROM webhook_deliveries").await > 0);

    let id = route["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/v1/routes/{id}"), &t.token).await.status(),
        204
    );
    assert_eq!(
        count("SELECT count(*) FROM inbound_messages WHERE route_id IS NULL").await,
        1
    );
    let id = hook["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/v1/webhooks/{id}"), &t.token).await.status(),
        204
    );
    assert_eq!(count("SELECT count(*) FROM webhook_deliveries").await, 0);
    assert_eq!(
        app.delete(&format!("/v1/domains/{}", t.domain_id), &t.token)
            .await
            .status(),
        204
    );
    assert_eq!(
        count("SELECT count(*) FROM messages WHERE domain_id IS NULL").await,
        2
    );
    assert_eq!(
        app.delete(&format!("/v1/servers/{}", t.server_id), &t.token)
            .await
            .status(),
        204
    );
    for table in [
        "messages",
        "message_sources",
        "recipients",
        "message_events",
        "inbound_messages",
    ] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn concurrent_sessions_share_commits_and_every_message_is_stored_whole() {
    let app = spawn_app_with(smtp_settings).await;
    let t = app
        .tenant("group-commit@example.com", "in.example.com", "live", "ed25519")
        .await;
    create_route(
        &app,
        &t,
        json!({"local_part": "support", "action": "endpoint", "url": "http://127.0.0.1:9/in"}),
    )
    .await;
    create_route(&app, &t, json!({"local_part": "*", "action": "hold"})).await;
    let smtp = start_smtp_with(&app, |s| s.smtp.max_sessions_per_ip = 40).await;

    // Forty clients at once; every other one also writes to a held
    // address, so its message is stored as two copies.
    let sessions = (0..40).map(|i| {
        let domain = t.domain.clone();
        tokio::spawn(async move {
            let (mut c, greeting) = Client::connect(smtp).await;
            assert_eq!(code(&greeting), "220", "{greeting}");
            assert_eq!(code(&c.command("EHLO many.test").await), "250");
            assert_eq!(
                code(&c.command(&format!("MAIL FROM:<s{i}@many.test>")).await),
                "250"
            );
            let rcpt = c.command(&format!("RCPT TO:<support@{domain}>")).await;
            assert_eq!(code(&rcpt), "250");
            if i % 2 == 0 {
                let rcpt = c.command(&format!("RCPT TO:<held{i}@{domain}>")).await;
                assert_eq!(code(&rcpt), "250");
            }
            assert_eq!(code(&c.command("DATA").await), "354");
            let body = format!("From: s{i}@many.test\r\nSubject: number {i}\r\n\r\nbody {i}\r\n.\r\n");
            let done = c.command(&body).await;
            assert_eq!(code(&done), "250", "{done}");
            c.command("QUIT").await;
            (i, done)
        })
    });
    let replies = futures_util::future::join_all(sessions).await;

    for reply in replies {
        let (i, done) = reply.unwrap();
        // The id in the reply is the message's first copy, stored whole.
        let id = done.trim().rsplit(' ').next().unwrap();
        let id = uuid::Uuid::parse_str(id).unwrap();
        let (subject, rcpt_to, delivery, raw): (String, Vec<String>, Option<uuid::Uuid>, Vec<u8>) =
            sqlx::query_as(
                "SELECT m.subject, i.rcpt_to, i.delivery_id, s.raw FROM messages m
             JOIN inbound_messages i ON i.message_id = m.id
             JOIN message_sources s ON s.message_id = m.id WHERE m.id = $1",
            )
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
        assert_eq!(subject, format!("number {i}"));
        assert!(String::from_utf8_lossy(&raw).contains(&format!("body {i}")));
        let held: Vec<Vec<String>> = sqlx::query_scalar(
            "SELECT i.rcpt_to FROM inbound_messages i JOIN messages m ON m.id = i.message_id
             WHERE m.subject = $1 AND i.action = 'hold'",
        )
        .bind(&subject)
        .fetch_all(&app.db)
        .await
        .unwrap();
        let support = format!("support@{}", t.domain);
        if rcpt_to == [support.clone()] {
            assert!(delivery.is_some());
        } else {
            assert_eq!(rcpt_to, [format!("held{i}@{}", t.domain)]);
            assert!(delivery.is_none());
        }
        let expected: Vec<Vec<String>> = if i % 2 == 0 {
            vec![vec![format!("held{i}@{}", t.domain)]]
        } else {
            vec![]
        };
        assert_eq!(held, expected);
    }
    assert_eq!(app.count("inbound_messages").await, 60);
    assert_eq!(app.count("message_sources").await, 60);
    assert_eq!(app.count("webhook_deliveries").await, 40);
}
