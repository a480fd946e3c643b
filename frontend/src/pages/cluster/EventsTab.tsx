/** The cluster's event log: live events on top, older pages fetched on demand. */
import { useState } from "react";
import { clusters as clustersApi, resultsOf } from "../../api/endpoints";
import { EventList } from "../../components/EventList";
import { ErrorMessage } from "../../components/ErrorMessage";
import { mergeEvents } from "../../lib/liveState";
import type { ClusterEvent } from "../../api/types";
import { useClusterPage } from "./context";

const PAGE_SIZE = 100;

export function EventsTab() {
  const { clusterId, live } = useClusterPage();
  const [older, setOlder] = useState<ClusterEvent[]>([]);
  const [page, setPage] = useState(1);
  const [hasMore, setHasMore] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [severity, setSeverity] = useState("");
  const all = mergeEvents(live.events, older, 10_000);
  const shown = severity ? all.filter((e) => e.severity === severity) : all;

  const loadMore = async () => {
    try {
      const next = page + 1;
      const data = await clustersApi.events(clusterId, next, PAGE_SIZE);
      setOlder((cur) => mergeEvents(cur, resultsOf(data), 10_000));
      setPage(next);
      setHasMore(Boolean(data.next));
    } catch (exc) {
      setError(exc);
    }
  };

  return (
    <section className="panel">
      <div className="panel-head">
        <h2>Event log</h2>
        <label className="inline-field">
          Severity{" "}
          <select value={severity} onChange={(e) => setSeverity(e.target.value)}>
            <option value="">all</option>
            {["info", "warning", "error", "critical"].map((s) => (
              <option key={s} value={s}>{s}</option>
            ))}
          </select>
        </label>
      </div>
      <p className="muted small">New events appear at the top as they happen.</p>
      <EventList events={shown} />
      <ErrorMessage error={error} />
      {hasMore && all.length >= PAGE_SIZE && (
        <button type="button" className="btn" onClick={loadMore}>Load older events</button>
      )}
    </section>
  );
}
