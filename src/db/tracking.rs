//! Opens and clicks: what a token's recipient and link lead to, the
//! `opened`/`clicked` events (published by the outbox trigger), and the
//! numbers made of them.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// What a tracked hit is about.
#[derive(Debug, Clone)]
pub struct Target {
    pub message_id: Uuid,
    /// The link's URL (clicks; `None` when the message has no such link).
    pub url: Option<String>,
    /// When the recipient's message was delivered (`sent`), if it was.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The recipient's message, the link's URL and the delivery time.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn target(pool: &PgPool, recipient: Uuid, link: Option<i32>) -> sqlx::Result<Option<Target>> {
    sqlx::query_as!(
        Target,
        r#"SELECT r.message_id,
                  (SELECT m.links[$2 + 1] FROM messages m WHERE m.id = r.message_id) AS url,
                  (SELECT min(e.created_at) FROM message_events e
                   WHERE e.message_id = r.message_id AND e.recipient_id = r.id AND e.kind = 'sent')
                      AS delivered_at
           FROM recipients r WHERE r.id = $1"#,
        recipient,
        link
    )
    .fetch_optional(pool)
    .await
}

/// Records an `opened` or `clicked` event, unless the same recipient's
/// same kind of hit (on the same link) was recorded less than
/// `repeat_secs` ago: a reload, or someone fetching a forwarded message's
/// URLs in a loop, makes one event, not a flood of them and of webhooks.
/// `first` says whether it is the recipient's first of its kind. Returns
/// whether an event was recorded.
#[tracing::instrument(level = "debug", skip(pool, detail))]
pub async fn record(
    pool: &PgPool,
    message: Uuid,
    recipient: Uuid,
    kind: &str,
    detail: &serde_json::Value,
    repeat_secs: f64,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        r#"WITH earlier AS (
              SELECT e.created_at, e.detail -> 'link' AS link FROM message_events e
              WHERE e.message_id = $1 AND e.recipient_id = $2 AND e.kind = $3
           )
           INSERT INTO message_events (message_id, recipient_id, kind, detail)
           SELECT $1, $2, $3, $4 || jsonb_build_object('first', NOT EXISTS (SELECT 1 FROM earlier))
           WHERE NOT EXISTS (SELECT 1 FROM earlier
                             WHERE created_at > now() - make_interval(secs => $5)
                               AND link IS NOT DISTINCT FROM $4 -> 'link')"#,
        message,
        recipient,
        kind,
        detail,
        repeat_secs
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A message's opens and clicks.
#[derive(Debug, Clone, Default)]
pub struct MessageStats {
    pub opens: i64,
    pub opens_machine: i64,
    pub first_open_at: Option<DateTime<Utc>>,
    pub last_open_at: Option<DateTime<Utc>>,
    pub clicks: i64,
    pub clicks_machine: i64,
    pub links: Vec<LinkStats>,
}

#[derive(Debug, Clone)]
pub struct LinkStats {
    pub link: i16,
    pub url: String,
    pub clicks: i64,
    pub clicks_machine: i64,
    pub first_click_at: Option<DateTime<Utc>>,
    pub last_click_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn message_stats(pool: &PgPool, message: Uuid) -> sqlx::Result<MessageStats> {
    let opens = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE kind = 'opened') AS "opens!",
                  count(*) FILTER (WHERE kind = 'opened' AND (detail ->> 'machine')::boolean) AS "opens_machine!",
                  min(created_at) FILTER (WHERE kind = 'opened') AS first_open_at,
                  max(created_at) FILTER (WHERE kind = 'opened') AS last_open_at,
                  count(*) FILTER (WHERE kind = 'clicked') AS "clicks!",
                  count(*) FILTER (WHERE kind = 'clicked' AND (detail ->> 'machine')::boolean) AS "clicks_machine!"
           FROM message_events WHERE message_id = $1 AND kind IN ('opened', 'clicked')"#,
        message
    )
    .fetch_one(pool)
    .await?;
    let links = sqlx::query_as!(
        LinkStats,
        r#"SELECT (l.n - 1)::smallint AS "link!", l.url AS "url!",
                  count(e.id) AS "clicks!",
                  count(e.id) FILTER (WHERE (e.detail ->> 'machine')::boolean) AS "clicks_machine!",
                  min(e.created_at) AS first_click_at, max(e.created_at) AS last_click_at
           FROM messages m
           CROSS JOIN LATERAL unnest(m.links) WITH ORDINALITY AS l(url, n)
           LEFT JOIN message_events e ON e.message_id = m.id AND e.kind = 'clicked'
                AND (e.detail ->> 'link')::int = l.n - 1
           WHERE m.id = $1
           GROUP BY l.n, l.url ORDER BY l.n"#,
        message
    )
    .fetch_all(pool)
    .await?;
    Ok(MessageStats {
        opens: opens.opens,
        opens_machine: opens.opens_machine,
        first_open_at: opens.first_open_at,
        last_open_at: opens.last_open_at,
        clicks: opens.clicks,
        clicks_machine: opens.clicks_machine,
        links,
    })
}

/// One day of a server's numbers.
#[derive(Debug, Clone)]
pub struct DayStats {
    pub day: NaiveDate,
    /// Recipients accepted (queued or held).
    pub accepted: i64,
    pub delivered: i64,
    pub deferred: i64,
    pub bounced: i64,
    pub failed: i64,
    pub suppressed: i64,
    pub complained: i64,
    pub unsubscribed: i64,
    pub opened: i64,
    /// Recipients with a human (not machine-flagged) open that day.
    pub opened_unique: i64,
    pub opened_machine: i64,
    pub clicked: i64,
    pub clicked_unique: i64,
    pub clicked_machine: i64,
}

/// A server's events per UTC day in `[from, to)`.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn server_days(
    pool: &PgPool,
    server: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<DayStats>> {
    sqlx::query_as!(
        DayStats,
        r#"SELECT (e.created_at AT TIME ZONE 'UTC')::date AS "day!",
                  count(*) FILTER (WHERE e.kind IN ('queued', 'held')) AS "accepted!",
                  count(*) FILTER (WHERE e.kind = 'sent') AS "delivered!",
                  count(*) FILTER (WHERE e.kind = 'deferred') AS "deferred!",
                  count(*) FILTER (WHERE e.kind = 'bounced') AS "bounced!",
                  count(*) FILTER (WHERE e.kind = 'failed') AS "failed!",
                  count(*) FILTER (WHERE e.kind = 'suppressed') AS "suppressed!",
                  count(*) FILTER (WHERE e.kind = 'complained') AS "complained!",
                  count(*) FILTER (WHERE e.kind = 'unsubscribed') AS "unsubscribed!",
                  count(*) FILTER (WHERE e.kind = 'opened') AS "opened!",
                  count(DISTINCT e.recipient_id) FILTER (WHERE e.kind = 'opened'
                      AND NOT coalesce((e.detail ->> 'machine')::boolean, false)) AS "opened_unique!",
                  count(*) FILTER (WHERE e.kind = 'opened' AND (e.detail ->> 'machine')::boolean)
                      AS "opened_machine!",
                  count(*) FILTER (WHERE e.kind = 'clicked') AS "clicked!",
                  count(DISTINCT e.recipient_id) FILTER (WHERE e.kind = 'clicked'
                      AND NOT coalesce((e.detail ->> 'machine')::boolean, false)) AS "clicked_unique!",
                  count(*) FILTER (WHERE e.kind = 'clicked' AND (e.detail ->> 'machine')::boolean)
                      AS "clicked_machine!"
           FROM message_events e
           JOIN messages m ON m.id = e.message_id
           WHERE m.server_id = $1 AND e.created_at >= $2 AND e.created_at < $3
           GROUP BY 1 ORDER BY 1"#,
        server,
        from,
        to
    )
    .fetch_all(pool)
    .await
}

/// A server's tracking settings, as a send reads them.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub opens: bool,
    pub clicks: bool,
    /// The verified tracking host, if any.
    pub host: Option<String>,
}

/// Sets or clears a server's tracking host (unverified until checked).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn set_host(pool: &PgPool, server: Uuid, host: Option<&str>) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE servers SET tracking_host = $2,
             tracking_verified_at = CASE WHEN tracking_host IS NOT DISTINCT FROM $2 THEN tracking_verified_at END,
             tracking_checked_at = CASE WHEN tracking_host IS NOT DISTINCT FROM $2 THEN tracking_checked_at END,
             updated_at = now()
         WHERE id = $1",
        server,
        host
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Records a check of the tracking host's CNAME.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn checked(pool: &PgPool, server: Uuid, host: &str, ok: bool) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE servers SET tracking_checked_at = now(),
             tracking_verified_at = CASE WHEN $3 THEN coalesce(tracking_verified_at, now()) END
         WHERE id = $1 AND tracking_host = $2",
        server,
        host,
        ok
    )
    .execute(pool)
    .await
    .map(|_| ())
}
