/**
 * "Create cluster": provisions a new cluster through POST /api/v1/clusters/ with a `provision` spec,
 * then opens its provision job, whose steps the job page follows live.
 */
import { useEffect, useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";
import { clusters as clustersApi, quota as quotaApi } from "../api/endpoints";
import { ErrorMessage } from "./ErrorMessage";

export function CreateClusterForm({ onClose }: { onClose: () => void }) {
  const navigate = useNavigate();
  const [name, setName] = useState("");
  // The platform's providers (DBPILOT_PROVIDERS, from the quota endpoint); `local` until they are known.
  const [providers, setProviders] = useState<string[]>(["local"]);
  const [provider, setProvider] = useState("local");
  const [replicas, setReplicas] = useState(2);
  const [semiSync, setSemiSync] = useState(true);
  const [parameterGroup, setParameterGroup] = useState("");
  const [memory, setMemory] = useState(256);
  const [user, setUser] = useState("owner");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let live = true;
    quotaApi
      .get()
      .then((q) => {
        if (!live || !q.providers?.length) return;
        setProviders(q.providers);
        setProvider((current) => (q.providers.includes(current) ? current : q.providers[0]));
      })
      .catch(() => undefined); // the form still offers `local`; the API says if it is not enabled
    return () => {
      live = false;
    };
  }, []);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const provision: Record<string, unknown> = {
        provider,
        replicas,
        semi_sync: replicas > 0 && semiSync,
        master_user: { user, password },
        size: { memory_mb: memory },
      };
      if (parameterGroup) provision.parameter_group = parameterGroup;
      const cluster = await clustersApi.provision({ name, provision });
      navigate(cluster.job ? `/clusters/${cluster.id}/jobs/${cluster.job.id}` : `/clusters/${cluster.id}`);
    } catch (exc) {
      setError(exc);
      setBusy(false);
    }
  }

  return (
    <section className="panel">
      <h2>Create cluster</h2>
      <form className="route-form create-cluster-form" onSubmit={submit} aria-label="Create cluster">
        <fieldset disabled={busy}>
          <div className="field"><label htmlFor="cc-name">Name</label>
            <input id="cc-name" value={name} onChange={(e) => setName(e.target.value)} required pattern="[a-z0-9]([a-z0-9\-]*[a-z0-9])?" /></div>
          <div className="field"><label htmlFor="cc-provider">Provider</label>
            <select id="cc-provider" value={provider} disabled={providers.length < 2} onChange={(e) => setProvider(e.target.value)}>
              {providers.map((name) => <option key={name} value={name}>{name}</option>)}
            </select></div>
          <div className="field"><label htmlFor="cc-replicas">Replicas</label>
            <input id="cc-replicas" type="number" min={0} max={8} value={replicas} onChange={(e) => setReplicas(Number(e.target.value))} /></div>
          <div className="field"><label htmlFor="cc-semisync">Semi-sync</label>
            <input id="cc-semisync" type="checkbox" checked={replicas > 0 && semiSync} disabled={replicas === 0} onChange={(e) => setSemiSync(e.target.checked)} /></div>
          <div className="field"><label htmlFor="cc-group">Parameter group (optional)</label>
            <input id="cc-group" value={parameterGroup} onChange={(e) => setParameterGroup(e.target.value)} /></div>
          <div className="field"><label htmlFor="cc-memory">Memory per server (MB)</label>
            <input id="cc-memory" type="number" min={128} max={65536} value={memory} onChange={(e) => setMemory(Number(e.target.value))} /></div>
          <div className="field"><label htmlFor="cc-user">Master user</label>
            <input id="cc-user" value={user} onChange={(e) => setUser(e.target.value)} required /></div>
          <div className="field"><label htmlFor="cc-password">Master password (12+ characters, shown never again)</label>
            <input id="cc-password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} required minLength={12} autoComplete="new-password" /></div>
          <div className="form-actions">
            <button type="submit" className="btn btn-primary">{busy ? "Creating…" : "Create"}</button>
            <button type="button" className="btn" onClick={onClose}>Cancel</button>
          </div>
        </fieldset>
      </form>
      <ErrorMessage error={error} title="The cluster was not created." />
    </section>
  );
}
