//! RCPT TO: which addresses Tern takes mail for. Only a route's address or
//! a signed return path is accepted; everything else is refused in the
//! dialogue, so Tern never relays and never bounces what it accepted.

use uuid::Uuid;

use super::reply::Reply;
use super::server::Context;
use crate::db;
use crate::db::routes::{Lookup, RouteMatch};
use crate::domain::DomainName;
use crate::mail::verp::{PREFIX, UNSUBSCRIBE_PREFIX, VerpTarget};

/// Where an accepted recipient's copy goes.
#[derive(Debug, Clone)]
pub enum Target {
    Route(RouteMatch),
    /// A bounce or feedback report for a message this server sent, or mail
    /// to a recipient's unsubscribe address.
    ReturnPath {
        server_id: Uuid,
        message_id: Uuid,
        recipient_id: Option<Uuid>,
        unsubscribe: bool,
    },
    /// A configured feedback-loop address (`smtp.feedback_addresses`):
    /// the report itself says which message it is about.
    Feedback,
}

impl Target {
    /// The server the copy is stored for; a feedback report's is found at
    /// the end of DATA.
    pub fn server(&self) -> Option<Uuid> {
        match self {
            Target::Route(route) => Some(route.server_id),
            Target::ReturnPath { server_id, .. } => Some(*server_id),
            Target::Feedback => None,
        }
    }

    /// Copies are made per route, per return-path target, and one for
    /// feedback addresses.
    pub fn key(&self) -> (u8, Uuid, Option<Uuid>) {
        match self {
            Target::Route(route) => (0, route.route_id, None),
            Target::ReturnPath {
                message_id,
                recipient_id,
                unsubscribe,
                ..
            } => (1 + u8::from(*unsubscribe), *message_id, *recipient_id),
            Target::Feedback => (3, Uuid::nil(), None),
        }
    }
}

/// An address split for matching: lower case, `+tag` removed for `base`.
#[derive(Debug, PartialEq, Eq)]
pub struct Parts {
    pub local: String,
    pub base: String,
    pub domain: String,
}

/// Splits a recipient address, refusing what only relays use: source
/// routes (`@a,@b:u@c`), `%` and `!` hacks, quoted local parts, several
/// `@`, address literals, and anything that is not a plain dot-atom.
pub fn split(address: &str) -> Option<Parts> {
    let (local, domain) = address.rsplit_once('@')?;
    let atext = |c: char| c.is_alphanumeric() || "#$&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    if local.is_empty()
        || local.len() > 64
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || !local.chars().all(|c| c == '.' || atext(c))
    {
        return None;
    }
    let domain = DomainName::parse(domain).ok()?;
    let local = local.to_lowercase();
    let base = match local.split_once('+') {
        Some((base, _)) if !base.is_empty() => base.to_string(),
        _ => local.clone(),
    };
    Some(Parts {
        local,
        base,
        domain: domain.as_str().to_string(),
    })
}

/// Decides on one RCPT TO.
pub async fn accept(ctx: &Context, address: &str) -> Result<Target, Reply> {
    let Some(parts) = split(address) else {
        return Err(Reply::new(550, "5.7.1", "Relaying denied"));
    };
    let feedback = &ctx.state.settings.smtp.feedback_addresses;
    if feedback
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&format!("{}@{}", parts.local, parts.domain)))
    {
        return Ok(Target::Feedback);
    }
    if (parts.local.starts_with(PREFIX) || parts.local.starts_with(UNSUBSCRIBE_PREFIX))
        && is_return_path_host(ctx, &parts.domain).await?
    {
        return return_path(ctx, &parts).await;
    }
    let found = ctx
        .routes
        .lookup(&ctx.state.db, &parts.domain, &parts.local, &parts.base)
        .await;
    match found {
        Ok(Lookup::Route(route)) if route.action == "reject" => {
            let code = route
                .reject_code
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(550);
            let text = route.reject_message.as_deref().unwrap_or("Mailbox unavailable");
            Err(Reply::owned(
                code,
                if code >= 500 { "5.7.1" } else { "4.7.1" },
                text.to_string(),
            ))
        }
        Ok(Lookup::Route(route)) => Ok(Target::Route(route)),
        Ok(Lookup::UnknownUser) => Err(Reply::new(550, "5.1.1", "No such user here")),
        Ok(Lookup::UnknownDomain) => Err(Reply::new(550, "5.7.1", "Relaying denied")),
        Err(err) => {
            tracing::error!(error = %err, "looking up a route failed");
            Err(Reply::TEMPORARY)
        }
    }
}

/// Whether `domain` is Tern's return-path target or a domain's
/// return-path host.
async fn is_return_path_host(ctx: &Context, domain: &str) -> Result<bool, Reply> {
    if domain == ctx.return_path_target {
        return Ok(true);
    }
    db::inbound::is_return_path_host(&ctx.state.db, domain)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "looking up a return-path host failed");
            Reply::TEMPORARY
        })
}

/// A return path: its token must be ours (the HMAC).
async fn return_path(ctx: &Context, parts: &Parts) -> Result<Target, Reply> {
    let refused = Reply::new(550, "5.1.1", "No such user here");
    let target = ctx.verp.decode(&parts.local).map_err(|_| refused.clone())?;
    let (recipient, message) = match target {
        VerpTarget::Recipient(id) | VerpTarget::Unsubscribe(id) => (Some(id), None),
        VerpTarget::Message(id) => (None, Some(id)),
    };
    match db::inbound::return_path_owner(&ctx.state.db, recipient, message).await {
        Ok(Some((server_id, message_id))) => Ok(Target::ReturnPath {
            server_id,
            message_id,
            recipient_id: recipient,
            unsubscribe: matches!(target, VerpTarget::Unsubscribe(_)),
        }),
        Ok(None) => Err(refused),
        Err(err) => {
            tracing::error!(error = %err, "looking up a return path failed");
            Err(Reply::TEMPORARY)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_split_and_lose_their_tag() {
        let parts = split("Support+Ticket-7@Example.ORG").unwrap();
        assert_eq!(parts.local, "support+ticket-7");
        assert_eq!(parts.base, "support");
        assert_eq!(parts.domain, "example.org");
    }

    #[test]
    fn relay_tricks_are_refused() {
        for address in [
            "user%other.org@example.org",
            "other.org!user@example.org",
            "\"user@other.org\"@example.org",
            "@a.org,@b.org:user@example.org",
            "user@[127.0.0.1]",
            "user@other.org@example.org",
            ".user@example.org",
            "us..er@example.org",
            "user",
            "",
        ] {
            assert_eq!(split(address), None, "{address}");
        }
    }
}
