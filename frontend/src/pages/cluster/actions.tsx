/** The operator actions' confirmation dialogs: each says what will happen before anything does. */
import { useState } from "react";
import { useNavigate } from "react-router-dom";
import { clusters as clustersApi } from "../../api/endpoints";
import type { Cluster, Job, Topology, TopologyServer } from "../../api/types";
import { ConfirmDialog } from "../../components/ConfirmDialog";
import { switchoverCandidates } from "../../lib/permissions";
import { addressOf } from "../../lib/topologyLayout";

interface JobActionProps {
  cluster: Cluster;
  topology: Topology | null;
  onJob: (job: Job) => void;
  onClose: () => void;
}

function useGoToJob(clusterId: number, onJob: (job: Job) => void) {
  const navigate = useNavigate();
  return (job: Job) => {
    onJob(job);
    if (job && typeof job.id === "number") navigate(`/clusters/${clusterId}/jobs/${job.id}`);
  };
}

export function SwitchoverDialog({ cluster, topology, onJob, onClose }: JobActionProps) {
  const [candidate, setCandidate] = useState("");
  const goToJob = useGoToJob(cluster.id, onJob);
  const candidates = switchoverCandidates(topology);
  const oldPrimary = topology?.primary ?? cluster.primary ?? "the primary";
  const waitKill = Number(cluster.settings.switchover_wait_kill_ms ?? 5000);
  const waitTrx = Number(cluster.settings.switchover_wait_trx_seconds ?? 10);
  return (
    <ConfirmDialog
      title={`Switch over ${cluster.name}`}
      confirmLabel="Start switchover"
      onClose={onClose}
      onConfirm={async () => goToJob(await clustersApi.switchover(cluster.id, candidate || undefined))}
    >
      <label className="field">
        <span>New primary</span>
        <select value={candidate} onChange={(e) => setCandidate(e.target.value)}>
          <option value="">Let dbpilot choose the best replica</option>
          {candidates.map((c) => (
            <option key={c} value={c}>{c}</option>
          ))}
        </select>
      </label>
      <p>What will happen:</p>
      <ul>
        <li>The switchover is refused if a transaction or write on <strong className="mono">{oldPrimary}</strong> is older than {waitTrx} s.</li>
        <li><strong className="mono">{oldPrimary}</strong> is made read-only; its idle sessions are killed at once and in-flight writes get {waitKill} ms to finish.</li>
        <li><strong className="mono">{candidate || "the chosen replica"}</strong> catches up to the old primary's last transaction, then is promoted and made writable.</li>
        <li>The other replicas and <span className="mono">{oldPrimary}</span> replicate from the new primary; routes are updated.</li>
      </ul>
      <p className="muted">Applications see writes refused for a few seconds. No acknowledged transaction is lost.</p>
    </ConfirmDialog>
  );
}

export function FailoverDialog({ cluster, topology, onJob, onClose }: JobActionProps) {
  const [candidate, setCandidate] = useState("");
  const goToJob = useGoToJob(cluster.id, onJob);
  const replicas = (topology?.servers ?? []).filter((s) => addressOf(s) !== topology?.primary).map(addressOf);
  const oldPrimary = topology?.primary ?? cluster.primary ?? "the old primary";
  return (
    <ConfirmDialog
      title={`Manual failover of ${cluster.name}`}
      confirmLabel="Start failover"
      danger
      onClose={onClose}
      onConfirm={async () => goToJob(await clustersApi.failover(cluster.id, candidate || undefined))}
    >
      <label className="field">
        <span>New primary</span>
        <select value={candidate} onChange={(e) => setCandidate(e.target.value)}>
          <option value="">Let dbpilot choose the most up-to-date replica</option>
          {replicas.map((c) => (
            <option key={c} value={c}>{c}</option>
          ))}
        </select>
      </label>
      <p>Use failover when the primary is <strong>down</strong>; a live primary is refused (use switchover). What will happen:</p>
      <ul>
        <li><span className="mono">{oldPrimary}</span> is fenced first (made read-only, or the fence hook runs) so it cannot take writes if it returns.</li>
        <li>The candidate applies its whole relay log, catching up from any survivor that is ahead, then becomes the writable primary.</li>
        <li>The other replicas replicate from it; routes are updated.</li>
      </ul>
      <p className="warning-text">Transactions the old primary committed but never sent to a replica may be lost; the job result lists what the survivors hold.</p>
    </ConfirmDialog>
  );
}

export function MaintenanceDialog({ cluster, server, onDone, onClose }: { cluster: Cluster; server: TopologyServer; onDone: () => void; onClose: () => void }) {
  const turnOn = !server.maintenance;
  const address = addressOf(server);
  return (
    <ConfirmDialog
      title={turnOn ? `Put ${address} in maintenance` : `End maintenance of ${address}`}
      confirmLabel={turnOn ? "Start maintenance" : "End maintenance"}
      onClose={onClose}
      onConfirm={async () => {
        await clustersApi.maintenance(cluster.id, server.id, turnOn);
        onDone();
      }}
    >
      {turnOn ? (
        <ul>
          <li>dbpilot stops treating problems on <span className="mono">{address}</span> as reasons to act: it is never chosen as a switchover or failover candidate while in maintenance.</li>
          <li>Replication and the server itself are not changed: you can restart or upgrade it.</li>
        </ul>
      ) : (
        <ul>
          <li><span className="mono">{address}</span> is monitored and acted on normally again, and can be elected as a candidate.</li>
        </ul>
      )}
    </ConfirmDialog>
  );
}

export function ResetFailoverControlDialog({ cluster, onDone, onClose }: { cluster: Cluster; onDone: () => void; onClose: () => void }) {
  const limit = cluster.settings.failover_limit ?? 3;
  const window = cluster.settings.failover_window_seconds ?? 3600;
  const minInterval = cluster.settings.failover_min_interval_seconds ?? 60;
  return (
    <ConfirmDialog
      title={`Reset failover control of ${cluster.name}`}
      confirmLabel="Reset failover control"
      onClose={onClose}
      onConfirm={async () => {
        await clustersApi.resetFailoverControl(cluster.id);
        onDone();
      }}
    >
      <ul>
        <li>Clears the count of recent failovers (limit {String(limit)} in {String(window)} s) and the minimum interval ({String(minInterval)} s) between them.</li>
        <li>Automatic failover can then act again on this cluster if its primary fails (when the cluster is automatic, armed and not paused).</li>
      </ul>
      <p className="muted">Do this once you know why the previous failovers happened.</p>
    </ConfirmDialog>
  );
}

/** Add a replica to a provisioned cluster (tenant admins): placed, cloned from a replica, replicating. */
export function AddReplicaDialog({ cluster, onJob, onClose }: Omit<JobActionProps, "topology">) {
  const [host, setHost] = useState("");
  const goToJob = useGoToJob(cluster.id, onJob);
  return (
    <ConfirmDialog
      title={`Add a replica to ${cluster.name}`}
      confirmLabel="Add replica"
      onClose={onClose}
      onConfirm={async () => goToJob(await clustersApi.addReplica(cluster.id, host.trim() || undefined))}
    >
      <label className="field">
        <span>Database host (optional, <code>hosts</code> provider only)</span>
        <input value={host} placeholder="let dbpilot place it" onChange={(e) => setHost(e.target.value)} />
      </label>
      <ul>
        <li>A new server is placed (with the <code>hosts</code> provider: on a host that runs no server of this cluster, zones spread, least loaded first).</li>
        <li>Its data is a <code>mariadb-backup</code> copy of a replica (the primary only when there is no replica): the primary is not slowed.</li>
        <li>It replicates from the primary from the copy's GTID position, acknowledges semi-sync when the cluster uses it, then is monitored.</li>
      </ul>
      <p className="muted">It counts against your tenant's server and memory quota.</p>
    </ConfirmDialog>
  );
}

/** Remove a replica with its data (tenant admins); the primary is refused: switch over first. */
export function RemoveReplicaDialog({ cluster, server, onJob, onClose }: { cluster: Cluster; server: TopologyServer; onJob: (job: Job) => void; onClose: () => void }) {
  const goToJob = useGoToJob(cluster.id, onJob);
  const address = addressOf(server);
  return (
    <ConfirmDialog
      title={`Remove ${address}`}
      confirmLabel="Remove replica"
      danger
      onClose={onClose}
      onConfirm={async () => goToJob(await clustersApi.removeReplica(cluster.id, server.id))}
    >
      <ul>
        <li>dbpilot stops monitoring <span className="mono">{address}</span>, then stops it and deletes its data.</li>
        <li>The other servers are not touched.</li>
      </ul>
      <p className="warning-text">This cannot be undone.</p>
    </ConfirmDialog>
  );
}

/** Rebuild (docs/repair.md): the server is wiped and cloned again from a healthy replica. */
export function RebuildDialog({ cluster, server, onJob, onClose }: { cluster: Cluster; server: TopologyServer; onJob: (job: Job) => void; onClose: () => void }) {
  const address = addressOf(server);
  const goToJob = useGoToJob(cluster.id, onJob);
  return (
    <ConfirmDialog
      title={`Rebuild ${address}`}
      confirmLabel="Rebuild"
      danger
      onClose={onClose}
      onConfirm={async () => goToJob(await clustersApi.rebuild(cluster.id, server.id))}
    >
      <ul>
        <li>All data on <span className="mono">{address}</span> is deleted; its address and server id stay.</li>
        <li>It is cloned again with mariadb-backup from a healthy replica (the primary when there is none), then replicates from the primary by GTID.</li>
        <li>Its fence and quarantine are cleared once it replicates.</li>
      </ul>
    </ConfirmDialog>
  );
}

/** A quarantined (or fenced) server: rejoin by flashback (discard its extra transactions, their SQL kept) or reseed. */
export function RejoinDialog({ cluster, server, onJob, onClose }: { cluster: Cluster; server: TopologyServer; onJob: (job: Job) => void; onClose: () => void }) {
  const address = addressOf(server);
  const [method, setMethod] = useState<"flashback" | "reseed">("flashback");
  const goToJob = useGoToJob(cluster.id, onJob);
  return (
    <ConfirmDialog
      title={`Rejoin ${address}`}
      confirmLabel={method === "flashback" ? "Roll back and rejoin" : "Rebuild and rejoin"}
      danger
      onClose={onClose}
      onConfirm={async () => goToJob(await clustersApi.rejoin(cluster.id, server.id, method))}
    >
      <p>
        <span className="mono">{address}</span> holds transactions the primary never received. Its quarantine is cleared and a rejoin job
        tries a plain GTID rejoin first, then:
      </p>
      <fieldset className="choices">
        <legend className="visually-hidden">Rejoin method</legend>
        <label>
          <input type="radio" name="rejoin-method" value="flashback" checked={method === "flashback"} onChange={() => setMethod("flashback")} />{" "}
          <strong>Flashback</strong>: roll back exactly those transactions (mariadb-binlog --flashback). Their SQL is saved on the job first,
          and an event names their GTIDs. Refused (then quarantined again) for DDL, purged binlogs or too many events.
        </label>
        <label>
          <input type="radio" name="rejoin-method" value="reseed" checked={method === "reseed"} onChange={() => setMethod("reseed")} />{" "}
          <strong>Reseed</strong>: wipe it and clone it again from a healthy replica (provisioned clusters only).
        </label>
      </fieldset>
    </ConfirmDialog>
  );
}
