import type { Schemas } from "../api/client";
import { Field } from "../ui/parts";

/** A server's mode: development keeps mail, live delivers it. */
export function ModeField(props: { value: Schemas["ServerMode"]; onChange: (mode: Schemas["ServerMode"]) => void }) {
  return (
    <Field label="Mode" hint="Development servers keep mail as held and never deliver it; live servers deliver.">
      {(id, hint) => (
        <select
          id={id}
          aria-describedby={hint}
          value={props.value}
          onChange={(e) => props.onChange(e.target.value as Schemas["ServerMode"])}
        >
          <option value="development">development</option>
          <option value="live">live</option>
        </select>
      )}
    </Field>
  );
}
