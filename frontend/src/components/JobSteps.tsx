/** A job's steps with their states and timings; running steps show a live duration. */
import { useEffect, useState } from "react";
import type { Job } from "../api/types";
import { formatDuration, formatTime, titleCase } from "../lib/format";
import { isJobActive } from "../lib/liveState";
import { StateBadge } from "./Badges";

function detailText(detail: unknown): string {
  if (detail === null || detail === undefined || detail === "") return "";
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

export function JobSteps({ job }: { job: Job }) {
  const active = isJobActive(job);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [active]);
  const steps = Array.isArray(job.steps) ? job.steps : [];
  if (steps.length === 0) return <p className="muted">{active ? "Waiting for the job to start…" : "This job recorded no steps."}</p>;
  return (
    <ol className="steps">
      {steps.map((step, i) => (
        <li key={`${i}-${step.name}`} className={`step step-${step.state}`} data-step-state={step.state}>
          <span className="step-icon" aria-hidden="true">
            {step.state === "ok" ? "✓" : step.state === "failed" ? "✗" : step.state === "running" ? "●" : step.state === "skipped" ? "–" : "○"}
          </span>
          <div className="step-main">
            <div className="step-head">
              <strong>{titleCase(step.name)}</strong>
              <StateBadge state={step.state} />
              <span className="step-time" title={`started ${formatTime(step.started_at)}, finished ${formatTime(step.finished_at)}`}>
                {step.started_at ? formatDuration(step.started_at, step.finished_at, now) : ""}
              </span>
            </div>
            {detailText(step.detail) && <div className="step-detail">{detailText(step.detail)}</div>}
          </div>
        </li>
      ))}
    </ol>
  );
}
