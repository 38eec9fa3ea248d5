import { useState, type FormEvent } from "react";
import { api, unwrap, type Schemas } from "../../api/client";
import { useAction, useCursorPages, useLoad } from "../../ui/hooks";
import { Badge, CopyButton, Empty, ErrorNote, Field, Loading, Page, Pager, SecretOnce, Section } from "../../ui/parts";
import { AttemptTable } from "./attempts";
import { serverPath, useServer } from "./context";

export function RoutesPage() {
  const { server, canWrite } = useServer();
  const routes = useLoad(() => unwrap(api.GET("/v1/servers/{server_id}/routes", serverPath(server.id))), [server.id]);
  const [created, setCreated] = useState<Schemas["RouteWithSecret"]>();

  return (
    <Page
      title="Inbound routes"
      lead="Mail Tern receives for these addresses is POSTed to your endpoint, held for the API, or refused."
    >
      {created?.secret && (
        <SecretOnce title="Route signing secret" secret={created.secret} onDone={() => setCreated(undefined)} />
      )}
      <ErrorNote error={routes.error} />
      {routes.loading && !routes.data && <Loading what="routes" />}
      {routes.data && routes.data.data.length === 0 && (
        <Empty title="No inbound routes yet.">
          {canWrite
            ? "Add an address on one of this server's domains (support@…, or *@ for all) to receive mail for it."
            : "An admin of this organization can add one."}
        </Empty>
      )}
      {routes.data?.data.map((r) => (
        <RouteCard key={r.id} route={r} canWrite={canWrite} onChange={routes.reload} />
      ))}
      {canWrite && (
        <NewRoute
          serverId={server.id}
          onCreated={(r) => {
            setCreated(r);
            routes.reload();
          }}
        />
      )}
    </Page>
  );
}

function RouteCard(props: { route: Schemas["Route"]; canWrite: boolean; onChange: () => void }) {
  const r = props.route;
  const path = { params: { path: { route_id: r.id } } };
  const [open, setOpen] = useState(false);
  const { cursor, pager } = useCursorPages();
  const log = useLoad(
    () =>
      open
        ? unwrap(
            api.GET("/v1/routes/{route_id}/deliveries", {
              params: { path: { route_id: r.id }, query: { cursor, limit: 25 } },
            }),
          )
        : Promise.resolve(undefined),
    [r.id, open, cursor],
  );
  const retry = useAction(async (deliveryId: string) => {
    await unwrap(
      api.POST("/v1/routes/{route_id}/deliveries/{route_delivery_id}/retry", {
        params: { path: { route_id: r.id, route_delivery_id: deliveryId } },
      }),
    );
    log.reload();
  });
  const remove = useAction(async () => {
    if (!window.confirm(`Delete the route for ${r.address}? Mail to it will be refused.`)) return;
    await unwrap(api.DELETE("/v1/routes/{route_id}", path));
    props.onChange();
  });
  const mx = `${r.mx_record.priority} ${r.mx_record.value}`;
  return (
    <Section
      title={r.address}
      actions={
        props.canWrite && (
          <button type="button" className="danger" onClick={() => void remove.run()}>
            Delete
          </button>
        )
      }
    >
      <dl className="facts">
        <dt>Action</dt>
        <dd>
          <Badge value={r.action} /> {r.action === "endpoint" && <code>{r.url}</code>}
          {r.action === "reject" && (
            <code>
              {r.reject_code} {r.reject_message}
            </code>
          )}
        </dd>
        {r.action === "endpoint" && (
          <>
            <dt>Payload</dt>
            <dd>
              {r.format}, signed with {r.signing ?? "hmac"}
            </dd>
          </>
        )}
        <dt>DMARC p=reject failures</dt>
        <dd>{r.dmarc_reject}</dd>
        <dt>Spam</dt>
        <dd>
          {r.spam_action}
          {r.spam_threshold != null && ` at a score of ${r.spam_threshold} or more`}
        </dd>
        <dt>MX record to publish</dt>
        <dd>
          <code>
            {r.mx_record.name} MX {mx}
          </code>{" "}
          <CopyButton text={mx} label={` the MX record of ${r.mx_record.name}`} />
        </dd>
      </dl>
      {r.action === "endpoint" && (
        <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
          <summary>Deliveries to the endpoint</summary>
          <ErrorNote error={log.error} />
          {log.data && log.data.data.length === 0 && <p className="muted">Nothing received for this route yet.</p>}
          {log.data && log.data.data.length > 0 && (
            <AttemptTable
              attempts={log.data.data}
              showEvent={false}
              onRetry={props.canWrite ? (id) => void retry.run(id) : undefined}
              retrying={retry.busy}
            />
          )}
          <Pager {...pager(log.data?.next_cursor)} />
        </details>
      )}
      <ErrorNote error={remove.error ?? retry.error} />
    </Section>
  );
}

function NewRoute(props: { serverId: string; onCreated: (r: Schemas["RouteWithSecret"]) => void }) {
  const [address, setAddress] = useState("");
  const [action, setAction] = useState<Schemas["RouteAction"]>("endpoint");
  const [url, setUrl] = useState("");
  const [format, setFormat] = useState<Schemas["InboundFormat"]>("parsed");
  const [rejectMessage, setRejectMessage] = useState("");
  const create = useAction(async () => {
    const route = await unwrap(
      api.POST("/v1/servers/{server_id}/routes", {
        ...serverPath(props.serverId),
        body: {
          address: address.trim(),
          action,
          ...(action === "endpoint" ? { url: url.trim(), format } : {}),
          ...(action === "reject" && rejectMessage ? { reject_message: rejectMessage } : {}),
        },
      }),
    );
    setAddress("");
    setUrl("");
    props.onCreated(route);
  });
  return (
    <Section title="New route">
      <form
        className="stack"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void create.run();
        }}
      >
        <Field label="Address" hint="support@example.com, *@example.com, or user@ (which also takes user+tag@).">
          {(id, hint) => (
            <input
              id={id}
              required
              maxLength={320}
              aria-describedby={hint}
              value={address}
              onChange={(e) => setAddress(e.target.value)}
            />
          )}
        </Field>
        <Field label="Action">
          {(id) => (
            <select id={id} value={action} onChange={(e) => setAction(e.target.value as Schemas["RouteAction"])}>
              <option value="endpoint">POST to an endpoint</option>
              <option value="hold">Hold (read it through the API)</option>
              <option value="reject">Refuse it</option>
            </select>
          )}
        </Field>
        {action === "endpoint" && (
          <>
            <Field label="Endpoint URL">
              {(id) => <input id={id} type="url" required value={url} onChange={(e) => setUrl(e.target.value)} />}
            </Field>
            <Field label="Payload">
              {(id) => (
                <select id={id} value={format} onChange={(e) => setFormat(e.target.value as Schemas["InboundFormat"])}>
                  <option value="parsed">parsed (JSON fields, bodies, attachments)</option>
                  <option value="raw">raw (the whole message, base64)</option>
                </select>
              )}
            </Field>
          </>
        )}
        {action === "reject" && (
          <Field label="Refusal text">
            {(id) => (
              <input id={id} maxLength={200} value={rejectMessage} onChange={(e) => setRejectMessage(e.target.value)} />
            )}
          </Field>
        )}
        <button type="submit" className="primary" disabled={create.busy}>
          Add route
        </button>
      </form>
      <ErrorNote error={create.error} />
    </Section>
  );
}
