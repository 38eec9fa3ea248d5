import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { api, unwrap, type Schemas } from "../../api/client";
import { useAction } from "../../ui/hooks";
import { ErrorNote, Field, Page, Section, Time } from "../../ui/parts";
import { serverPath, useServer } from "./context";
import { ModeField } from "../mode-field";
import { DnsRecords } from "./dns-records";

export function SettingsPage() {
  const { server, organization, canWrite, reload } = useServer();
  const navigate = useNavigate();
  const [name, setName] = useState(server.name);
  const [mode, setMode] = useState<Schemas["ServerMode"]>(server.mode);
  const [listUnsubscribe, setListUnsubscribe] = useState(server.list_unsubscribe);
  const [trackOpens, setTrackOpens] = useState(server.track_opens);
  const [trackClicks, setTrackClicks] = useState(server.track_clicks);
  const [trackingHost, setTrackingHost] = useState(server.tracking.host ?? "");
  const [saved, setSaved] = useState(false);

  const save = useAction(async () => {
    await unwrap(
      api.PATCH("/v1/servers/{server_id}", {
        ...serverPath(server.id),
        body: {
          name,
          mode,
          list_unsubscribe: listUnsubscribe,
          track_opens: trackOpens,
          track_clicks: trackClicks,
          tracking_host: trackingHost.trim(),
        },
      }),
    );
    setSaved(true);
    reload();
  });
  const verify = useAction(async () => {
    await unwrap(api.POST("/v1/servers/{server_id}/tracking/verify", serverPath(server.id)));
    reload();
  });
  const remove = useAction(async () => {
    if (!window.confirm(`Delete ${server.name} with its domains, keys and messages?`)) return;
    await unwrap(api.DELETE("/v1/servers/{server_id}", serverPath(server.id)));
    navigate(`/organizations/${organization.id}`);
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    void save.run();
  };

  return (
    <Page title="Settings">
      <Section title="Server">
        <form onSubmit={submit} className="stack">
          <fieldset disabled={!canWrite}>
            <legend className="visually-hidden">Server settings</legend>
            <Field label="Name">
              {(id) => (
                <input id={id} required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
              )}
            </Field>
            <ModeField value={mode} onChange={setMode} />
            <label className="check">
              <input type="checkbox" checked={listUnsubscribe} onChange={(e) => setListUnsubscribe(e.target.checked)} />{" "}
              Add List-Unsubscribe (one click) to messages with one recipient
            </label>
            <label className="check">
              <input type="checkbox" checked={trackOpens} onChange={(e) => setTrackOpens(e.target.checked)} /> Track
              opens
            </label>
            <label className="check">
              <input type="checkbox" checked={trackClicks} onChange={(e) => setTrackClicks(e.target.checked)} /> Track
              clicks
            </label>
            <Field label="Tracking host" hint="Your own host for tracked links (a CNAME to Tern); empty for Tern's.">
              {(id, hint) => (
                <input
                  id={id}
                  maxLength={253}
                  aria-describedby={hint}
                  value={trackingHost}
                  onChange={(e) => setTrackingHost(e.target.value)}
                />
              )}
            </Field>
            {canWrite && (
              <button type="submit" className="primary" disabled={save.busy}>
                Save
              </button>
            )}
            {saved && (
              <span role="status" className="muted">
                {" "}
                Saved.
              </span>
            )}
          </fieldset>
        </form>
        <ErrorNote error={save.error} />
      </Section>
      {server.tracking.record && (
        <Section
          title="Tracking host"
          actions={
            canWrite && (
              <button type="button" onClick={() => void verify.run()} disabled={verify.busy}>
                Check now
              </button>
            )
          }
        >
          <p className="muted">
            Tracked links start with <code>{server.tracking.base_url}</code>. Last checked{" "}
            <Time at={server.tracking.checked_at} />.
          </p>
          <DnsRecords records={[server.tracking.record]} />
          <ErrorNote error={verify.error} />
        </Section>
      )}
      {canWrite && (
        <Section title="Delete this server">
          <p>Its domains, API keys, webhooks, routes and messages go with it.</p>
          <button type="button" className="danger" onClick={() => void remove.run()}>
            Delete server
          </button>
          <ErrorNote error={remove.error} />
        </Section>
      )}
    </Page>
  );
}
