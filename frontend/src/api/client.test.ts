import { describe, expect, it } from "vitest";
import { errorFromResponse, flattenFieldErrors } from "./client";

describe("errorFromResponse", () => {
  it("keeps a 409's detail, code and checks", () => {
    const e = errorFromResponse(409, {
      detail: "Switchover refused.",
      code: "guards_failed",
      checks: [{ name: "replica_lag", ok: false, detail: "127.0.0.1:3307 is 40 s behind" }],
    });
    expect(e.message).toBe("Switchover refused.");
    expect(e.code).toBe("guards_failed");
    expect(e.checks).toHaveLength(1);
  });

  it("flattens a 400's field errors", () => {
    const e = errorFromResponse(400, { detail: "settings: tick_seconds: bad", code: "invalid", errors: { settings: { tick_seconds: ["bad"] } } });
    expect(e.fieldErrors).toEqual({ "settings.tick_seconds": ["bad"] });
  });

  it("gives a readable message when the body is not JSON", () => {
    expect(errorFromResponse(502, null).message).toMatch(/not reachable/);
    expect(errorFromResponse(429, null).message).toMatch(/Too many attempts/);
    expect(errorFromResponse(418, null).message).toBe("Request failed (HTTP 418).");
  });

  it("flattens lists of objects with their index", () => {
    expect(flattenFieldErrors({ servers: [{}, { port: ["too big"] }] })).toEqual({ "servers.1.port": ["too big"] });
  });
});
