//! One SMTP session (RFC 5321 server side): the command state machine.
//! Commands are parsed with smtp-proto; replies are buffered and written
//! when the client has nothing more pipelined (RFC 2920).

use std::net::SocketAddr;
use std::time::Duration;

use smtp_proto::{Error as ParseError, Request};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::message;
use super::recipient::{self, Target};
use super::reply::{Reply, write_multiline};
use super::server::Context;
use super::wire::{self, Data, Line};

/// What a session knows between commands.
pub struct Session<'c> {
    pub(super) ctx: &'c Context,
    pub(super) peer: SocketAddr,
    pub(super) helo: Option<String>,
    pub(super) tls: bool,
    /// Check results that hold for the whole session.
    pub(super) checks: super::checks::SessionChecks,
    transaction: Option<Transaction>,
    transactions: u32,
    errors: u32,
}

/// MAIL FROM up to the end of DATA.
pub(super) struct Transaction {
    pub mail_from: String,
    /// Accepted recipients (as given) and where each goes.
    pub recipients: Vec<(String, Target)>,
}

/// How a run of the session over one stream ended.
pub enum Ending<S> {
    Closed,
    /// The client asked for TLS: the stream, for the handshake.
    StartTls(S),
}

/// What to do after a command.
enum Step {
    Continue,
    Close,
    StartTls,
}

impl<'c> Session<'c> {
    pub fn new(ctx: &'c Context, peer: SocketAddr) -> Session<'c> {
        Session {
            ctx,
            peer,
            helo: None,
            tls: false,
            checks: Default::default(),
            transaction: None,
            transactions: 0,
            errors: 0,
        }
    }

    /// After a TLS handshake: the client starts over with EHLO (RFC 3207).
    pub fn secured(&mut self) {
        self.tls = true;
        self.helo = None;
        self.transaction = None;
    }

    /// Serves commands on `io` until the client quits, the session fails, or
    /// STARTTLS hands the stream back.
    pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: S,
        greeting: Option<Reply>,
    ) -> std::io::Result<Ending<S>> {
        let settings = &self.ctx.state.settings.smtp;
        let command_timeout = Duration::from_secs(settings.command_timeout_secs);
        let mut reader = BufReader::new(io);
        let mut out = Vec::new();
        if let Some(greeting) = greeting {
            greeting.write_to(&mut out);
        }
        loop {
            if reader.buffer().is_empty() && !out.is_empty() {
                reader.get_mut().write_all(&out).await?;
                reader.get_mut().flush().await?;
                out.clear();
            }
            let line = match tokio::time::timeout(
                command_timeout,
                wire::read_line(&mut reader, settings.max_command_bytes),
            )
            .await
            {
                Err(_) => {
                    Reply::new(421, "4.4.2", "Timeout, closing connection").write_to(&mut out);
                    break;
                }
                Ok(line) => line?,
            };
            let step = match line {
                Line::Closed => return Ok(Ending::Closed),
                Line::TooLong => {
                    self.reply(&mut out, Reply::new(500, "5.5.6", "Line too long"));
                    Step::Continue
                }
                Line::Complete(line) => self.command(&line, &mut reader, &mut out).await?,
            };
            match step {
                Step::Continue => {}
                Step::Close => break,
                Step::StartTls => {
                    reader.get_mut().write_all(&out).await?;
                    reader.get_mut().flush().await?;
                    // Whatever the client pipelined after STARTTLS was sent
                    // in clear: it is dropped with the buffer (CVE-2011-0411).
                    return Ok(Ending::StartTls(reader.into_inner()));
                }
            }
            if self.errors >= settings.max_errors {
                Reply::new(421, "4.7.0", "Too many errors, closing connection").write_to(&mut out);
                break;
            }
        }
        let io = reader.get_mut();
        io.write_all(&out).await?;
        io.flush().await?;
        let _ = io.shutdown().await;
        Ok(Ending::Closed)
    }

    fn reply(&mut self, out: &mut Vec<u8>, reply: Reply) {
        if reply.is_error() {
            self.errors += 1;
        }
        reply.write_to(out);
    }

    async fn command<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        line: &[u8],
        reader: &mut BufReader<S>,
        out: &mut Vec<u8>,
    ) -> std::io::Result<Step> {
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request,
            Err(err) => {
                self.reply(out, parse_error(&err));
                return Ok(Step::Continue);
            }
        };
        let settings = &self.ctx.state.settings.smtp;
        let reply = match request {
            Request::Ehlo { host } => {
                self.helo = Some(host.into_owned());
                self.transaction = None;
                let mut lines = vec![
                    format!("{} Hello {}", self.ctx.hostname, self.peer.ip()),
                    "PIPELINING".to_string(),
                    format!("SIZE {}", settings.max_message_bytes),
                    "8BITMIME".to_string(),
                    "SMTPUTF8".to_string(),
                    "ENHANCEDSTATUSCODES".to_string(),
                ];
                if self.ctx.tls.is_some() && !self.tls {
                    lines.push("STARTTLS".to_string());
                }
                write_multiline(out, 250, &lines);
                return Ok(Step::Continue);
            }
            Request::Helo { host } => {
                self.helo = Some(host.into_owned());
                self.transaction = None;
                Reply::owned(250, "2.0.0", self.ctx.hostname.clone())
            }
            Request::Mail { from } => {
                if self.helo.is_none() {
                    Reply::new(503, "5.5.1", "Say EHLO first")
                } else if self.transaction.is_some() {
                    Reply::new(503, "5.5.1", "Nested MAIL command")
                } else if self.transactions >= settings.max_transactions {
                    Reply::new(
                        421,
                        "4.7.0",
                        "Too many messages in one session, closing connection",
                    )
                    .write_to(out);
                    return Ok(Step::Close);
                } else if from.size > settings.max_message_bytes {
                    Reply::new(552, "5.3.4", "Message size exceeds the limit")
                } else if from.address.len() > 320 {
                    Reply::new(501, "5.1.7", "Sender address too long")
                } else {
                    self.transaction = Some(Transaction {
                        mail_from: from.address.into_owned(),
                        recipients: Vec::new(),
                    });
                    Reply::new(250, "2.1.0", "Sender OK")
                }
            }
            Request::Rcpt { to } => self.rcpt(&to.address).await,
            Request::Data => return self.data(reader, out).await,
            Request::Bdat { .. } => Reply::new(502, "5.5.1", "CHUNKING is not offered"),
            Request::StartTls => {
                if self.tls || self.helo.is_none() {
                    Reply::BAD_SEQUENCE
                } else if self.ctx.tls.is_none() {
                    Reply::new(502, "5.5.1", "STARTTLS is not offered")
                } else {
                    Reply::new(220, "2.0.0", "Ready to start TLS").write_to(out);
                    return Ok(Step::StartTls);
                }
            }
            Request::Rset => {
                self.transaction = None;
                Reply::OK
            }
            Request::Noop { .. } => Reply::OK,
            Request::Quit => {
                Reply::new(221, "2.0.0", "Bye").write_to(out);
                return Ok(Step::Close);
            }
            Request::Vrfy { .. } => Reply::new(252, "2.5.0", "Cannot VRFY user, but will take a message"),
            Request::Help { .. } => Reply::new(214, "2.0.0", "See RFC 5321"),
            Request::Expn { .. }
            | Request::Auth { .. }
            | Request::Lhlo { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => Reply::new(502, "5.5.1", "Command not implemented"),
        };
        self.reply(out, reply);
        Ok(Step::Continue)
    }

    async fn rcpt(&mut self, address: &str) -> Reply {
        let max = self.ctx.state.settings.smtp.max_recipients;
        let Some(transaction) = &self.transaction else {
            return Reply::new(503, "5.5.1", "Need MAIL before RCPT");
        };
        if transaction.recipients.len() >= max {
            return Reply::new(452, "4.5.3", "Too many recipients");
        }
        if transaction
            .recipients
            .iter()
            .any(|(a, _)| a.eq_ignore_ascii_case(address))
        {
            return Reply::new(250, "2.1.5", "Recipient OK");
        }
        match recipient::accept(self.ctx, address).await {
            Ok(target) => {
                let Some(transaction) = &mut self.transaction else {
                    return Reply::BAD_SEQUENCE;
                };
                // One server's mail per transaction: one DATA reply answers
                // every recipient, so another tenant's policy must not decide
                // it. The client sends the rest in another transaction.
                if let Some((_, first)) = transaction.recipients.first()
                    && first.server() != target.server()
                {
                    return Reply::new(
                        452,
                        "4.5.3",
                        "Send mail for this recipient in another transaction",
                    );
                }
                let known = transaction
                    .recipients
                    .iter()
                    .any(|(_, t)| t.key() == target.key());
                if !known && copies(&transaction.recipients) >= MAX_COPIES {
                    return Reply::new(452, "4.5.3", "Too many destinations, send the rest later");
                }
                transaction.recipients.push((address.to_string(), target));
                Reply::new(250, "2.1.5", "Recipient OK")
            }
            Err(reply) => reply,
        }
    }

    async fn data<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<S>,
        out: &mut Vec<u8>,
    ) -> std::io::Result<Step> {
        let settings = &self.ctx.state.settings.smtp;
        match &self.transaction {
            None => {
                self.reply(out, Reply::new(503, "5.5.1", "Need MAIL before DATA"));
                return Ok(Step::Continue);
            }
            Some(t) if t.recipients.is_empty() => {
                self.reply(out, Reply::new(554, "5.5.1", "No valid recipients"));
                return Ok(Step::Continue);
            }
            Some(_) => {}
        }
        Reply::new(354, "", "End data with <CR><LF>.<CR><LF>").write_to(out);
        reader.get_mut().write_all(out).await?;
        reader.get_mut().flush().await?;
        out.clear();
        let read = wire::read_data(reader, settings.max_message_bytes, settings.max_line_bytes);
        let data = match tokio::time::timeout(Duration::from_secs(settings.data_timeout_secs), read).await {
            Err(_) => {
                Reply::new(421, "4.4.2", "Timeout, closing connection").write_to(out);
                return Ok(Step::Close);
            }
            Ok(data) => data?,
        };
        let Some(transaction) = self.transaction.take() else {
            return Ok(Step::Close);
        };
        let reply = match data {
            Data::Closed => return Ok(Step::Close),
            Data::BareNewline => {
                Reply::new(550, "5.6.0", "Bare CR or LF in the message, closing connection").write_to(out);
                return Ok(Step::Close);
            }
            Data::TooBig => Reply::new(552, "5.3.4", "Message size exceeds the limit"),
            Data::LineTooLong => Reply::owned(
                550,
                "5.6.0",
                format!(
                    "A line of the message is longer than {} bytes",
                    settings.max_line_bytes
                ),
            ),
            Data::Message(raw) => {
                self.transactions += 1;
                message::receive(self, transaction, raw).await
            }
        };
        self.reply(out, reply);
        Ok(Step::Continue)
    }
}

/// Copies one message may make (one per route or return-path target): each
/// holds the message and its payload in memory until it is stored.
const MAX_COPIES: usize = 10;

fn copies(recipients: &[(String, Target)]) -> usize {
    let mut keys: Vec<_> = recipients.iter().map(|(_, t)| t.key()).collect();
    keys.sort();
    keys.dedup();
    keys.len()
}

/// The reply to a command smtp-proto could not parse.
fn parse_error(err: &ParseError) -> Reply {
    match err {
        ParseError::UnknownCommand => Reply::new(500, "5.5.2", "Command not recognized"),
        ParseError::InvalidSenderAddress => Reply::new(501, "5.1.7", "Bad sender address syntax"),
        ParseError::InvalidRecipientAddress => Reply::new(501, "5.1.3", "Bad recipient address syntax"),
        ParseError::UnsupportedParameter { .. } => Reply::new(555, "5.5.4", "Parameter not supported"),
        ParseError::InvalidParameter { .. } | ParseError::SyntaxError { .. } => {
            Reply::new(501, "5.5.4", "Syntax error in parameters")
        }
        _ => Reply::new(500, "5.5.2", "Syntax error"),
    }
}
