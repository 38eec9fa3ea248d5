import type { Schemas } from "../../api/client";

const REASONS = new Set(["hard_bounce", "complaint", "unsubscribe", "manual"]);

/** Splits one CSV line (RFC 4180 quoting). */
function cells(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

/** Rows of `address[,reason[,detail]]`, a header row optional; the API
 * checks every address and says which entry is wrong. */
export function parseSuppressionCsv(text: string): Schemas["ImportEntry"][] {
  const rows = text
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map(cells);
  if (rows[0]?.[0]?.toLowerCase() === "address") rows.shift();
  return rows.map(([address = "", reason = "", detail = ""]) => ({
    address,
    ...(REASONS.has(reason) ? { reason: reason as Schemas["SuppressionReason"] } : {}),
    ...(detail ? { detail } : {}),
  }));
}
