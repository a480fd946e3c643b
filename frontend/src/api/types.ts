/**
 * The portal's API types. Generated types (schema.d.ts, `npm run gen:api`) are the source; this is the
 * one place that adds what the OpenAPI schema does not describe yet (JSON fields, endpoints still being
 * built, websocket messages). When the schema gains a type, alias it here instead.
 */
import type { components } from "./schema";

type Schemas = components["schemas"];

export type Severity = "ok" | "info" | "warning" | "error" | "critical";
export type ClusterPermission = "view_cluster" | "operate_cluster" | "admin_cluster";
export type Role = "viewer" | "operator" | "admin";

export type Server = Schemas["Server"];

export type JobState = Schemas["StateEnum"];
export type StepState = "pending" | "running" | "ok" | "failed" | "skipped";

export interface JobStep {
  name: string;
  state: StepState;
  started_at: string | null;
  finished_at: string | null;
  detail?: string | Record<string, unknown> | null;
}

export interface Check {
  name: string;
  ok: boolean;
  detail?: string;
}

export type Job = Omit<Schemas["Job"], "steps" | "result" | "params" | "state"> & {
  state: JobState;
  steps: JobStep[];
  result: Record<string, unknown> & { checks?: Check[] };
  params?: Record<string, unknown>;
};

export type ClusterSettings = Record<string, unknown>;

export type Cluster = Omit<Schemas["Cluster"], "job" | "settings" | "health"> & {
  health: Severity;
  settings: ClusterSettings;
  job: Job | null;
  /** Optional: when the API sends it, it decides what the portal offers (preferred over team roles). */
  my_permissions?: ClusterPermission[];
};

export interface Paginated<T> {
  count: number;
  next?: string | null;
  previous?: string | null;
  results: T[];
}

export interface Replication {
  source: string | null;
  io_running: boolean | null;
  sql_running: boolean | null;
  seconds_behind: number | null;
}

export interface TopologyServer {
  id: number;
  host: string;
  port: number;
  role: string; // primary | replica | unknown | ...
  state: string; // up | suspect | down | unknown | ...
  read_only: boolean | null;
  gtid_current_pos: string | null;
  replication: Replication | null;
  maintenance?: boolean;
}

export interface Finding {
  code: string;
  severity: Severity;
  message: string;
  server: string | null;
  server_id: number | null;
  opened_at: string;
}

export interface Topology {
  primary: string | null;
  epoch: number;
  servers: TopologyServer[];
  findings: Finding[];
  updated_at: string | null;
}

export interface ClusterEvent {
  id: number;
  kind: string;
  severity: Severity | string;
  message: string;
  data: Record<string, unknown>;
  created_at: string;
  cluster?: number;
  cluster_id?: number;
}

export interface MeTeam {
  id: number;
  name: string;
  tenant: string | number;
  role: Role;
}

export interface Me {
  email: string;
  tenants: Array<string | { id: number; name: string }>;
  teams: MeTeam[];
  is_operator: boolean;
  is_tenant_admin: boolean;
}

export interface Team {
  id: number;
  name: string;
  tenant?: string | number;
  created_at?: string;
}

export interface Member {
  id: number;
  email?: string;
  user?: string;
  role: Role;
}

export interface ApiToken {
  id: number;
  name: string;
  key?: string;
  team?: number | string;
  scope: "read" | "operate" | "admin";
  expires_at?: string | null;
  created_at?: string;
  last_used_at?: string | null;
  revoked_at?: string | null;
}

export type CreatedToken = ApiToken & { token: string };

export interface AuditEntry {
  id: number;
  actor: string;
  action: string;
  target: string;
  parameters?: Record<string, unknown>;
  result: string;
  client_address: string | null;
  created_at: string;
}

export interface Route {
  id?: number;
  kind: string;
  [field: string]: unknown;
}

/** Messages on ws /ws/clusters/{id}/ and /ws/events/. */
export type LiveMessage =
  | { type: "topology"; cluster_id?: number; topology: Topology }
  | { type: "event"; cluster_id?: number; event: ClusterEvent }
  | { type: "job"; cluster_id?: number; job: Job };
