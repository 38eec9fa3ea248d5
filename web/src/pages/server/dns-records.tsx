import type { Schemas } from "../../api/client";
import { Badge, CopyButton } from "../../ui/parts";

/** The records a domain owner publishes, each with copy buttons. */
export function DnsRecords({ records }: { records: Schemas["DnsRecord"][] }) {
  return (
    <table className="records">
      <thead>
        <tr>
          <th scope="col">Purpose</th>
          <th scope="col">Type</th>
          <th scope="col">Name</th>
          <th scope="col">Value</th>
          <th scope="col">Status</th>
        </tr>
      </thead>
      <tbody>
        {records.map((r) => (
          <tr key={`${r.purpose}-${r.name}-${r.record_type}`} data-purpose={r.purpose}>
            <td>
              {r.purpose.replace("_", " ")}
              {!r.required && <span className="muted"> (optional)</span>}
              {!r.publish && <span className="muted"> (covered by another record)</span>}
            </td>
            <td>{r.record_type}</td>
            <td className="wrap">
              <code>{r.name}</code> <CopyButton text={r.name} label={` the ${r.purpose} record name`} />
            </td>
            <td className="wrap">
              <code>
                {r.priority != null ? `${r.priority} ` : ""}
                {r.value}
              </code>{" "}
              <CopyButton
                text={r.priority != null ? `${r.priority} ${r.value}` : r.value}
                label={` the ${r.purpose} record value`}
              />
            </td>
            <td>
              <Badge value={r.status} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
