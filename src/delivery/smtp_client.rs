//! An SMTP client for one delivery transaction at a time, on any stream
//! (TCP now, TLS after STARTTLS), built on smtp-proto's reply and EHLO
//! parsers. Unlike `mail-send` it reports a result for every recipient
//! (RFC 5321 §3.3: each RCPT is accepted or refused on its own).

use std::time::Duration;

use smtp_proto::response::parser::ResponseReceiver;
use smtp_proto::{
    EXT_8BIT_MIME, EXT_PIPELINING, EXT_SIZE, EXT_SMTP_UTF8, EXT_START_TLS, EhloResponse, Response,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A reply: code, enhanced status code (RFC 3463) if given, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
    /// Decided by Tern, not said by the server (over SIZE, no SMTPUTF8, a
    /// lost connection): a permanent one is a failure, not a bounce.
    pub local: bool,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.enhanced {
            Some(esc) => write!(f, "{} {} {}", self.code, esc, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

/// Why a session failed as a whole (as opposed to a refused recipient).
#[derive(Debug, thiserror::Error)]
pub enum SmtpClientError {
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out waiting for the server ({0})")]
    Timeout(&'static str),
    #[error("the server closed the connection")]
    Closed,
    #[error("malformed reply from the server")]
    Protocol,
    #[error("the server refused the session: {0}")]
    Refused(Reply),
}

/// Waits of RFC 5321 §4.5.3.2.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub greeting: Duration,
    pub command: Duration,
    pub data_start: Duration,
    pub data_block: Duration,
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            data_start: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
        }
    }
}

/// One message to hand over.
pub struct Envelope<'a> {
    pub mail_from: &'a str,
    pub recipients: &'a [String],
    /// The message with CRLF line ends, not yet dot-stuffed.
    pub message: &'a [u8],
}

/// The outcome of a transaction: one final reply per recipient, in order.
#[derive(Debug)]
pub struct TransactionResult {
    pub recipients: Vec<Reply>,
}

/// How far a transaction got, for the result of one that was cut short.
#[derive(Default)]
struct Progress {
    /// The server accepted MAIL FROM: from here on, recipients have replies.
    mail_accepted: bool,
    /// RCPT replies read so far, in order.
    rcpt_replies: Vec<Reply>,
    /// The message and its final dot were written.
    data_sent: bool,
}

impl Progress {
    /// One reply per recipient for a transaction that failed with `err`.
    fn interrupted(&self, err: &SmtpClientError, recipients: usize) -> TransactionResult {
        let unknown = local_reply(
            451,
            "4.4.2",
            &format!(
                "{err} after the end of data: the message may have been delivered, so it is not \
                 sent to another host in this attempt (RFC 1047)"
            ),
        );
        let cut = local_reply(451, "4.4.2", &format!("{err} during the transaction"));
        let replies = (0..recipients)
            .map(|i| match self.rcpt_replies.get(i) {
                Some(refused) if !refused.is_positive() => refused.clone(),
                Some(_) if self.data_sent => unknown.clone(),
                _ => cut.clone(),
            })
            .collect();
        TransactionResult { recipients: replies }
    }
}

/// Replies longer than this are refused (RFC 5321 allows 512-byte lines).
const MAX_REPLY: usize = 64 * 1024;

/// A session with one server.
pub struct SmtpClient<S> {
    stream: S,
    buf: Vec<u8>,
    timeouts: Timeouts,
    capabilities: u32,
    max_size: usize,
    /// The server said 421: it is closing the session.
    closing: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SmtpClient<S> {
    /// Reads the greeting (220) of a freshly connected stream.
    pub async fn greet(stream: S, timeouts: Timeouts) -> Result<SmtpClient<S>, SmtpClientError> {
        let mut client = SmtpClient {
            stream,
            buf: Vec::with_capacity(1024),
            timeouts,
            capabilities: 0,
            max_size: 0,
            closing: false,
        };
        let greeting = client.reply(timeouts.greeting, "greeting").await?;
        if greeting.code != 220 {
            return Err(SmtpClientError::Refused(greeting));
        }
        Ok(client)
    }

    /// Continues a session on a new stream (after STARTTLS): no greeting.
    pub fn resume(stream: S, timeouts: Timeouts) -> SmtpClient<S> {
        SmtpClient {
            stream,
            buf: Vec::with_capacity(1024),
            timeouts,
            capabilities: 0,
            max_size: 0,
            closing: false,
        }
    }

    /// The same session on a wrapped stream (e.g. into a [`Connection`]).
    ///
    /// [`Connection`]: super::connection::Connection
    pub fn map_stream<T>(self, wrap: impl FnOnce(S) -> T) -> SmtpClient<T> {
        SmtpClient {
            stream: wrap(self.stream),
            buf: self.buf,
            timeouts: self.timeouts,
            capabilities: self.capabilities,
            max_size: self.max_size,
            closing: self.closing,
        }
    }

    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Whether the session can carry another transaction: the server has
    /// not announced that it is closing it (421).
    pub fn reusable(&self) -> bool {
        !self.closing
    }

    /// Sends STARTTLS; on 220 returns the stream for the TLS handshake
    /// (then [`SmtpClient::resume`] and EHLO again, RFC 3207 §4.2).
    pub async fn starttls(mut self) -> Result<S, SmtpClientError> {
        self.write(b"STARTTLS\r\n").await?;
        let reply = self.reply(self.timeouts.command, "STARTTLS").await?;
        if reply.code != 220 {
            return Err(SmtpClientError::Refused(reply));
        }
        // Bytes after the 220 were sent before TLS: injected, never trusted.
        if !self.buf.is_empty() {
            return Err(SmtpClientError::Protocol);
        }
        Ok(self.stream)
    }

    /// Sends EHLO (falling back to HELO) and records the extensions.
    pub async fn ehlo(&mut self, hostname: &str) -> Result<(), SmtpClientError> {
        self.write(format!("EHLO {hostname}\r\n").as_bytes()).await?;
        let (_, raw) = self.read_reply(self.timeouts.command, "EHLO").await?;
        match EhloResponse::parse(&mut raw.iter()) {
            Ok(ehlo) => {
                self.capabilities = ehlo.capabilities;
                self.max_size = ehlo.size;
                Ok(())
            }
            Err(_) => {
                self.write(format!("HELO {hostname}\r\n").as_bytes()).await?;
                let reply = self.reply(self.timeouts.command, "HELO").await?;
                if reply.code != 250 {
                    return Err(SmtpClientError::Refused(reply));
                }
                self.capabilities = 0;
                Ok(())
            }
        }
    }

    /// Whether the server offers STARTTLS (RFC 3207).
    pub fn offers_starttls(&self) -> bool {
        self.capabilities & EXT_START_TLS != 0
    }

    /// The largest message the server accepts (SIZE, RFC 1870), 0 if none given.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Runs MAIL, RCPT for every recipient, DATA. Recipients refused at
    /// RCPT keep that reply; the others get the reply to the message.
    ///
    /// An error before the server accepted MAIL is returned as is: nothing
    /// was handed over, so the caller may try another host. After that, a
    /// lost connection or a timeout ends the session but still gives a
    /// result: replies already read stand (a 550 stays a 550), the others
    /// are a local 451. After the final dot that 451 says the message may
    /// have been delivered (RFC 1047), and the caller must not send it to
    /// another host in the same attempt.
    pub async fn send(&mut self, envelope: &Envelope<'_>) -> Result<TransactionResult, SmtpClientError> {
        let mut progress = Progress::default();
        match self.transaction(envelope, &mut progress).await {
            Ok(result) => Ok(result),
            Err(err) if !progress.mail_accepted => Err(err),
            Err(err) => {
                self.closing = true;
                Ok(progress.interrupted(&err, envelope.recipients.len()))
            }
        }
    }

    async fn transaction(
        &mut self,
        envelope: &Envelope<'_>,
        progress: &mut Progress,
    ) -> Result<TransactionResult, SmtpClientError> {
        // RFC 1870: a message over the announced SIZE would only be refused.
        if self.max_size > 0 && envelope.message.len() > self.max_size {
            let text = format!(
                "the message ({} bytes) exceeds the server's size limit ({} bytes)",
                envelope.message.len(),
                self.max_size
            );
            return Ok(all(local_reply(552, "5.3.4", &text), envelope.recipients.len()));
        }
        // What the message needs of the server, from the message itself:
        // UTF-8 in the envelope or in header fields (RFC 6532) needs
        // SMTPUTF8; any 8-bit octet needs 8BITMIME (RFC 6152). Tern does
        // not re-encode a signed message to 7 bits (that would break its
        // DKIM signature), so without the extension the recipients fail
        // here. JSON sends are built 7-bit clean and never need 8BITMIME.
        let header_end = envelope
            .message
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(envelope.message.len());
        let utf8 = !envelope.mail_from.is_ascii()
            || envelope.recipients.iter().any(|r| !r.is_ascii())
            || !envelope.message[..header_end].is_ascii();
        let eight_bit = !envelope.message.is_ascii();
        if utf8 && self.capabilities & EXT_SMTP_UTF8 == 0 {
            let reply = local_reply(553, "5.6.7", "the server does not support SMTPUTF8 (RFC 6531)");
            return Ok(all(reply, envelope.recipients.len()));
        }
        if eight_bit && self.capabilities & EXT_8BIT_MIME == 0 {
            let reply = local_reply(
                554,
                "5.6.3",
                "the message has 8-bit content and the server does not support 8BITMIME (RFC 6152)",
            );
            return Ok(all(reply, envelope.recipients.len()));
        }
        let mut mail = format!("MAIL FROM:<{}>", envelope.mail_from);
        if self.capabilities & EXT_SIZE != 0 {
            mail.push_str(&format!(" SIZE={}", envelope.message.len()));
        }
        if eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        mail.push_str("\r\n");
        let pipelining = self.capabilities & EXT_PIPELINING != 0;
        let rcpts: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| format!("RCPT TO:<{r}>\r\n"))
            .collect();

        let (mail_reply, rcpt_replies, data_reply) = if pipelining {
            // RFC 2920: MAIL, every RCPT and DATA in one write; replies in order.
            let mut batch = mail.into_bytes();
            for rcpt in &rcpts {
                batch.extend_from_slice(rcpt.as_bytes());
            }
            batch.extend_from_slice(b"DATA\r\n");
            self.write(&batch).await?;
            let mail_reply = self.reply(self.timeouts.command, "MAIL").await?;
            progress.mail_accepted = mail_reply.is_positive();
            for _ in &rcpts {
                let reply = self.reply(self.timeouts.command, "RCPT").await?;
                progress.rcpt_replies.push(reply);
            }
            let data_reply = self.reply(self.timeouts.data_start, "DATA").await?;
            (mail_reply, progress.rcpt_replies.clone(), Some(data_reply))
        } else {
            self.write(mail.as_bytes()).await?;
            let mail_reply = self.reply(self.timeouts.command, "MAIL").await?;
            progress.mail_accepted = mail_reply.is_positive();
            if mail_reply.is_positive() {
                for rcpt in &rcpts {
                    self.write(rcpt.as_bytes()).await?;
                    let reply = self.reply(self.timeouts.command, "RCPT").await?;
                    progress.rcpt_replies.push(reply);
                }
            }
            let rcpt_replies = progress.rcpt_replies.clone();
            let data_reply = if rcpt_replies.iter().any(Reply::is_positive) {
                self.write(b"DATA\r\n").await?;
                Some(self.reply(self.timeouts.data_start, "DATA").await?)
            } else {
                None
            };
            (mail_reply, rcpt_replies, data_reply)
        };

        if !mail_reply.is_positive() {
            if data_reply.as_ref().is_some_and(|r| r.code == 354) {
                // Pipelined DATA was accepted although MAIL was not: abort it.
                self.write(b".\r\n").await?;
                self.reply(self.timeouts.data_end, "DATA end").await?;
            }
            self.reset_after_failure().await;
            return Ok(all(mail_reply, envelope.recipients.len()));
        }
        let final_reply = match data_reply {
            Some(reply) if reply.code == 354 => {
                if rcpt_replies.iter().any(Reply::is_positive) {
                    self.write_data(envelope.message).await?;
                    progress.data_sent = true;
                } else {
                    // Nothing to deliver: end the (pipelined) DATA empty.
                    self.write(b".\r\n").await?;
                }
                self.reply(self.timeouts.data_end, "DATA end").await?
            }
            Some(reply) => reply,
            None => local_reply(554, "5.5.1", "no valid recipients"),
        };
        let recipients = rcpt_replies
            .into_iter()
            .map(|rcpt| {
                if rcpt.is_positive() {
                    final_reply.clone()
                } else {
                    rcpt
                }
            })
            .collect();
        if !final_reply.is_positive() {
            self.reset_after_failure().await;
        }
        Ok(TransactionResult { recipients })
    }

    /// RSET, so that the session can carry the next message; an error
    /// unless the server answers 250.
    pub async fn reset(&mut self) -> Result<(), SmtpClientError> {
        self.write(b"RSET\r\n").await?;
        let reply = self.reply(self.timeouts.command, "RSET").await?;
        if reply.code != 250 {
            return Err(SmtpClientError::Refused(reply));
        }
        Ok(())
    }

    /// Ends a failed transaction; a session that cannot be reset is not
    /// used again, but the replies already read stand.
    async fn reset_after_failure(&mut self) {
        if !self.closing && self.reset().await.is_err() {
            self.closing = true;
        }
    }

    /// QUIT; errors are irrelevant by then.
    pub async fn quit(mut self) {
        if self.write(b"QUIT\r\n").await.is_ok() {
            let _ = self.reply(Duration::from_secs(5), "QUIT").await;
        }
    }

    /// The stream, for STARTTLS (after the 220 reply to it).
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Writes and flushes: a TLS stream buffers what it has not yet sent,
    /// and would otherwise keep the end of a command (or of DATA) back.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), SmtpClientError> {
        let stream = &mut self.stream;
        tokio::time::timeout(self.timeouts.command, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| SmtpClientError::Timeout("write"))??;
        Ok(())
    }

    /// Writes the message as a DATA block (see [`data_block`]).
    async fn write_data(&mut self, message: &[u8]) -> Result<(), SmtpClientError> {
        let out = data_block(message);
        let stream = &mut self.stream;
        tokio::time::timeout(self.timeouts.data_block, async {
            stream.write_all(&out).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| SmtpClientError::Timeout("data"))??;
        Ok(())
    }

    /// Reads one complete (possibly multi-line) reply: smtp-proto's parser
    /// finds its end (RFC 5321 §4.2.1) and parses it. Returns it with its
    /// raw bytes, which EHLO parses again for the extensions. Bytes after
    /// the reply (pipelined replies) stay buffered.
    async fn read_reply(
        &mut self,
        wait: Duration,
        what: &'static str,
    ) -> Result<(Response<String>, Vec<u8>), SmtpClientError> {
        tokio::time::timeout(wait, async {
            loop {
                let mut bytes = self.buf.iter();
                match ResponseReceiver::default().parse(&mut bytes) {
                    Ok(response) => {
                        let used = self.buf.len() - bytes.as_slice().len();
                        let raw: Vec<u8> = self.buf.drain(..used).collect();
                        return Ok((response, raw));
                    }
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => {}
                    Err(_) => return Err(SmtpClientError::Protocol),
                }
                if self.buf.len() > MAX_REPLY {
                    return Err(SmtpClientError::Protocol);
                }
                let mut chunk = [0u8; 4096];
                let n = self.stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(SmtpClientError::Closed);
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .map_err(|_| SmtpClientError::Timeout(what))?
    }

    async fn reply(&mut self, wait: Duration, what: &'static str) -> Result<Reply, SmtpClientError> {
        let (parsed, _) = self.read_reply(wait, what).await?;
        if parsed.code == 421 {
            self.closing = true;
        }
        let enhanced =
            (parsed.esc[0] != 0).then(|| format!("{}.{}.{}", parsed.esc[0], parsed.esc[1], parsed.esc[2]));
        Ok(Reply {
            code: parsed.code,
            enhanced,
            text: printable(parsed.message.trim()),
            local: false,
        })
    }
}

/// The message as DATA puts it on the wire: dot-stuffed (RFC 5321 §4.5.2),
/// ending in CRLF and the final dot. Whatever is stored, no CR or LF leaves
/// here except as a CRLF pair (RFC 5321 §2.3.8): a bare CR or LF becomes
/// CRLF, so a receiver that ends lines at either one cannot be shown a
/// different end of DATA than a strict one (SMTP smuggling). Defence in
/// depth: accepted messages are normalised already.
pub fn data_block(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut line_start = true;
    let mut i = 0;
    while i < message.len() {
        let b = message[i];
        match b {
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                // A CRLF pair is one line end.
                if b == b'\r' && message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                line_start = true;
            }
            _ => {
                if line_start && b == b'.' {
                    out.push(b'.');
                }
                out.push(b);
                line_start = false;
            }
        }
        i += 1;
    }
    if !line_start || out.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A server's reply text as Tern stores it: control characters (a NUL
/// would make it unstorable in PostgreSQL) become spaces, line breaks of
/// multi-line replies stay, and it is cut at 1,000 characters.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .take(1000)
        .collect()
}

fn local_reply(code: u16, esc: &str, text: &str) -> Reply {
    Reply {
        code,
        enhanced: Some(esc.into()),
        text: text.into(),
        local: true,
    }
}

fn all(reply: Reply, n: usize) -> TransactionResult {
    TransactionResult {
        recipients: vec![reply; n],
    }
}

#[cfg(test)]
mod tests {
    use super::{SmtpClient, SmtpClientError, Timeouts};
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn multiline_and_pipelined_replies_are_read_one_at_a_time() {
        let (client_end, mut server_end) = tokio::io::duplex(1024);
        server_end
            .write_all(b"220 mx ready\r\n250-a\r\n250 2.1.0 b\r\n550 5.1.1 no such user\r\n452")
            .await
            .unwrap();
        let mut client = SmtpClient::greet(client_end, Timeouts::default()).await.unwrap();
        let multiline = client.reply(Timeouts::default().command, "test").await.unwrap();
        assert_eq!(
            (multiline.code, multiline.enhanced.as_deref()),
            (250, Some("2.1.0"))
        );
        assert_eq!(multiline.text, "a\nb");
        let refused = client.reply(Timeouts::default().command, "test").await.unwrap();
        assert_eq!(refused.to_string(), "550 5.1.1 no such user");
        // An incomplete reply, then the server goes away.
        drop(server_end);
        assert!(matches!(
            client.reply(Timeouts::default().command, "test").await,
            Err(SmtpClientError::Closed)
        ));
    }

    #[test]
    fn data_blocks_carry_only_crlf_and_stuffed_dots() {
        use super::data_block;
        assert_eq!(data_block(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n".to_vec());
        assert_eq!(data_block(b"no end"), b"no end\r\n.\r\n".to_vec());
        // The smuggling payloads: a bare CR or LF around a dot.
        assert_eq!(
            data_block(b"x\r.\r\nMAIL FROM:<a@b>\r\n"),
            b"x\r\n..\r\nMAIL FROM:<a@b>\r\n.\r\n".to_vec()
        );
        assert_eq!(data_block(b"x\n.\ny\r\n"), b"x\r\n..\r\ny\r\n.\r\n".to_vec());
        let block = data_block(b"a\rb\nc\r\n\r\rd");
        let body = &block[..block.len() - 3];
        assert!(body.iter().enumerate().all(|(i, &b)| match b {
            b'\r' => body.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && body[i - 1] == b'\r',
            _ => true,
        }));
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error() {
        let (client_end, mut server_end) = tokio::io::duplex(1024);
        server_end.write_all(b"hello there\r\n").await.unwrap();
        assert!(matches!(
            SmtpClient::greet(client_end, Timeouts::default()).await,
            Err(SmtpClientError::Protocol)
        ));
    }
}
