//! The SMTP client against Postfix's smtp-sink on a loopback port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tern::delivery::smtp_client::{Envelope, SmtpClient, Timeouts};
use tokio::net::TcpStream;

/// smtp-sink with extra flags; dumps each transaction into `dir`.
pub struct Sink {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Sink {
    pub fn start(flags: &[&str]) -> Sink {
        let port = crate::helpers::free_port();
        let dir = std::env::temp_dir().join(format!("tern-sink-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chmod").arg("777").arg(&dir).status();
        let child = Command::new("smtp-sink")
            .args(["-u", "nobody", "-d"])
            .arg(format!("{}/%M.", dir.display()))
            .args(flags)
            .arg(format!("127.0.0.1:{port}"))
            .arg("10")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink (scripts/test installs postfix)");
        std::thread::sleep(Duration::from_millis(300));
        Sink { child, port, dir }
    }

    pub fn dumps(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        out.sort();
        out
    }

    async fn client(&self) -> SmtpClient<TcpStream> {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut client = SmtpClient::greet(stream, Timeouts::default()).await.unwrap();
        client.ehlo("tern.test").await.unwrap();
        client
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const MESSAGE: &[u8] = b"From: a@shop.test\r\nSubject: hi\r\n\r\n.a line starting with a dot\r\nbody\r\n";

fn recipients() -> Vec<String> {
    vec!["b@example.org".into(), "c@example.org".into()]
}

#[tokio::test]
async fn delivers_to_every_recipient_in_one_transaction() {
    let sink = Sink::start(&[]);
    let mut client = sink.client().await;
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
    let mut client = hard.client().await;
    let rcpts = recipients();
    let envelope = Envelope {
        mail_from: "a@shop.test",
        recipients: &rcpts,
        message: MESSAGE,
    };
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
    let mut client = soft.client().await;
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
    let mut client = sink.client().await;
    let rcpts = recipients();
    let envelope = Envelope {
        mail_from: "a@shop.test",
        recipients: &rcpts,
        message: MESSAGE,
    };
    let result = client.send(&envelope).await.unwrap();
    assert!(result.recipients.iter().all(|r| r.code == 250), "{result:?}");
    client.quit().await;
}
