/** Overview: the live topology graph, the actions the role allows, servers, findings, recent activity. */
import { useState } from "react";
import { Link } from "react-router-dom";
import type { TopologyServer } from "../../api/types";
import { SeverityBadge, StateBadge } from "../../components/Badges";
import { EventList } from "../../components/EventList";
import { JobSteps } from "../../components/JobSteps";
import { TopologyGraph } from "../../components/TopologyGraph";
import { formatRelative, formatTime } from "../../lib/format";
import { activeHaJob } from "../../lib/liveState";
import { actionAvailability, roleAllows, type Availability } from "../../lib/permissions";
import { addressOf, isPrimaryServer, nodeStatus, shortGtid, threadRunning } from "../../lib/topologyLayout";
import { AddReplicaDialog, FailoverDialog, MaintenanceDialog, RebuildDialog, RejoinDialog, RemoveReplicaDialog, ResetFailoverControlDialog, SwitchoverDialog } from "./actions";
import { useClusterPage } from "./context";

function threadLabel(value: string | boolean | null | undefined): string {
  if (typeof value === "string") return value;
  const running = threadRunning(value);
  return running === null ? "?" : running ? "Yes" : "No";
}

type Dialog =
  | { kind: "switchover" }
  | { kind: "failover" }
  | { kind: "reset" }
  | { kind: "maintenance"; server: TopologyServer }
  | { kind: "add_replica" }
  | { kind: "remove_replica"; server: TopologyServer }
  | { kind: "rebuild"; server: TopologyServer }
  | { kind: "rejoin"; server: TopologyServer }
  | null;

function ActionButton({ label, availability, onClick, danger }: { label: string; availability: Availability; onClick: () => void; danger?: boolean }) {
  if (!availability.visible) return null;
  const reasonId = `reason-${label.replace(/\W+/g, "-").toLowerCase()}`;
  return (
    <span className="action">
      <button
        type="button"
        className={danger ? "btn btn-danger-outline" : "btn"}
        onClick={onClick}
        disabled={!availability.enabled}
        aria-describedby={availability.enabled ? undefined : reasonId}
        title={availability.reason}
      >
        {label}
      </button>
      {!availability.enabled && availability.reason && <span id={reasonId} className="action-reason">{availability.reason}</span>}
    </span>
  );
}

export function OverviewTab() {
  const { live, role } = useClusterPage();
  const { cluster, topology, jobs, events } = live;
  const [dialog, setDialog] = useState<Dialog>(null);
  if (!cluster) return null;
  const activeJob = activeHaJob(jobs);
  const ctx = { role, topology, activeJob };
  const switchover = actionAvailability("switchover", ctx);
  const failover = actionAvailability("failover", ctx);
  const reset = actionAvailability("reset", ctx);
  const maintenance = actionAvailability("maintenance", ctx);
  const canOperate = roleAllows(role, "operator");
  // Adding and removing replicas: provisioned clusters only, tenant admins (the API's rule).
  const canScale = cluster.origin === "provisioned" && roleAllows(role, "admin");
  const scaleBlocked = activeJob ? `job #${activeJob.id} (${activeJob.kind}) is running` : undefined;
  // Repair (docs/repair.md): rebuild needs admin and a provisioned cluster (dbpilot owns its servers).
  const canRebuild = roleAllows(role, "admin") && cluster.origin === "provisioned";
  const rowActions = maintenance.visible || canRebuild || canScale;
  const findings = topology?.findings ?? [];

  return (
    <div className="overview">
      {(cluster.paused || (cluster.failover_mode === "automatic" && !cluster.failover_armed)) && (
        <div className="banner banner-info" role="note">
          {cluster.paused
            ? "This cluster is paused: dbpilot takes no automatic action on it (jobs you start still run)."
            : "Automatic failover was requested but is not armed yet: dbpilot will not fail over by itself until the adopt job succeeds."}
        </div>
      )}
      <section className="panel">
        <div className="panel-head">
          <h2>Topology</h2>
          <span className="muted small">
            epoch {topology?.epoch ?? "—"} · observed {formatRelative(topology?.updated_at)}
          </span>
        </div>
        <div className="actions-bar" role="group" aria-label="Cluster actions">
          <ActionButton label="Switchover…" availability={switchover} onClick={() => setDialog({ kind: "switchover" })} />
          <ActionButton label="Failover…" availability={failover} onClick={() => setDialog({ kind: "failover" })} danger />
          <ActionButton label="Reset failover control…" availability={reset} onClick={() => setDialog({ kind: "reset" })} />
          <ActionButton
            label="Add replica…"
            availability={{ visible: canScale, enabled: !scaleBlocked, reason: scaleBlocked }}
            onClick={() => setDialog({ kind: "add_replica" })}
          />
          {!canOperate && <span className="muted small">You have view-only access to this cluster; actions need the operator role.</span>}
        </div>
        {topology ? <TopologyGraph topology={topology} /> : <p className="muted" role="status">Waiting for the topology…</p>}
        <div className="legend" aria-hidden="true">
          <span className="legend-item legend-primary">primary</span>
          <span className="legend-item legend-up">up</span>
          <span className="legend-item legend-suspect">suspect</span>
          <span className="legend-item legend-down">down</span>
          <span className="legend-item legend-suspect">unreachable / auth failed</span>
          <span className="legend-item legend-maintenance">maintenance</span>
          <span className="legend-item legend-broken">replication stopped</span>
        </div>
      </section>

      {activeJob && (
        <section className="panel">
          <div className="panel-head">
            <h2>
              Running: {activeJob.kind} <Link to={`jobs/${activeJob.id}`}>job #{activeJob.id}</Link>
            </h2>
            <StateBadge state={activeJob.state} />
          </div>
          <JobSteps job={activeJob} />
        </section>
      )}

      <section className="panel">
        <h2>Servers</h2>
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Server</th>
              <th scope="col">Role</th>
              <th scope="col">State</th>
              <th scope="col">Read-only</th>
              <th scope="col">Replication</th>
              <th scope="col">GTID position</th>
              {rowActions && <th scope="col"><span className="visually-hidden">Actions</span></th>}
            </tr>
          </thead>
          <tbody>
            {(topology?.servers ?? []).map((s) => {
              const primary = topology ? isPrimaryServer(s, topology) : false;
              const r = s.replication;
              return (
                <tr key={s.id}>
                  <td className="mono">{addressOf(s)}</td>
                  <td>{primary ? <strong>primary</strong> : s.role}</td>
                  <td>
                    <StateBadge state={nodeStatus(s)} />
                    {s.quarantined && <span className="badge sev-error" title="Holds transactions the primary lacks">quarantined</span>}
                    {!s.quarantined && s.fenced && <span className="badge sev-warning" title="Left behind by a failover: kept read-only">fenced</span>}
                  </td>
                  <td>{s.read_only === null || s.read_only === undefined ? "—" : s.read_only ? "yes" : "no"}</td>
                  <td>
                    {r && r.source
                      ? `from ${r.source} · IO ${threadLabel(r.io_running)} · SQL ${threadLabel(r.sql_running)} · lag ${r.seconds_behind ?? "—"}s`
                      : "—"}
                  </td>
                  <td className="mono small" title={s.gtid_current_pos ?? ""}>{shortGtid(s.gtid_current_pos)}</td>
                  {rowActions && (
                    <td className="nowrap">
                      {maintenance.visible && (
                        <button type="button" className="btn btn-small" onClick={() => setDialog({ kind: "maintenance", server: s })}>
                          {s.maintenance ? "End maintenance…" : "Maintenance…"}
                        </button>
                      )}
                      {canScale && !primary && (
                        <button type="button" className="btn btn-small btn-danger-outline" onClick={() => setDialog({ kind: "remove_replica", server: s })}>
                          Remove…
                        </button>
                      )}
                      {canOperate && !primary && (s.quarantined || s.fenced) && (
                        <button type="button" className="btn btn-small" onClick={() => setDialog({ kind: "rejoin", server: s })}>
                          Rejoin…
                        </button>
                      )}
                      {canRebuild && !primary && (
                        <button type="button" className="btn btn-small" onClick={() => setDialog({ kind: "rebuild", server: s })}>
                          Rebuild…
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>

      <section className="panel">
        <h2>Findings</h2>
        {findings.length === 0 ? (
          <p className="muted">No open findings.</p>
        ) : (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Severity</th>
                <th scope="col">Code</th>
                <th scope="col">Server</th>
                <th scope="col">Message</th>
                <th scope="col">Open since</th>
              </tr>
            </thead>
            <tbody>
              {findings.map((f, i) => (
                <tr key={`${f.code}-${f.server_id ?? "cluster"}-${i}`}>
                  <td><SeverityBadge severity={f.severity} /></td>
                  <td><code>{f.code}</code></td>
                  <td className="mono">{f.server ?? "cluster"}</td>
                  <td>{f.message}</td>
                  <td className="nowrap">{formatTime(f.opened_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section className="panel">
        <div className="panel-head">
          <h2>Recent events</h2>
          <Link to="events">All events</Link>
        </div>
        <EventList events={events.slice(0, 10)} />
      </section>

      {dialog?.kind === "switchover" && (
        <SwitchoverDialog cluster={cluster} topology={topology} onJob={live.applyJob} onClose={() => setDialog(null)} />
      )}
      {dialog?.kind === "failover" && (
        <FailoverDialog cluster={cluster} topology={topology} onJob={live.applyJob} onClose={() => setDialog(null)} />
      )}
      {dialog?.kind === "reset" && (
        <ResetFailoverControlDialog cluster={cluster} onDone={() => void live.refresh()} onClose={() => setDialog(null)} />
      )}
      {dialog?.kind === "add_replica" && (
        <AddReplicaDialog cluster={cluster} onJob={live.applyJob} onClose={() => setDialog(null)} />
      )}
      {dialog?.kind === "remove_replica" && (
        <RemoveReplicaDialog cluster={cluster} server={dialog.server} onJob={live.applyJob} onClose={() => setDialog(null)} />
      )}
      {dialog?.kind === "rebuild" && (
        <RebuildDialog cluster={cluster} server={dialog.server} onJob={live.applyJob} onClose={() => setDialog(null)} />
      )}
      {dialog?.kind === "rejoin" && (
        <RejoinDialog cluster={cluster} server={dialog.server} onJob={live.applyJob} onClose={() => setDialog(null)} />
      )}
      {dialog?.kind === "maintenance" && (
        <MaintenanceDialog cluster={cluster} server={dialog.server} onDone={() => void live.refresh()} onClose={() => setDialog(null)} />
      )}
    </div>
  );
}
