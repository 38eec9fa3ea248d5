//! The end of DATA: check the message, apply the routes' policies, add
//! Tern's trace fields, and store a copy per route (or return-path target)
//! with its `inbound.received` delivery, all before answering `250`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use mail_parser::MessageParser;
use uuid::Uuid;

use super::checks::{self, Checked, Client};
use super::payload;
use super::recipient::Target;
use super::reply::Reply;
use super::report::{self, About, Plan};
use super::session::{Session, Transaction};
use super::spam::{self, Scan};
use crate::db::inbound::{NewInbound, NewInboundDelivery};
use crate::mail::received;
use crate::webhooks::events::{InboundEnvelope, InboundFormat, InboundReceivedData};

/// Header fields a received message may have.
const MAX_HEADER_FIELDS: usize = 1000;
/// DKIM signatures (and ARC sets) a received message may have.
const MAX_SIGNATURES: usize = 10;

/// One stored copy before it is written.
struct Copy {
    id: Uuid,
    target: Target,
    rcpt_to: Vec<String>,
    /// The delivery's id, endpoint, event id and payload (JSON text).
    payload: Option<(Uuid, Uuid, String, String)>,
    /// Return-path mail: what it is and does.
    plan: Option<Plan>,
}

/// Checks and stores a message; the reply to its DATA.
pub(super) async fn receive(session: &mut Session<'_>, transaction: Transaction, raw: Vec<u8>) -> Reply {
    let ctx = session.ctx;
    if raw.contains(&0) {
        return Reply::new(550, "5.6.0", "NUL bytes are not allowed in a message");
    }
    let Some(message) = MessageParser::default().parse_headers(&raw[..]) else {
        return Reply::new(550, "5.6.0", "The message has no header");
    };
    if message.headers().len() > MAX_HEADER_FIELDS {
        return Reply::new(552, "5.3.4", "Too many header fields");
    }
    // Each signature costs a DNS lookup and a verification.
    for name in ["DKIM-Signature", "ARC-Seal", "ARC-Message-Signature"] {
        let count = message
            .headers()
            .iter()
            .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
            .count();
        if count > MAX_SIGNATURES {
            return Reply::owned(550, "5.7.1", format!("More than {MAX_SIGNATURES} {name} fields"));
        }
    }
    let helo = session.helo.as_deref().unwrap_or_default();
    let client = Client {
        ip: session.peer.ip(),
        helo,
        mail_from: &transaction.mail_from,
    };
    let rcpt_to: Vec<String> = transaction.recipients.iter().map(|(a, _)| a.clone()).collect();
    let envelope = spam::Envelope {
        ip: client.ip,
        helo,
        mail_from: &transaction.mail_from,
        rcpt_to: &rcpt_to,
    };
    let scanning = async {
        match &ctx.scanner {
            Some(scanner) => scanner.scan(&envelope, &raw).await,
            None => Scan::UNKNOWN,
        }
    };
    let (
        Checked {
            mut checks,
            header,
            dmarc_reject,
        },
        scan,
    ) = tokio::join!(
        checks::run(
            &ctx.authenticator,
            &ctx.hostname,
            &mut session.checks,
            &client,
            &raw
        ),
        scanning
    );
    checks.spam = scan.verdict;
    checks.spam_score = scan.score;
    let routes = transaction.recipients.iter().filter_map(|(_, t)| match t {
        Target::Route(route) => Some(route),
        Target::ReturnPath { .. } | Target::Feedback => None,
    });
    // One reply answers every recipient (all of one server: see
    // `session`): the strictest of their routes decides; each copy is
    // flagged by its own route.
    let mut flagged_routes = Vec::new();
    for route in routes {
        let mut flagged = false;
        if dmarc_reject {
            if route.dmarc_reject == "reject" {
                return Reply::new(550, "5.7.1", "Rejected by the sender domain's DMARC policy");
            }
            flagged = true;
        }
        if let (Some(threshold), Some(score)) = (route.spam_threshold, scan.score)
            && score >= f64::from(threshold)
        {
            if route.spam_action == "reject" {
                return Reply::new(550, "5.7.1", "Message refused as spam");
            }
            flagged = true;
        }
        if flagged {
            flagged_routes.push(route.route_id);
        }
    }
    let flagged_for = |target: &Target| match target {
        Target::Route(route) => flagged_routes.contains(&route.route_id),
        Target::ReturnPath { .. } | Target::Feedback => false,
    };

    let id = Uuid::now_v7();
    let trace = format!(
        "{}Received: from {} ({}[{}])\r\n\tby {} (Tern) with {} id {};\r\n\t{}\r\n",
        header,
        sanitize(helo),
        checks
            .client_name
            .as_deref()
            .map(|n| format!("{} ", sanitize(n)))
            .unwrap_or_default(),
        session.peer.ip(),
        ctx.hostname,
        if session.tls { "ESMTPS" } else { "ESMTP" },
        id.simple(),
        Utc::now().to_rfc2822(),
    );
    let stored = received::with_trace(&raw, &message, &ctx.hostname, &trace);
    drop(message);
    let Some(message) = MessageParser::default().parse(&stored[..]) else {
        return Reply::new(550, "5.6.0", "The message cannot be read");
    };

    // One copy per route or return-path target, with its recipients.
    let mut copies: BTreeMap<(u8, Uuid, Option<Uuid>), Copy> = BTreeMap::new();
    for (address, target) in &transaction.recipients {
        let copy = copies.entry(target.key()).or_insert_with(|| Copy {
            id: Uuid::now_v7(),
            target: target.clone(),
            rcpt_to: Vec::new(),
            payload: None,
            plan: None,
        });
        copy.rcpt_to.push(address.clone());
    }
    // The first copy takes the id in the Received field.
    if let Some(first) = copies.values_mut().next() {
        first.id = id;
    }
    // Reports: what each is about, and what it does.
    let mut unmatched = Vec::new();
    for (key, copy) in copies.iter_mut() {
        match &copy.target {
            Target::ReturnPath {
                server_id,
                message_id,
                recipient_id,
                unsubscribe,
            } => {
                let about = About {
                    server_id: *server_id,
                    message_id: *message_id,
                    recipient_id: *recipient_id,
                    unsubscribe: *unsubscribe,
                };
                copy.plan = Some(report::plan(ctx, about, &message));
            }
            Target::Feedback => match report::plan_feedback(ctx, &message, &checks).await {
                Some(plan) => copy.plan = Some(plan),
                None => unmatched.push(*key),
            },
            Target::Route(_) => {}
        }
    }
    // A feedback report about no message of Tern's is accepted (refusing
    // it would only make the provider retry) and dropped.
    for key in unmatched {
        copies.remove(&key);
        tracing::info!(message = %id, "a feedback report names no message of ours: dropped");
    }
    let now = Utc::now();
    for copy in copies.values_mut() {
        let Target::Route(route) = &copy.target else {
            continue;
        };
        let Some(endpoint) = route.endpoint_id else {
            continue;
        };
        let format = if route.format == "raw" {
            InboundFormat::Raw
        } else {
            InboundFormat::Parsed
        };
        let data = InboundReceivedData {
            message_id: copy.id,
            server_id: route.server_id,
            route_id: route.route_id,
            envelope: InboundEnvelope {
                mail_from: transaction.mail_from.clone(),
                rcpt_to: copy.rcpt_to.clone(),
                client_ip: session.peer.ip().to_string(),
                helo: helo.to_string(),
                tls: session.tls,
            },
            checks: checks.clone(),
            flagged: flagged_for(&copy.target),
            format,
            raw: None,
            parsed: None,
            size: 0,
        };
        let max_attachment = ctx.state.settings.smtp.max_payload_attachment_bytes;
        match payload::event(data, &stored, &message, max_attachment, now) {
            Ok(event) => {
                let event_id = format!("evt_{}", Uuid::now_v7().simple());
                copy.payload = Some((Uuid::now_v7(), endpoint, event_id, event));
            }
            Err(err) => {
                tracing::error!(error = %err, "building an inbound payload failed");
                return Reply::TEMPORARY;
            }
        }
    }

    let checks_json = match serde_json::to_value(&checks) {
        Ok(json) => json,
        Err(_) => return Reply::TEMPORARY,
    };
    let message_id_header = message
        .message_id()
        .map(|id| format!("<{id}>"))
        .unwrap_or_else(|| format!("<{}@{}>", id.simple(), ctx.hostname));
    let from_header = message
        .header_raw("From")
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    // Decoded text may hold a NUL (`=00`), which PostgreSQL's text refuses.
    let subject = message.subject().unwrap_or_default().replace('\0', "");
    let size = stored.len();
    let stored: Arc<[u8]> = stored.into();
    let rows: Vec<NewInbound> = copies
        .into_values()
        .filter_map(|copy| {
            let flagged = flagged_for(&copy.target);
            let (server_id, domain_id, kind, route_id, action, about_recipient_id, about_message_id) =
                match (&copy.target, &copy.plan) {
                    (_, Some(plan)) => (
                        plan.server_id,
                        None,
                        "return_path",
                        None,
                        plan.action.to_string(),
                        plan.recipient_id,
                        Some(plan.message_id),
                    ),
                    (Target::Route(route), None) => (
                        route.server_id,
                        Some(route.domain_id),
                        "route",
                        Some(route.route_id),
                        route.action.clone(),
                        None,
                        None,
                    ),
                    // Every report has its plan (unmatched feedback went).
                    (Target::ReturnPath { .. } | Target::Feedback, None) => return None,
                };
            let (report, effects) = match copy.plan {
                Some(plan) => (Some(plan.report), plan.effects),
                None => (None, Vec::new()),
            };
            Some(NewInbound {
                id: copy.id,
                server_id,
                domain_id,
                kind,
                route_id,
                action,
                about_recipient_id,
                about_message_id,
                message_id_header: message_id_header.clone(),
                mail_from: transaction.mail_from.clone(),
                from_header: from_header.clone(),
                subject: subject.clone(),
                raw: stored.clone(),
                client_ip: session.peer.ip(),
                helo: helo.to_string(),
                tls: session.tls,
                rcpt_to: copy.rcpt_to,
                checks: checks_json.clone(),
                flagged,
                delivery: copy
                    .payload
                    .map(|(id, endpoint_id, event_id, payload)| NewInboundDelivery {
                        id,
                        endpoint_id,
                        event_id,
                        payload,
                    }),
                report,
                effects,
            })
        })
        .collect();
    let copies = rows.len();
    match ctx.store.store(rows).await {
        Ok(()) => {
            tracing::info!(message = %id, copies, size, "message received");
            Reply::owned(250, "2.0.0", format!("OK queued as {}", id.simple()))
        }
        Err(err) => {
            tracing::error!(error = %err, "storing a received message failed");
            Reply::TEMPORARY
        }
    }
}

/// A name for a trace field: printable ASCII without parentheses.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '(' && c != ')' {
                c
            } else {
                '?'
            }
        })
        .take(255)
        .collect()
}
