import { createContext, useContext } from "react";
import type { Schemas } from "../../api/client";

export type ServerScope = {
  server: Schemas["Server"];
  organization: Schemas["Organization"];
  /** Owners and admins change things; viewers only read. */
  canWrite: boolean;
  reload: () => void;
};

export const ServerContext = createContext<ServerScope | null>(null);

export function useServer(): ServerScope {
  const scope = useContext(ServerContext);
  if (!scope) throw new Error("useServer outside ServerLayout");
  return scope;
}

/** `{ params: { path: { server_id } } }` for the server's own operations. */
export function serverPath(serverId: string) {
  return { params: { path: { server_id: serverId } } };
}
