import { describe, expect, it } from "vitest";
import { formatParameters, parseParameters } from "./ParameterGroupsPage";

describe("parameter group text", () => {
  it("reads name = value lines, skipping blanks and comments", () => {
    expect(parseParameters("max_connections = 500\n\n# a comment\n innodb_log_file_size=256M ")).toEqual({
      max_connections: "500",
      innodb_log_file_size: "256M",
    });
  });

  it("says which line has no value", () => {
    expect(() => parseParameters("max_connections")).toThrow('"max_connections": write name = value');
  });

  it("writes back what it reads", () => {
    const parameters = { max_connections: "500", sql_mode: "STRICT_TRANS_TABLES" };
    expect(parseParameters(formatParameters(parameters))).toEqual(parameters);
  });
});
