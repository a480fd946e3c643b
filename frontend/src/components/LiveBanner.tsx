/** Shown while the live link (websocket) is down: the page may be stale until it reconnects. */
import { useEffect, useState } from "react";
import type { LinkStatus } from "../lib/liveSocket";

interface Props {
  status: LinkStatus;
  retryAt: number | null;
  everConnected: boolean;
  onRetry: () => void;
}

export function LiveBanner({ status, retryAt, everConnected, onRetry }: Props) {
  const [, tick] = useState(0);
  useEffect(() => {
    if (status !== "down") return;
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [status]);
  const down = status === "down" || (status === "connecting" && everConnected);
  if (!down) return null;
  const seconds = retryAt ? Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) : 0;
  return (
    <div className="banner banner-warning" role="status" aria-live="polite">
      <strong>Live updates are disconnected.</strong>{" "}
      {status === "connecting" ? "Reconnecting…" : `Reconnecting in ${seconds}s. What you see may be out of date.`}
      {status === "down" && (
        <button type="button" className="btn btn-small" onClick={onRetry}>Reconnect now</button>
      )}
    </div>
  );
}

export function LiveIndicator({ status }: { status: LinkStatus }) {
  const label = status === "open" ? "Live" : status === "connecting" ? "Connecting" : status === "denied" ? "No access" : "Offline";
  return (
    <span className={`live-indicator live-${status}`} title={`Live updates: ${label}`}>
      <span className="dot" aria-hidden="true" /> {label}
    </span>
  );
}
