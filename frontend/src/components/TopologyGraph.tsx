/**
 * The live topology graph: servers as nodes (role, state, lag, GTID position, read_only), replication
 * edges from source to replica, the primary highlighted, suspect/down/maintenance drawn differently.
 * Pure rendering of layoutTopology(); the page feeds it the newest payload from the websocket.
 */
import type { Topology } from "../api/types";
import { NODE_HEIGHT, NODE_WIDTH, layoutTopology, shortGtid, type LayoutNode } from "../lib/topologyLayout";

const STATUS_LABEL: Record<string, string> = {
  up: "up",
  suspect: "suspect",
  down: "down",
  unreachable: "unreachable",
  auth_failed: "auth failed",
  maintenance: "maintenance",
  unknown: "unknown",
};

function NodeBox({ node }: { node: LayoutNode }) {
  const s = node.server;
  const role = node.isPrimary ? "PRIMARY" : (s.role || "unknown").toUpperCase();
  const readOnly = s.read_only === null || s.read_only === undefined ? "ro ?" : s.read_only ? "read-only" : "writable";
  const lag = node.isPrimary ? "" : node.lagSeconds === null ? "lag —" : `lag ${node.lagSeconds}s`;
  const classes = ["topo-node", `status-${node.status}`, node.isPrimary ? "is-primary" : "is-replica"].join(" ");
  return (
    <g
      className={classes}
      style={{ transform: `translate(${node.x}px, ${node.y}px)` }}
      data-server-id={node.id}
      data-address={node.address}
      data-role={node.isPrimary ? "primary" : s.role}
      data-status={node.status}
    >
      <title>{`${node.address}: ${role.toLowerCase()}, ${STATUS_LABEL[node.status]}, ${readOnly}${lag ? `, ${lag}` : ""}, GTID ${s.gtid_current_pos ?? "unknown"}`}</title>
      <rect className="node-frame" width={NODE_WIDTH} height={NODE_HEIGHT} rx={8} />
      <rect className="node-header" width={NODE_WIDTH} height={26} rx={8} />
      <rect className="node-header-fill" y={18} width={NODE_WIDTH} height={8} />
      <text className="node-role" x={10} y={18}>{role}</text>
      <text className="node-status" x={NODE_WIDTH - 10} y={18} textAnchor="end">{STATUS_LABEL[node.status].toUpperCase()}</text>
      <text className="node-address" x={10} y={46}>{node.address.length > 28 ? `${node.address.slice(0, 27)}…` : node.address}</text>
      <text className="node-detail" x={10} y={66}>
        <tspan className={s.read_only === false && !node.isPrimary ? "warn" : ""}>{readOnly}</tspan>
        {lag && <tspan dx={10} className={node.lagSeconds !== null && node.lagSeconds > 30 ? "warn" : ""}>{lag}</tspan>}
      </text>
      <text className="node-gtid" x={10} y={86}>GTID {shortGtid(s.gtid_current_pos)}</text>
      {node.status === "maintenance" && <rect className="node-hatch" width={NODE_WIDTH} height={NODE_HEIGHT} rx={8} />}
    </g>
  );
}

export function TopologyGraph({ topology }: { topology: Topology }) {
  const layout = layoutTopology(topology);
  const byId = new Map(layout.nodes.map((n) => [n.id, n]));
  const summary = layout.nodes
    .map((n) => `${n.address} ${n.isPrimary ? "primary" : n.server.role} ${n.status}`)
    .join("; ");
  if (layout.nodes.length === 0) return <p className="muted">This cluster has no servers.</p>;
  return (
    <svg
      className="topology"
      viewBox={`0 0 ${layout.width} ${layout.height}`}
      width="100%"
      style={{ maxWidth: layout.width, maxHeight: Math.max(layout.height, 180) }}
      role="img"
      aria-label={`Replication topology: ${summary}`}
      data-epoch={topology.epoch}
      data-primary={topology.primary ?? ""}
    >
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" className="arrow-head" />
        </marker>
        <marker id="arrow-broken" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" className="arrow-head-broken" />
        </marker>
      </defs>
      {layout.edges.map((edge) => {
        const from = byId.get(edge.from);
        const to = byId.get(edge.to);
        if (!from || !to) return null;
        const x1 = from.x + NODE_WIDTH / 2;
        const y1 = from.y + NODE_HEIGHT;
        const x2 = to.x + NODE_WIDTH / 2;
        const y2 = to.y - 2;
        const midY = (y1 + y2) / 2;
        return (
          <g key={`${edge.from}-${edge.to}`} className={`topo-edge edge-${edge.health}`}>
            <path
              d={`M ${x1} ${y1} C ${x1} ${midY}, ${x2} ${midY}, ${x2} ${y2}`}
              markerEnd={edge.health === "broken" ? "url(#arrow-broken)" : "url(#arrow)"}
            />
            {edge.health === "broken" && (
              <text x={(x1 + x2) / 2} y={midY - 4} textAnchor="middle" className="edge-label">{edge.problem ?? "replication stopped"}</text>
            )}
          </g>
        );
      })}
      {layout.nodes.map((node) => (
        <NodeBox key={node.id} node={node} />
      ))}
    </svg>
  );
}
