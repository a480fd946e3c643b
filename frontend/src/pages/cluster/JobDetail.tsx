/** One job: its steps progressing live (websocket job messages), its result and any refusal checks. */
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { jobs as jobsApi } from "../../api/endpoints";
import type { Check, Job, JobArtifact } from "../../api/types";
import { StateBadge } from "../../components/Badges";
import { ErrorMessage } from "../../components/ErrorMessage";
import { JobSteps } from "../../components/JobSteps";
import { formatDuration, formatTime } from "../../lib/format";
import { useClusterPage } from "./context";

export function JobDetail() {
  const { live } = useClusterPage();
  const jobId = Number(useParams().jobId);
  const [fetched, setFetched] = useState<Job | null>(null);
  const [error, setError] = useState<unknown>(null);
  const liveJob = live.jobs.find((j) => j.id === jobId);

  useEffect(() => {
    let cancelled = false;
    jobsApi.get(jobId).then(
      (job) => !cancelled && (setFetched(job), live.applyJob(job)),
      (exc) => !cancelled && setError(exc),
    );
    return () => {
      cancelled = true;
    };
    // Refetched when the job changes or the live link first comes up; `live` itself changes every render.
  }, [jobId, live.link.everConnected]);

  // Files the job kept (the SQL a flashback discarded): listed once the job is known.
  const [artifacts, setArtifacts] = useState<JobArtifact[]>([]);
  const finished = (liveJob ?? fetched)?.finished_at;
  useEffect(() => {
    let cancelled = false;
    jobsApi.artifacts(jobId).then(
      (list) => !cancelled && setArtifacts(Array.isArray(list) ? list : []),
      () => undefined,
    );
    return () => {
      cancelled = true;
    };
  }, [jobId, finished]);

  const job = liveJob ?? fetched;
  if (!job) return error ? <ErrorMessage error={error} /> : <p className="muted" role="status">Loading job…</p>;
  const checks: Check[] = Array.isArray(job.result?.checks) ? (job.result.checks as Check[]) : [];
  const { checks: _omit, ...rest } = job.result ?? {};
  void _omit;
  return (
    <section className="panel">
      <nav className="breadcrumb" aria-label="Job">
        <Link to=".." relative="path">All jobs</Link>
      </nav>
      <div className="panel-head">
        <h2>
          {job.kind} job #{job.id}
        </h2>
        <StateBadge state={job.state} />
      </div>
      <dl className="facts">
        <dt>Created</dt><dd>{formatTime(job.created_at)}</dd>
        <dt>Started</dt><dd>{formatTime(job.started_at)}</dd>
        <dt>Finished</dt><dd>{formatTime(job.finished_at)}</dd>
        <dt>Duration</dt><dd>{formatDuration(job.started_at, job.finished_at)}</dd>
        {job.requested_by && (<><dt>Requested by</dt><dd>{job.requested_by}</dd></>)}
      </dl>
      <h3>Steps</h3>
      <JobSteps job={job} />
      {checks.length > 0 && (
        <>
          <h3>Checks</h3>
          <ul className="checks">
            {checks.map((c) => (
              <li key={c.name} className={c.ok ? "check-ok" : "check-failed"}>
                <span aria-hidden="true">{c.ok ? "✓" : "✗"}</span> <strong>{c.name}</strong>
                {c.detail ? ` — ${c.detail}` : ""}
              </li>
            ))}
          </ul>
        </>
      )}
      {artifacts.length > 0 && (
        <>
          <h3>Artifacts</h3>
          <ul className="artifacts">
            {artifacts.map((a) => (
              <li key={a.name}>
                <a href={a.url} download>{a.name}</a> <span className="muted small">({a.size} bytes) — {a.description}</span>
              </li>
            ))}
          </ul>
        </>
      )}
      {Object.keys(rest).length > 0 && (
        <>
          <h3>Result</h3>
          <pre className="json">{JSON.stringify(rest, null, 2)}</pre>
        </>
      )}
    </section>
  );
}
