import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../../api/client";
import { useAction, useCursorPages, useLoad } from "../../ui/hooks";
import { Badge, Empty, ErrorNote, Field, Loading, Page, Pager, SecretOnce, Section, Time } from "../../ui/parts";
import { AttemptTable } from "./attempts";
import { useServer } from "./context";
import { EventTypePicker } from "./event-types";

export function WebhookPage() {
  const { server, canWrite } = useServer();
  const list = `/servers/${server.id}/webhooks`;
  const webhookId = useParams().webhookId ?? "";
  const path = { params: { path: { webhook_id: webhookId } } };
  const hook = useLoad(() => unwrap(api.GET("/v1/webhooks/{webhook_id}", path)), [webhookId]);
  const [secret, setSecret] = useState<string>();
  const [tested, setTested] = useState<Schemas["WebhookAttempt"]>();
  const [round, setRound] = useState(0);
  const navigate = useNavigate();

  const rotate = useAction(async () => {
    const next = await unwrap(api.POST("/v1/webhooks/{webhook_id}/rotate-secret", path));
    setSecret(next.secret ?? undefined);
    hook.reload();
  });
  const test = useAction(async () => {
    setTested(await unwrap(api.POST("/v1/webhooks/{webhook_id}/test", path)));
    setRound((r) => r + 1);
  });
  const toggle = useAction(async (enabled: boolean) => {
    await unwrap(
      api.PATCH("/v1/webhooks/{webhook_id}", {
        ...path,
        body: enabled
          ? { enabled, replay_missed: window.confirm("Also send again what it missed while off?") }
          : { enabled },
      }),
    );
    hook.reload();
  });
  const remove = useAction(async () => {
    if (!window.confirm("Delete this endpoint and its delivery log?")) return;
    await unwrap(api.DELETE("/v1/webhooks/{webhook_id}", path));
    navigate(list);
  });

  if (hook.error) {
    return (
      <Page title="Webhook">
        <ErrorNote error={hook.error} />
        <Link to={list}>All webhooks</Link>
      </Page>
    );
  }
  const h = hook.data;
  if (!h) return <Loading what="the webhook" />;

  return (
    <Page
      title={h.description || h.url}
      lead={
        <>
          <Link to={list}>All webhooks</Link> · <code>{h.url}</code>
        </>
      }
      actions={
        canWrite && (
          <>
            <button type="button" onClick={() => void test.run()} disabled={test.busy}>
              Send a test event
            </button>
            <button type="button" onClick={() => void toggle.run(!h.enabled)}>
              {h.enabled ? "Turn off" : "Turn on"}
            </button>
          </>
        )
      }
    >
      <ErrorNote error={test.error ?? toggle.error} />
      {tested && (
        <p role="status" className="notice">
          Test event: {tested.http_status ? `HTTP ${tested.http_status}` : tested.error} in {tested.latency_ms} ms.
        </p>
      )}
      {secret && <SecretOnce title="New signing secret" secret={secret} onDone={() => setSecret(undefined)} />}
      <Section title="Endpoint">
        <dl className="facts">
          <dt>State</dt>
          <dd>
            {h.enabled ? <Badge value="active" /> : <Badge value={h.disabled_reason ?? "disabled"} />}
            {h.disabled_at && (
              <>
                {" "}
                since <Time at={h.disabled_at} />
              </>
            )}
          </dd>
          {h.failing_since && (
            <>
              <dt>Failing since</dt>
              <dd>
                <Time at={h.failing_since} />
              </dd>
            </>
          )}
          <dt>Signing</dt>
          <dd>
            {h.signing}
            {h.public_key && (
              <>
                {" "}
                · public key <code>{h.public_key}</code>
              </>
            )}
          </dd>
          {h.previous_secret_expires_at && (
            <>
              <dt>Previous secret signs until</dt>
              <dd>
                <Time at={h.previous_secret_expires_at} />
              </dd>
            </>
          )}
          <dt>Events</dt>
          <dd>{h.event_types.length ? h.event_types.join(", ") : "all"}</dd>
        </dl>
        {canWrite && <Edit hook={h} onSaved={hook.reload} />}
      </Section>
      <Deliveries webhookId={webhookId} canWrite={canWrite} round={round} />
      {canWrite && (
        <Section title="Keys and history">
          <div className="row">
            <button type="button" onClick={() => void rotate.run()} disabled={rotate.busy}>
              Rotate the signing secret
            </button>
            <span className="muted">The old secret keeps signing alongside the new one for the overlap period.</span>
          </div>
          <Replay webhookId={webhookId} />
          <button type="button" className="danger" onClick={() => void remove.run()}>
            Delete endpoint
          </button>
          <ErrorNote error={rotate.error ?? remove.error} />
        </Section>
      )}
    </Page>
  );
}

function Edit({ hook, onSaved }: { hook: Schemas["Webhook"]; onSaved: () => void }) {
  const [url, setUrl] = useState(hook.url);
  const [description, setDescription] = useState(hook.description);
  const [events, setEvents] = useState<Schemas["EventType"][]>(hook.event_types);
  const save = useAction(async () => {
    await unwrap(
      api.PATCH("/v1/webhooks/{webhook_id}", {
        params: { path: { webhook_id: hook.id } },
        body: { url, description, event_types: events },
      }),
    );
    onSaved();
  });
  return (
    <details>
      <summary>Edit</summary>
      <form
        className="stack"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <Field label="URL">
          {(id) => <input id={id} type="url" required value={url} onChange={(e) => setUrl(e.target.value)} />}
        </Field>
        <Field label="Description">
          {(id) => (
            <input id={id} maxLength={200} value={description} onChange={(e) => setDescription(e.target.value)} />
          )}
        </Field>
        <EventTypePicker value={events} onChange={setEvents} />
        <button type="submit" className="primary" disabled={save.busy}>
          Save
        </button>
        <ErrorNote error={save.error} />
      </form>
    </details>
  );
}

function Replay({ webhookId }: { webhookId: string }) {
  const [since, setSince] = useState("");
  const [result, setResult] = useState<Schemas["WebhookReplay"]>();
  const replay = useAction(async () => {
    setResult(
      await unwrap(
        api.POST("/v1/webhooks/{webhook_id}/replay", {
          params: { path: { webhook_id: webhookId }, query: { since: new Date(since).toISOString() } },
        }),
      ),
    );
  });
  return (
    <form
      className="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        void replay.run();
      }}
    >
      <Field label="Send again every event since">
        {(id) => (
          <input id={id} type="datetime-local" required value={since} onChange={(e) => setSince(e.target.value)} />
        )}
      </Field>
      <button type="submit" disabled={replay.busy}>
        Replay
      </button>
      {result && (
        <span role="status">
          {result.queued} events queued
          {result.next_since && (
            <>
              {" "}
              (more from <Time at={result.next_since} />)
            </>
          )}
          .
        </span>
      )}
      <ErrorNote error={replay.error} />
    </form>
  );
}

function Deliveries({ webhookId, canWrite, round }: { webhookId: string; canWrite: boolean; round: number }) {
  const { cursor, pager } = useCursorPages();
  const log = useLoad(
    () =>
      unwrap(
        api.GET("/v1/webhooks/{webhook_id}/deliveries", {
          params: { path: { webhook_id: webhookId }, query: { cursor, limit: 25 } },
        }),
      ),
    [webhookId, cursor, round],
  );
  const retry = useAction(async (deliveryId: string) => {
    await unwrap(
      api.POST("/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", {
        params: { path: { webhook_id: webhookId, delivery_id: deliveryId } },
      }),
    );
    log.reload();
  });
  return (
    <Section
      title="Delivery log"
      actions={
        <button type="button" onClick={log.reload}>
          Refresh
        </button>
      }
    >
      <ErrorNote error={log.error ?? retry.error} />
      {log.data && log.data.data.length === 0 && (
        <Empty title="Nothing delivered yet.">Events appear here as Tern sends them; send a test event to try.</Empty>
      )}
      {log.data && log.data.data.length > 0 && (
        <AttemptTable
          attempts={log.data.data}
          showEvent
          onRetry={canWrite ? (id) => void retry.run(id) : undefined}
          retrying={retry.busy}
        />
      )}
      <Pager {...pager(log.data?.next_cursor)} />
    </Section>
  );
}
