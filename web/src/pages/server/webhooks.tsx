import { useState, type FormEvent } from "react";
import { Link } from "react-router";
import { api, unwrap, type Schemas } from "../../api/client";
import { useAction, useLoad } from "../../ui/hooks";
import { Badge, Empty, ErrorNote, Field, Loading, Page, SecretOnce, Section } from "../../ui/parts";
import { serverPath, useServer } from "./context";
import { EventTypePicker } from "./event-types";

export function WebhooksPage() {
  const { server, canWrite } = useServer();
  const hooks = useLoad(() => unwrap(api.GET("/v1/servers/{server_id}/webhooks", serverPath(server.id))), [server.id]);
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [events, setEvents] = useState<Schemas["EventType"][]>([]);
  const [signing, setSigning] = useState<Schemas["Signing"]>("hmac");
  const [created, setCreated] = useState<Schemas["WebhookWithSecret"]>();
  const create = useAction(async () => {
    const hook = await unwrap(
      api.POST("/v1/servers/{server_id}/webhooks", {
        ...serverPath(server.id),
        body: { url: url.trim(), description, event_types: events, signing },
      }),
    );
    setCreated(hook);
    setUrl("");
    setDescription("");
    setEvents([]);
    hooks.reload();
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void create.run();
  };

  return (
    <Page
      title="Webhooks"
      lead="Tern POSTs each event to these endpoints, signed the Standard Webhooks way, and retries for about three days."
    >
      {created?.secret && (
        <SecretOnce title="Signing secret" secret={created.secret} onDone={() => setCreated(undefined)} />
      )}
      {created && !created.secret && created.public_key && (
        <Section title="Public key">
          <p>
            Verify deliveries with this public key: <code>{created.public_key}</code>
          </p>
        </Section>
      )}
      <ErrorNote error={hooks.error} />
      {hooks.loading && !hooks.data && <Loading what="webhooks" />}
      {hooks.data && hooks.data.data.length === 0 && (
        <Empty title="No webhook endpoints yet.">
          {canWrite
            ? "Add your app's URL to hear of deliveries, bounces, complaints, opens, clicks and received mail."
            : "An admin of this organization can add one."}
        </Empty>
      )}
      {hooks.data && hooks.data.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Endpoint</th>
              <th scope="col">Events</th>
              <th scope="col">Signing</th>
              <th scope="col">State</th>
            </tr>
          </thead>
          <tbody>
            {hooks.data.data.map((h) => (
              <tr key={h.id}>
                <td className="wrap">
                  <Link to={h.id}>{h.url}</Link>
                  {h.description && <div className="muted">{h.description}</div>}
                </td>
                <td>{h.event_types.length ? h.event_types.join(", ") : "all"}</td>
                <td>{h.signing}</td>
                <td>
                  {h.enabled ? <Badge value="active" /> : <Badge value={h.disabled_reason ?? "disabled"} />}
                  {h.failing_since && <Badge value="failing" />}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canWrite && (
        <Section title="New endpoint">
          <form onSubmit={submit} className="stack">
            <Field label="URL" hint="https:// (http:// only where the installation allows it).">
              {(id, hint) => (
                <input
                  id={id}
                  type="url"
                  required
                  maxLength={2048}
                  aria-describedby={hint}
                  value={url}
                  onChange={(e) => setUrl(e.target.value)}
                />
              )}
            </Field>
            <Field label="Description">
              {(id) => (
                <input id={id} maxLength={200} value={description} onChange={(e) => setDescription(e.target.value)} />
              )}
            </Field>
            <Field label="Signing">
              {(id) => (
                <select id={id} value={signing} onChange={(e) => setSigning(e.target.value as Schemas["Signing"])}>
                  <option value="hmac">HMAC-SHA256 with a shared secret (v1)</option>
                  <option value="ed25519">Ed25519, verified with a public key (v1a)</option>
                </select>
              )}
            </Field>
            <EventTypePicker value={events} onChange={setEvents} />
            <button type="submit" className="primary" disabled={create.busy}>
              Add endpoint
            </button>
          </form>
          <ErrorNote error={create.error} />
        </Section>
      )}
    </Page>
  );
}
