// Fails when src/api/schema.d.ts is not what openapi-typescript makes of
// ../openapi/openapi.json (like the Rust side's OpenAPI test): run
// `npm run gen:api` and commit the result.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "tern-api-"));
try {
  const fresh = join(dir, "schema.d.ts");
  execFileSync("npx", ["openapi-typescript", "../openapi/openapi.json", "-o", fresh], { stdio: "ignore" });
  if (readFileSync(fresh, "utf8") !== readFileSync("src/api/schema.d.ts", "utf8")) {
    console.error("web/src/api/schema.d.ts is stale: run `npm run gen:api` in web/ and commit it.");
    process.exit(1);
  }
  console.log("web/src/api/schema.d.ts matches openapi/openapi.json");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
