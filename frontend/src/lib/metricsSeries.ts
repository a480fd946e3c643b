/**
 * Per-server history for the charts: merge a live fetch (`since=`) into what is shown, keep only the
 * range's window, and lay it out for uPlot (one shared time axis, one column per server).
 */
import type { ClusterMetrics, MetricMark, ServerHistory } from "../api/types";

export const RANGE_SECONDS = { "1h": 3600, "24h": 86400 } as const;

export interface SeriesStore {
  servers: ServerHistory[];
  marks: MetricMark[];
}

/** The latest time anything was seen (what the next `since=` fetch asks after). */
export function lastTime(store: SeriesStore): number | undefined {
  let last: number | undefined;
  for (const s of store.servers) if (s.t.length) last = Math.max(last ?? -Infinity, s.t[s.t.length - 1]);
  return last;
}

/** Append `next` (newer points) to `current`, dropping what falls out of the window ending at `now`. */
export function mergeMetrics(current: SeriesStore | null, next: ClusterMetrics, windowSeconds: number, now: number): SeriesStore {
  const start = now - windowSeconds;
  const byId = new Map<number, ServerHistory>();
  for (const s of current?.servers ?? []) byId.set(s.id, s);
  const servers: ServerHistory[] = next.servers.map((incoming) => {
    const old = byId.get(incoming.id);
    const out: ServerHistory = { id: incoming.id, address: incoming.address, t: [] };
    const names = ["t", ...next.series];
    const lastOld = old && old.t.length ? old.t[old.t.length - 1] : -Infinity;
    const keepFrom = old ? old.t.findIndex((t) => t >= start) : -1;
    for (const name of names) {
      const before = old && keepFrom >= 0 ? ((old[name] as (number | null)[]) ?? []).slice(keepFrom) : [];
      const incomingValues = (incoming[name] as (number | null)[]) ?? [];
      const fresh = incoming.t.map((t, i) => ({ t, v: incomingValues[i] })).filter((p) => p.t > lastOld);
      out[name] = [...before, ...fresh.map((p) => p.v)] as number[];
    }
    return out;
  });
  const seen = new Set((current?.marks ?? []).map((m) => `${m.t}|${m.kind}|${m.message}`));
  const marks = [...(current?.marks ?? []), ...next.marks.filter((m) => !seen.has(`${m.t}|${m.kind}|${m.message}`))]
    .filter((m) => m.t >= start);
  return { servers, marks };
}

/** uPlot's data: [times, server1 values, server2 values, ...] on the union of the servers' times. */
export function alignedData(store: SeriesStore, series: string): [number[], ...(number | null)[][]] {
  const times = Array.from(new Set(store.servers.flatMap((s) => s.t))).sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = store.servers.map((s) => {
    const column: (number | null)[] = new Array(times.length).fill(null);
    const values = (s[series] as (number | null)[]) ?? [];
    s.t.forEach((t, i) => {
      column[index.get(t)!] = values[i] ?? null;
    });
    return column;
  });
  return [times, ...columns];
}

/** The latest non-null value of a series per server (shown beside the charts, and read by tests). */
export function latestValues(store: SeriesStore, series: string): { id: number; address: string; value: number | null }[] {
  return store.servers.map((s) => {
    const values = (s[series] as (number | null)[]) ?? [];
    for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return { id: s.id, address: s.address, value: values[i] };
    return { id: s.id, address: s.address, value: null };
  });
}

export const MARK_COLORS: Record<string, string> = {
  failover: "#c62828",
  switchover: "#1565c0",
  finding_opened: "#ef6c00",
  finding_resolved: "#2e7d32",
  primary_changed: "#6a1b9a",
};
