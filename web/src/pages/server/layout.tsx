import { useMemo } from "react";
import { Link, NavLink, Outlet, useParams } from "react-router";
import { api, unwrap } from "../../api/client";
import { useLoad } from "../../ui/hooks";
import { Badge, ErrorNote, Loading } from "../../ui/parts";
import { ServerContext, serverPath, type ServerScope } from "./context";

const SECTIONS = [
  ["", "Overview"],
  ["messages", "Messages"],
  ["domains", "Domains"],
  ["api-keys", "API keys"],
  ["webhooks", "Webhooks"],
  ["routes", "Inbound routes"],
  ["suppressions", "Suppressions"],
  ["settings", "Settings"],
] as const;

export function ServerLayout() {
  const serverId = useParams().serverId ?? "";
  const loaded = useLoad(async () => {
    const server = await unwrap(api.GET("/v1/servers/{server_id}", serverPath(serverId)));
    const organization = await unwrap(
      api.GET("/v1/organizations/{organization_id}", {
        params: { path: { organization_id: server.organization_id } },
      }),
    );
    return { server, organization };
  }, [serverId]);

  const scope = useMemo<ServerScope | null>(
    () =>
      loaded.data
        ? { ...loaded.data, canWrite: loaded.data.organization.role !== "viewer", reload: loaded.reload }
        : null,
    [loaded.data, loaded.reload],
  );

  if (loaded.error) {
    return (
      <div className="page">
        <ErrorNote error={loaded.error} />
        <Link to="/">All organizations</Link>
      </div>
    );
  }
  if (!scope) return <Loading what="the server" />;

  return (
    <ServerContext.Provider value={scope}>
      <div className="with-side">
        <nav className="side" aria-label="Server">
          <p className="side-title">
            <Link to={`/organizations/${scope.organization.id}`}>{scope.organization.name}</Link>
            <span className="side-server">{scope.server.name}</span>
            <Badge value={scope.server.mode} />
          </p>
          <ul>
            {SECTIONS.map(([to, label]) => (
              <li key={to}>
                <NavLink end={to === ""} to={to === "" ? `/servers/${serverId}` : `/servers/${serverId}/${to}`}>
                  {label}
                </NavLink>
              </li>
            ))}
          </ul>
          {!scope.canWrite && <p className="muted small-text">You are a viewer here: you can look, not change.</p>}
        </nav>
        <div className="side-main">
          <Outlet />
        </div>
      </div>
    </ServerContext.Provider>
  );
}
