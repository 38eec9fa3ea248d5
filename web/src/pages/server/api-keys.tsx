import { useState, type FormEvent } from "react";
import { api, unwrap, type Schemas } from "../../api/client";
import { useAction, useLoad } from "../../ui/hooks";
import { Badge, Empty, ErrorNote, Field, Loading, Page, SecretOnce, Section, Time } from "../../ui/parts";
import { serverPath, useServer } from "./context";

export function ApiKeysPage() {
  const { server, canWrite } = useServer();
  const keys = useLoad(() => unwrap(api.GET("/v1/servers/{server_id}/api-keys", serverPath(server.id))), [server.id]);
  const [name, setName] = useState("");
  const [created, setCreated] = useState<Schemas["CreatedApiKey"]>();
  const create = useAction(async () => {
    const key = await unwrap(
      api.POST("/v1/servers/{server_id}/api-keys", { ...serverPath(server.id), body: { name } }),
    );
    setCreated(key);
    setName("");
    keys.reload();
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void create.run();
  };

  return (
    <Page
      title="API keys"
      lead="Web apps send mail with these keys (Authorization: Bearer …). Each key belongs to this server only."
    >
      {created && (
        <SecretOnce title={`API key “${created.name}”`} secret={created.secret} onDone={() => setCreated(undefined)} />
      )}
      <ErrorNote error={keys.error} />
      {keys.loading && !keys.data && <Loading what="API keys" />}
      {keys.data && keys.data.data.length === 0 && (
        <Empty title="No API keys yet.">
          {canWrite
            ? "Create one below to send mail through the API."
            : "An admin of this organization can create one."}
        </Empty>
      )}
      {keys.data && keys.data.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Starts with</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">State</th>
              {canWrite && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {keys.data.data.map((k) => (
              <KeyRow key={k.id} apiKey={k} canWrite={canWrite} onChange={keys.reload} />
            ))}
          </tbody>
        </table>
      )}
      {canWrite && (
        <Section title="New API key">
          <form onSubmit={submit} className="inline-form">
            <Field label="Key name" hint="Where it is used, e.g. “production web app”.">
              {(id, hint) => (
                <input
                  id={id}
                  required
                  maxLength={100}
                  aria-describedby={hint}
                  value={name}
                  onChange={(e) => setName(e.target.value)}
                />
              )}
            </Field>
            <button type="submit" className="primary" disabled={create.busy}>
              Create key
            </button>
          </form>
          <ErrorNote error={create.error} />
        </Section>
      )}
    </Page>
  );
}

function KeyRow(props: { apiKey: Schemas["ApiKey"]; canWrite: boolean; onChange: () => void }) {
  const k = props.apiKey;
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(k.name);
  const path = { params: { path: { api_key_id: k.id } } };
  const rename = useAction(async () => {
    await unwrap(api.PATCH("/v1/api-keys/{api_key_id}", { ...path, body: { name } }));
    setEditing(false);
    props.onChange();
  });
  const revoke = useAction(async () => {
    if (!window.confirm(`Revoke “${k.name}”? Apps using it can no longer send.`)) return;
    await unwrap(api.DELETE("/v1/api-keys/{api_key_id}", path));
    props.onChange();
  });
  return (
    <tr>
      <td>
        {editing ? (
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault();
              void rename.run();
            }}
          >
            <input
              aria-label="New name"
              autoFocus
              required
              maxLength={100}
              value={name}
              onChange={(e) => setName(e.target.value)}
            />
            <button type="submit" className="small">
              Save
            </button>
            <button type="button" className="small" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        ) : (
          k.name
        )}
        <ErrorNote error={rename.error ?? revoke.error} />
      </td>
      <td>
        <code>{k.prefix}</code>
      </td>
      <td>
        <Time at={k.created_at} />
      </td>
      <td>
        <Time at={k.last_used_at} />
      </td>
      <td>{k.revoked_at ? <Badge value="revoked" /> : <Badge value="active" />}</td>
      {props.canWrite && (
        <td className="row">
          {!k.revoked_at && !editing && (
            <>
              <button type="button" className="small" onClick={() => setEditing(true)} aria-label={`Rename ${k.name}`}>
                Rename
              </button>
              <button
                type="button"
                className="small danger"
                onClick={() => void revoke.run()}
                aria-label={`Revoke ${k.name}`}
              >
                Revoke
              </button>
            </>
          )}
        </td>
      )}
    </tr>
  );
}
