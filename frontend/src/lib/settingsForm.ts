/**
 * The cluster settings form: which input each setting gets, its help text, and the PATCH body of what
 * the user changed. Settings not listed here still appear, with an input chosen from their value's type.
 */

export type FieldKind = "boolean" | "number" | "text" | "choice" | "list";

export interface SettingMeta {
  label: string;
  help: string;
  kind: FieldKind;
  choices?: string[];
}

export const SETTINGS_META: Record<string, SettingMeta> = {
  failover_mode: { label: "Failover mode", kind: "choice", choices: ["manual", "automatic"], help: "automatic runs the adopt job; dbpilot then fails over by itself once armed." },
  paused: { label: "Paused", kind: "boolean", help: "Stops every automatic action on this cluster." },
  tick_seconds: { label: "Tick (s)", kind: "number", help: "How often the servers are probed." },
  failcount: { label: "Failed probes before down", kind: "number", help: "A primary is down after this many consecutive failed probes." },
  reprobe_interval_ms: { label: "Re-probe interval (ms)", kind: "number", help: "After a failed probe, re-probe this often instead of waiting for the next tick." },
  failover_limit: { label: "Failover limit", kind: "number", help: "At most this many automatic failovers in the window below." },
  failover_window_seconds: { label: "Failover window (s)", kind: "number", help: "The window of the failover limit." },
  failover_min_interval_seconds: { label: "Minimum interval between failovers (s)", kind: "number", help: "" },
  max_replica_delay_seconds: { label: "Maximum replica delay (s)", kind: "number", help: "A replica further behind is not a candidate." },
  check_replication_state: { label: "Check replication state", kind: "boolean", help: "Candidates must have healthy replication threads." },
  candidate_requires_semi_sync: { label: "Candidate requires semi-sync", kind: "boolean", help: "" },
  semi_sync: { label: "Semi-synchronous replication", kind: "boolean", help: "" },
  semi_sync_timeout_ms: { label: "Semi-sync timeout (ms)", kind: "number", help: "" },
  semi_sync_on_timeout: { label: "On semi-sync timeout", kind: "choice", choices: ["async", "wait"], help: "async: commits go on unacknowledged (may lose acknowledged writes in a failover); wait: commits block until a replica acknowledges." },
  tls: { label: "TLS", kind: "choice", choices: ["disabled", "preferred", "verify"], help: "" },
  preferred_servers: { label: "Preferred servers", kind: "list", help: "host:port, comma-separated: elected first." },
  ignored_servers: { label: "Ignored servers", kind: "list", help: "host:port, comma-separated: never elected." },
  switchover_wait_trx_seconds: { label: "Refuse switchover on transactions older than (s)", kind: "number", help: "" },
  switchover_wait_kill_ms: { label: "In-flight write grace at switchover (ms)", kind: "number", help: "Idle sessions are killed at once; replication and dbpilot's own sessions never." },
  replicas_read_only: { label: "Replicas read-only", kind: "boolean", help: "" },
  autorejoin: { label: "Auto-rejoin", kind: "boolean", help: "Repoint a returning old primary as a replica when its GTIDs allow." },
  rejoin_method: {
    label: "Rejoin method",
    kind: "list",
    help: "gtid, flashback, reseed or none, comma-separated, tried in order after a plain GTID rejoin; empty: gtid for registered clusters, flashback, reseed for provisioned ones.",
  },
  replace_after_seconds: { label: "Replace a lost server after (s)", kind: "number", help: "Provisioned clusters: a server down this long is replaced by a new replica; 0 never." },
  pre_failover: { label: "pre_failover hook", kind: "text", help: "A script name from the operator's hooks directory." },
  post_failover: { label: "post_failover hook", kind: "text", help: "A script name from the operator's hooks directory." },
  fence: { label: "fence hook", kind: "text", help: "A script name from the operator's hooks directory." },
};

export function metaFor(key: string, value: unknown): SettingMeta {
  const known = SETTINGS_META[key];
  if (known) return known;
  const kind: FieldKind =
    typeof value === "boolean" ? "boolean" : typeof value === "number" ? "number" : Array.isArray(value) ? "list" : "text";
  return { label: key.replace(/_/g, " "), help: "", kind };
}

/** The form's string/boolean value for a setting. */
export function toFormValue(kind: FieldKind, value: unknown): string | boolean {
  if (kind === "boolean") return Boolean(value);
  if (kind === "list") return Array.isArray(value) ? value.join(", ") : value == null ? "" : String(value);
  return value === null || value === undefined ? "" : String(value);
}

/** The API value of a form value: numbers as numbers, lists split; empty text keeps the original's type
 * ("" for a string setting, null for one that was null). */
export function fromFormValue(kind: FieldKind, value: string | boolean, original?: unknown): unknown {
  if (kind === "boolean") return Boolean(value);
  const text = String(value).trim();
  if (kind === "number") return text === "" ? null : Number(text);
  if (kind === "list") return text === "" ? [] : text.split(",").map((s) => s.trim()).filter(Boolean);
  if (text === "") return typeof original === "string" ? "" : null;
  return text;
}

/** Only what changed, so a PATCH never rewrites settings the user did not touch. */
export function changedSettings(original: Record<string, unknown>, form: Record<string, string | boolean>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, formValue] of Object.entries(form)) {
    const meta = metaFor(key, original[key]);
    const next = fromFormValue(meta.kind, formValue, original[key]);
    if (JSON.stringify(next) !== JSON.stringify(original[key] ?? (meta.kind === "list" ? [] : null))) out[key] = next;
  }
  return out;
}

/** The 400 messages that belong to one setting ("settings.tick_seconds" or "tick_seconds"). */
export function errorsForSetting(fieldErrors: Record<string, string[]>, key: string): string[] {
  return [...(fieldErrors[`settings.${key}`] ?? []), ...(fieldErrors[key] ?? [])];
}
