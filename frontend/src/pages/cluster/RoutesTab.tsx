/** Routes (admins): where clients are sent after a topology change. Lists them and adds new ones. */
import { useCallback, useEffect, useState } from "react";
import { clusters as clustersApi, resultsOf } from "../../api/endpoints";
import type { Route } from "../../api/types";
import { ErrorMessage } from "../../components/ErrorMessage";
import { routeSyncView } from "../../lib/routeSync";
import { ApiError } from "../../api/client";
import { useClusterPage } from "./context";

interface FieldSpec {
  name: string;
  label: string;
  placeholder?: string;
  type?: "text" | "number" | "password";
  required?: boolean;
}

const ROUTE_KINDS: Record<string, { label: string; fields: FieldSpec[] }> = {
  haproxy: {
    label: "HAProxy (runtime API)",
    fields: [
      { name: "runtime_api", label: "Runtime API", placeholder: "unix:///run/dbpilot/haproxy.sock or tcp://127.0.0.1:9999", required: true },
      { name: "write_backend", label: "Write backend", placeholder: "db_write", required: true },
      { name: "read_backend", label: "Read backend", placeholder: "db_read" },
    ],
  },
  powerdns: {
    label: "PowerDNS (HTTP API)",
    fields: [
      { name: "api_url", label: "API URL", placeholder: "http://127.0.0.1:8081", required: true },
      { name: "api_key", label: "API key", type: "password", required: true },
      { name: "zone", label: "Zone", placeholder: "db.example.", required: true },
      { name: "write_record", label: "Write record", placeholder: "write.db.example.", required: true },
      { name: "read_record", label: "Read record", placeholder: "read.db.example." },
      { name: "ttl", label: "TTL (s)", type: "number", placeholder: "5" },
    ],
  },
  script: {
    label: "Script (from the hooks directory)",
    fields: [{ name: "script", label: "Script name", placeholder: "move-vip", required: true }],
  },
};

const HIDDEN_FIELDS = new Set(["id", "kind", "cluster", "created_at", "updated_at", "last_sync"]);

function describe(route: Route): string {
  return Object.entries(route)
    .filter(([k, v]) => !HIDDEN_FIELDS.has(k) && v !== null && v !== "" && typeof v !== "object")
    .map(([k, v]) => `${k}: ${String(v)}`)
    .join(" · ");
}

export function RoutesTab() {
  const { clusterId, role } = useClusterPage();
  const [routes, setRoutes] = useState<Route[] | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [kind, setKind] = useState("haproxy");
  const [values, setValues] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      setRoutes(resultsOf(await clustersApi.routes(clusterId)));
      setLoadError(null);
    } catch (exc) {
      setLoadError(exc);
    }
  }, [clusterId]);
  useEffect(() => void load(), [load]);

  if (role !== "admin") return <p className="muted">Routes are managed by cluster admins.</p>;
  const spec = ROUTE_KINDS[kind];
  const fieldErrors = error instanceof ApiError ? error.fieldErrors : {};

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body: Record<string, unknown> = { kind };
    for (const f of spec.fields) {
      const v = (values[f.name] ?? "").trim();
      if (v !== "") body[f.name] = f.type === "number" ? Number(v) : v;
    }
    try {
      await clustersApi.addRoute(clusterId, body);
      setValues({});
      await load();
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel">
      <h2>Routes</h2>
      <ErrorMessage error={loadError} title="Could not load the routes." />
      {routes && routes.length === 0 && <p className="muted">No routes: clients must find the primary themselves.</p>}
      {routes && routes.length > 0 && (
        <table className="table">
          <thead>
            <tr><th scope="col">Kind</th><th scope="col">Configuration</th><th scope="col">Last sync</th></tr>
          </thead>
          <tbody>
            {routes.map((r, i) => (
              <tr key={r.id ?? i}>
                <td>{r.kind}</td>
                <td className="mono small">{describe(r)}</td>
                <td>
                  {(() => {
                    const sync = routeSyncView(r.last_sync);
                    return (
                      <>
                        <span className={`badge route-sync-${sync.state}`}>{sync.label}</span>{" "}
                        <span className="muted small">{sync.when}</span>
                        {sync.detail && <div className="mono small">{sync.detail}</div>}
                      </>
                    );
                  })()}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Add a route</h3>
      <form onSubmit={submit} className="route-form">
        <fieldset disabled={busy}>
          <div className="field">
            <label htmlFor="route-kind">Kind</label>
            <select id="route-kind" value={kind} onChange={(e) => { setKind(e.target.value); setValues({}); setError(null); }}>
              {Object.entries(ROUTE_KINDS).map(([k, v]) => (
                <option key={k} value={k}>{v.label}</option>
              ))}
            </select>
          </div>
          {spec.fields.map((f) => (
            <div className="field" key={f.name}>
              <label htmlFor={`route-${f.name}`}>{f.label}{f.required ? " *" : ""}</label>
              <input
                id={`route-${f.name}`}
                type={f.type ?? "text"}
                placeholder={f.placeholder}
                required={f.required}
                autoComplete="off"
                value={values[f.name] ?? ""}
                onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}
              />
              {(fieldErrors[f.name] ?? []).map((m) => <small key={m} className="field-error">{m}</small>)}
            </div>
          ))}
          <button type="submit" className="btn btn-primary">{busy ? "Adding…" : "Add route"}</button>
        </fieldset>
      </form>
      <ErrorMessage error={error} title="The route was not added." />
    </section>
  );
}
