import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router";
import { api, unwrap, type Schemas } from "../../api/client";
import { useCursorPages, useInterval, useLoad } from "../../ui/hooks";
import { Badge, Empty, ErrorNote, Field, Loading, Page, Pager, Time } from "../../ui/parts";
import { useServer } from "./context";

const STATUSES: Schemas["RecipientStatus"][] = [
  "queued",
  "held",
  "sent",
  "deferred",
  "bounced",
  "failed",
  "suppressed",
];
const FILTERS = ["recipient", "status", "tag", "direction", "since", "until"] as const;
type Filter = (typeof FILTERS)[number];

/** `datetime-local` values are local times; the API takes RFC 3339. */
function toInstant(local: string): string | undefined {
  if (!local) return undefined;
  const t = new Date(local);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

export function MessagesPage() {
  const { server } = useServer();
  const [search, setSearch] = useSearchParams();
  const { cursor, reset: resetPages, pager } = useCursorPages(search.toString());
  const [live, setLive] = useState(true);
  const value = (f: Filter) => search.get(f) ?? "";

  const page = useLoad(
    () =>
      unwrap(
        api.GET("/v1/servers/{server_id}/messages", {
          params: {
            path: { server_id: server.id },
            query: {
              recipient: value("recipient") || undefined,
              status: (value("status") || undefined) as Schemas["RecipientStatus"] | undefined,
              tag: value("tag") || undefined,
              direction: (value("direction") || undefined) as Schemas["Direction"] | undefined,
              since: toInstant(value("since")),
              until: toInstant(value("until")),
              cursor,
              limit: 25,
            },
          },
        }),
      ),
    [server.id, search.toString(), cursor],
  );
  // Live refresh on the first page only: later pages would shift under the reader.
  useInterval(page.reload, 10_000, live && !cursor);

  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const next = new URLSearchParams();
    for (const f of FILTERS) {
      const v = String(form.get(f) ?? "").trim();
      if (v) next.set(f, v);
    }
    resetPages();
    setSearch(next);
  };

  const filtered = FILTERS.some((f) => value(f));

  return (
    <Page
      title="Messages"
      actions={
        <label className="check">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.target.checked)} /> Live refresh
        </label>
      }
    >
      <form className="filters" onSubmit={submit} role="search" aria-label="Filter messages" key={search.toString()}>
        <Field label="Recipient">
          {(id) => <input id={id} name="recipient" type="search" defaultValue={value("recipient")} maxLength={254} />}
        </Field>
        <Field label="Status">
          {(id) => (
            <select id={id} name="status" defaultValue={value("status")}>
              <option value="">any</option>
              {STATUSES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Tag">{(id) => <input id={id} name="tag" defaultValue={value("tag")} maxLength={100} />}</Field>
        <Field label="Direction">
          {(id) => (
            <select id={id} name="direction" defaultValue={value("direction")}>
              <option value="">both</option>
              <option value="outgoing">sent</option>
              <option value="incoming">received</option>
            </select>
          )}
        </Field>
        <Field label="From">
          {(id) => <input id={id} name="since" type="datetime-local" defaultValue={value("since")} />}
        </Field>
        <Field label="Until">
          {(id) => <input id={id} name="until" type="datetime-local" defaultValue={value("until")} />}
        </Field>
        <div className="filter-buttons">
          <button type="submit" className="primary">
            Search
          </button>
          {filtered && (
            <button
              type="button"
              onClick={() => {
                resetPages();
                setSearch(new URLSearchParams());
              }}
            >
              Clear
            </button>
          )}
        </div>
      </form>
      <ErrorNote error={page.error} />
      {page.loading && !page.data && <Loading what="messages" />}
      {page.data && page.data.data.length === 0 && (
        <Empty title={filtered ? "No message matches these filters." : "No messages yet."}>
          {filtered ? (
            "Widen the time range or clear a filter."
          ) : (
            <>
              Send one with an <Link to={`/servers/${server.id}/api-keys`}>API key</Link> and{" "}
              <code>POST /v1/messages</code>.
            </>
          )}
        </Empty>
      )}
      {page.data && page.data.data.length > 0 && (
        <table className="messages">
          <thead>
            <tr>
              <th scope="col">Subject</th>
              <th scope="col">Recipients</th>
              <th scope="col">From</th>
              <th scope="col">Tag</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {page.data.data.map((m) => (
              <tr key={m.id}>
                <td>
                  <Link to={m.id}>{m.subject || "(no subject)"}</Link>
                  {m.direction === "incoming" && <span className="badge plain">received</span>}
                </td>
                <td>
                  <ul className="plain">
                    {m.recipients.map((r) => (
                      <li key={r.id}>
                        {r.address} <Badge value={r.status} />
                      </li>
                    ))}
                  </ul>
                </td>
                <td>{m.from}</td>
                <td>{m.tag ?? ""}</td>
                <td>
                  <Time at={m.created_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager {...pager(page.data?.next_cursor)} />
    </Page>
  );
}
