/**
 * What the signed-in user may do on a cluster, and why not. The API is the authority (it answers 403/404);
 * this only decides which buttons the portal shows, hides or disables with a reason.
 *
 * The role on a cluster is the highest role among the user's teams of the cluster's tenant, unless the
 * cluster object carries `my_permissions`, which then decides.
 */
import type { Cluster, ClusterPermission, Job, Me, Role, Topology } from "../api/types";
import { addressOf, isPrimaryServer, nodeStatus } from "./topologyLayout";

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export function roleFromPermissions(perms: ClusterPermission[]): Role | null {
  if (perms.includes("admin_cluster")) return "admin";
  if (perms.includes("operate_cluster")) return "operator";
  if (perms.includes("view_cluster")) return "viewer";
  return null;
}

export function clusterRole(cluster: Pick<Cluster, "tenant"> & Partial<Pick<Cluster, "my_permissions">>, me: Me | null): Role | null {
  if (Array.isArray(cluster.my_permissions)) return roleFromPermissions(cluster.my_permissions);
  if (!me) return null;
  let best: Role | null = null;
  for (const team of me.teams ?? []) {
    if (String(team.tenant) !== String(cluster.tenant)) continue;
    if (!(team.role in RANK)) continue;
    if (best === null || RANK[team.role] > RANK[best]) best = team.role;
  }
  return best;
}

export function roleAllows(role: Role | null, needed: Role): boolean {
  return role !== null && RANK[role] >= RANK[needed];
}

export type ClusterAction = "switchover" | "failover" | "maintenance" | "reset" | "settings" | "routes" | "delete";

export const ACTION_ROLE: Record<ClusterAction, Role> = {
  switchover: "operator",
  failover: "operator",
  maintenance: "operator",
  reset: "operator",
  settings: "admin",
  routes: "admin",
  delete: "admin",
};

export interface Availability {
  /** False when the role does not allow the action at all: the portal hides it. */
  visible: boolean;
  /** False when shown but not possible right now; `reason` says why. */
  enabled: boolean;
  reason?: string;
}

export interface ActionContext {
  role: Role | null;
  topology: Topology | null;
  activeJob?: Job;
  liveLinkUp?: boolean;
}

function roleReason(role: Role | null, needed: Role): string {
  const wanted = `Needs the ${needed} role on this cluster`;
  return role ? `${wanted}; you are a ${role}.` : `${wanted}.`;
}

/** Replicas that can be chosen as switchover candidates: up, not in maintenance, not the primary. */
export function switchoverCandidates(topology: Topology | null): string[] {
  if (!topology) return [];
  return topology.servers
    .filter((s) => !isPrimaryServer(s, topology) && nodeStatus(s) === "up")
    .map(addressOf);
}

export function actionAvailability(action: ClusterAction, ctx: ActionContext): Availability {
  const needed = ACTION_ROLE[action];
  if (!roleAllows(ctx.role, needed)) return { visible: false, enabled: false, reason: roleReason(ctx.role, needed) };
  const haAction = action === "switchover" || action === "failover";
  if (haAction && ctx.activeJob) {
    return { visible: true, enabled: false, reason: `A ${ctx.activeJob.kind} job (#${ctx.activeJob.id}) is ${ctx.activeJob.state}; one HA job runs at a time.` };
  }
  const topology = ctx.topology;
  if (action === "switchover") {
    if (!topology) return { visible: true, enabled: false, reason: "Waiting for the cluster's topology." };
    const primary = topology.servers.find((s) => isPrimaryServer(s, topology));
    if (!primary) return { visible: true, enabled: false, reason: "There is no primary to switch over from; use failover." };
    if (nodeStatus(primary) === "down") return { visible: true, enabled: false, reason: "The primary is down; use failover." };
    if (switchoverCandidates(topology).length === 0) return { visible: true, enabled: false, reason: "No healthy replica can become primary." };
  }
  if (action === "failover") {
    if (!topology) return { visible: true, enabled: false, reason: "Waiting for the cluster's topology." };
    if (topology.servers.filter((s) => !isPrimaryServer(s, topology)).length === 0) {
      return { visible: true, enabled: false, reason: "The cluster has no replica to fail over to." };
    }
    const primary = topology.servers.find((s) => isPrimaryServer(s, topology));
    if (primary && nodeStatus(primary) === "up") {
      return { visible: true, enabled: false, reason: "The primary is up: use switchover (failover is for a primary that is down)." };
    }
  }
  return { visible: true, enabled: true };
}

/** What the tenant pages (teams, tokens, audit) need: a tenant admin. */
export function canManageTenant(me: Me | null): boolean {
  return Boolean(me?.is_tenant_admin);
}
