/**
 * The clusters list: health at a glance (primary, replicas, worst finding, last event). The list and
 * each cluster's topology and newest event come over HTTP; ws /ws/events/ then keeps "last event" and
 * health current (a new event refetches that cluster's row, never a timer).
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { auth, clusters as clustersApi, resultsOf } from "../api/endpoints";
import type { Cluster, ClusterEvent, Finding, LiveMessage, Topology } from "../api/types";
import { HealthBadge, ModeBadges, SeverityBadge } from "../components/Badges";
import { CreateClusterForm } from "../components/CreateClusterForm";
import { ErrorMessage } from "../components/ErrorMessage";
import { LiveBanner, LiveIndicator } from "../components/LiveBanner";
import { Pager } from "../components/Pager";
import { formatRelative } from "../lib/format";
import { LiveSocket, websocketUrl, type LinkStatus } from "../lib/liveSocket";
import { isPrimaryServer } from "../lib/topologyLayout";

const PAGE_SIZE = 50;
const SEVERITY_ORDER = ["ok", "info", "warning", "error", "critical"];

function worstFinding(findings: Finding[]): Finding | null {
  let worst: Finding | null = null;
  for (const f of findings) {
    if (!worst || SEVERITY_ORDER.indexOf(f.severity) > SEVERITY_ORDER.indexOf(worst.severity)) worst = f;
  }
  return worst;
}

function replicaCount(cluster: Cluster, topology?: Topology): number {
  if (topology) return topology.servers.filter((s) => !isPrimaryServer(s, topology)).length;
  return Math.max(0, cluster.servers.length - (cluster.primary ? 1 : 0));
}

function eventClusterId(message: LiveMessage & { type: "event" }): number | undefined {
  const e = message.event as ClusterEvent;
  return message.cluster_id ?? e.cluster_id ?? e.cluster;
}

export function ClustersPage() {
  const [page, setPage] = useState(1);
  const [creating, setCreating] = useState(false);
  const [list, setList] = useState<{ count: number; results: Cluster[] } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [topologies, setTopologies] = useState<Record<number, Topology>>({});
  const [lastEvents, setLastEvents] = useState<Record<number, ClusterEvent | null>>({});
  const [link, setLink] = useState<{ status: LinkStatus; retryAt: number | null; everConnected: boolean }>({ status: "connecting", retryAt: null, everConnected: false });
  const socketRef = useRef<LiveSocket | null>(null);
  const pending = useRef<Map<number, ReturnType<typeof setTimeout>>>(new Map());

  const loadDetails = useCallback(async (id: number) => {
    const [t, e] = await Promise.allSettled([clustersApi.topology(id), clustersApi.events(id, 1, 1)]);
    if (t.status === "fulfilled") setTopologies((cur) => ({ ...cur, [id]: t.value }));
    if (e.status === "fulfilled") setLastEvents((cur) => ({ ...cur, [id]: resultsOf(e.value)[0] ?? null }));
  }, []);

  const load = useCallback(async () => {
    try {
      const data = await clustersApi.list(page);
      setList({ count: data.count, results: data.results });
      setError(null);
      // A few at a time: a tenant with many clusters should not fire hundreds of requests at once.
      const ids = data.results.map((c) => c.id);
      for (let i = 0; i < ids.length; i += 6) await Promise.all(ids.slice(i, i + 6).map(loadDetails));
    } catch (exc) {
      setError(exc);
    }
  }, [page, loadDetails]);

  const refreshCluster = useCallback(async (id: number) => {
    try {
      const fresh = await clustersApi.get(id);
      setList((cur) => (cur ? { ...cur, results: cur.results.map((c) => (c.id === id ? fresh : c)) } : cur));
    } catch {
      // It may have been deleted or its grant revoked: the next full load shows that.
    }
    await loadDetails(id);
  }, [loadDetails]);

  useEffect(() => {
    void load();
  }, [load]);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const socket = new LiveSocket({
      url: websocketUrl("/ws/events/"),
      onMessage: (raw) => {
        const message = raw as LiveMessage;
        if (message.type !== "event" || !message.event) return;
        const id = eventClusterId(message);
        if (id === undefined) return;
        setLastEvents((cur) => ({ ...cur, [id]: message.event }));
        const timers = pending.current;
        const old = timers.get(id);
        if (old) clearTimeout(old);
        timers.set(id, setTimeout(() => { timers.delete(id); void refreshCluster(id); }, 500));
      },
      onStatus: (status, info) => {
        setLink((cur) => ({ status, retryAt: info.retryInMs !== undefined ? Date.now() + info.retryInMs : null, everConnected: cur.everConnected || status === "open" }));
        // Repeated failures may be an expired session rather than a network problem: a 401 signs out.
        if (status === "down" && info.attempt >= 3) auth.check().catch(() => undefined);
      },
      onOpen: (reconnected) => {
        if (reconnected) void loadRef.current();
      },
    });
    socketRef.current = socket;
    socket.start();
    const timers = pending.current;
    return () => {
      socket.stop();
      timers.forEach((t) => clearTimeout(t));
      timers.clear();
    };
    // One socket for the page's lifetime (not one per page number); a reconnect reloads the list.
  }, []);

  return (
    <div>
      <div className="page-header">
        <h1>Clusters</h1>
        <LiveIndicator status={link.status} />
        {!creating && <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>Create cluster</button>}
      </div>
      {creating && <CreateClusterForm onClose={() => setCreating(false)} />}
      <LiveBanner status={link.status} retryAt={link.retryAt} everConnected={link.everConnected} onRetry={() => socketRef.current?.retryNow()} />
      <ErrorMessage error={error} title="Could not load the clusters." />
      {list === null && !error && <p className="muted" role="status">Loading clusters…</p>}
      {list && list.results.length === 0 && (
        <section className="panel empty">
          <h2>No clusters yet</h2>
          <p>Register an existing cluster or provision one with the API or the CLI (see the API docs at <a href="/api/docs/">/api/docs/</a>).</p>
        </section>
      )}
      {list && list.results.length > 0 && (
        <section className="panel">
          <table className="table clusters-table">
            <thead>
              <tr>
                <th scope="col">Cluster</th>
                <th scope="col">Health</th>
                <th scope="col">Primary</th>
                <th scope="col">Replicas</th>
                <th scope="col">Failover</th>
                <th scope="col">Worst finding</th>
                <th scope="col">Last event</th>
              </tr>
            </thead>
            <tbody>
              {list.results.map((c) => {
                const topology = topologies[c.id];
                const finding = topology ? worstFinding(topology.findings) : null;
                const last = lastEvents[c.id];
                return (
                  <tr key={c.id} data-cluster-id={c.id}>
                    <td>
                      <Link to={`/clusters/${c.id}`} className="cluster-link">{c.name}</Link>
                      <div className="muted small">{c.tenant}</div>
                    </td>
                    <td><HealthBadge health={c.health} /></td>
                    <td className="mono">{topology?.primary ?? c.primary ?? <span className="warning-text">none</span>}</td>
                    <td>{replicaCount(c, topology)}</td>
                    <td><ModeBadges cluster={c} /></td>
                    <td>
                      {finding ? (
                        <span title={finding.message}>
                          <SeverityBadge severity={finding.severity} /> <code>{finding.code}</code>
                        </span>
                      ) : topology ? <span className="muted">none</span> : <span className="muted">…</span>}
                    </td>
                    <td className="last-event">
                      {last ? (
                        <span title={last.message}>
                          <span className="muted small">{formatRelative(last.created_at)}</span> {last.message}
                        </span>
                      ) : last === null ? <span className="muted">none</span> : <span className="muted">…</span>}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <Pager page={page} count={list.count} pageSize={PAGE_SIZE} onPage={setPage} />
        </section>
      )}
    </div>
  );
}
