/**
 * Places a cluster's servers on a grid for the SVG topology graph, from the topology API payload.
 *
 * Tier 0 holds the primary (or primaries: two writable servers is a finding worth seeing), each further
 * tier the replicas of the tier above (chained replicas go one tier lower). Servers whose source is
 * unknown (a dead replica reports none) or outside the cluster join the deepest replica tier, so a replica
 * that dies keeps its place. Order inside a tier is by server id, so the graph does not jump around.
 */
import type { Topology, TopologyServer } from "../api/types";

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 104;
export const H_GAP = 36;
export const V_GAP = 64;
export const MARGIN = 16;

/** How a server is drawn; the API's states (clusters/domain/constants.py) plus maintenance. */
export type NodeStatus = "up" | "suspect" | "down" | "unreachable" | "auth_failed" | "maintenance" | "unknown";

export interface LayoutNode {
  id: number;
  address: string;
  server: TopologyServer;
  isPrimary: boolean;
  status: NodeStatus;
  tier: number;
  x: number;
  y: number;
  lagSeconds: number | null;
}

export interface LayoutEdge {
  from: number;
  to: number;
  /** "ok" when both threads run, "broken" when one is stopped, "unknown" when not reported. */
  health: "ok" | "broken" | "unknown";
  /** What is wrong with a broken link, e.g. "IO Connecting" or "SQL stopped". */
  problem?: string;
  lagSeconds: number | null;
}

export interface TopologyLayout {
  nodes: LayoutNode[];
  edges: LayoutEdge[];
  width: number;
  height: number;
}

export function addressOf(server: { host: string; port: number }): string {
  return server.host.includes(":") ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

/** Normalises "HOST:PORT" for comparison (case-insensitive host, brackets kept for IPv6). */
function normalise(address: string | null | undefined): string {
  return (address ?? "").trim().toLowerCase();
}

export function nodeStatus(server: TopologyServer): NodeStatus {
  if (server.maintenance) return "maintenance";
  const state = (server.state ?? "").toLowerCase();
  if (state === "up" || state === "ok" || state === "running") return "up";
  if (state === "suspect") return "suspect";
  if (state === "down" || state === "failed") return "down";
  if (state === "unreachable") return "unreachable";
  if (state === "auth_failed") return "auth_failed";
  if (state === "maintenance") return "maintenance";
  return "unknown";
}

/** A replication thread's state as reported ("Yes"/"No"/"Connecting", or a boolean): running, not, or unknown. */
export function threadRunning(value: string | boolean | null | undefined): boolean | null {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "boolean") return value;
  return value.toLowerCase() === "yes";
}

export function isPrimaryServer(server: TopologyServer, topology: Pick<Topology, "primary">): boolean {
  if (topology.primary) return normalise(addressOf(server)) === normalise(topology.primary);
  return server.role === "primary";
}

export function layoutTopology(topology: Topology): TopologyLayout {
  const servers = [...topology.servers].sort((a, b) => a.id - b.id);
  const byAddress = new Map(servers.map((s) => [normalise(addressOf(s)), s]));
  const sourceOf = new Map<number, TopologyServer | undefined>();
  for (const s of servers) sourceOf.set(s.id, byAddress.get(normalise(s.replication?.source)));

  const tiers = new Map<number, number>();
  const primaries = servers.filter((s) => isPrimaryServer(s, topology));
  for (const p of primaries) tiers.set(p.id, 0);

  // Walk up each server's source chain to a primary; a chain that never reaches one (or loops) is orphaned.
  const depthOf = (server: TopologyServer): number | null => {
    const seen = new Set<number>();
    let current: TopologyServer | undefined = server;
    let depth = 0;
    while (current && !tiers.has(current.id)) {
      if (seen.has(current.id)) return null;
      seen.add(current.id);
      current = sourceOf.get(current.id);
      depth += 1;
    }
    return current ? (tiers.get(current.id) as number) + depth : null;
  };
  const orphans: TopologyServer[] = [];
  for (const s of servers) {
    if (tiers.has(s.id)) continue;
    const depth = depthOf(s);
    if (depth === null) orphans.push(s);
    else tiers.set(s.id, depth);
  }
  let maxTier = Math.max(-1, ...tiers.values());
  const orphanTier = maxTier < 0 ? 0 : Math.max(1, maxTier);
  for (const s of orphans) tiers.set(s.id, orphanTier);
  maxTier = Math.max(-1, ...tiers.values());

  const rows: TopologyServer[][] = Array.from({ length: maxTier + 1 }, () => []);
  for (const s of servers) rows[tiers.get(s.id) as number].push(s);
  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = MARGIN * 2 + widest * NODE_WIDTH + (widest - 1) * H_GAP;
  const height = MARGIN * 2 + Math.max(1, rows.length) * NODE_HEIGHT + Math.max(0, rows.length - 1) * V_GAP;

  const nodes: LayoutNode[] = [];
  rows.forEach((row, tier) => {
    const rowWidth = row.length * NODE_WIDTH + (row.length - 1) * H_GAP;
    const left = (width - rowWidth) / 2;
    row.forEach((server, i) => {
      nodes.push({
        id: server.id,
        address: addressOf(server),
        server,
        isPrimary: isPrimaryServer(server, topology),
        status: nodeStatus(server),
        tier,
        x: left + i * (NODE_WIDTH + H_GAP),
        y: MARGIN + tier * (NODE_HEIGHT + V_GAP),
        lagSeconds: server.replication?.seconds_behind ?? null,
      });
    });
  });

  const edges: LayoutEdge[] = [];
  for (const s of servers) {
    const source = sourceOf.get(s.id);
    if (!source || source.id === s.id) continue;
    const r = s.replication;
    const io = threadRunning(r?.io_running);
    const sql = threadRunning(r?.sql_running);
    const edge: LayoutEdge = { from: source.id, to: s.id, health: "unknown", lagSeconds: r?.seconds_behind ?? null };
    if (io === false || sql === false) {
      edge.health = "broken";
      const problems = [];
      if (io === false) problems.push(typeof r?.io_running === "string" ? `IO ${r.io_running}` : "IO stopped");
      if (sql === false) problems.push("SQL stopped");
      edge.problem = problems.join(", ");
    } else if (io && sql) edge.health = "ok";
    edges.push(edge);
  }
  return { nodes, edges, width, height };
}

/** Shortens a GTID position for a node label ("0-1-1234,1-2-5" → "0-1-1234 +1"). */
export function shortGtid(position: string | null | undefined): string {
  if (!position) return "—";
  const parts = position.split(",").map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) return "—";
  const first = parts[0].length > 26 ? `${parts[0].slice(0, 25)}…` : parts[0];
  return parts.length > 1 ? `${first} +${parts.length - 1}` : first;
}
