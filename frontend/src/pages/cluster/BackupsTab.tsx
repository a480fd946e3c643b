/** Backups: the list (size, duration, verified), "Back up now", and "Restore to a new cluster" with a time
 * picker limited to the recoverable range (docs/backups.md). */
import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { ApiError } from "../../api/client";
import { backups as backupsApi, type Backup, type ClusterBackups } from "../../api/endpoints";
import { ErrorMessage } from "../../components/ErrorMessage";
import { fromPickerValue, insideWindow, toPickerValue } from "../../lib/backupWindow";
import { formatTime } from "../../lib/format";
import { roleAllows } from "../../lib/permissions";
import { useClusterPage } from "./context";

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function Verified({ backup }: { backup: Backup }) {
  if (backup.verified === null) return <span className="badge">not verified yet</span>;
  return (
    <span className={`badge ${backup.verified ? "state-succeeded" : "state-failed"}`} title={backup.verified_reason}>
      {backup.verified ? "verified" : "failed verification"}
    </span>
  );
}

export function BackupsTab() {
  const { clusterId, role } = useClusterPage();
  const [data, setData] = useState<ClusterBackups | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [mode, setMode] = useState<"time" | "backup">("time");
  const [time, setTime] = useState("");
  const [backupId, setBackupId] = useState("");
  const [replicas, setReplicas] = useState("1");
  const [created, setCreated] = useState<{ id: number; name: string } | null>(null);

  const load = useCallback(async () => {
    try {
      setData(await backupsApi.ofCluster(clusterId));
      setLoadError(null);
    } catch (exc) {
      setLoadError(exc);
    }
  }, [clusterId]);
  useEffect(() => void load(), [load]);

  const backUpNow = async () => {
    setBusy(true);
    setError(null);
    try {
      const job = await backupsApi.backUp(clusterId);
      setNotice(`Backup job #${job.id} started.`);
      await load();
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };

  const window = data?.recoverable ?? { start: null, end: null };
  const restore = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body: Record<string, unknown> = { name, provision: { replicas: Number(replicas) } };
    if (mode === "time") body.time = fromPickerValue(time);
    else body.backup = Number(backupId);
    try {
      const cluster = await backupsApi.restore(clusterId, body);
      setCreated({ id: cluster.id, name: cluster.name });
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };
  const fieldErrors = error instanceof ApiError ? error.fieldErrors : {};
  const completed = (data?.results ?? []).filter((b) => b.status === "completed" && b.verified !== false && b.kind === "physical");

  return (
    <section className="panel">
      <h2>Backups</h2>
      <ErrorMessage error={loadError} title="Could not load the backups." />
      {data && (
        <p className="muted">
          {data.method === "physical"
            ? "Physical backups (mariadb-backup) from a replica; binary logs archived continuously."
            : "Logical backups (mariadb-dump): this registered cluster's servers are not run by dbpilot."}{" "}
          Recoverable:{" "}
          {window.start && window.end ? `${formatTime(window.start)} – ${formatTime(window.end)}` : "nothing yet"}
        </p>
      )}
      {roleAllows(role, "operator") && (
        <button type="button" className="btn btn-primary" disabled={busy} onClick={backUpNow}>
          Back up now
        </button>
      )}
      {notice && <p role="status">{notice}</p>}
      {data && data.results.length === 0 && <p className="muted">No backups yet.</p>}
      {data && data.results.length > 0 && (
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Backup</th>
              <th scope="col">Kind</th>
              <th scope="col">Status</th>
              <th scope="col">Size</th>
              <th scope="col">Duration</th>
              <th scope="col">Started</th>
              <th scope="col">Verified</th>
            </tr>
          </thead>
          <tbody>
            {data.results.map((b) => (
              <tr key={b.id}>
                <td>#{b.id}</td>
                <td>{b.kind}</td>
                <td title={b.error || undefined}>{b.status}</td>
                <td>{megabytes(b.size_bytes)} <span className="muted small">({megabytes(b.raw_bytes)} raw)</span></td>
                <td>{b.duration_seconds === null ? "—" : `${b.duration_seconds} s`}</td>
                <td className="nowrap">{formatTime(b.started_at)}</td>
                <td><Verified backup={b} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {roleAllows(role, "admin") && data && (
        <>
          <h3>Restore to a new cluster</h3>
          <form onSubmit={restore}>
            <fieldset disabled={busy}>
              <div className="field">
                <label htmlFor="restore-name">New cluster name *</label>
                <input id="restore-name" required value={name} onChange={(e) => setName(e.target.value)} />
                {(fieldErrors.name ?? []).map((m) => <small key={m} className="field-error">{m}</small>)}
              </div>
              <div className="field">
                <label htmlFor="restore-mode">Restore</label>
                <select id="restore-mode" value={mode} onChange={(e) => setMode(e.target.value as "time" | "backup")}>
                  <option value="time">to a point in time</option>
                  <option value="backup">a backup as it is</option>
                </select>
              </div>
              {mode === "time" ? (
                <div className="field">
                  <label htmlFor="restore-time">Time (UTC) *</label>
                  <input
                    id="restore-time"
                    type="datetime-local"
                    step={1}
                    required
                    min={toPickerValue(window.start)}
                    max={toPickerValue(window.end)}
                    value={time}
                    onChange={(e) => setTime(e.target.value)}
                  />
                  {time && !insideWindow(time, window) && (
                    <small className="field-error">outside the recoverable window</small>
                  )}
                  {(fieldErrors.time ?? []).map((m) => <small key={m} className="field-error">{m}</small>)}
                </div>
              ) : (
                <div className="field">
                  <label htmlFor="restore-backup">Backup *</label>
                  <select id="restore-backup" required value={backupId} onChange={(e) => setBackupId(e.target.value)}>
                    <option value="">choose…</option>
                    {completed.map((b) => (
                      <option key={b.id} value={b.id}>#{b.id} — {formatTime(b.ended_at)}</option>
                    ))}
                  </select>
                  {(fieldErrors.backup ?? []).map((m) => <small key={m} className="field-error">{m}</small>)}
                </div>
              )}
              <div className="field">
                <label htmlFor="restore-replicas">Replicas</label>
                <input id="restore-replicas" type="number" min={0} max={8} value={replicas} onChange={(e) => setReplicas(e.target.value)} />
              </div>
              <button type="submit" className="btn btn-primary" disabled={mode === "time" && !insideWindow(time, window)}>
                {busy ? "Restoring…" : "Restore"}
              </button>
            </fieldset>
          </form>
          {created && (
            <p role="status">
              Cluster <Link to={`/clusters/${created.id}`}>{created.name}</Link> is being restored.
            </p>
          )}
        </>
      )}
      <ErrorMessage error={error} title="That did not work." />
    </section>
  );
}
