/** Alert subscriptions (tenant admins): create (a webhook's signing secret is shown once), send a test
 * alert, see deliveries, enable/disable, delete. */
import { Fragment, useCallback, useEffect, useState } from "react";
import { alerts as alertsApi, resultsOf } from "../api/endpoints";
import type { AlertDelivery, AlertSubscription } from "../api/types";
import { useAuth } from "../auth";
import { ErrorMessage } from "../components/ErrorMessage";
import { formatTime } from "../lib/format";
import { canManageTenant } from "../lib/permissions";

const list = (text: string) => text.split(",").map((s) => s.trim()).filter(Boolean);

function Deliveries({ sub }: { sub: AlertSubscription }) {
  const [rows, setRows] = useState<AlertDelivery[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(async () => {
    try {
      setRows(resultsOf(await alertsApi.deliveries(sub.id)));
    } catch (exc) {
      setError(exc);
    }
  }, [sub.id]);
  useEffect(() => void load(), [load]);
  if (error) return <ErrorMessage error={error} />;
  if (!rows) return <div className="muted">Loading deliveries…</div>;
  if (!rows.length) return <div className="muted">No deliveries yet.</div>;
  return (
    <table className="deliveries">
      <thead><tr><th>when</th><th>kind</th><th>state</th><th>attempts</th><th>alert</th><th>last error</th></tr></thead>
      <tbody>
        {rows.map((d) => (
          <tr key={d.id} data-state={d.state}>
            <td>{formatTime(d.created_at)}</td><td>{d.kind}</td><td>{d.state}</td><td>{d.attempts}</td>
            <td>{d.title ?? "—"}</td><td className="muted">{d.last_error || (d.last_status ? `HTTP ${d.last_status}` : "")}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function AlertsPage() {
  const { me } = useAuth();
  const [subs, setSubs] = useState<AlertSubscription[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<AlertSubscription | null>(null);
  const [open, setOpen] = useState<number | null>(null);
  const [message, setMessage] = useState("");
  const [form, setForm] = useState({ name: "", channel: "webhook", target: "", payload_format: "json", severities: "", codes: "", jobs: "", clusters: "" });

  const load = useCallback(async () => {
    try {
      setSubs(resultsOf(await alertsApi.list()));
    } catch (exc) {
      setError(exc);
    }
  }, []);
  useEffect(() => void load(), [load]);
  if (!canManageTenant(me)) return <div className="alert">Alert subscriptions are managed by tenant admins.</div>;

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const sub = await alertsApi.create({
        name: form.name, channel: form.channel as AlertSubscription["channel"], target: form.target,
        payload_format: form.payload_format as AlertSubscription["payload_format"], severities: list(form.severities),
        codes: list(form.codes), jobs: list(form.jobs), clusters: list(form.clusters).map(Number),
      });
      setCreated(sub);
      setForm({ ...form, name: "", target: "" });
      await load();
    } catch (exc) {
      setError(exc);
    }
  };
  const act = async (what: () => Promise<unknown>, done: string) => {
    try {
      await what();
      setMessage(done);
      await load();
    } catch (exc) {
      setError(exc);
    }
  };

  return (
    <div>
      <h1>Alerts</h1>
      <ErrorMessage error={error} />
      {message && <div className="alert" role="status">{message}</div>}
      {created?.secret && (
        <div className="alert alert-success" role="status">
          Signing secret of <strong>{created.name}</strong> (shown once; receivers check <code>X-Dbpilot-Signature</code> with it):{" "}
          <code id="new-alert-secret">{created.secret}</code>
        </div>
      )}
      <section className="panel">
        <h2>Subscriptions</h2>
        {!subs ? <div className="muted">Loading…</div> : subs.length === 0 ? <div className="muted">None yet.</div> : (
          <table className="subscriptions">
            <thead><tr><th>name</th><th>channel</th><th>target</th><th>filters</th><th>enabled</th><th /></tr></thead>
            <tbody>
              {subs.map((s) => (
                <Fragment key={s.id}>
                  <tr data-subscription={s.name}>
                    <td>{s.name}</td><td>{s.channel}{s.channel === "webhook" ? ` (${s.payload_format})` : ""}</td><td className="mono">{s.target}</td>
                    <td className="muted">
                      {[s.clusters.length ? `clusters ${s.clusters.join(", ")}` : "all clusters", s.severities.length ? s.severities.join("/") : "",
                        s.codes.length ? s.codes.join(", ") : "", s.jobs.length ? `jobs ${s.jobs.join(", ")}` : ""].filter(Boolean).join(" · ")}
                    </td>
                    <td>{s.enabled ? "yes" : "no"}</td>
                    <td className="actions">
                      <button type="button" className="btn btn-small" onClick={() => act(() => alertsApi.test(s.id), `Test alert sent to ${s.target}.`)}>Send test alert</button>{" "}
                      <button type="button" className="btn btn-small" onClick={() => setOpen(open === s.id ? null : s.id)}>Deliveries</button>{" "}
                      <button type="button" className="btn btn-small" onClick={() => act(() => alertsApi.patch(s.id, { enabled: !s.enabled }), s.enabled ? "Disabled." : "Enabled.")}>{s.enabled ? "Disable" : "Enable"}</button>{" "}
                      <button type="button" className="btn btn-small btn-danger" onClick={() => act(() => alertsApi.remove(s.id), `Deleted ${s.name}.`)}>Delete</button>
                    </td>
                  </tr>
                  {open === s.id && <tr><td colSpan={6}><Deliveries sub={s} /></td></tr>}
                </Fragment>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section className="panel">
        <h2>New subscription</h2>
        <form onSubmit={submit} className="form-grid">
          <label>Name <input required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} /></label>
          <label>Channel{" "}
            <select value={form.channel} onChange={(e) => setForm({ ...form, channel: e.target.value })}>
              <option value="webhook">webhook</option><option value="email">email</option>
            </select>
          </label>
          <label>{form.channel === "webhook" ? "URL" : "Address"} <input required value={form.target} onChange={(e) => setForm({ ...form, target: e.target.value })} /></label>
          {form.channel === "webhook" && (
            <label>Payload{" "}
              <select value={form.payload_format} onChange={(e) => setForm({ ...form, payload_format: e.target.value })}>
                <option value="json">dbpilot JSON</option><option value="slack">Slack-compatible</option>
              </select>
            </label>
          )}
          <label>Cluster ids (empty: all) <input value={form.clusters} onChange={(e) => setForm({ ...form, clusters: e.target.value })} placeholder="e.g. 3, 7" /></label>
          <label>Severities (empty: all) <input value={form.severities} onChange={(e) => setForm({ ...form, severities: e.target.value })} placeholder="error, critical" /></label>
          <label>Finding codes (empty: all) <input value={form.codes} onChange={(e) => setForm({ ...form, codes: e.target.value })} /></label>
          <label>Jobs (empty: failovers and failures) <input value={form.jobs} onChange={(e) => setForm({ ...form, jobs: e.target.value })} placeholder="failover, switchover_failed" /></label>
          <button type="submit" className="btn btn-primary">Subscribe</button>
        </form>
      </section>
    </div>
  );
}
