/** Payloads shaped like the API's, for the unit tests. */
import type { ClusterEvent, Job, Me, Topology, TopologyServer } from "../api/types";

export function server(id: number, port: number, over: Partial<TopologyServer> = {}): TopologyServer {
  return {
    id,
    host: "127.0.0.1",
    port,
    role: "replica",
    state: "up",
    read_only: true,
    gtid_current_pos: `0-1-${100 + id}`,
    replication: { source: "127.0.0.1:3306", io_running: true, sql_running: true, seconds_behind: 0 },
    maintenance: false,
    ...over,
  };
}

/** A primary on :3306 with two replicas (:3307, :3308). */
export function threeNodeTopology(over: Partial<Topology> = {}): Topology {
  return {
    primary: "127.0.0.1:3306",
    epoch: 4,
    updated_at: "2026-11-25T10:00:00Z",
    findings: [],
    servers: [
      server(1, 3306, { role: "primary", read_only: false, replication: null }),
      server(2, 3307),
      server(3, 3308, { replication: { source: "127.0.0.1:3306", io_running: true, sql_running: true, seconds_behind: 42 } }),
    ],
    ...over,
  };
}

export function event(id: number, createdAt: string, over: Partial<ClusterEvent> = {}): ClusterEvent {
  return { id, kind: "finding_opened", severity: "warning", message: `event ${id}`, data: {}, created_at: createdAt, ...over };
}

export function job(id: number, state: Job["state"], over: Partial<Job> = {}): Job {
  return {
    id,
    cluster: 1,
    kind: "switchover",
    state,
    steps: [],
    result: {},
    created_at: `2026-11-25T10:00:${String(id).padStart(2, "0")}Z`,
    started_at: null,
    finished_at: null,
    ...over,
  } as Job;
}

export function me(teams: Me["teams"]): Me {
  return { email: "alice@example.com", tenants: [{ id: 1, name: "acme", is_admin: false }], teams, is_operator: false, is_tenant_admin: false };
}
