import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { useAction, useLoad } from "../ui/hooks";
import { Badge, Empty, ErrorNote, Field, Loading, Page, Section, Time } from "../ui/parts";
import { ModeField } from "./mode-field";

const ROLES: Schemas["Role"][] = ["viewer", "admin", "owner"];

export function OrganizationPage() {
  const organizationId = useParams().organizationId ?? "";
  const path = { params: { path: { organization_id: organizationId } } };
  const org = useLoad(() => unwrap(api.GET("/v1/organizations/{organization_id}", path)), [organizationId]);

  if (org.error) {
    return (
      <Page title="Organization">
        <ErrorNote error={org.error} />
        <Link to="/">All organizations</Link>
      </Page>
    );
  }
  if (!org.data) return <Loading what="the organization" />;
  const role = org.data.role;
  const canWrite = role !== "viewer";

  return (
    <Page
      title={org.data.name}
      lead={
        <>
          Your role: <Badge value={role} /> · <Link to="/">All organizations</Link>
        </>
      }
    >
      <Servers organizationId={organizationId} canWrite={canWrite} />
      <Members organizationId={organizationId} isOwner={role === "owner"} onChange={org.reload} />
      {role === "owner" && <Manage org={org.data} reload={org.reload} />}
    </Page>
  );
}

function Servers({ organizationId, canWrite }: { organizationId: string; canWrite: boolean }) {
  const path = { params: { path: { organization_id: organizationId } } };
  const servers = useLoad(() => unwrap(api.GET("/v1/organizations/{organization_id}/servers", path)), [organizationId]);
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [mode, setMode] = useState<Schemas["ServerMode"]>("development");
  const create = useAction(async () => {
    const server = await unwrap(
      api.POST("/v1/organizations/{organization_id}/servers", { ...path, body: { name, mode } }),
    );
    navigate(`/servers/${server.id}`);
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void create.run();
  };

  return (
    <Section title="Servers">
      <ErrorNote error={servers.error} />
      {servers.loading && !servers.data && <Loading what="servers" />}
      {servers.data && servers.data.data.length === 0 && (
        <Empty title="No servers yet.">
          {canWrite
            ? "A server holds sending domains, API keys and messages. Create one to start sending."
            : "An admin of this organization can create one."}
        </Empty>
      )}
      {servers.data && servers.data.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Mode</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {servers.data.data.map((server) => (
              <tr key={server.id}>
                <td>
                  <Link to={`/servers/${server.id}`}>{server.name}</Link>
                </td>
                <td>
                  <Badge value={server.mode} />
                </td>
                <td>
                  <Time at={server.created_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canWrite && (
        <form onSubmit={submit} className="inline-form">
          <Field label="Server name">
            {(id) => <input id={id} required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />}
          </Field>
          <ModeField value={mode} onChange={setMode} />
          <button type="submit" className="primary" disabled={create.busy}>
            Create server
          </button>
        </form>
      )}
      <ErrorNote error={create.error} />
    </Section>
  );
}

function Members(props: { organizationId: string; isOwner: boolean; onChange: () => void }) {
  const { organizationId, isOwner } = props;
  const path = { params: { path: { organization_id: organizationId } } };
  const members = useLoad(() => unwrap(api.GET("/v1/organizations/{organization_id}/members", path)), [organizationId]);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Schemas["Role"]>("viewer");
  const add = useAction(async (who: string, as: Schemas["Role"]) => {
    await unwrap(api.POST("/v1/organizations/{organization_id}/members", { ...path, body: { email: who, role: as } }));
    setEmail("");
    members.reload();
    // Your own role may have changed: the page shows what it now allows.
    props.onChange();
  });
  const remove = useAction(async (userId: string, email: string) => {
    if (!window.confirm(`Remove ${email} from this organization?`)) return;
    await unwrap(
      api.DELETE("/v1/organizations/{organization_id}/members/{user_id}", {
        params: { path: { organization_id: organizationId, user_id: userId } },
      }),
    );
    members.reload();
    props.onChange();
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void add.run(email, role);
  };

  return (
    <Section title="Members">
      <ErrorNote error={members.error} />
      {members.data && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              {isOwner && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {members.data.data.map((m) => (
              <tr key={m.user_id}>
                <td>{m.name}</td>
                <td>{m.email}</td>
                <td>
                  {isOwner ? (
                    <select
                      aria-label={`Role of ${m.email}`}
                      value={m.role}
                      onChange={(e) => {
                        const next = e.target.value as Schemas["Role"];
                        if (window.confirm(`Make ${m.email} ${next}?`)) void add.run(m.email, next);
                      }}
                    >
                      {ROLES.map((r) => (
                        <option key={r}>{r}</option>
                      ))}
                    </select>
                  ) : (
                    <Badge value={m.role} />
                  )}
                </td>
                {isOwner && (
                  <td>
                    <button
                      type="button"
                      className="danger small"
                      aria-label={`Remove ${m.email}`}
                      disabled={remove.busy}
                      onClick={() => void remove.run(m.user_id, m.email)}
                    >
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {isOwner && (
        <form onSubmit={submit} className="inline-form">
          <Field label="Member email" hint="An existing Tern user (tern admin create-user).">
            {(id, hint) => (
              <input
                id={id}
                type="email"
                required
                aria-describedby={hint}
                value={email}
                onChange={(e) => setEmail(e.target.value)}
              />
            )}
          </Field>
          <Field label="Role">
            {(id) => (
              <select id={id} value={role} onChange={(e) => setRole(e.target.value as Schemas["Role"])}>
                {ROLES.map((r) => (
                  <option key={r}>{r}</option>
                ))}
              </select>
            )}
          </Field>
          <button type="submit" disabled={add.busy}>
            Add member
          </button>
        </form>
      )}
      <ErrorNote error={add.error ?? remove.error} />
    </Section>
  );
}

function Manage({ org, reload }: { org: Schemas["Organization"]; reload: () => void }) {
  const [name, setName] = useState(org.name);
  const navigate = useNavigate();
  const path = { params: { path: { organization_id: org.id } } };
  const rename = useAction(async () => {
    await unwrap(api.PATCH("/v1/organizations/{organization_id}", { ...path, body: { name } }));
    reload();
  });
  const remove = useAction(async () => {
    if (!window.confirm(`Delete ${org.name}, its servers and all their data?`)) return;
    await unwrap(api.DELETE("/v1/organizations/{organization_id}", path));
    navigate("/");
  });
  return (
    <Section title="Organization settings">
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void rename.run();
        }}
      >
        <Field label="Name">
          {(id) => <input id={id} required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <button type="submit" disabled={rename.busy}>
          Rename
        </button>
        <button type="button" className="danger" onClick={() => void remove.run()}>
          Delete organization
        </button>
      </form>
      <ErrorNote error={rename.error ?? remove.error} />
    </Section>
  );
}
