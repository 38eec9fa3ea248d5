import { useMemo } from "react";
import { Link } from "react-router";
import { api, unwrap, type Schemas } from "../../api/client";
import { DailyChart, type Series } from "../../ui/chart";
import { useInterval, useLoad } from "../../ui/hooks";
import { age, Empty, ErrorNote, Loading, Page, Section } from "../../ui/parts";
import { serverPath, useServer } from "./context";

type Day = Schemas["DayStats"];

/** Above these, mailbox providers start to throttle or junk a sender. */
const BOUNCE_LIMIT = 0.02;
const COMPLAINT_LIMIT = 0.001;

const LINES: { key: "delivered" | "deferred" | "bounced" | "failed" | "accepted"; label: string; color: string }[] = [
  { key: "accepted", label: "Accepted", color: "#6e7781" },
  { key: "delivered", label: "Delivered", color: "#1a7f37" },
  { key: "deferred", label: "Deferred", color: "#bf8700" },
  { key: "bounced", label: "Bounced", color: "#cf222e" },
  { key: "failed", label: "Failed", color: "#8250df" },
];

/** Every day of the window, zero where nothing happened. */
function fill(days: Day[], from: string, to: string): Day[] {
  const byDay = new Map(days.map((d) => [d.day, d]));
  const out: Day[] = [];
  const zero = { total: 0, unique: 0, machine: 0 };
  for (let t = Date.parse(from.slice(0, 10)); t <= Date.parse(to); t += 86_400_000) {
    const day = new Date(t).toISOString().slice(0, 10);
    out.push(
      byDay.get(day) ?? {
        day,
        accepted: 0,
        delivered: 0,
        deferred: 0,
        bounced: 0,
        failed: 0,
        suppressed: 0,
        complained: 0,
        unsubscribed: 0,
        opened: zero,
        clicked: zero,
      },
    );
  }
  return out;
}

function percent(rate: number): string {
  return `${(rate * 100).toFixed(rate < 0.01 ? 2 : 1)}%`;
}

export function OverviewPage() {
  const { server } = useServer();
  const stats = useLoad(() => unwrap(api.GET("/v1/servers/{server_id}/stats", serverPath(server.id))), [server.id]);
  useInterval(stats.reload, 30_000, true);

  const days = useMemo(() => (stats.data ? fill(stats.data.days, stats.data.from, stats.data.to) : []), [stats.data]);
  const series = useMemo<Series[]>(
    () => LINES.map((l) => ({ label: l.label, color: l.color, values: days.map((d) => d[l.key]) })),
    [days],
  );
  const totals = useMemo(() => {
    const sum = (k: "accepted" | "delivered" | "bounced" | "failed" | "complained" | "deferred") =>
      days.reduce((n, d) => n + d[k], 0);
    return {
      accepted: sum("accepted"),
      delivered: sum("delivered"),
      deferred: sum("deferred"),
      bounced: sum("bounced"),
      failed: sum("failed"),
      complained: sum("complained"),
    };
  }, [days]);

  if (stats.error) return <ErrorNote error={stats.error} />;
  if (!stats.data) return <Loading what="statistics" />;

  const finished = totals.delivered + totals.bounced + totals.failed;
  const bounceRate = finished ? totals.bounced / finished : 0;
  const complaintRate = totals.delivered ? totals.complained / totals.delivered : 0;
  const queue = stats.data.queue;

  return (
    <Page title={`${server.name}: overview`} lead="The last 30 days, by UTC day; refreshed every 30 seconds.">
      <div className="tiles">
        <Tile label="Accepted" value={totals.accepted} />
        <Tile label="Delivered" value={totals.delivered} />
        <Tile label="Deferred" value={totals.deferred} />
        <Tile label="Bounced" value={totals.bounced} />
        <Tile label="Failed" value={totals.failed} />
      </div>
      <Section title="Delivery over time">
        {totals.accepted + totals.delivered + totals.deferred + totals.bounced + totals.failed === 0 ? (
          <Empty title="Nothing sent in the last 30 days.">
            Create an <Link to={`/servers/${server.id}/api-keys`}>API key</Link> and send with{" "}
            <code>POST /v1/messages</code>; see the <a href="/docs">API docs</a>.
          </Empty>
        ) : (
          <>
            <DailyChart days={days.map((d) => d.day)} series={series} title="Recipients per day by outcome" />
            <details>
              <summary>The numbers as a table</summary>
              <table>
                <thead>
                  <tr>
                    <th scope="col">Day</th>
                    {LINES.map((l) => (
                      <th scope="col" key={l.key}>
                        {l.label}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {days
                    .filter((d) => LINES.some((l) => d[l.key] > 0))
                    .map((d) => (
                      <tr key={d.day}>
                        <td>{d.day}</td>
                        {LINES.map((l) => (
                          <td key={l.key}>{d[l.key]}</td>
                        ))}
                      </tr>
                    ))}
                </tbody>
              </table>
            </details>
          </>
        )}
      </Section>
      <div className="two">
        <Section title="Reputation">
          <Rate
            label="Bounce rate"
            rate={bounceRate}
            limit={BOUNCE_LIMIT}
            of={`${totals.bounced} of ${finished} finished`}
          />
          <Rate
            label="Complaint rate"
            rate={complaintRate}
            limit={COMPLAINT_LIMIT}
            of={`${totals.complained} of ${totals.delivered} delivered`}
          />
        </Section>
        <Section title="Queue now">
          <dl className="facts">
            <dt>Queued</dt>
            <dd data-testid="queue-queued">{queue.queued}</dd>
            <dt>Deferred (waiting to retry)</dt>
            <dd>{queue.deferred}</dd>
            <dt>Oldest waiting</dt>
            <dd>{queue.oldest_accepted_at ? age(queue.oldest_accepted_at) : "nothing waits"}</dd>
          </dl>
        </Section>
      </div>
    </Page>
  );
}

function Tile({ label, value }: { label: string; value: number }) {
  return (
    <div className="tile">
      <span className="tile-value">{value.toLocaleString()}</span>
      <span className="tile-label">{label}</span>
    </div>
  );
}

function Rate(props: { label: string; rate: number; limit: number; of: string }) {
  const over = props.rate >= props.limit;
  return (
    <p className={`rate ${over ? "bad" : "good"}`}>
      <strong>{props.label}:</strong> {percent(props.rate)}{" "}
      <span className="muted">
        ({props.of}; keep it under {percent(props.limit)})
      </span>
      {over && <span className="badge bad">over the threshold</span>}
    </p>
  );
}
