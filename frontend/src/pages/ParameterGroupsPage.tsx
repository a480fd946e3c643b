/**
 * Parameter groups (like RDS's): named sets of allowlisted my.cnf settings, owned by the tenant. Everyone
 * in the tenant reads them; tenant admins create, change and delete them. Changing a group applies dynamic
 * settings live on every cluster using it and starts the jobs that need a rolling restart (listed with
 * links to them).
 */
import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { parameterGroups, type ParameterGroup } from "../api/endpoints";
import type { Job } from "../api/types";
import { useAuth } from "../auth";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ErrorMessage } from "../components/ErrorMessage";
import { canManageTenant } from "../lib/permissions";

/** `name = value` lines to a parameters object (blank lines and # comments ignored). */
export function parseParameters(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const at = line.indexOf("=");
    if (at < 0) throw new Error(`"${line}": write name = value`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

export function formatParameters(parameters: Record<string, unknown>): string {
  return Object.entries(parameters).map(([k, v]) => `${k} = ${String(v)}`).join("\n");
}

export function ParameterGroupsPage() {
  const { me } = useAuth();
  const admin = canManageTenant(me);
  const [groups, setGroups] = useState<ParameterGroup[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState<{ id: number | null; name: string; text: string } | null>(null);
  const [started, setStarted] = useState<Job[]>([]);
  const [deleting, setDeleting] = useState<ParameterGroup | null>(null);

  const load = useCallback(async () => {
    try {
      setGroups(await parameterGroups.list());
    } catch (exc) {
      setError(exc);
    }
  }, []);
  useEffect(() => void load(), [load]);

  const save = async (e: React.FormEvent) => {
    e.preventDefault();
    if (!editing) return;
    setError(null);
    try {
      const parameters = parseParameters(editing.text);
      if (editing.id === null) {
        await parameterGroups.create({ name: editing.name.trim(), parameters });
        setStarted([]);
      } else {
        const changed = await parameterGroups.update(editing.id, parameters);
        setStarted(changed.jobs ?? []);
      }
      setEditing(null);
      await load();
    } catch (exc) {
      setError(exc);
    }
  };

  return (
    <div>
      <div className="page-header">
        <h1>Parameter groups</h1>
        {admin && !editing && (
          <button type="button" className="btn btn-primary" onClick={() => setEditing({ id: null, name: "", text: "" })}>
            New parameter group
          </button>
        )}
      </div>
      <p className="muted">
        MariaDB settings shared by clusters (an allowlist with types and ranges). Dynamic settings are applied live when a group
        changes; static ones by a rolling restart (replicas first, then a switchover, then the old primary).
      </p>
      <ErrorMessage error={error} />
      {started.length > 0 && (
        <div className="alert alert-success" role="status">
          Jobs started:{" "}
          {started.map((j) => (
            <Link key={j.id} to={`/clusters/${j.cluster}/jobs/${j.id}`} className="mono">#{j.id} {j.kind} </Link>
          ))}
        </div>
      )}
      {editing && (
        <section className="panel">
          <h2>{editing.id === null ? "New parameter group" : `Change ${editing.name}`}</h2>
          <form onSubmit={save}>
            {editing.id === null && (
              <div className="field">
                <label htmlFor="pg-name">Name</label>
                <input id="pg-name" required placeholder="oltp-small" value={editing.name} onChange={(e) => setEditing({ ...editing, name: e.target.value })} />
              </div>
            )}
            <div className="field">
              <label htmlFor="pg-parameters">Settings, one <code>name = value</code> a line</label>
              <textarea
                id="pg-parameters"
                rows={8}
                className="mono"
                placeholder={"max_connections = 500\ninnodb_log_file_size = 256M"}
                value={editing.text}
                onChange={(e) => setEditing({ ...editing, text: e.target.value })}
              />
            </div>
            <button type="submit" className="btn btn-primary">{editing.id === null ? "Create" : "Save and apply"}</button>{" "}
            <button type="button" className="btn" onClick={() => setEditing(null)}>Cancel</button>
          </form>
        </section>
      )}
      <section className="panel">
        {groups && groups.length === 0 && <p className="muted">No parameter group yet.</p>}
        {groups && groups.length > 0 && (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th><th scope="col">Settings</th><th scope="col">Used by</th>
                {admin && <th scope="col"><span className="visually-hidden">Actions</span></th>}
              </tr>
            </thead>
            <tbody>
              {groups.map((g) => (
                <tr key={g.id}>
                  <td>{g.name}</td>
                  <td className="mono small"><pre>{formatParameters(g.parameters) || "—"}</pre></td>
                  <td>
                    {g.clusters.length === 0 ? "—" : g.clusters.map((c) => (
                      <div key={c.id}>
                        <Link to={`/clusters/${c.id}`}>{c.name}</Link>
                        {Object.keys(c.pending_restart ?? {}).length > 0 && <span className="badge state-pending"> restart pending</span>}
                      </div>
                    ))}
                  </td>
                  {admin && (
                    <td className="nowrap">
                      <button type="button" className="btn btn-small" onClick={() => setEditing({ id: g.id, name: g.name, text: formatParameters(g.parameters) })}>
                        Change…
                      </button>{" "}
                      <button type="button" className="btn btn-small btn-danger-outline" disabled={g.clusters.length > 0} title={g.clusters.length > 0 ? "used by a cluster" : undefined} onClick={() => setDeleting(g)}>
                        Delete…
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {deleting && (
        <ConfirmDialog
          title={`Delete parameter group ${deleting.name}`}
          confirmLabel="Delete"
          danger
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await parameterGroups.remove(deleting.id);
            await load();
          }}
        >
          <p>No cluster uses it. This cannot be undone.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}
