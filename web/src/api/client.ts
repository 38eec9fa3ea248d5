// The dashboard's only way to Tern: a typed client generated from
// openapi/openapi.json (src/api/schema.d.ts, `npm run gen:api`).
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

/** An error answer of the API: its stable `code`, `message` and `field`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;

  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

// The session token lives in memory only: never in storage a script could
// read later, gone when the tab closes.
let token: string | null = null;
let onExpired: () => void = () => {};

export function setSession(next: string | null, expired?: () => void): void {
  token = next;
  if (expired) onExpired = expired;
}

const auth: Middleware = {
  onRequest({ request }) {
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
  onResponse({ response }) {
    if (response.status === 401 && token) onExpired();
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(auth);

type Answer<T> = { data?: T; error?: unknown; response: Response };

/** The data of a successful answer; throws an {@link ApiError} otherwise. */
export async function unwrap<T>(call: Promise<Answer<T>>): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await call;
  } catch {
    throw new ApiError(0, "network", "Tern could not be reached; check the connection and try again.");
  }
  const { data, error, response } = answer;
  if (response.ok) return data as T;
  const body = (error ?? {}) as Partial<Schemas["ErrorBody"]>;
  const detail = body.error;
  throw new ApiError(
    response.status,
    detail?.code ?? "http_" + response.status,
    detail?.message ?? `Tern answered ${response.status} ${response.statusText}`,
    detail?.field ?? undefined,
  );
}
