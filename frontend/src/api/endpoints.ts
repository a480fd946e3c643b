/** Every API path the portal calls, in one place (see design.md "API contract (v1)"). */
import { api, withQuery } from "./client";
import type {
  AlertDelivery, AlertSubscription, ClusterMetrics, ApiToken, AuditEntry, Cluster, ClusterEvent, CreatedToken, Job, JobArtifact, Me, Member, MemberCreated, Paginated, Route, Team, Topology,
} from "./types";

const V1 = "/api/v1";

/** Lists that are paginated DRF-style; tolerate a plain array too (endpoints still being built). */
export function resultsOf<T>(payload: Paginated<T> | T[]): T[] {
  return Array.isArray(payload) ? payload : payload?.results ?? [];
}

export const auth = {
  csrf: () => api.get<unknown>(`${V1}/auth/csrf/`, { quiet401: true }),
  login: (email: string, password: string) => api.post<Me>(`${V1}/auth/login/`, { email, password }, { quiet401: true }),
  logout: () => api.post<void>(`${V1}/auth/logout/`, {}, { quiet401: true }),
  me: () => api.get<Me>(`${V1}/auth/me/`, { quiet401: true }),
  /** Like me(), but a 401 signs the portal out (used when a live link keeps failing: expired session?). */
  check: () => api.get<Me>(`${V1}/auth/me/`),
};

export const clusters = {
  list: (page = 1) => api.get<Paginated<Cluster>>(withQuery(`${V1}/clusters/`, { page })),
  get: (id: number) => api.get<Cluster>(`${V1}/clusters/${id}/`),
  provision: (body: { name: string; provision: Record<string, unknown> }) => api.post<Cluster>(`${V1}/clusters/`, body),
  patch: (id: number, body: Partial<Cluster> | { settings: Record<string, unknown> }) => api.patch<Cluster>(`${V1}/clusters/${id}/`, body),
  remove: (id: number) => api.delete(`${V1}/clusters/${id}/`),
  topology: (id: number) => api.get<Topology>(`${V1}/clusters/${id}/topology/`),
  events: (id: number, page = 1, pageSize = 50) =>
    api.get<Paginated<ClusterEvent>>(withQuery(`${V1}/clusters/${id}/events/`, { page, page_size: pageSize })),
  jobs: (id: number, page = 1, pageSize = 20) =>
    api.get<Paginated<Job>>(withQuery(`${V1}/clusters/${id}/jobs/`, { page, page_size: pageSize })),
  switchover: (id: number, candidate?: string) =>
    api.post<Job>(`${V1}/clusters/${id}/switchover/`, candidate ? { candidate } : {}),
  failover: (id: number, candidate?: string) =>
    api.post<Job>(`${V1}/clusters/${id}/failover/`, candidate ? { candidate } : {}),
  maintenance: (id: number, serverId: number, on: boolean) =>
    api.post<unknown>(`${V1}/clusters/${id}/servers/${serverId}/maintenance/`, { on }),
  addReplica: (id: number, host?: string) => api.post<Job>(`${V1}/clusters/${id}/servers/`, host ? { host } : {}),
  removeReplica: (id: number, serverId: number) => api.delete<Job>(`${V1}/clusters/${id}/servers/${serverId}/`),
  /** Repair (docs/repair.md): wipe and clone a server again; rejoin it by a method; a rolling restart. */
  rebuild: (id: number, serverId: number) => api.post<Job>(`${V1}/clusters/${id}/servers/${serverId}/rebuild/`, {}),
  rejoin: (id: number, serverId: number, method?: string | string[]) =>
    api.post<Job>(`${V1}/clusters/${id}/servers/${serverId}/rejoin/`, method ? { method } : {}),
  restart: (id: number) => api.post<Job>(`${V1}/clusters/${id}/restart/`, {}),
  resetFailoverControl: (id: number) => api.post<unknown>(`${V1}/clusters/${id}/failover-control/reset/`, {}),
  routes: (id: number) => api.get<Paginated<Route> | Route[]>(`${V1}/clusters/${id}/routes/`),
  addRoute: (id: number, route: Record<string, unknown>) => api.post<Route>(`${V1}/clusters/${id}/routes/`, route),
  metrics: (id: number, range: "1h" | "24h", series: string[], since?: number) =>
    api.get<ClusterMetrics>(withQuery(`${V1}/clusters/${id}/metrics/`, { range, series: series.join(","), since })),
};

export const alerts = {
  list: () => api.get<Paginated<AlertSubscription> | AlertSubscription[]>(withQuery(`${V1}/alerts/subscriptions/`, { page_size: 500 })),
  create: (body: Partial<AlertSubscription>) => api.post<AlertSubscription>(`${V1}/alerts/subscriptions/`, body),
  patch: (id: number, body: Partial<AlertSubscription>) => api.patch<AlertSubscription>(`${V1}/alerts/subscriptions/${id}/`, body),
  remove: (id: number) => api.delete(`${V1}/alerts/subscriptions/${id}/`),
  deliveries: (id: number) => api.get<Paginated<AlertDelivery>>(withQuery(`${V1}/alerts/subscriptions/${id}/deliveries/`, { page_size: 100 })),
  test: (id: number) => api.post<AlertDelivery>(`${V1}/alerts/subscriptions/${id}/test/`, {}),
};

export const jobs = {
  get: (id: number) => api.get<Job>(`${V1}/jobs/${id}/`),
  artifacts: (id: number) => api.get<JobArtifact[]>(`${V1}/jobs/${id}/artifacts/`),
};

export const tenancy = {
  teams: () => api.get<Paginated<Team> | Team[]>(withQuery(`${V1}/teams/`, { page_size: 500 })),
  createTeam: (name: string) => api.post<Team>(`${V1}/teams/`, { name }),
  members: (teamId: number) => api.get<Paginated<Member> | Member[]>(`${V1}/teams/${teamId}/members/`),
  addMember: (teamId: number, email: string, role: string) => api.post<MemberCreated>(`${V1}/teams/${teamId}/members/`, { email, role }),
  setMemberRole: (teamId: number, memberId: number, role: string) =>
    api.patch<Member>(`${V1}/teams/${teamId}/members/${memberId}/`, { role }),
  removeMember: (teamId: number, memberId: number) => api.delete(`${V1}/teams/${teamId}/members/${memberId}/`),
  tokens: () => api.get<Paginated<ApiToken> | ApiToken[]>(withQuery(`${V1}/tokens/`, { page_size: 500 })),
  createToken: (body: { team: number; name: string; scope: string; expires_at?: string | null }) =>
    api.post<CreatedToken>(`${V1}/tokens/`, body),
  revokeToken: (id: number) => api.post<ApiToken>(`${V1}/tokens/${id}/revoke/`, {}),
  audit: (page = 1) => api.get<Paginated<AuditEntry>>(withQuery(`${V1}/audit/`, { page })),
};

/** The `hosts` provider's pool (platform operators only). */
export interface DatabaseHost {
  id: number;
  name: string;
  address: string;
  zone: string;
  capacity: { instances: number; memory_mb: number };
  down: boolean;
  last_seen_at: string | null;
  instances: number;
  created_at: string;
}
export type RegisteredHost = DatabaseHost & { agent_key: string };

export const platform = {
  hosts: () => api.get<DatabaseHost[]>(`${V1}/platform/hosts/`),
  registerHost: (body: { name: string; address: string; zone: string; capacity: { instances: number; memory_mb: number } }) =>
    api.post<RegisteredHost>(`${V1}/platform/hosts/`, body),
};

/** Tenant-owned parameter groups (design.md: /api/v1/parameter-groups/). */
export interface ParameterGroup {
  id: number;
  name: string;
  tenant: string;
  parameters: Record<string, string>;
  clusters: { id: number; name: string; pending_restart: Record<string, unknown> }[];
  created_at: string;
  updated_at: string;
}

export const parameterGroups = {
  list: () => api.get<ParameterGroup[]>(`${V1}/parameter-groups/`),
  create: (body: { name: string; parameters: Record<string, string> }) => api.post<ParameterGroup>(`${V1}/parameter-groups/`, body),
  update: (id: number, parameters: Record<string, string>) =>
    api.patch<ParameterGroup & { jobs?: Job[] }>(`${V1}/parameter-groups/${id}/`, { parameters }),
  remove: (id: number) => api.delete(`${V1}/parameter-groups/${id}/`),
};

/** What the caller's tenant may still provision (GET /api/v1/quota/), and with which providers. */
export interface QuotaCount {
  limit: number;
  used: number;
  left: number;
}
export interface Quota {
  tenant: string;
  clusters: QuotaCount;
  servers: QuotaCount;
  memory_mb: QuotaCount;
  providers: string[];
}

export const quota = {
  get: () => api.get<Quota>(`${V1}/quota/`),
};

/** Backups (docs/backups.md). */
export interface Backup {
  id: number;
  cluster: number;
  cluster_name: string;
  cluster_deleted: boolean;
  kind: "physical" | "logical";
  status: "running" | "completed" | "failed";
  job: number | null;
  size_bytes: number;
  raw_bytes: number;
  gtid_position: string;
  started_at: string;
  ended_at: string | null;
  duration_seconds: number | null;
  error: string;
  verified: boolean | null;
  verified_reason: string;
}

export interface ClusterBackups {
  method: "physical" | "logical";
  recoverable: { start: string | null; end: string | null; latest_verified_backup: number | null };
  /** Paginated like every list of the API (page_size up to 500). */
  count: number;
  next: string | null;
  previous: string | null;
  results: Backup[];
}

export const backups = {
  ofCluster: (id: number) => api.get<ClusterBackups>(`${V1}/clusters/${id}/backups/`),
  backUp: (id: number) => api.post<Job>(`${V1}/clusters/${id}/backups/`, {}),
  restore: (id: number, body: Record<string, unknown>) => api.post<Cluster>(`${V1}/clusters/${id}/restore/`, body),
};
