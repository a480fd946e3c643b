/** Settings: everyone reads them; admins change them (PATCH, 400 messages next to their field) and may delete. */
import { useEffect, useMemo, useState } from "react";
import { useNavigate } from "react-router-dom";
import { ApiError } from "../../api/client";
import { clusters as clustersApi } from "../../api/endpoints";
import { ConfirmDialog } from "../../components/ConfirmDialog";
import { ErrorMessage } from "../../components/ErrorMessage";
import { actionAvailability } from "../../lib/permissions";
import { changedSettings, errorsForSetting, metaFor, toFormValue } from "../../lib/settingsForm";
import { useClusterPage } from "./context";

export function SettingsTab() {
  const { live, role } = useClusterPage();
  const cluster = live.cluster;
  const navigate = useNavigate();
  const settings = useMemo(() => cluster?.settings ?? {}, [cluster]);
  const initialForm = useMemo(
    () => Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, toFormValue(metaFor(k, v).kind, v)])),
    [settings],
  );
  const [form, setForm] = useState<Record<string, string | boolean>>(initialForm);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [deleteName, setDeleteName] = useState("");
  useEffect(() => setForm(initialForm), [initialForm]);
  if (!cluster) return null;
  const canEdit = actionAvailability("settings", { role, topology: live.topology }).visible;
  const canDelete = actionAvailability("delete", { role, topology: live.topology }).visible;
  const changes = changedSettings(settings, form);
  const fieldErrors = error instanceof ApiError ? error.fieldErrors : {};

  const save = async (e: React.FormEvent) => {
    e.preventDefault();
    setSaving(true);
    setError(null);
    setSaved(null);
    try {
      const updated = await clustersApi.patch(cluster.id, { settings: changes });
      live.setCluster(updated);
      if (updated.job) live.applyJob(updated.job);
      setSaved(`Saved ${Object.keys(changes).join(", ")}.${updated.job ? ` Started ${updated.job.kind} job #${updated.job.id}.` : ""}`);
    } catch (exc) {
      setError(exc);
    } finally {
      setSaving(false);
    }
  };

  const keys = Object.keys(settings);
  return (
    <section className="panel">
      <h2>Settings</h2>
      {!canEdit && <p className="muted">Only cluster admins can change settings; you are {role ? `a ${role}` : "not a member"}.</p>}
      <form onSubmit={save} className="settings-form" aria-label="Cluster settings">
        <fieldset disabled={!canEdit || saving}>
          <div className="settings-grid">
            {keys.map((key) => {
              const meta = metaFor(key, settings[key]);
              const id = `setting-${key}`;
              const errs = errorsForSetting(fieldErrors, key);
              const value = form[key];
              return (
                <div key={key} className={`field ${errs.length ? "has-error" : ""}`}>
                  {meta.kind === "boolean" ? (
                    <label className="checkbox" htmlFor={id}>
                      <input id={id} type="checkbox" checked={Boolean(value)} onChange={(e) => setForm({ ...form, [key]: e.target.checked })} />
                      {meta.label}
                    </label>
                  ) : (
                    <>
                      <label htmlFor={id}>{meta.label}</label>
                      {meta.kind === "choice" ? (
                        <select id={id} value={String(value)} onChange={(e) => setForm({ ...form, [key]: e.target.value })}>
                          {[...new Set([...(meta.choices ?? []), String(value)])].map((c) => (
                            <option key={c} value={c}>{c}</option>
                          ))}
                        </select>
                      ) : (
                        <input
                          id={id}
                          type={meta.kind === "number" ? "number" : "text"}
                          step="any"
                          value={String(value ?? "")}
                          onChange={(e) => setForm({ ...form, [key]: e.target.value })}
                        />
                      )}
                    </>
                  )}
                  {meta.help && <small className="help">{meta.help}</small>}
                  {errs.map((m) => (
                    <small key={m} className="field-error" role="alert">{m}</small>
                  ))}
                </div>
              );
            })}
          </div>
          {canEdit && (
            <div className="form-actions">
              <button type="submit" className="btn btn-primary" disabled={Object.keys(changes).length === 0}>
                {saving ? "Saving…" : "Save changes"}
              </button>
              <button type="button" className="btn" onClick={() => { setForm(initialForm); setError(null); }} disabled={Object.keys(changes).length === 0}>
                Discard
              </button>
              {changes.failover_mode === "automatic" && (
                <span className="warning-text">Switching to automatic starts the adopt job, which changes replication settings on the servers.</span>
              )}
            </div>
          )}
        </fieldset>
      </form>
      <ErrorMessage error={error} title="The settings were not saved." />
      {saved && <p className="alert alert-success" role="status">{saved}</p>}

      {canDelete && (
        <div className="danger-zone">
          <h3>Delete this cluster</h3>
          <p>dbpilot stops managing it and forgets its inventory, events and jobs. The database servers are not touched.</p>
          <button type="button" className="btn btn-danger-outline" onClick={() => setConfirmDelete(true)}>Delete cluster…</button>
        </div>
      )}
      {confirmDelete && (
        <ConfirmDialog
          title={`Delete ${cluster.name}`}
          confirmLabel="Delete cluster"
          danger
          confirmDisabled={deleteName !== cluster.name}
          onClose={() => { setConfirmDelete(false); setDeleteName(""); }}
          onConfirm={async () => {
            await clustersApi.remove(cluster.id);
            navigate("/clusters", { replace: true });
          }}
        >
          <p>dbpilot will stop monitoring <strong>{cluster.name}</strong> and delete its record, events and jobs. Deletion protection, if on, refuses this.</p>
          <label className="field">
            <span>Type the cluster's name to confirm</span>
            <input value={deleteName} onChange={(e) => setDeleteName(e.target.value)} autoComplete="off" />
          </label>
        </ConfirmDialog>
      )}
    </section>
  );
}
