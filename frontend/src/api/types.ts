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

/** MariaDB reports the IO thread as "Yes" / "No" / "Connecting"; older payloads used booleans. */
export type Replication = Omit<Schemas["Replication"], "io_running" | "sql_running"> & {
  io_running: string | boolean | null;
  sql_running: string | boolean | null;
};

export type TopologyServer = Omit<Schemas["TopologyServer"], "replication" | "maintenance" | "fenced" | "quarantined"> & {
  replication: Replication | null;
  maintenance?: boolean;
  fenced?: boolean;
  quarantined?: boolean;
};

/** A file a job kept (e.g. the SQL a flashback discarded): GET /api/v1/jobs/{id}/artifacts/. */
export interface JobArtifact {
  name: string;
  size: number;
  content_type: string;
  description: string;
  created_at: string;
  url: string;
}

export type Finding = Omit<Schemas["Finding"], "severity"> & { severity: Severity };

export type Topology = Omit<Schemas["Topology"], "servers" | "findings"> & {
  servers: TopologyServer[];
  findings: Finding[];
};

export type ClusterEvent = Omit<Schemas["Event"], "severity" | "data"> & {
  severity: Severity | string;
  data?: Record<string, unknown> | unknown;
  /** Present on /ws/events/ messages, which mix clusters. */
  cluster?: number;
  cluster_id?: number;
};

export type MeTeam = Omit<Schemas["MeTeam"], "role"> & { role: Role };
export type Me = Omit<Schemas["Me"], "teams" | "token"> & { teams: MeTeam[]; token?: Schemas["Me"]["token"] };

export type Team = Schemas["Team"];
export type Member = Schemas["Member"];
export type MemberCreated = Schemas["Invitation"];
export type ApiToken = Schemas["Token"];
export type CreatedToken = Schemas["TokenCreated"];
export type AuditEntry = Schemas["AuditEntry"];

/** Routes are not in the schema yet: a kind plus kind-specific fields (secrets never returned). */
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

/** GET /clusters/{id}/metrics/: per-server history (see docs/metrics.md). */
export type MetricSeriesName =
  | "lag" | "io_running" | "sql_running" | "semi_sync" | "connections" | "reads_per_s" | "writes_per_s" | "gtid_per_s";
export interface ServerHistory {
  id: number;
  address: string;
  t: number[];
  [series: string]: number[] | (number | null)[] | string | number;
}
export interface MetricMark { t: number; kind: string; severity: string; message: string }
export interface ClusterMetrics {
  cluster: number;
  range: "1h" | "24h";
  resolution_seconds: number;
  series: MetricSeriesName[];
  servers: ServerHistory[];
  marks: MetricMark[];
}

export interface AlertSubscription {
  id: number;
  tenant: number;
  team: number | null;
  name: string;
  channel: "webhook" | "email";
  target: string;
  payload_format: "json" | "slack";
  clusters: number[];
  severities: string[];
  codes: string[];
  jobs: string[];
  enabled: boolean;
  created_at: string;
  secret?: string;
}
export interface AlertDelivery {
  id: number;
  kind: string;
  state: string;
  cluster: number | null;
  event: number | null;
  attempts: number;
  last_status: number | null;
  last_error: string;
  digest: number | null;
  title: string | null;
  created_at: string;
  sent_at: string | null;
  next_attempt_at: string | null;
}
