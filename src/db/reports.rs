//! What a bounce, complaint or unsubscribe does to the recipient it is
//! about: the event (and its webhook deliveries, by trigger), a hard
//! bounce's status change, the suppression entry. One statement, run in
//! the caller's transaction (with the stored report, for mail).

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::SuppressionReason;

/// One consequence of a report, for one recipient.
#[derive(Debug, Clone)]
pub struct Effect {
    /// The message the report is about (`None`: the recipient's).
    pub message_id: Option<Uuid>,
    /// The recipient, when the return path named it; else it is found by
    /// `address`, or is the message's only recipient.
    pub recipient_id: Option<Uuid>,
    pub address: Option<String>,
    /// `bounced`, `complained` or `unsubscribed`.
    pub event: &'static str,
    /// The event's detail (`report_id`, `attempt` and `suppressed` are added).
    pub detail: serde_json::Value,
    /// A hard bounce: a `sent` recipient becomes `bounced`.
    pub bounce: bool,
    /// The receiver's words, for the recipient's last reply and the entry.
    pub reply: String,
    pub suppress: Option<SuppressionReason>,
    /// The entry's lifetime in seconds (none: for ever).
    pub lifetime_secs: Option<f64>,
}

/// What applying an effect found and did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Applied {
    pub recipient_id: Option<Uuid>,
    pub server_id: Option<Uuid>,
    pub bounced: bool,
    pub event: bool,
}

/// Applies one effect. Complaints and unsubscribes make one event per
/// recipient however often they are reported, bounces one per status; suppression entries follow
/// the same rule as an import (the longer-lived entry stays).
#[tracing::instrument(level = "debug", skip(conn, effect), fields(event = effect.event))]
pub async fn apply(
    conn: &mut PgConnection,
    report_id: Option<Uuid>,
    effect: &Effect,
) -> sqlx::Result<Applied> {
    let row = sqlx::query!(
        r#"WITH candidates AS (
              SELECT r.id, r.message_id, r.address, r.status, r.attempts, m.server_id
              FROM recipients r JOIN messages m ON m.id = r.message_id
              WHERE r.message_id = coalesce($1, (SELECT message_id FROM recipients WHERE id = $2))
                AND m.direction = 'outgoing'
                AND ($2::uuid IS NULL OR r.id = $2)
                AND ($2::uuid IS NOT NULL OR $3::text IS NULL OR tern_fold(r.address) = tern_fold($3))
              LIMIT 2
           ), one AS (
              SELECT * FROM candidates WHERE (SELECT count(*) FROM candidates) = 1
           ), bounced AS (
              UPDATE recipients r SET status = 'bounced', last_reply = $7, updated_at = now()
              FROM one WHERE r.id = one.id AND $6 AND one.status = 'sent'
              RETURNING r.id
           ), suppressed AS (
              INSERT INTO suppressions AS s (server_id, address, reason, source_message_id, detail, expires_at)
              SELECT one.server_id, tern_fold(one.address), $8, one.message_id, left($7, 1000),
                     now() + make_interval(secs => $9)
              FROM one WHERE $8::text IS NOT NULL
              ON CONFLICT (server_id, address) DO UPDATE
              SET reason = EXCLUDED.reason, source_message_id = EXCLUDED.source_message_id,
                  detail = EXCLUDED.detail, expires_at = EXCLUDED.expires_at, updated_at = now(),
                  created_at = CASE WHEN s.expires_at <= now() THEN now() ELSE s.created_at END
              WHERE s.expires_at IS NOT NULL
                AND (s.expires_at <= now() OR EXCLUDED.expires_at IS NULL OR EXCLUDED.expires_at > s.expires_at)
           ), event AS (
              INSERT INTO message_events (message_id, recipient_id, kind, detail)
              SELECT one.message_id, one.id, $4,
                     $5 || jsonb_build_object('attempt', one.attempts, 'suppressed', $8::text IS NOT NULL,
                                              'report_id', $10::uuid)
              FROM one
              -- Once per recipient: a complaint or unsubscribe however often
              -- reported, a bounce once per report status (a DSN sent
              -- twice, after a lost 250, is one bounce).
              WHERE NOT EXISTS (SELECT 1 FROM message_events e
                                WHERE e.message_id = one.message_id AND e.recipient_id = one.id
                                  AND e.kind = $4
                                  AND ($4 <> 'bounced'
                                       OR (e.detail ->> 'source' = 'dsn'
                                           AND e.detail ->> 'bounce_type' = $5 ->> 'bounce_type'
                                           AND e.detail ->> 'enhanced_code'
                                               IS NOT DISTINCT FROM $5 ->> 'enhanced_code')))
              RETURNING 1
           )
           SELECT (SELECT id FROM one) AS recipient_id, (SELECT server_id FROM one) AS server_id,
                  EXISTS (SELECT 1 FROM bounced) AS "bounced!", EXISTS (SELECT 1 FROM event) AS "event!""#,
        effect.message_id,
        effect.recipient_id,
        effect.address.as_deref(),
        effect.event,
        effect.detail,
        effect.bounce,
        effect.reply.as_str(),
        effect.suppress.map(SuppressionReason::as_str),
        effect.lifetime_secs,
        report_id
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Applied {
        recipient_id: row.recipient_id,
        server_id: row.server_id,
        bounced: row.bounced,
        event: row.event,
    })
}
