import { describe, expect, it } from "vitest";
import { fromPickerValue, insideWindow, toPickerValue } from "./backupWindow";

describe("the restore time picker", () => {
  it("shows the window in UTC to the second and sends ISO-8601 UTC", () => {
    expect(toPickerValue("2026-12-06T02:30:05.123456+00:00")).toBe("2026-12-06T02:30:05");
    expect(toPickerValue(null)).toBe("");
    expect(fromPickerValue("2026-12-06T02:30")).toBe("2026-12-06T02:30:00Z");
    expect(fromPickerValue("2026-12-06T02:30:05")).toBe("2026-12-06T02:30:05Z");
  });

  it("accepts only times inside the recoverable window", () => {
    const window = { start: "2026-12-06T02:00:00.500Z", end: "2026-12-06T03:00:00Z" };
    expect(insideWindow("2026-12-06T02:00:00", window)).toBe(true);
    expect(insideWindow("2026-12-06T02:59:59", window)).toBe(true);
    expect(insideWindow("2026-12-06T03:00:01", window)).toBe(false);
    expect(insideWindow("2026-12-06T01:59:58", window)).toBe(false);
    expect(insideWindow("2026-12-06T02:30:00", { start: null, end: null })).toBe(false);
  });
});
