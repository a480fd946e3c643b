import { describe, expect, it } from "vitest";
import { routeSyncView } from "./routeSync";

const now = Date.parse("2026-11-26T10:00:00Z");

describe("routeSyncView", () => {
  it("says a route was never synced", () => {
    expect(routeSyncView(undefined, now)).toEqual({ state: "never", label: "not synced yet", when: "—", detail: "" });
    expect(routeSyncView({ at: null, ok: null, detail: "", trigger: "" }, now).state).toBe("never");
  });

  it("shows a successful sync with its trigger and age", () => {
    const view = routeSyncView({ at: "2026-11-26T09:59:30Z", ok: true, detail: "db_write: 10.0.0.2:3306 ready", trigger: "job" }, now);
    expect(view).toEqual({ state: "ok", label: "in sync (job)", when: "30s ago", detail: "db_write: 10.0.0.2:3306 ready" });
  });

  it("shows a failed sync with the driver's error", () => {
    const view = routeSyncView({ at: "2026-11-26T09:00:00Z", ok: false, detail: "cannot reach the runtime API", trigger: "health" }, now);
    expect(view.state).toBe("failed");
    expect(view.label).toBe("sync failed (health)");
    expect(view.when).toBe("1h ago");
    expect(view.detail).toBe("cannot reach the runtime API");
  });
});
