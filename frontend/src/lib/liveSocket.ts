/**
 * A websocket that stays connected: after a close it reconnects by itself with exponential backoff
 * and jitter, and tells its owner when the link is up (so the page resynchronises from the HTTP API)
 * and when it is down (so the page shows a banner). Closes that mean "you may not see this" are final.
 *
 * The socket and the timers are injected so tests can drive it with a fake socket and fake time.
 */

export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = (url: string) => SocketLike;

export type LinkStatus = "connecting" | "open" | "down" | "denied" | "stopped";

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** 0..1: the delay is reduced by up to this fraction at random, so clients do not reconnect in step. */
  jitter: number;
}

// Capped low: after a server restart the page should be live again within seconds.
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 8_000, factor: 1.8, jitter: 0.3 };

/** Close codes the server uses for "not signed in", "not allowed", "not found": reconnecting cannot help. */
export const FINAL_CLOSE_CODES = new Set([4401, 4403, 4404]);

export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const base = Math.min(policy.maxMs, policy.initialMs * Math.pow(policy.factor, Math.max(0, attempt)));
  return Math.round(base * (1 - policy.jitter * random()));
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LiveSocketOptions {
  url: string;
  factory?: SocketFactory;
  onMessage: (message: unknown) => void;
  onStatus?: (status: LinkStatus, info: { attempt: number; retryInMs?: number; code?: number }) => void;
  /** Called on every successful (re)connection; the owner refetches what it may have missed. */
  onOpen?: (reconnected: boolean) => void;
  backoff?: BackoffPolicy;
  timers?: Timers;
  random?: () => number;
}

const browserTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class LiveSocket {
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private attempt = 0;
  private everOpened = false;
  private stopped = false;
  status: LinkStatus = "stopped";

  constructor(private readonly opts: LiveSocketOptions) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimer();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.onerror = null;
      socket.onopen = null;
      socket.close(1000, "page closed");
    }
    this.setStatus("stopped");
  }

  /** Skip the wait (e.g. the browser says it is back online). */
  retryNow(): void {
    if (this.stopped || this.status !== "down") return;
    this.clearTimer();
    this.connect();
  }

  private connect(): void {
    const factory = this.opts.factory ?? ((url: string) => new WebSocket(url) as unknown as SocketLike);
    this.setStatus("connecting");
    let socket: SocketLike;
    try {
      socket = factory(this.opts.url);
    } catch {
      this.scheduleReconnect(undefined);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.attempt = 0;
      this.setStatus("open");
      this.opts.onOpen?.(reconnected);
    };
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      let message: unknown;
      try {
        message = typeof ev.data === "string" ? JSON.parse(ev.data) : ev.data;
      } catch {
        return; // not JSON: not ours
      }
      this.opts.onMessage(message);
    };
    socket.onerror = () => {
      // A close event always follows an error; reconnection is handled there.
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (FINAL_CLOSE_CODES.has(ev.code)) {
        this.setStatus("denied", { code: ev.code });
        return;
      }
      this.scheduleReconnect(ev.code);
    };
  }

  private scheduleReconnect(code: number | undefined): void {
    const delay = backoffDelay(this.attempt, this.opts.backoff, this.opts.random);
    this.attempt += 1;
    this.setStatus("down", { retryInMs: delay, code });
    const timers = this.opts.timers ?? browserTimers;
    this.timer = timers.setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      (this.opts.timers ?? browserTimers).clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private setStatus(status: LinkStatus, extra: { retryInMs?: number; code?: number } = {}): void {
    this.status = status;
    this.opts.onStatus?.(status, { attempt: this.attempt, ...extra });
  }
}

export function websocketUrl(path: string, loc: { protocol: string; host: string } = window.location): string {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}${path}`;
}
