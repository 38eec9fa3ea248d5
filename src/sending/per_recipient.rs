//! What a message with one recipient can carry of that recipient's own:
//! `List-Unsubscribe` URIs, and tracked links and an open pixel. One
//! message is signed once for all its recipients, so these need a message
//! per recipient: asked for on a message with several, they are refused;
//! as a server's default, such messages go without.

use uuid::Uuid;

use super::SendError;
use crate::db::api_keys::SendLookup;
use crate::domain::Invalid;
use crate::mail::build::Composition;
use crate::mail::verp::VerpTarget;
use crate::state::AppState;
use crate::tracking::rewrite::{self, Plan};
use crate::tracking::token::Tokens;

/// A server's defaults for what a send does not say.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub list_unsubscribe: bool,
    pub track_opens: bool,
    pub track_clicks: bool,
    /// The verified tracking host.
    pub tracking_host: Option<String>,
}

impl Defaults {
    pub fn of(lookup: &SendLookup) -> Defaults {
        Defaults {
            list_unsubscribe: lookup.list_unsubscribe,
            track_opens: lookup.track_opens,
            track_clicks: lookup.track_clicks,
            tracking_host: lookup.tracking_host.clone(),
        }
    }
}

/// The one recipient, or why there is none to personalise for.
fn only(
    recipients: &[Uuid],
    asked: bool,
    code: &'static str,
    field: &str,
) -> Result<Option<Uuid>, SendError> {
    match recipients {
        [recipient] => Ok(Some(*recipient)),
        _ if asked => Err(SendError::Invalid(
            Invalid::new(
                code,
                format!(
                    "`{field}` needs a message with exactly one recipient: send one message per recipient"
                ),
            )
            .field(field),
        )),
        _ => Ok(None),
    }
}

/// The `List-Unsubscribe` URIs (RFC 2369: the one-click URL of RFC 8058,
/// then a `mailto:`) for a message's only recipient, when asked for (or
/// the server's default) and the message has none of its own.
pub fn unsubscribe_uris(
    state: &AppState,
    asked: Option<bool>,
    server_default: bool,
    has_own: bool,
    recipients: &[Uuid],
) -> Result<Option<(String, String)>, SendError> {
    if !asked.unwrap_or(server_default) || has_own {
        return Ok(None);
    }
    let Some(recipient) = only(
        recipients,
        asked == Some(true),
        "unsubscribe_needs_one_recipient",
        "unsubscribe",
    )?
    else {
        return Ok(None);
    };
    let target = VerpTarget::Unsubscribe(recipient);
    let settings = &state.settings;
    let url = format!(
        "https://{}/u/{}",
        settings.public_hostname,
        state.verp.token(target)
    );
    let mailto = state.verp.return_path(target, &settings.return_path_target());
    Ok(Some((url, format!("mailto:{mailto}"))))
}

/// How to track one message's HTML, decided before it is built.
pub struct TrackingPlan {
    base: String,
    opens: bool,
    clicks: bool,
    skip: Vec<String>,
    tokens: Tokens,
    recipient: Uuid,
}

/// Opens and clicks, as asked for (or the server's defaults), for a
/// message with HTML and one recipient.
pub fn tracking_plan(
    state: &AppState,
    defaults: &Defaults,
    asked: (Option<bool>, Option<bool>),
    has_html: bool,
    recipients: &[Uuid],
) -> Result<Option<TrackingPlan>, SendError> {
    let opens = asked.0.unwrap_or(defaults.track_opens);
    let clicks = asked.1.unwrap_or(defaults.track_clicks);
    if !(opens || clicks) {
        return Ok(None);
    }
    let explicit = asked.0 == Some(true) || asked.1 == Some(true);
    let Some(recipient) = only(recipients, explicit, "tracking_needs_one_recipient", "track")? else {
        return Ok(None);
    };
    if !has_html {
        return Ok(None);
    }
    let public = &state.settings.public_hostname;
    Ok(Some(TrackingPlan {
        base: format!("https://{}", defaults.tracking_host.as_deref().unwrap_or(public)),
        opens,
        clicks,
        // The unsubscribe link stays as it is.
        skip: vec![format!("https://{public}/u/")],
        tokens: state.tracking.clone(),
        recipient,
    }))
}

impl TrackingPlan {
    /// Rewrites the HTML part; returns the tracked links' URLs. A document
    /// lol_html cannot rewrite is sent as it is, untracked.
    pub fn apply(&self, content: &mut Composition) -> Vec<String> {
        let Some(html) = &content.html else {
            return Vec::new();
        };
        let plan = Plan {
            base: &self.base,
            opens: self.opens,
            clicks: self.clicks,
            skip: &self.skip,
            tokens: &self.tokens,
            recipient: self.recipient,
        };
        match rewrite::rewrite(html, &plan) {
            Ok(rewritten) => {
                content.html = Some(rewritten.html);
                rewritten.links
            }
            Err(err) => {
                tracing::warn!(error = %err, "tracking left out: the HTML could not be rewritten");
                Vec::new()
            }
        }
    }
}
