/** The cluster's jobs, newest first, updated live; each links to its steps. */
import { Link } from "react-router-dom";
import { StateBadge } from "../../components/Badges";
import { formatDuration, formatTime } from "../../lib/format";
import { useClusterPage } from "./context";

export function JobsTab() {
  const { live } = useClusterPage();
  const { jobs } = live;
  return (
    <section className="panel">
      <h2>Jobs</h2>
      {jobs.length === 0 ? (
        <p className="muted">No jobs yet.</p>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Kind</th>
              <th scope="col">State</th>
              <th scope="col">Progress</th>
              <th scope="col">Created</th>
              <th scope="col">Duration</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => {
              const steps = Array.isArray(job.steps) ? job.steps : [];
              const done = steps.filter((s) => s.state === "ok" || s.state === "skipped").length;
              return (
                <tr key={job.id}>
                  <td><Link to={`${job.id}`}>#{job.id}</Link></td>
                  <td>{job.kind}</td>
                  <td><StateBadge state={job.state} /></td>
                  <td>{steps.length ? `${done}/${steps.length} steps` : "—"}</td>
                  <td className="nowrap">{formatTime(job.created_at)}</td>
                  <td>{formatDuration(job.started_at, job.finished_at)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
