/** What a route's last sync (GET .../routes/ `last_sync`) says, for the Routes tab. */
import { formatRelative } from "./format";

export interface RouteSync {
  at?: string | null;
  ok?: boolean | null;
  detail?: string;
  trigger?: string;
}

export interface RouteSyncView {
  state: "ok" | "failed" | "never";
  label: string;
  when: string;
  detail: string;
}

export function routeSyncView(sync: unknown, now: number = Date.now()): RouteSyncView {
  const value = (sync && typeof sync === "object" ? sync : {}) as RouteSync;
  if (!value.at || value.ok === null || value.ok === undefined) {
    return { state: "never", label: "not synced yet", when: "—", detail: value.detail ?? "" };
  }
  const trigger = value.trigger ? ` (${value.trigger})` : "";
  return {
    state: value.ok ? "ok" : "failed",
    label: (value.ok ? "in sync" : "sync failed") + trigger,
    when: formatRelative(value.at, now),
    detail: value.detail ?? "",
  };
}
