/**
 * The `hosts` provider's pool of database hosts (platform operators only): each host with its zone,
 * capacity, servers placed and whether its agent answers (down: nothing new is placed there). Registering
 * a host shows its agent key once, with the command that starts the agent (docs/provisioning.md).
 */
import { useCallback, useEffect, useState } from "react";
import { platform, type DatabaseHost, type RegisteredHost } from "../api/endpoints";
import { useAuth } from "../auth";
import { ErrorMessage } from "../components/ErrorMessage";
import { formatRelative } from "../lib/format";

const EMPTY = { name: "", address: "", zone: "", instances: "8", memory_mb: "32768" };

export function agentCommand(host: { name: string }, key: string): string {
  return (
    `DBPILOT_AGENT_HOST=${host.name} DBPILOT_AGENT_KEY=${key} REDIS_URL=redis://BROKER:6379/0 \\\n` +
    `  celery -A controlplane worker -Q host.${host.name} -c 2 -n agent@${host.name}`
  );
}

export function HostsPage() {
  const { me } = useAuth();
  const [hosts, setHosts] = useState<DatabaseHost[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [form, setForm] = useState(EMPTY);
  const [registered, setRegistered] = useState<RegisteredHost | null>(null);

  const load = useCallback(async () => {
    try {
      setHosts(await platform.hosts());
    } catch (exc) {
      setError(exc);
    }
  }, []);
  useEffect(() => {
    if (!me?.is_operator) return undefined;
    void load();
    const timer = window.setInterval(() => void load(), 5000); // a host going down shows within seconds
    return () => window.clearInterval(timer);
  }, [load, me?.is_operator]);

  if (!me?.is_operator) {
    return <section className="panel"><h1>Database hosts</h1><p>Only platform operators manage the host pool.</p></section>;
  }

  const register = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const host = await platform.registerHost({
        name: form.name.trim(),
        address: form.address.trim(),
        zone: form.zone.trim(),
        capacity: { instances: Number(form.instances), memory_mb: Number(form.memory_mb) },
      });
      setRegistered(host);
      setForm(EMPTY);
      await load();
    } catch (exc) {
      setError(exc);
    }
  };

  return (
    <div>
      <div className="page-header"><h1>Database hosts</h1></div>
      <p className="muted">
        The <code>hosts</code> provider places one server of a cluster per host, zones spread, within capacity, least
        loaded first. Each host runs a dbpilot agent; a host whose agent stops answering is marked down and takes nothing new.
      </p>
      {registered && (
        <div className="alert alert-success token-once" role="status">
          <strong>Host {registered.name} registered.</strong> Start its agent with this key now: it will not be shown again.
          <pre className="token-value"><code id="new-agent-command">{agentCommand(registered, registered.agent_key)}</code></pre>
          <button type="button" className="btn btn-small" onClick={() => setRegistered(null)}>I have saved it</button>
        </div>
      )}
      <ErrorMessage error={error} />
      <section className="panel">
        <h2>Register a host</h2>
        <form className="token-form" onSubmit={register}>
          <div className="field">
            <label htmlFor="host-name">Name</label>
            <input id="host-name" required placeholder="db1" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
          </div>
          <div className="field">
            <label htmlFor="host-address">Address</label>
            <input id="host-address" required placeholder="10.0.0.11" value={form.address} onChange={(e) => setForm({ ...form, address: e.target.value })} />
          </div>
          <div className="field">
            <label htmlFor="host-zone">Zone</label>
            <input id="host-zone" required placeholder="zone-a" value={form.zone} onChange={(e) => setForm({ ...form, zone: e.target.value })} />
          </div>
          <div className="field">
            <label htmlFor="host-instances">Servers at most</label>
            <input id="host-instances" type="number" min={1} max={1000} required value={form.instances} onChange={(e) => setForm({ ...form, instances: e.target.value })} />
          </div>
          <div className="field">
            <label htmlFor="host-memory">Memory (MB)</label>
            <input id="host-memory" type="number" min={256} required value={form.memory_mb} onChange={(e) => setForm({ ...form, memory_mb: e.target.value })} />
          </div>
          <button type="submit" className="btn btn-primary">Register host</button>
        </form>
      </section>
      <section className="panel">
        <h2>Pool</h2>
        {hosts && hosts.length === 0 && <p className="muted">No host registered.</p>}
        {hosts && hosts.length > 0 && (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th><th scope="col">Address</th><th scope="col">Zone</th><th scope="col">Servers</th>
                <th scope="col">Memory</th><th scope="col">Agent</th><th scope="col">Last answer</th>
              </tr>
            </thead>
            <tbody>
              {hosts.map((h) => (
                <tr key={h.id}>
                  <td>{h.name}</td>
                  <td className="mono">{h.address}</td>
                  <td>{h.zone}</td>
                  <td>{h.instances} / {h.capacity.instances}</td>
                  <td>{h.capacity.memory_mb} MB</td>
                  <td>{h.down ? <span className="badge state-failed">down</span> : <span className="badge state-ok">up</span>}</td>
                  <td>{formatRelative(h.last_seen_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
