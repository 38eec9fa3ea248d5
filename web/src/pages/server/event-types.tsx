import type { Schemas } from "../../api/client";

const EVENT_TYPES: Schemas["EventType"][] = [
  "message.held",
  "message.sent",
  "message.deferred",
  "message.bounced",
  "message.failed",
  "message.suppressed",
  "message.complained",
  "message.opened",
  "message.clicked",
  "message.unsubscribed",
  "inbound.received",
  "domain.verification_failed",
  "webhook.disabled",
];

/** Checkboxes for an endpoint's event filter; none ticked means all. */
export function EventTypePicker(props: {
  value: Schemas["EventType"][];
  onChange: (next: Schemas["EventType"][]) => void;
}) {
  return (
    <fieldset className="events">
      <legend>Events (none ticked: every event)</legend>
      {EVENT_TYPES.map((t) => (
        <label key={t} className="check">
          <input
            type="checkbox"
            checked={props.value.includes(t)}
            onChange={(e) =>
              props.onChange(e.target.checked ? [...props.value, t] : props.value.filter((v) => v !== t))
            }
          />{" "}
          <code>{t}</code>
        </label>
      ))}
    </fieldset>
  );
}
