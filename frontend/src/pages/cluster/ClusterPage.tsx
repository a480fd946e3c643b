/** A cluster: header (health, mode, live link), tabs, and the live state shared with every tab. */
import { Link, NavLink, Outlet, useParams } from "react-router-dom";
import { useAuth } from "../../auth";
import { HealthBadge, ModeBadges } from "../../components/Badges";
import { ErrorMessage } from "../../components/ErrorMessage";
import { LiveBanner, LiveIndicator } from "../../components/LiveBanner";
import { useClusterLive } from "../../hooks/useClusterLive";
import { clusterRole, roleAllows } from "../../lib/permissions";
import { worstSeverity } from "../../lib/liveState";
import { NotFoundPage } from "../NotFoundPage";
import type { ClusterPageContext } from "./context";

export function ClusterPage() {
  const params = useParams();
  const clusterId = Number(params.clusterId);
  if (!Number.isInteger(clusterId) || clusterId <= 0) return <NotFoundPage />;
  return <ClusterView clusterId={clusterId} />;
}

function ClusterView({ clusterId }: { clusterId: number }) {
  const { me } = useAuth();
  const live = useClusterLive(clusterId);
  const { cluster } = live;
  if (live.notFound) return <NotFoundPage what="cluster" />;
  if (!cluster) {
    return live.error ? <ErrorMessage error={live.error} title="Could not load the cluster." /> : <div role="status" className="muted">Loading cluster…</div>;
  }
  const role = clusterRole(cluster, me);
  // The live topology's findings are newer than the cluster object's health.
  const health = live.topology ? worstSeverity(live.topology.findings.map((f) => f.severity)) : cluster.health;
  const context: ClusterPageContext = { clusterId, live, role };
  return (
    <div className="cluster-page">
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to="/clusters">Clusters</Link> <span aria-hidden="true">/</span> <span>{cluster.tenant}</span>
      </nav>
      <div className="page-header">
        <div>
          <h1>
            {cluster.name} <HealthBadge health={health} />
          </h1>
          <div className="subtitle">
            <ModeBadges cluster={cluster} />
            <span className="muted">{cluster.origin}</span>
            <span className="muted">primary <strong className="mono" data-testid="cluster-primary">{live.topology?.primary ?? cluster.primary ?? "none"}</strong></span>
            <span className="muted">your role: <strong>{role ?? "none"}</strong></span>
          </div>
        </div>
        <LiveIndicator status={live.link.status} />
      </div>
      <LiveBanner status={live.link.status} retryAt={live.link.retryAt} everConnected={live.link.everConnected} onRetry={live.retryNow} />
      {live.error ? <ErrorMessage error={live.error} title="Part of the page could not be loaded." /> : null}
      <nav className="tabs" aria-label="Cluster sections">
        <NavLink end to={`/clusters/${clusterId}`}>Overview</NavLink>
        <NavLink to={`/clusters/${clusterId}/metrics`}>Metrics</NavLink>
        <NavLink to={`/clusters/${clusterId}/events`}>Events</NavLink>
        <NavLink to={`/clusters/${clusterId}/jobs`}>Jobs</NavLink>
        <NavLink to={`/clusters/${clusterId}/backups`}>Backups</NavLink>
        <NavLink to={`/clusters/${clusterId}/settings`}>Settings</NavLink>
        {roleAllows(role, "admin") && <NavLink to={`/clusters/${clusterId}/routes`}>Routes</NavLink>}
      </nav>
      <Outlet context={context} />
    </div>
  );
}
