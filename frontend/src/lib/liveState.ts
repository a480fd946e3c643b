/**
 * Merging live data (websocket messages) with data fetched over HTTP, so that whichever arrives first,
 * the page ends up with the newest of each: events newest first without duplicates, jobs by id, and the
 * topology snapshot with the highest (epoch, updated_at).
 */
import type { ClusterEvent, Job, Severity, Topology } from "../api/types";

export const EVENT_LIMIT = 200;

function time(value: string | null | undefined): number {
  const t = value ? Date.parse(value) : NaN;
  return Number.isNaN(t) ? 0 : t;
}

/** Newest first: by created_at, then by id (ids grow with time, so ties keep insertion order). */
export function compareEventsNewestFirst(a: ClusterEvent, b: ClusterEvent): number {
  return time(b.created_at) - time(a.created_at) || b.id - a.id;
}

export function mergeEvents(current: ClusterEvent[], incoming: ClusterEvent[], limit = EVENT_LIMIT): ClusterEvent[] {
  const byId = new Map<number, ClusterEvent>();
  for (const e of current) byId.set(e.id, e);
  for (const e of incoming) byId.set(e.id, e); // the later copy wins (same event, perhaps richer)
  return [...byId.values()].sort(compareEventsNewestFirst).slice(0, limit);
}

const TERMINAL_JOB_STATES = new Set(["succeeded", "failed", "refused"]);

export function isJobActive(job: Pick<Job, "state">): boolean {
  return !TERMINAL_JOB_STATES.has(job.state);
}

/** A job update replaces the older copy, unless it is a stale copy of a job already finished. */
export function upsertJob(current: Job[], job: Job, limit = 50): Job[] {
  const existing = current.find((j) => j.id === job.id);
  if (existing && !isJobActive(existing) && isJobActive(job)) return current;
  const rest = current.filter((j) => j.id !== job.id);
  return [job, ...rest]
    .sort((a, b) => time(b.created_at) - time(a.created_at) || b.id - a.id)
    .slice(0, limit);
}

export function mergeJobs(current: Job[], incoming: Job[], limit = 50): Job[] {
  return incoming.reduce((acc, job) => upsertJob(acc, job, limit), current);
}

/** True when `candidate` should replace `current`: a higher epoch, or the same epoch and not older. */
export function isNewerTopology(current: Topology | null, candidate: Topology): boolean {
  if (!current) return true;
  if (candidate.epoch !== current.epoch) return candidate.epoch > current.epoch;
  return time(candidate.updated_at) >= time(current.updated_at);
}

/** The active HA job, if any (one at a time per cluster, enforced by the database). */
export const HA_JOB_KINDS = new Set(["switchover", "failover", "rejoin", "adopt"]);

export function activeHaJob(jobs: Job[]): Job | undefined {
  return jobs.find((j) => HA_JOB_KINDS.has(j.kind) && isJobActive(j));
}

const SEVERITY_ORDER = ["ok", "info", "warning", "error", "critical"];

/** The worst of some finding severities ("ok" when there are none), as the API's `health` field. */
export function worstSeverity(severities: string[]): Severity {
  let worst = 0;
  for (const s of severities) worst = Math.max(worst, SEVERITY_ORDER.indexOf(s));
  return SEVERITY_ORDER[worst] as Severity;
}
