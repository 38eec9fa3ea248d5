import type { Schemas } from "../../api/client";
import { Badge, Time } from "../../ui/parts";

/** Delivery attempts to an endpoint (a webhook's or a route's): when, what
 * it answered, how fast; `onRetry` adds a button sending one again. */
export function AttemptTable(props: {
  attempts: Schemas["WebhookAttempt"][];
  showEvent: boolean;
  onRetry?: (deliveryId: string) => void;
  retrying?: boolean;
}) {
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">When</th>
          {props.showEvent && <th scope="col">Event</th>}
          <th scope="col">Result</th>
          <th scope="col">Latency</th>
          <th scope="col">Response</th>
          {props.onRetry && <th scope="col">Actions</th>}
        </tr>
      </thead>
      <tbody>
        {props.attempts.map((a) => (
          <tr key={a.id}>
            <td>
              <Time at={a.attempted_at} />
            </td>
            {props.showEvent && (
              <td>
                <code>{a.event_type}</code>
                <div className="muted">{a.event_id}</div>
              </td>
            )}
            <td>
              <Badge value={a.delivery_status} /> {a.http_status ?? ""}
            </td>
            <td>{a.latency_ms} ms</td>
            <td className="wrap">
              <code>{a.error ?? a.response_body ?? ""}</code>
            </td>
            {props.onRetry && (
              <td>
                <button
                  type="button"
                  className="small"
                  disabled={props.retrying}
                  aria-label={`Retry ${a.event_type} ${a.event_id}`}
                  onClick={() => props.onRetry?.(a.delivery_id)}
                >
                  Retry
                </button>
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
