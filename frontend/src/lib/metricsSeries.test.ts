import { describe, expect, it } from "vitest";
import type { ClusterMetrics } from "../api/types";
import { alignedData, lastTime, latestValues, mergeMetrics } from "./metricsSeries";

function answer(points: Record<number, [number, number | null][]>, marks: ClusterMetrics["marks"] = []): ClusterMetrics {
  return {
    cluster: 1, range: "1h", resolution_seconds: 1, series: ["lag"], marks,
    servers: Object.entries(points).map(([id, pts]) => ({ id: Number(id), address: `h:${id}`, t: pts.map((p) => p[0]), lag: pts.map((p) => p[1]) })),
  };
}

describe("metricsSeries", () => {
  it("appends only newer points and drops what left the window", () => {
    let store = mergeMetrics(null, answer({ 1: [[100, 0], [101, 1]], 2: [[100, 5]] }), 60, 101);
    expect(lastTime(store)).toBe(101);
    store = mergeMetrics(store, answer({ 1: [[101, 1], [102, 2]], 2: [[102, 6]] }), 60, 102);
    expect(store.servers[0].t).toEqual([100, 101, 102]);
    expect(store.servers[0].lag).toEqual([0, 1, 2]);
    store = mergeMetrics(store, answer({ 1: [[161, 3]], 2: [] }), 60, 161);
    expect(store.servers[0].t).toEqual([101, 102, 161]);
    expect(store.servers[1].t).toEqual([102]);
  });

  it("keeps marks once and within the window", () => {
    const mark = { t: 100, kind: "failover", severity: "info", message: "Failover job 1 succeeded" };
    let store = mergeMetrics(null, answer({ 1: [[100, 0]] }, [mark]), 60, 100);
    store = mergeMetrics(store, answer({ 1: [] }, [mark]), 60, 101);
    expect(store.marks).toHaveLength(1);
    store = mergeMetrics(store, answer({ 1: [] }), 60, 200);
    expect(store.marks).toHaveLength(0);
  });

  it("aligns servers on one time axis with gaps as null, and reads the latest value", () => {
    const store = mergeMetrics(null, answer({ 1: [[100, 0], [101, 1]], 2: [[101, 7], [102, null]] }), 600, 102);
    expect(alignedData(store, "lag")).toEqual([[100, 101, 102], [0, 1, null], [null, 7, null]]);
    expect(latestValues(store, "lag")).toEqual([{ id: 1, address: "h:1", value: 1 }, { id: 2, address: "h:2", value: 7 }]);
  });
});
