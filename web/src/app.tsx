import { Link, Navigate, Route, Routes } from "react-router";
import { useAuth } from "./auth";
import { LoginPage } from "./pages/login";
import { NotFoundPage } from "./pages/not-found";
import { OrganizationPage } from "./pages/organization";
import { OrganizationsPage } from "./pages/organizations";
import { ApiKeysPage } from "./pages/server/api-keys";
import { DomainsPage } from "./pages/server/domains";
import { ServerLayout } from "./pages/server/layout";
import { MessagePage } from "./pages/server/message";
import { MessagesPage } from "./pages/server/messages";
import { OverviewPage } from "./pages/server/overview";
import { RoutesPage } from "./pages/server/routes";
import { SettingsPage } from "./pages/server/settings";
import { SuppressionsPage } from "./pages/server/suppressions";
import { WebhookPage } from "./pages/server/webhook";
import { WebhooksPage } from "./pages/server/webhooks";

export function App() {
  const { user, logout } = useAuth();

  if (!user) return <LoginPage />;

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          Tern
        </Link>
        <nav aria-label="Account" className="account">
          <span className="muted">{user.email}</span>
          <a href="/docs">API docs</a>
          <button type="button" className="link" onClick={logout}>
            Log out
          </button>
        </nav>
      </header>
      <main id="main">
        <Routes>
          <Route path="/" element={<OrganizationsPage />} />
          <Route path="/login" element={<Navigate to="/" replace />} />
          <Route path="/organizations/:organizationId" element={<OrganizationPage />} />
          <Route path="/servers/:serverId" element={<ServerLayout />}>
            <Route index element={<OverviewPage />} />
            <Route path="messages" element={<MessagesPage />} />
            <Route path="messages/:messageId" element={<MessagePage />} />
            <Route path="domains" element={<DomainsPage />} />
            <Route path="api-keys" element={<ApiKeysPage />} />
            <Route path="webhooks" element={<WebhooksPage />} />
            <Route path="webhooks/:webhookId" element={<WebhookPage />} />
            <Route path="routes" element={<RoutesPage />} />
            <Route path="suppressions" element={<SuppressionsPage />} />
            <Route path="settings" element={<SettingsPage />} />
          </Route>
          <Route path="*" element={<NotFoundPage />} />
        </Routes>
      </main>
    </>
  );
}
