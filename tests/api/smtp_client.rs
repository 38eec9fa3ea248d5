//! The SMTP client against Postfix's smtp-sink on a loopback port.

use std::time::Duration;

use tern::delivery::smtp_client::{Envelope, SmtpClient, Timeouts};
use tokio::net::TcpStream;

use crate::peers::Sink;

const MESSAGE: &[u8] = b"From: a@shop.test\r\nSubject: hi\r\n\r\n.a line starting with a dot\r\nbody\r\n";

fn recipients() -> Vec<String> {
    vec!["b@example.org".into(), "c@example.org".into()]
}

#[tokio::test]
async fn delivers_to_every_recipient_in_one_transaction() {
    let sink = Sink::start(&[]);
    let mut client = connect(&sink).await;
    let rcpts = recipients();
    let envelope = Envelope {
        mail_from: "b+token@rp.shop.test",
        recipients: &rcpts,
        message: MESSAGE,
    };
    let result = client.send(&envelope).await.unwrap();
    assert!(result.recipients.iter().all(|r| r.code == 250), "{result:?}");
    // Connection reuse: a second message on the same session.
    let result = client.send(&envelope).await.unwrap();
    assert!(result.recipients.iter().all(|r| r.code == 250));
    client.quit().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dumps = sink.dumps();
    assert_eq!(dumps.len(), 2);
    assert!(
        dumps[0].contains("X-Mail-Args: <b+token@rp.shop.test>"),
        "{}",
        dumps[0]
    );
    assert!(
        dumps[0].contains("X-Rcpt-Args: <b@example.org>")
            && dumps[0].contains("X-Rcpt-Args: <c@example.org>")
    );
    assert!(
        dumps[0].contains("\n.a line starting with a dot\n"),
        "dot-stuffing undone: {}",
        dumps[0]
    );
}

#[tokio::test]
async fn refused_recipients_and_data_get_their_own_replies() {
    let hard = Sink::start(&["-f", "rcpt"]);
    let mut client = connect(&hard).await;
    let rcpts = recipients();
    let envelope = from_shop(&rcpts, MESSAGE);
    let result = client.send(&envelope).await.unwrap();
    assert!(
        result
            .recipients
            .iter()
            .all(|r| r.code == 500 && r.is_permanent()),
        "{result:?}"
    );
    assert_eq!(result.recipients[0].enhanced.as_deref(), Some("5.3.0"));

    let soft = Sink::start(&["-r", "data"]);
    let mut client = connect(&soft).await;
    let result = client.send(&envelope).await.unwrap();
    assert!(result.recipients.iter().all(|r| r.code == 450), "{result:?}");
    assert!(!result.recipients[0].is_permanent());
    // The session is still usable after the failure (RSET).
    client.reset().await.unwrap();
    assert!(soft.dumps().is_empty());
}

#[tokio::test]
async fn works_without_pipelining() {
    let sink = Sink::start(&["-p"]);
    let mut client = connect(&sink).await;
    let rcpts = recipients();
    let envelope = from_shop(&rcpts, MESSAGE);
    let result = client.send(&envelope).await.unwrap();
    assert!(result.recipients.iter().all(|r| r.code == 250), "{result:?}");
    client.quit().await;
}

#[tokio::test]
async fn a_connection_lost_after_the_final_dot_is_a_delivery_of_unknown_outcome() {
    // smtp-sink -q .: the server takes the message and hangs up unanswered.
    let sink = Sink::start(&["-q", "."]);
    let mut client = connect(&sink).await;
    let rcpts = recipients();
    let envelope = from_shop(&rcpts, MESSAGE);
    let result = client.send(&envelope).await.unwrap();
    for reply in &result.recipients {
        assert_eq!((reply.code, reply.local), (451, true), "{reply:?}");
        assert!(reply.text.contains("may have been delivered"), "{reply:?}");
    }
    assert!(!client.reusable());
}

#[tokio::test]
async fn replies_read_before_a_421_stand() {
    // smtp-sink -Q rcpt: 421 to the first RCPT, then the connection closes.
    let sink = Sink::start(&["-Q", "rcpt"]);
    let mut client = connect(&sink).await;
    let rcpts = recipients();
    let envelope = from_shop(&rcpts, MESSAGE);
    let result = client.send(&envelope).await.unwrap();
    let codes: Vec<(u16, bool)> = result.recipients.iter().map(|r| (r.code, r.local)).collect();
    assert_eq!(codes, [(421, false), (451, true)], "{result:?}");
    assert!(!client.reusable());
}

#[tokio::test]
async fn eight_bit_and_utf8_messages_need_the_servers_extensions() {
    let rcpts = recipients();
    let eight_bit_body = "From: a@shop.test\r\nSubject: hi\r\n\r\nGrüße\r\n".as_bytes();
    let utf8_header = "From: Jürgen <a@shop.test>\r\nSubject: hi\r\n\r\nplain\r\n".as_bytes();

    // smtp-sink announces 8BITMIME but not SMTPUTF8.
    let sink = Sink::start(&[]);
    let mut client = connect(&sink).await;
    let envelope = from_shop(&rcpts, eight_bit_body);
    let result = client.send(&envelope).await.unwrap();
    assert!(result.recipients.iter().all(|r| r.code == 250), "{result:?}");
    let envelope = Envelope {
        mail_from: "a@shop.test",
        recipients: &rcpts,
        message: utf8_header,
    };
    let result = client.send(&envelope).await.unwrap();
    assert!(
        result.recipients.iter().all(|r| (r.code, r.local) == (553, true)),
        "{result:?}"
    );
    client.quit().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dumps = sink.dumps();
    assert_eq!(dumps.len(), 1);
    assert!(dumps[0].contains("BODY=8BITMIME"), "{}", dumps[0]);

    // smtp-sink -8: no 8BITMIME either.
    let seven_bit = Sink::start(&["-8"]);
    let mut client = connect(&seven_bit).await;
    let envelope = from_shop(&rcpts, eight_bit_body);
    let result = client.send(&envelope).await.unwrap();
    assert!(
        result.recipients.iter().all(|r| (r.code, r.local) == (554, true)),
        "{result:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(seven_bit.dumps().is_empty());
}

/// A transaction from a@shop.test.
fn from_shop<'a>(recipients: &'a [String], message: &'a [u8]) -> Envelope<'a> {
    Envelope {
        mail_from: "a@shop.test",
        recipients,
        message,
    }
}

/// A greeted session with EHLO done.
async fn connect(sink: &Sink) -> SmtpClient<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", sink.port)).await.unwrap();
    let mut client = SmtpClient::greet(stream, Timeouts::default()).await.unwrap();
    client.ehlo("tern.test").await.unwrap();
    client
}
