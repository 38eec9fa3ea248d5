import { useState } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../../api/client";
import { useAction, useLoad } from "../../ui/hooks";
import { Badge, ErrorNote, Loading, Page, Section, Time } from "../../ui/parts";
import { useServer } from "./context";
import { InboundSection, TrackingSection } from "./message-extras";
import { HtmlPreview } from "./preview";

function detailText(detail: unknown): string {
  if (!detail || typeof detail !== "object") return "";
  const d = detail as Record<string, unknown>;
  const reply = d.reply as { code?: number; message?: string } | undefined;
  const parts = [
    reply ? `${reply.code ?? ""} ${reply.message ?? ""}`.trim() : undefined,
    typeof d.host === "string" ? `host ${d.host}` : undefined,
    typeof d.diagnostic === "string" ? d.diagnostic : undefined,
    typeof d.reason === "string" ? d.reason : undefined,
    typeof d.url === "string" ? d.url : undefined,
  ].filter(Boolean);
  if (parts.length) return parts.join(" · ");
  return Object.entries(d)
    .filter(([, v]) => v !== null && ["string", "number", "boolean"].includes(typeof v))
    .map(([k, v]) => `${k.replace(/_/g, " ")}: ${String(v)}`)
    .join(" · ");
}

export function MessagePage() {
  const messageId = useParams().messageId ?? "";
  // One component per message: what was loaded or allowed (the source,
  // remote images) for one message never carries over to the next.
  return <MessageView key={messageId} messageId={messageId} />;
}

function MessageView({ messageId }: { messageId: string }) {
  const { server } = useServer();
  const list = `/servers/${server.id}/messages`;
  const path = { params: { path: { server_id: server.id, message_id: messageId } } };
  const message = useLoad(
    () =>
      unwrap(
        api.GET("/v1/servers/{server_id}/messages/{message_id}", {
          params: { ...path.params, query: { include: "body" } },
        }),
      ),
    [server.id, messageId],
  );
  const [source, setSource] = useState<string>();
  const loadSource = useAction(async () => {
    setSource(
      await unwrap(api.GET("/v1/servers/{server_id}/messages/{message_id}/source", { ...path, parseAs: "text" })),
    );
  });
  const [tab, setTab] = useState<"html" | "text">("html");

  if (message.error) {
    return (
      <Page title="Message">
        <ErrorNote error={message.error} />
        <Link to={list}>All messages</Link>
      </Page>
    );
  }
  const m = message.data;
  if (!m) return <Loading what="the message" />;
  const addresses = new Map(m.recipients.map((r) => [r.id, r.address]));
  const body = m.body;

  return (
    <Page
      title={m.subject || "(no subject)"}
      lead={
        <>
          <Link to={list}>All messages</Link> · {m.direction === "incoming" ? "Received" : "Sent"}{" "}
          <Time at={m.created_at} />
        </>
      }
    >
      <Section title="Summary">
        <dl className="facts">
          <dt>From</dt>
          <dd>{m.from}</dd>
          <dt>Envelope sender</dt>
          <dd>
            <code>{m.mail_from || "<>"}</code>
          </dd>
          <dt>Message-ID</dt>
          <dd>
            <code>{m.message_id}</code>
          </dd>
          {m.tag && (
            <>
              <dt>Tag</dt>
              <dd>{m.tag}</dd>
            </>
          )}
          <dt>Size</dt>
          <dd>{m.size.toLocaleString()} bytes</dd>
          {Object.entries(m.metadata).map(([k, v]) => (
            <Meta key={k} name={k} value={v} />
          ))}
        </dl>
      </Section>
      {m.recipients.length > 0 && (
        <Section title="Recipients">
          <table>
            <thead>
              <tr>
                <th scope="col">Address</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last reply</th>
                <th scope="col">Next attempt</th>
              </tr>
            </thead>
            <tbody>
              {m.recipients.map((r) => (
                <tr key={r.id}>
                  <td>{r.address}</td>
                  <td>{r.kind}</td>
                  <td>
                    <Badge value={r.status} />
                  </td>
                  <td>{r.attempts}</td>
                  <td className="wrap">
                    {r.last_reply ?? ""}
                    {r.last_host && (
                      <span className="muted">
                        {" "}
                        ({r.last_host}
                        {r.last_tls ? ", TLS" : ""})
                      </span>
                    )}
                  </td>
                  <td>{r.next_attempt_at ? <Time at={r.next_attempt_at} /> : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
      {m.inbound && <InboundSection inbound={m.inbound} serverId={server.id} />}
      {m.tracking && (m.tracking.opens > 0 || m.tracking.clicks > 0 || m.tracking.links.length > 0) && (
        <TrackingSection tracking={m.tracking} />
      )}
      {m.events.length > 0 && (
        <Section title="Timeline">
          <ol className="timeline" aria-label="Events, oldest first">
            {m.events.map((e: Schemas["Event"]) => (
              <li key={e.id}>
                <Time at={e.created_at} /> <Badge value={e.kind} />{" "}
                {e.recipient_id && <span>{addresses.get(e.recipient_id) ?? e.recipient_id}</span>}{" "}
                <span className="muted wrap">{detailText(e.detail)}</span>
              </li>
            ))}
          </ol>
        </Section>
      )}
      <Section title="Content">
        <div role="group" aria-label="Show the body as" className="tabs">
          <button type="button" aria-pressed={tab === "html"} onClick={() => setTab("html")}>
            HTML
          </button>
          <button type="button" aria-pressed={tab === "text"} onClick={() => setTab("text")}>
            Text
          </button>
        </div>
        <div>
          {tab === "html" &&
            (body?.html ? <HtmlPreview html={body.html} /> : <p className="muted">This message has no HTML body.</p>)}
          {tab === "text" &&
            (body?.text ? (
              <pre className="source" tabIndex={0} aria-label="Text body">
                {body.text}
              </pre>
            ) : (
              <p className="muted">This message has no text body.</p>
            ))}
        </div>
      </Section>
      <Section title="Headers">
        <table className="headers">
          <tbody>
            {m.headers.map((h, i) => (
              <tr key={i}>
                <th scope="row">{h.name}</th>
                <td className="wrap">{h.value}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section
        title="Source"
        actions={
          source === undefined && (
            <button type="button" onClick={() => void loadSource.run()} disabled={loadSource.busy}>
              Show source
            </button>
          )
        }
      >
        <ErrorNote error={loadSource.error} />
        {source !== undefined ? (
          <pre className="source" data-testid="source" tabIndex={0} aria-label="Message source">
            {source}
          </pre>
        ) : (
          <p className="muted">
            {m.direction === "incoming"
              ? "The message as received, with Tern's Authentication-Results."
              : "The message as stored and sent, DKIM signature included."}
          </p>
        )}
      </Section>
    </Page>
  );
}

function Meta({ name, value }: { name: string; value: string }) {
  return (
    <>
      <dt>
        Metadata <code>{name}</code>
      </dt>
      <dd>{value}</dd>
    </>
  );
}
