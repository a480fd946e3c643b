import { describe, expect, it } from "vitest";
import { job, me, server, threeNodeTopology } from "../test/fixtures";
import { actionAvailability, clusterRole, switchoverCandidates, type ClusterAction } from "./permissions";

const cluster = { tenant: "acme" };
const OPERATE: ClusterAction[] = ["switchover", "failover", "maintenance", "reset"];
const ADMIN: ClusterAction[] = ["settings", "routes", "delete"];

describe("clusterRole", () => {
  it("is the highest role among the user's teams of the cluster's tenant", () => {
    const user = me([
      { id: 1, name: "dev", tenant: "acme", role: "viewer" },
      { id: 2, name: "ops", tenant: "acme", role: "operator" },
      { id: 3, name: "other", tenant: "globex", role: "admin" },
    ]);
    expect(clusterRole(cluster, user)).toBe("operator");
    expect(clusterRole({ tenant: "initech" }, user)).toBeNull();
  });

  it("prefers my_permissions when the API sends them", () => {
    const user = me([{ id: 1, name: "ops", tenant: "acme", role: "admin" }]);
    expect(clusterRole({ ...cluster, my_permissions: ["view_cluster"] }, user)).toBe("viewer");
    expect(clusterRole({ ...cluster, my_permissions: ["view_cluster", "operate_cluster", "admin_cluster"] }, null)).toBe("admin");
    expect(clusterRole({ ...cluster, my_permissions: [] }, user)).toBeNull();
  });
});

describe("actionAvailability by role", () => {
  const topology = threeNodeTopology();

  it("hides every action from a viewer, with the reason", () => {
    for (const action of [...OPERATE, ...ADMIN]) {
      const a = actionAvailability(action, { role: "viewer", topology });
      expect(a.visible, action).toBe(false);
      expect(a.reason).toMatch(/role on this cluster; you are a viewer/);
    }
  });

  it("lets an operator operate but not administer", () => {
    for (const action of OPERATE.filter((a) => a !== "failover")) {
      expect(actionAvailability(action, { role: "operator", topology }), action).toEqual({ visible: true, enabled: true });
    }
    expect(actionAvailability("failover", { role: "operator", topology }).visible).toBe(true);
    for (const action of ADMIN) expect(actionAvailability(action, { role: "operator", topology }).visible, action).toBe(false);
  });

  it("lets an admin do everything", () => {
    for (const action of [...OPERATE, ...ADMIN]) expect(actionAvailability(action, { role: "admin", topology }).visible, action).toBe(true);
    for (const action of ADMIN) expect(actionAvailability(action, { role: "admin", topology }).enabled, action).toBe(true);
  });

  it("hides everything from someone with no role", () => {
    expect(actionAvailability("switchover", { role: null, topology }).visible).toBe(false);
  });
});

describe("actionAvailability by cluster state", () => {
  it("disables switchover and failover while an HA job runs, naming it", () => {
    const ctx = { role: "operator" as const, topology: threeNodeTopology(), activeJob: job(12, "running", { kind: "failover" }) };
    const a = actionAvailability("switchover", ctx);
    expect(a).toMatchObject({ visible: true, enabled: false });
    expect(a.reason).toContain("#12");
    expect(actionAvailability("failover", ctx).enabled).toBe(false);
    expect(actionAvailability("maintenance", ctx).enabled).toBe(true);
  });

  it("disables switchover when the primary is down, pointing at failover", () => {
    const topology = threeNodeTopology();
    topology.servers[0] = server(1, 3306, { role: "primary", state: "down", replication: null });
    const a = actionAvailability("switchover", { role: "operator", topology });
    expect(a.enabled).toBe(false);
    expect(a.reason).toMatch(/failover/);
    expect(actionAvailability("failover", { role: "operator", topology }).enabled).toBe(true);
  });

  it("disables manual failover while the primary is up, pointing at switchover", () => {
    const a = actionAvailability("failover", { role: "operator", topology: threeNodeTopology() });
    expect(a).toMatchObject({ visible: true, enabled: false });
    expect(a.reason).toMatch(/switchover/);
    const suspect = threeNodeTopology();
    suspect.servers[0] = server(1, 3306, { role: "primary", state: "suspect", replication: null });
    expect(actionAvailability("failover", { role: "operator", topology: suspect }).enabled).toBe(true);
  });

  it("offers only healthy replicas outside maintenance as switchover candidates", () => {
    const topology = threeNodeTopology();
    topology.servers[1] = server(2, 3307, { maintenance: true });
    expect(switchoverCandidates(topology)).toEqual(["127.0.0.1:3308"]);
    topology.servers[2] = server(3, 3308, { state: "suspect" });
    expect(actionAvailability("switchover", { role: "operator", topology })).toMatchObject({ enabled: false, reason: "No healthy replica can become primary." });
  });

  it("waits for the topology before offering HA actions", () => {
    expect(actionAvailability("switchover", { role: "admin", topology: null }).enabled).toBe(false);
  });
});
