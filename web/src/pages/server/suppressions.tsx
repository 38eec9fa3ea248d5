import { useState, type FormEvent } from "react";
import { api, unwrap, type Schemas } from "../../api/client";
import { useAction, useCursorPages, useLoad } from "../../ui/hooks";
import { Badge, Empty, ErrorNote, Field, Loading, Page, Pager, Section, Time } from "../../ui/parts";
import { serverPath, useServer } from "./context";
import { parseSuppressionCsv } from "./csv";

const REASONS: Schemas["SuppressionReason"][] = ["hard_bounce", "complaint", "unsubscribe", "manual"];

export function SuppressionsPage() {
  const { server, canWrite } = useServer();
  const [query, setQuery] = useState({ address: "", reason: "" });
  const { cursor, reset: resetPages, pager } = useCursorPages(JSON.stringify(query));
  const list = useLoad(
    () =>
      unwrap(
        api.GET("/v1/servers/{server_id}/suppressions", {
          params: {
            path: { server_id: server.id },
            query: {
              address: query.address || undefined,
              reason: (query.reason || undefined) as Schemas["SuppressionReason"] | undefined,
              cursor,
              limit: 50,
            },
          },
        }),
      ),
    [server.id, query, cursor],
  );
  const remove = useAction(async (address: string) => {
    await unwrap(
      api.DELETE("/v1/servers/{server_id}/suppressions/{address}", {
        params: { path: { server_id: server.id, address } },
      }),
    );
    list.reload();
  });
  const search = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    resetPages();
    setQuery({ address: String(form.get("address") ?? "").trim(), reason: String(form.get("reason") ?? "") });
  };

  return (
    <Page
      title="Suppressions"
      lead="Tern does not send to these addresses: they bounced hard, complained, unsubscribed, or were added by hand."
    >
      <form className="filters" role="search" aria-label="Search suppressions" onSubmit={search}>
        <Field label="Address contains">
          {(id) => <input id={id} name="address" type="search" maxLength={254} defaultValue={query.address} />}
        </Field>
        <Field label="Reason">
          {(id) => (
            <select id={id} name="reason" defaultValue={query.reason}>
              <option value="">any</option>
              {REASONS.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          )}
        </Field>
        <div className="filter-buttons">
          <button type="submit" className="primary">
            Search
          </button>
        </div>
      </form>
      <ErrorNote error={list.error ?? remove.error} />
      {list.loading && !list.data && <Loading what="suppressions" />}
      {list.data && list.data.data.length === 0 && (
        <Empty title={query.address || query.reason ? "No suppression matches." : "The suppression list is empty."}>
          Addresses are added when they bounce hard, complain or unsubscribe; you can also add or import them.
        </Empty>
      )}
      {list.data && list.data.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Address</th>
              <th scope="col">Reason</th>
              <th scope="col">Detail</th>
              <th scope="col">Since</th>
              <th scope="col">Expires</th>
              {canWrite && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {list.data.data.map((s) => (
              <tr key={s.address}>
                <td>{s.address}</td>
                <td>
                  <Badge value={s.reason} />
                </td>
                <td className="wrap">{s.detail}</td>
                <td>
                  <Time at={s.created_at} />
                </td>
                <td>{s.expires_at ? <Time at={s.expires_at} /> : "never"}</td>
                {canWrite && (
                  <td>
                    <button
                      type="button"
                      className="small danger"
                      aria-label={`Remove ${s.address}`}
                      onClick={() => void remove.run(s.address)}
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
      <Pager {...pager(list.data?.next_cursor)} />
      {canWrite && <AddOne serverId={server.id} onDone={list.reload} />}
      {canWrite && <ImportCsv serverId={server.id} onDone={list.reload} />}
    </Page>
  );
}

function AddOne({ serverId, onDone }: { serverId: string; onDone: () => void }) {
  const [address, setAddress] = useState("");
  const [detail, setDetail] = useState("");
  const add = useAction(async () => {
    await unwrap(
      api.PUT("/v1/servers/{server_id}/suppressions/{address}", {
        params: { path: { server_id: serverId, address: address.trim() } },
        body: { reason: "manual", detail: detail || null },
      }),
    );
    setAddress("");
    setDetail("");
    onDone();
  });
  return (
    <Section title="Add an address">
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void add.run();
        }}
      >
        <Field label="Address">
          {(id) => (
            <input
              id={id}
              type="email"
              required
              maxLength={254}
              value={address}
              onChange={(e) => setAddress(e.target.value)}
            />
          )}
        </Field>
        <Field label="Note">
          {(id) => <input id={id} maxLength={1000} value={detail} onChange={(e) => setDetail(e.target.value)} />}
        </Field>
        <button type="submit" disabled={add.busy}>
          Suppress
        </button>
      </form>
      <ErrorNote error={add.error} />
    </Section>
  );
}

function ImportCsv({ serverId, onDone }: { serverId: string; onDone: () => void }) {
  const [result, setResult] = useState<Schemas["ImportResult"]>();
  const importCsv = useAction(async (file: File) => {
    const entries = parseSuppressionCsv(await file.text());
    setResult(
      await unwrap(api.POST("/v1/servers/{server_id}/suppressions", { ...serverPath(serverId), body: { entries } })),
    );
    onDone();
  });
  return (
    <Section title="Import a CSV file">
      <p className="muted">
        One address per line, optionally with a reason (<code>hard_bounce</code>, <code>complaint</code>,{" "}
        <code>unsubscribe</code>, <code>manual</code>) and a note: <code>address,reason,detail</code>. Up to 10,000
        lines; all or nothing.
      </p>
      <Field label="CSV file">
        {(id) => (
          <input
            id={id}
            type="file"
            accept=".csv,text/csv,text/plain"
            onChange={(e) => {
              const file = e.target.files?.[0];
              if (file) void importCsv.run(file);
              e.target.value = "";
            }}
          />
        )}
      </Field>
      {result && (
        <p role="status">
          Imported {result.written} of {result.received} addresses.
        </p>
      )}
      <ErrorNote error={importCsv.error} />
    </Section>
  );
}
