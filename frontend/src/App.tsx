/** Routes of the portal. Every page but /login needs a session. */
import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { useAuth } from "./auth";
import { Layout } from "./components/Layout";
import { ErrorMessage } from "./components/ErrorMessage";
import { LoginPage } from "./pages/LoginPage";
import { ClustersPage } from "./pages/ClustersPage";
import { ClusterPage } from "./pages/cluster/ClusterPage";
import { OverviewTab } from "./pages/cluster/OverviewTab";
import { EventsTab } from "./pages/cluster/EventsTab";
import { JobsTab } from "./pages/cluster/JobsTab";
import { JobDetail } from "./pages/cluster/JobDetail";
import { SettingsTab } from "./pages/cluster/SettingsTab";
import { RoutesTab } from "./pages/cluster/RoutesTab";
import { BackupsTab } from "./pages/cluster/BackupsTab";
import { MetricsTab } from "./pages/cluster/MetricsTab";
import { AlertsPage } from "./pages/AlertsPage";
import { TeamsPage } from "./pages/TeamsPage";
import { TokensPage } from "./pages/TokensPage";
import { AuditPage } from "./pages/AuditPage";
import { HostsPage } from "./pages/HostsPage";
import { ParameterGroupsPage } from "./pages/ParameterGroupsPage";
import { NotFoundPage } from "./pages/NotFoundPage";

function RequireAuth({ children }: { children: JSX.Element }) {
  const { me, loading, error } = useAuth();
  const location = useLocation();
  if (loading) return <div className="page-loading" role="status">Loading…</div>;
  if (error) {
    return (
      <main className="centered">
        <ErrorMessage error={error} />
      </main>
    );
  }
  if (!me) return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  return children;
}

export function App() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route
        element={
          <RequireAuth>
            <Layout />
          </RequireAuth>
        }
      >
        <Route index element={<Navigate to="/clusters" replace />} />
        <Route path="clusters" element={<ClustersPage />} />
        <Route path="clusters/:clusterId" element={<ClusterPage />}>
          <Route index element={<OverviewTab />} />
          <Route path="metrics" element={<MetricsTab />} />
          <Route path="events" element={<EventsTab />} />
          <Route path="jobs" element={<JobsTab />} />
          <Route path="jobs/:jobId" element={<JobDetail />} />
          <Route path="settings" element={<SettingsTab />} />
          <Route path="routes" element={<RoutesTab />} />
          <Route path="backups" element={<BackupsTab />} />
        </Route>
        <Route path="teams" element={<TeamsPage />} />
        <Route path="tokens" element={<TokensPage />} />
        <Route path="audit" element={<AuditPage />} />
        <Route path="alerts" element={<AlertsPage />} />
        <Route path="hosts" element={<HostsPage />} />
        <Route path="parameter-groups" element={<ParameterGroupsPage />} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}
