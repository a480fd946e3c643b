import { describe, expect, it } from "vitest";
import { server, threeNodeTopology } from "../test/fixtures";
import { NODE_HEIGHT, addressOf, layoutTopology, nodeStatus, shortGtid } from "./topologyLayout";

describe("layoutTopology", () => {
  it("puts the primary alone on the top tier and its replicas below, ordered by id", () => {
    const layout = layoutTopology(threeNodeTopology());
    const byId = Object.fromEntries(layout.nodes.map((n) => [n.id, n]));
    expect(byId[1].tier).toBe(0);
    expect(byId[1].isPrimary).toBe(true);
    expect([byId[2].tier, byId[3].tier]).toEqual([1, 1]);
    expect(byId[2].x).toBeLessThan(byId[3].x);
    expect(byId[2].y).toBeGreaterThan(byId[1].y + NODE_HEIGHT);
    // The lone primary is centred above its two replicas.
    expect(byId[1].x).toBeCloseTo((byId[2].x + byId[3].x) / 2);
  });

  it("draws one edge per replication link, from source to replica, with its lag", () => {
    const layout = layoutTopology(threeNodeTopology());
    expect(layout.edges).toEqual([
      { from: 1, to: 2, health: "ok", lagSeconds: 0 },
      { from: 1, to: 3, health: "ok", lagSeconds: 42 },
    ]);
  });

  it("keeps a dead replica, which reports no source, in its tier", () => {
    const topology = threeNodeTopology();
    topology.servers[2] = server(3, 3308, { role: "unknown", state: "down", read_only: null, replication: null });
    const layout = layoutTopology(topology);
    const dead = layout.nodes.find((n) => n.id === 3);
    expect(dead?.tier).toBe(1);
    expect(dead?.x).toBeGreaterThan(layout.nodes.find((n) => n.id === 2)?.x ?? Infinity);
    expect(layout.edges).toEqual([{ from: 1, to: 2, health: "ok", lagSeconds: 0 }]);
  });

  it("places a chained replica one tier below its source", () => {
    const topology = threeNodeTopology();
    topology.servers.push(server(4, 3309, { replication: { source: "127.0.0.1:3308", io_running: true, sql_running: true, seconds_behind: 1 } }));
    const layout = layoutTopology(topology);
    expect(layout.nodes.find((n) => n.id === 4)?.tier).toBe(2);
    expect(layout.edges).toContainEqual({ from: 3, to: 4, health: "ok", lagSeconds: 1 });
  });

  it("marks a link broken when a replication thread stopped", () => {
    const topology = threeNodeTopology();
    topology.servers[1].replication = { source: "127.0.0.1:3306", io_running: false, sql_running: true, seconds_behind: null };
    const edge = layoutTopology(topology).edges.find((e) => e.to === 2);
    expect(edge?.health).toBe("broken");
  });

  it("reads MariaDB's thread states: an IO thread still connecting is a broken link", () => {
    const topology = threeNodeTopology();
    topology.servers[1].replication = { source: "127.0.0.1:3306", io_running: "Connecting", sql_running: true, seconds_behind: null };
    topology.servers[2].replication = { source: "127.0.0.1:3306", io_running: "Yes", sql_running: "No", seconds_behind: 3 };
    const edges = layoutTopology(topology).edges;
    expect(edges.find((e) => e.to === 2)).toMatchObject({ health: "broken", problem: "IO Connecting" });
    expect(edges.find((e) => e.to === 3)).toMatchObject({ health: "broken", problem: "SQL stopped" });
  });

  it("follows the payload's primary after a failover, whatever the old roles say", () => {
    const topology = threeNodeTopology({ primary: "127.0.0.1:3307", epoch: 5 });
    topology.servers[0] = server(1, 3306, { role: "primary", state: "down", replication: null });
    topology.servers[1] = server(2, 3307, { role: "primary", read_only: false, replication: null });
    topology.servers[2] = server(3, 3308, { replication: { source: "127.0.0.1:3307", io_running: true, sql_running: true, seconds_behind: 0 } });
    const layout = layoutTopology(topology);
    const primaries = layout.nodes.filter((n) => n.isPrimary).map((n) => n.id);
    expect(primaries).toEqual([2]);
    const old = layout.nodes.find((n) => n.id === 1);
    expect(old?.status).toBe("down");
    // The dead old primary replicates from nothing: it sits beside the new primary's replicas.
    expect(old?.tier).toBe(1);
    expect(layout.edges).toEqual([{ from: 2, to: 3, health: "ok", lagSeconds: 0 }]);
  });

  it("survives a replication loop and servers whose source is outside the cluster", () => {
    const topology = threeNodeTopology({ primary: null });
    topology.servers = [
      server(1, 3306, { role: "replica", replication: { source: "127.0.0.1:3307", io_running: true, sql_running: true, seconds_behind: 0 } }),
      server(2, 3307, { role: "replica", replication: { source: "127.0.0.1:3306", io_running: true, sql_running: true, seconds_behind: 0 } }),
      server(3, 3308, { replication: { source: "10.0.0.9:3306", io_running: false, sql_running: false, seconds_behind: null } }),
    ];
    const layout = layoutTopology(topology);
    expect(layout.nodes).toHaveLength(3);
    expect(new Set(layout.nodes.map((n) => n.tier))).toEqual(new Set([0]));
    expect(layout.width).toBeGreaterThan(0);
  });

  it("lays out an empty cluster without nodes", () => {
    const layout = layoutTopology(threeNodeTopology({ servers: [], primary: null }));
    expect(layout.nodes).toEqual([]);
    expect(layout.edges).toEqual([]);
  });
});

describe("node status and labels", () => {
  it("shows maintenance over any probe state", () => {
    expect(nodeStatus(server(1, 1, { maintenance: true, state: "down" }))).toBe("maintenance");
    expect(nodeStatus(server(1, 1, { state: "suspect" }))).toBe("suspect");
    expect(nodeStatus(server(1, 1, { state: "down" }))).toBe("down");
    expect(nodeStatus(server(1, 1, { state: "unknown" }))).toBe("unknown");
    expect(nodeStatus(server(1, 1, { state: "unreachable" }))).toBe("unreachable");
    expect(nodeStatus(server(1, 1, { state: "auth_failed" }))).toBe("auth_failed");
  });

  it("writes IPv6 addresses in brackets", () => {
    expect(addressOf({ host: "::1", port: 3306 })).toBe("[::1]:3306");
    expect(addressOf({ host: "db1", port: 3306 })).toBe("db1:3306");
  });

  it("shortens multi-domain GTID positions", () => {
    expect(shortGtid("0-1-100,1-2-5")).toBe("0-1-100 +1");
    expect(shortGtid("")).toBe("—");
    expect(shortGtid(null)).toBe("—");
  });
});
