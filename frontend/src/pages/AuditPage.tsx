/** The tenant's audit log (tenant admins): every mutating action, newest first. */
import { useEffect, useState } from "react";
import { tenancy } from "../api/endpoints";
import type { AuditEntry } from "../api/types";
import { useAuth } from "../auth";
import { ErrorMessage } from "../components/ErrorMessage";
import { Pager } from "../components/Pager";
import { formatTime } from "../lib/format";
import { canManageTenant } from "../lib/permissions";

const PAGE_SIZE = 50;

export function AuditPage() {
  const { me } = useAuth();
  const [page, setPage] = useState(1);
  const [data, setData] = useState<{ count: number; results: AuditEntry[] } | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let cancelled = false;
    tenancy.audit(page).then(
      (d) => !cancelled && setData({ count: d.count, results: d.results }),
      (exc) => !cancelled && setError(exc),
    );
    return () => {
      cancelled = true;
    };
  }, [page]);

  if (!canManageTenant(me)) return <section className="panel"><h1>Audit log</h1><p>Only tenant admins read the audit log.</p></section>;
  return (
    <div>
      <div className="page-header"><h1>Audit log</h1></div>
      <ErrorMessage error={error} />
      {data && (
        <section className="panel">
          {data.results.length === 0 ? <p className="muted">Nothing recorded yet.</p> : (
            <table className="table">
              <thead>
                <tr><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Result</th><th scope="col">From</th></tr>
              </thead>
              <tbody>
                {data.results.map((a) => (
                  <tr key={a.id}>
                    <td className="nowrap">{formatTime(a.created_at)}</td>
                    <td>{a.actor}</td>
                    <td><code>{a.action}</code></td>
                    <td>{a.target}</td>
                    <td>{a.result}</td>
                    <td className="mono">{a.client_address ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <Pager page={page} count={data.count} pageSize={PAGE_SIZE} onPage={setPage} />
        </section>
      )}
    </div>
  );
}
