import { useState, type FormEvent } from "react";
import { api, unwrap, type Schemas } from "../../api/client";
import { useAction, useLoad } from "../../ui/hooks";
import { Badge, Empty, ErrorNote, Field, Loading, Page, Section, Time } from "../../ui/parts";
import { serverPath, useServer } from "./context";
import { DnsRecords } from "./dns-records";

export function DomainsPage() {
  const { server, canWrite } = useServer();
  const domains = useLoad(() => unwrap(api.GET("/v1/servers/{server_id}/domains", serverPath(server.id))), [server.id]);
  const [name, setName] = useState("");
  const [algorithm, setAlgorithm] = useState<Schemas["DkimAlgorithm"]>("rsa");
  const add = useAction(async () => {
    await unwrap(
      api.POST("/v1/servers/{server_id}/domains", {
        ...serverPath(server.id),
        body: { name: name.trim(), dkim_algorithm: algorithm },
      }),
    );
    setName("");
    domains.reload();
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void add.run();
  };

  return (
    <Page
      title="Domains"
      lead="Mail is sent from these domains. Publish each record at your DNS provider, then check it here."
    >
      <ErrorNote error={domains.error} />
      {domains.loading && !domains.data && <Loading what="domains" />}
      {domains.data && domains.data.data.length === 0 && (
        <Empty title="No sending domains yet.">
          {canWrite
            ? "Add the domain your From addresses use; Tern makes its DKIM key and lists the records to publish."
            : "An admin of this organization can add one."}
        </Empty>
      )}
      {domains.data?.data.map((d) => (
        <Domain key={d.id} domain={d} canWrite={canWrite} onChange={domains.reload} />
      ))}
      {canWrite && (
        <Section title="Add a domain">
          <form onSubmit={submit} className="inline-form">
            <Field label="Domain name" hint="For example example.com or mail.example.com.">
              {(id, hint) => (
                <input
                  id={id}
                  required
                  maxLength={253}
                  aria-describedby={hint}
                  value={name}
                  onChange={(e) => setName(e.target.value)}
                />
              )}
            </Field>
            <Field label="DKIM key">
              {(id) => (
                <select
                  id={id}
                  value={algorithm}
                  onChange={(e) => setAlgorithm(e.target.value as Schemas["DkimAlgorithm"])}
                >
                  <option value="rsa">RSA-2048 (every receiver verifies it)</option>
                  <option value="ed25519">Ed25519</option>
                </select>
              )}
            </Field>
            <button type="submit" className="primary" disabled={add.busy}>
              Add domain
            </button>
          </form>
          <ErrorNote error={add.error} />
        </Section>
      )}
    </Page>
  );
}

function Domain(props: { domain: Schemas["DomainView"]; canWrite: boolean; onChange: () => void }) {
  const { domain } = props;
  const path = { params: { path: { domain_id: domain.id } } };
  const check = useAction(async () => {
    await unwrap(api.POST("/v1/domains/{domain_id}/verify", path));
    props.onChange();
  });
  const remove = useAction(async () => {
    if (!window.confirm(`Remove ${domain.name}? Mail from it can no longer be sent.`)) return;
    await unwrap(api.DELETE("/v1/domains/{domain_id}", path));
    props.onChange();
  });
  return (
    <Section
      title={domain.name}
      actions={
        <span className="row">
          <Badge value={domain.verified ? "verified" : "pending"} />
          {props.canWrite && (
            <>
              <button type="button" onClick={() => void check.run()} disabled={check.busy}>
                {check.busy ? "Checking…" : "Check now"}
              </button>
              <button type="button" className="danger" onClick={() => void remove.run()}>
                Remove
              </button>
            </>
          )}
        </span>
      }
    >
      <p className="muted">
        DKIM selector <code>{domain.dkim_selector}</code> ({domain.dkim_algorithm}) · last checked{" "}
        <Time at={domain.last_checked_at} />
        {domain.verified_at && (
          <>
            {" "}
            · verified <Time at={domain.verified_at} />
          </>
        )}
      </p>
      <DnsRecords records={domain.dns_records} />
      <ErrorNote error={check.error ?? remove.error} />
    </Section>
  );
}
