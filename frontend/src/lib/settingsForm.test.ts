import { describe, expect, it } from "vitest";
import { changedSettings, errorsForSetting, metaFor, toFormValue } from "./settingsForm";

describe("settings form", () => {
  const original = { failover_mode: "manual", tick_seconds: 1, paused: false, preferred_servers: [], fence: null, pre_failover: "" };
  const form = () =>
    Object.fromEntries(Object.entries(original).map(([k, v]) => [k, toFormValue(metaFor(k, v).kind, v)])) as Record<string, string | boolean>;

  it("sends nothing when nothing changed", () => {
    expect(changedSettings(original, form())).toEqual({});
  });

  it("sends only what changed, typed as the API expects", () => {
    const f = { ...form(), tick_seconds: "2", paused: true, preferred_servers: "127.0.0.1:3307, 127.0.0.1:3308" };
    expect(changedSettings(original, f)).toEqual({ tick_seconds: 2, paused: true, preferred_servers: ["127.0.0.1:3307", "127.0.0.1:3308"] });
  });

  it("keeps an empty text setting's type: '' stays '', null stays null", () => {
    const f = { ...form(), pre_failover: "  ", fence: "" };
    expect(changedSettings(original, f)).toEqual({});
    expect(changedSettings({ ...original, fence: "stonith" }, { ...form(), fence: "" })).toEqual({ fence: "" });
  });

  it("finds a 400's messages for a setting, nested or flat", () => {
    expect(errorsForSetting({ "settings.tick_seconds": ["Must be at least 1."] }, "tick_seconds")).toEqual(["Must be at least 1."]);
    expect(errorsForSetting({ tick_seconds: ["Bad."] }, "tick_seconds")).toEqual(["Bad."]);
    expect(errorsForSetting({}, "tick_seconds")).toEqual([]);
  });
});
