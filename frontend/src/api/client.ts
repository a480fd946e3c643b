/**
 * The portal's HTTP client: same-origin fetch with the session cookie, Django's CSRF header on unsafe
 * requests, and every non-2xx answer turned into an ApiError with a readable message.
 */
import type { Check } from "./types";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly checks: Check[];
  /** Field errors of a 400 (DRF's shape, possibly nested), when the API sent them. */
  readonly fieldErrors: Record<string, string[]>;

  constructor(status: number, message: string, code = "error", checks: Check[] = [], fieldErrors: Record<string, string[]> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.checks = checks;
    this.fieldErrors = fieldErrors;
  }
}

/** Flattens DRF field errors ({"settings": {"tick_seconds": ["..."]}}) to {"settings.tick_seconds": [...]}. */
export function flattenFieldErrors(errors: unknown, prefix = ""): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (errors === null || errors === undefined) return out;
  if (typeof errors === "string") {
    out[prefix || "non_field_errors"] = [errors];
    return out;
  }
  if (Array.isArray(errors)) {
    if (errors.every((e) => typeof e === "string")) {
      out[prefix || "non_field_errors"] = errors as string[];
      return out;
    }
    errors.forEach((e, i) => Object.assign(out, flattenFieldErrors(e, prefix ? `${prefix}.${i}` : String(i))));
    return out;
  }
  if (typeof errors === "object") {
    for (const [key, value] of Object.entries(errors as Record<string, unknown>)) {
      Object.assign(out, flattenFieldErrors(value, prefix ? `${prefix}.${key}` : key));
    }
  }
  return out;
}

const STATUS_TEXT: Record<number, string> = {
  400: "The request was not valid.",
  401: "You are not signed in.",
  403: "You are not allowed to do this.",
  404: "Not found.",
  409: "The request conflicts with the cluster's current state.",
  429: "Too many attempts. Wait a little and try again.",
  500: "dbpilot had an internal error.",
  502: "dbpilot is not reachable (bad gateway).",
  503: "dbpilot is temporarily unavailable.",
};

/** Builds the ApiError for a response body (already parsed, or null when it was not JSON). */
export function errorFromResponse(status: number, body: unknown): ApiError {
  const data = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
  const detail = typeof data.detail === "string" && data.detail ? data.detail : STATUS_TEXT[status] ?? `Request failed (HTTP ${status}).`;
  const code = typeof data.code === "string" ? data.code : "error";
  const checks = Array.isArray(data.checks) ? (data.checks as Check[]) : [];
  let fieldErrors: Record<string, string[]> = {};
  if (data.errors) fieldErrors = flattenFieldErrors(data.errors);
  else if (status === 400 && !data.detail && body && typeof body === "object") fieldErrors = flattenFieldErrors(body);
  return new ApiError(status, detail, code, checks, fieldErrors);
}

export function readCookie(name: string): string | null {
  if (typeof document === "undefined") return null;
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

type UnauthorizedListener = () => void;
let onUnauthorized: UnauthorizedListener | null = null;

/** The auth context registers here so any 401 (an expired session) sends the user to the login page. */
export function setUnauthorizedListener(listener: UnauthorizedListener | null): void {
  onUnauthorized = listener;
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export async function request<T>(method: string, path: string, body?: unknown, opts: { quiet401?: boolean; signal?: AbortSignal } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE.has(method)) {
    const token = readCookie("csrftoken");
    if (token) headers["X-CSRFToken"] = token;
  }
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal,
    });
  } catch (exc) {
    if ((exc as Error).name === "AbortError") throw exc;
    throw new ApiError(0, "Cannot reach dbpilot. Check your network connection; the page retries when you act again.", "network");
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    if (response.status === 401 && !opts.quiet401 && onUnauthorized) onUnauthorized();
    throw errorFromResponse(response.status, parsed);
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string, opts?: { quiet401?: boolean; signal?: AbortSignal }) => request<T>("GET", path, undefined, opts),
  post: <T>(path: string, body?: unknown, opts?: { quiet401?: boolean }) => request<T>("POST", path, body ?? {}, opts),
  patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, body),
  delete: <T = void>(path: string) => request<T>("DELETE", path),
};

/** Query string helper that skips empty values. */
export function withQuery(path: string, params: Record<string, string | number | undefined | null>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
  const s = qs.toString();
  return s ? `${path}?${s}` : path;
}
