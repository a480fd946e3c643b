import { describe, expect, it } from "vitest";
import { event, job, threeNodeTopology } from "../test/fixtures";
import { activeHaJob, isNewerTopology, mergeEvents, upsertJob, worstSeverity } from "./liveState";

describe("mergeEvents", () => {
  it("keeps events newest first and drops duplicates from the fetch and the socket", () => {
    const fetched = [event(3, "2026-11-25T10:00:03Z"), event(2, "2026-11-25T10:00:02Z"), event(1, "2026-11-25T10:00:01Z")];
    const live = [event(4, "2026-11-25T10:00:04Z"), event(3, "2026-11-25T10:00:03Z")];
    expect(mergeEvents(live, fetched).map((e) => e.id)).toEqual([4, 3, 2, 1]);
  });

  it("orders same-instant events by id and caps the list", () => {
    const same = [event(7, "2026-11-25T10:00:00Z"), event(9, "2026-11-25T10:00:00Z"), event(8, "2026-11-25T10:00:00Z")];
    expect(mergeEvents([], same, 2).map((e) => e.id)).toEqual([9, 8]);
  });

  it("puts a late-arriving older event below newer ones", () => {
    const current = [event(10, "2026-11-25T10:00:10Z")];
    expect(mergeEvents(current, [event(5, "2026-11-25T10:00:05Z")]).map((e) => e.id)).toEqual([10, 5]);
  });
});

describe("upsertJob", () => {
  it("replaces a job with its newer copy as its steps progress", () => {
    const running = job(1, "running", { steps: [{ name: "fence", state: "running", started_at: "2026-11-25T10:00:01Z", finished_at: null }] });
    const done = job(1, "succeeded", { steps: [{ name: "fence", state: "ok", started_at: "2026-11-25T10:00:01Z", finished_at: "2026-11-25T10:00:02Z" }] });
    const jobs = upsertJob(upsertJob([], running), done);
    expect(jobs).toHaveLength(1);
    expect(jobs[0].state).toBe("succeeded");
  });

  it("ignores a stale running copy of a job that already finished", () => {
    const jobs = upsertJob([job(1, "failed")], job(1, "running"));
    expect(jobs[0].state).toBe("failed");
  });

  it("lists jobs newest first", () => {
    const jobs = [job(1, "succeeded"), job(3, "running"), job(2, "failed")].reduce((acc, j) => upsertJob(acc, j), [] as ReturnType<typeof job>[]);
    expect(jobs.map((j) => j.id)).toEqual([3, 2, 1]);
  });

  it("finds the active HA job but not a running backup", () => {
    expect(activeHaJob([job(5, "running", { kind: "backup" }), job(4, "succeeded")])).toBeUndefined();
    expect(activeHaJob([job(5, "running", { kind: "backup" }), job(4, "pending", { kind: "failover" })])?.id).toBe(4);
  });
});

describe("isNewerTopology", () => {
  it("prefers a higher epoch even when its timestamp is older", () => {
    const current = threeNodeTopology({ epoch: 4, updated_at: "2026-11-25T10:00:05Z" });
    expect(isNewerTopology(current, threeNodeTopology({ epoch: 5, updated_at: "2026-11-25T10:00:01Z" }))).toBe(true);
    expect(isNewerTopology(current, threeNodeTopology({ epoch: 3, updated_at: "2026-11-25T10:00:09Z" }))).toBe(false);
  });

  it("within an epoch, keeps the later observation", () => {
    const current = threeNodeTopology({ updated_at: "2026-11-25T10:00:05Z" });
    expect(isNewerTopology(current, threeNodeTopology({ updated_at: "2026-11-25T10:00:04Z" }))).toBe(false);
    expect(isNewerTopology(current, threeNodeTopology({ updated_at: "2026-11-25T10:00:06Z" }))).toBe(true);
    expect(isNewerTopology(null, current)).toBe(true);
  });
});

describe("worstSeverity", () => {
  it("is ok without findings and the worst one otherwise", () => {
    expect(worstSeverity([])).toBe("ok");
    expect(worstSeverity(["info", "critical", "warning"])).toBe("critical");
  });
});
