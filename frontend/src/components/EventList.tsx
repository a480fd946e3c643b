/** The event log, newest first (the caller merges live and fetched events with mergeEvents). */
import type { ClusterEvent } from "../api/types";
import { formatTime } from "../lib/format";
import { SeverityBadge } from "./Badges";

export function EventList({ events, showCluster }: { events: ClusterEvent[]; showCluster?: (e: ClusterEvent) => string }) {
  if (events.length === 0) return <p className="muted">No events yet.</p>;
  return (
    <table className="table events">
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Severity</th>
          {showCluster && <th scope="col">Cluster</th>}
          <th scope="col">Kind</th>
          <th scope="col">Message</th>
        </tr>
      </thead>
      <tbody aria-live="polite">
        {events.map((e) => (
          <tr key={e.id} data-event-id={e.id}>
            <td className="nowrap">{formatTime(e.created_at)}</td>
            <td><SeverityBadge severity={e.severity} /></td>
            {showCluster && <td>{showCluster(e)}</td>}
            <td><code>{e.kind}</code></td>
            <td>{e.message}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
