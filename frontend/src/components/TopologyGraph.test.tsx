import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { server, threeNodeTopology } from "../test/fixtures";
import { TopologyGraph } from "./TopologyGraph";

describe("TopologyGraph", () => {
  it("renders one node per server with its role and status, and the primary marked", () => {
    const html = renderToStaticMarkup(<TopologyGraph topology={threeNodeTopology()} />);
    expect(html.match(/class="topo-node /g)).toHaveLength(3);
    expect(html).toContain('data-address="127.0.0.1:3306" data-role="primary"');
    expect(html).toContain('data-primary="127.0.0.1:3306"');
    expect(html).toContain("lag 42s");
    expect(html).toContain("GTID 0-1-102");
  });

  it("draws suspect, down and maintenance servers differently", () => {
    const topology = threeNodeTopology();
    topology.servers[0] = server(1, 3306, { role: "primary", state: "suspect", replication: null });
    topology.servers[1] = server(2, 3307, { state: "down" });
    topology.servers[2] = server(3, 3308, { maintenance: true });
    const html = renderToStaticMarkup(<TopologyGraph topology={topology} />);
    expect(html).toContain("status-suspect");
    expect(html).toContain("status-down");
    expect(html).toContain("status-maintenance");
  });
});
