//! Mail to a return path, a feedback-loop address or an unsubscribe
//! address: what it is (`mail::report`) and what it does to the recipient
//! it is about (`db::reports::Effect`), decided before it is stored so that
//! the copy and its effects are written in one transaction.

use mail_parser::Message;
use serde_json::json;
use uuid::Uuid;

use super::server::Context;
use crate::db;
use crate::db::reports::Effect;
use crate::domain::SuppressionReason;
use crate::mail::report::{self, BounceType, Delivery, DsnRecipient, Feedback, Original, Report};
use crate::mail::verp::VerpTarget;
use crate::webhooks::events::{AuthResult, InboundChecks};

/// What Tern does with one report.
#[derive(Debug)]
pub(super) struct Plan {
    pub server_id: Uuid,
    pub message_id: Uuid,
    pub recipient_id: Option<Uuid>,
    /// `inbound_messages.action`.
    pub action: &'static str,
    pub report: serde_json::Value,
    pub effects: Vec<Effect>,
}

/// What a return-path copy is about (from its RCPT TO).
#[derive(Debug, Clone, Copy)]
pub(super) struct About {
    pub server_id: Uuid,
    pub message_id: Uuid,
    pub recipient_id: Option<Uuid>,
    pub unsubscribe: bool,
}

/// Decides on mail to a return path or unsubscribe address.
pub(super) fn plan(ctx: &Context, about: About, message: &Message<'_>) -> Plan {
    plan_read(ctx, about, &report::read(message))
}

/// Decides on a report already read.
fn plan_read(ctx: &Context, about: About, found: &Report) -> Plan {
    let report = serde_json::to_value(found).unwrap_or_default();
    let mut plan = Plan {
        server_id: about.server_id,
        message_id: about.message_id,
        recipient_id: about.recipient_id,
        action: "unrecognized",
        report,
        effects: Vec::new(),
    };
    if about.unsubscribe {
        // Whatever it says: mail to the address is the request (RFC 2369).
        plan.action = "unsubscribe";
        plan.effects.push(unsubscribe_effect(
            &ctx.state.settings.suppression,
            Some(about.message_id),
            about.recipient_id,
            "mailto",
        ));
        return plan;
    }
    match found {
        Report::Delivery { delivery, .. } => bounces(ctx, &mut plan, delivery),
        Report::Feedback { feedback, original } => complaint(ctx, &mut plan, feedback, original),
        Report::AutoReply { .. } => plan.action = "auto_reply",
        Report::Unrecognized { .. } => {}
    }
    plan
}

/// Decides on a report sent to a feedback-loop address: the message it is
/// about is the one its quoted original names (a return path recorded by
/// the receiver, or a Message-ID Tern made). `None` when it names none of
/// Tern's messages.
pub(super) async fn plan_feedback(
    ctx: &Context,
    message: &Message<'_>,
    checks: &InboundChecks,
) -> Option<Plan> {
    let found = report::read(message);
    let original = found.original();
    let (recipient, message_id) = match original
        .return_path
        .as_deref()
        .and_then(|rp| ctx.verp.decode(rp).ok())
    {
        Some(VerpTarget::Recipient(id)) => (Some(id), None),
        Some(VerpTarget::Message(id)) => (None, Some(id)),
        _ => (None, tern_message_id(ctx, original.message_id.as_deref()?)),
    };
    let (server_id, message_id) =
        match db::inbound::return_path_owner(&ctx.state.db, recipient, message_id).await {
            Ok(Some(owner)) => owner,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(error = %err, "looking up a feedback report's message failed");
                return None;
            }
        };
    let about = About {
        server_id,
        message_id,
        recipient_id: recipient,
        unsubscribe: false,
    };
    let mut plan = plan_read(ctx, about, &found);
    // Anyone can write to a feedback address and quote a Message-ID its
    // recipients saw: only a feedback report acts there (bounces come to
    // the signed return path).
    if !matches!(found, Report::Feedback { .. }) {
        plan.effects.clear();
        plan.action = "unrecognized";
    } else if !trusted_sender(&ctx.state.settings.smtp.feedback_senders, checks) {
        plan.effects.clear();
        plan.action = "untrusted";
    }
    Some(plan)
}

/// Whether a report comes from one of `senders` (a DKIM signature of one
/// of them, or of a subdomain, verified); every report does when the list
/// is empty.
fn trusted_sender(senders: &[String], checks: &InboundChecks) -> bool {
    if senders.is_empty() {
        return true;
    }
    checks
        .dkim
        .iter()
        .filter(|d| d.result == AuthResult::Pass)
        .filter_map(|d| d.domain.as_deref())
        .any(|domain| {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            senders.iter().any(|sender| {
                let sender = sender.trim_end_matches('.').to_ascii_lowercase();
                domain == sender || domain.ends_with(&format!(".{sender}"))
            })
        })
}

/// The message id in a Message-ID Tern generated (`<uuid>@<public host>`).
fn tern_message_id(ctx: &Context, message_id: &str) -> Option<Uuid> {
    let (local, host) = message_id.trim_matches(['<', '>']).split_once('@')?;
    host.eq_ignore_ascii_case(&ctx.state.settings.public_hostname)
        .then(|| Uuid::try_parse(local).ok())
        .flatten()
}

fn bounces(ctx: &Context, plan: &mut Plan, delivery: &Delivery) {
    let mut hard = false;
    let mut soft = false;
    for recipient in delivery.recipients.iter().take(100) {
        let Some(classified) = recipient.classify() else {
            continue;
        };
        hard |= classified.bounce_type == BounceType::Hard;
        soft |= classified.bounce_type == BounceType::Soft;
        plan.effects.push(bounce_effect(ctx, plan, recipient, classified));
    }
    plan.action = if hard {
        "hard_bounce"
    } else if soft {
        "soft_bounce"
    } else {
        "delivery_report"
    };
}

fn bounce_effect(
    ctx: &Context,
    plan: &Plan,
    recipient: &DsnRecipient,
    classified: report::Classified,
) -> Effect {
    let hard = classified.bounce_type == BounceType::Hard;
    let status = recipient.status.clone();
    let code = recipient.reply_code().unwrap_or(if hard { 550 } else { 450 });
    let text = recipient.diagnostic.clone().unwrap_or_else(|| {
        format!(
            "{} ({})",
            recipient.action,
            status.as_deref().unwrap_or("no status")
        )
    });
    let reason = SuppressionReason::HardBounce;
    let suppress = classified.suppress.then_some(reason);
    Effect {
        message_id: Some(plan.message_id),
        recipient_id: plan.recipient_id,
        // Original-Recipient is the address Tern gave (when the receiver
        // kept it); Final-Recipient may be where an alias led.
        address: recipient
            .original_recipient
            .clone()
            .or_else(|| recipient.final_recipient.clone()),
        event: "bounced",
        detail: json!({
            "source": "dsn",
            "bounce_type": classified.bounce_type,
            "category": classified.category.as_str(),
            "code": code,
            "enhanced_code": status,
            "reply": text,
            "host": recipient.remote_mta,
            "remote_mta": recipient.remote_mta,
            "tls": null,
        }),
        // The message was not delivered: `failed` is final, whatever the
        // status says of the address.
        bounce: recipient.action == "failed",
        reply: text,
        suppress,
        lifetime_secs: suppress.and_then(|r| ctx.state.settings.suppression.lifetime_secs(r)),
    }
}

/// Feedback types that mean "do not mail me" (RFC 5965 §7.3): `abuse`,
/// `fraud`, `virus`, `other`. `not-spam` and `auth-failure` are kept only.
fn complaint(ctx: &Context, plan: &mut Plan, feedback: &Feedback, original: &Original) {
    if !matches!(
        feedback.feedback_type.as_str(),
        "abuse" | "fraud" | "virus" | "other"
    ) {
        plan.action = "feedback";
        return;
    }
    plan.action = "complaint";
    // The recipient: the return path named it, or the report does (the
    // original's recipient); else the message must have only one.
    let address =
        feedback
            .original_rcpt_to
            .first()
            .cloned()
            .or_else(|| match original.recipients.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            });
    let reason = SuppressionReason::Complaint;
    plan.effects.push(Effect {
        message_id: Some(plan.message_id),
        recipient_id: plan.recipient_id,
        address,
        event: "complained",
        detail: json!({
            "feedback_type": feedback.feedback_type,
            "user_agent": feedback.user_agent,
        }),
        bounce: false,
        reply: format!(
            "{} report{}",
            feedback.feedback_type,
            feedback
                .user_agent
                .as_deref()
                .map(|ua| format!(" from {ua}"))
                .unwrap_or_default()
        ),
        suppress: Some(reason),
        lifetime_secs: ctx.state.settings.suppression.lifetime_secs(reason),
    });
}

/// The effect of an unsubscribe request, for mail and for the HTTP link.
pub fn unsubscribe_effect(
    settings: &crate::config::SuppressionSettings,
    message_id: Option<Uuid>,
    recipient_id: Option<Uuid>,
    method: &str,
) -> Effect {
    let reason = SuppressionReason::Unsubscribe;
    Effect {
        message_id,
        recipient_id,
        address: None,
        event: "unsubscribed",
        detail: json!({ "method": method }),
        bounce: false,
        reply: format!("unsubscribed ({method})"),
        suppress: Some(reason),
        lifetime_secs: settings.lifetime_secs(reason),
    }
}
