import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { api, unwrap } from "../api/client";
import { useAction, useLoad } from "../ui/hooks";
import { Badge, Empty, ErrorNote, Field, Loading, Page, Section, Time } from "../ui/parts";

export function OrganizationsPage() {
  const list = useLoad(() => unwrap(api.GET("/v1/organizations")), []);
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const create = useAction(async () => {
    const org = await unwrap(api.POST("/v1/organizations", { body: { name } }));
    navigate(`/organizations/${org.id}`);
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void create.run();
  };

  return (
    <Page title="Organizations" lead="Each organization has its own servers, members and data.">
      <Section title="Your organizations">
        <ErrorNote error={list.error} />
        {list.loading && !list.data && <Loading what="organizations" />}
        {list.data && list.data.data.length === 0 && (
          <Empty title="You belong to no organization yet.">
            Create one below; you become its owner, and can then add servers and members.
          </Empty>
        )}
        {list.data && list.data.data.length > 0 && (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Your role</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.data.data.map((org) => (
                <tr key={org.id}>
                  <td>
                    <Link to={`/organizations/${org.id}`}>{org.name}</Link>
                  </td>
                  <td>
                    <Badge value={org.role} />
                  </td>
                  <td>
                    <Time at={org.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="New organization">
        <form onSubmit={submit} className="inline-form">
          <Field label="Organization name">
            {(id) => <input id={id} required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />}
          </Field>
          <button type="submit" className="primary" disabled={create.busy}>
            Create organization
          </button>
        </form>
        <ErrorNote error={create.error} />
      </Section>
    </Page>
  );
}
