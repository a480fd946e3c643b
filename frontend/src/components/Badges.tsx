/** Small status badges: health, job and step states, failover mode. */
import type { Cluster } from "../api/types";

const HEALTH_LABEL: Record<string, string> = {
  ok: "Healthy",
  info: "Info",
  warning: "Warning",
  error: "Error",
  critical: "Critical",
};

export function HealthBadge({ health }: { health: string }) {
  return <span className={`badge sev-${health}`}>{HEALTH_LABEL[health] ?? health}</span>;
}

export function SeverityBadge({ severity }: { severity: string }) {
  return <span className={`badge sev-${severity}`}>{severity}</span>;
}

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge state-${state}`}>{state}</span>;
}

/** Failover mode, arming and pause, as the user needs to read them. */
export function ModeBadges({ cluster }: { cluster: Pick<Cluster, "failover_mode" | "failover_armed" | "paused"> }) {
  return (
    <span className="mode-badges">
      {cluster.failover_mode === "automatic" ? (
        cluster.failover_armed ? (
          <span className="badge mode-armed" title="Automatic failover is armed">Automatic failover</span>
        ) : (
          <span className="badge mode-unarmed" title="Automatic failover was requested but is not armed yet (the adopt job has not succeeded)">
            Automatic — not armed
          </span>
        )
      ) : (
        <span className="badge mode-manual" title="dbpilot observes and only runs jobs that users ask for">Manual failover</span>
      )}
      {cluster.paused && <span className="badge mode-paused" title="Every automatic action is stopped">Paused</span>}
    </span>
  );
}
