import { describe, expect, it } from "vitest";
import { LiveSocket, backoffDelay, type LinkStatus, type SocketLike, type Timers } from "./liveSocket";

class FakeSocket implements SocketLike {
  onopen: SocketLike["onopen"] = null;
  onclose: SocketLike["onclose"] = null;
  onmessage: SocketLike["onmessage"] = null;
  onerror: SocketLike["onerror"] = null;
  closed = false;
  constructor(readonly url: string) {}
  close() {
    this.closed = true;
  }
  // What a server or the network does to the socket:
  open() {
    this.onopen?.({});
  }
  receive(data: unknown) {
    this.onmessage?.({ data: JSON.stringify(data) });
  }
  drop(code = 1006) {
    this.onerror?.({});
    this.onclose?.({ code });
  }
}

/** Timers run by hand: `advance(ms)` fires what is due. */
class FakeTimers implements Timers {
  now = 0;
  private queue: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;
  setTimeout(fn: () => void, ms: number) {
    const id = this.nextId++;
    this.queue.push({ at: this.now + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown) {
    this.queue = this.queue.filter((t) => t.id !== handle);
  }
  advance(ms: number) {
    this.now += ms;
    const due = this.queue.filter((t) => t.at <= this.now);
    this.queue = this.queue.filter((t) => t.at > this.now);
    due.forEach((t) => t.fn());
  }
  get pending() {
    return this.queue.length;
  }
}

function harness() {
  const sockets: FakeSocket[] = [];
  const timers = new FakeTimers();
  const messages: unknown[] = [];
  const statuses: { status: LinkStatus; retryInMs?: number }[] = [];
  const opens: boolean[] = [];
  const live = new LiveSocket({
    url: "ws://portal.test/ws/clusters/1/",
    factory: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    onMessage: (m) => messages.push(m),
    onStatus: (status, info) => statuses.push({ status, retryInMs: info.retryInMs }),
    onOpen: (reconnected) => opens.push(reconnected),
    backoff: { initialMs: 500, maxMs: 4000, factor: 2, jitter: 0 },
    timers,
    random: () => 0,
  });
  return { live, sockets, timers, messages, statuses, opens };
}

describe("backoffDelay", () => {
  it("doubles up to the cap", () => {
    const policy = { initialMs: 500, maxMs: 4000, factor: 2, jitter: 0 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, policy))).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
  });

  it("only ever shortens the delay with jitter", () => {
    const policy = { initialMs: 1000, maxMs: 8000, factor: 2, jitter: 0.5 };
    expect(backoffDelay(0, policy, () => 1)).toBe(500);
    expect(backoffDelay(0, policy, () => 0)).toBe(1000);
  });
});

describe("LiveSocket", () => {
  it("delivers parsed messages and reports the link open", () => {
    const h = harness();
    h.live.start();
    h.sockets[0].open();
    h.sockets[0].receive({ type: "topology", topology: { epoch: 1 } });
    expect(h.messages).toEqual([{ type: "topology", topology: { epoch: 1 } }]);
    expect(h.live.status).toBe("open");
    expect(h.opens).toEqual([false]);
  });

  it("reconnects with growing delays after drops, and resets the delay once connected", () => {
    const h = harness();
    h.live.start();
    h.sockets[0].open();
    h.sockets[0].drop(); // server restart
    expect(h.live.status).toBe("down");
    expect(h.statuses.at(-1)).toEqual({ status: "down", retryInMs: 500 });
    h.timers.advance(499);
    expect(h.sockets).toHaveLength(1);
    h.timers.advance(1);
    expect(h.sockets).toHaveLength(2);
    h.sockets[1].drop(); // still down
    expect(h.statuses.at(-1)?.retryInMs).toBe(1000);
    h.timers.advance(1000);
    h.sockets[2].drop();
    expect(h.statuses.at(-1)?.retryInMs).toBe(2000);
    h.timers.advance(2000);
    h.sockets[3].open(); // back
    expect(h.live.status).toBe("open");
    expect(h.opens).toEqual([false, true]); // the owner resynchronises on the reconnect
    h.sockets[3].drop();
    expect(h.statuses.at(-1)?.retryInMs).toBe(500);
  });

  it("stops for good on a close that means no access", () => {
    const h = harness();
    h.live.start();
    h.sockets[0].drop(4404);
    expect(h.live.status).toBe("denied");
    expect(h.timers.pending).toBe(0);
  });

  it("reconnects at once on retryNow, and ignores the old socket afterwards", () => {
    const h = harness();
    h.live.start();
    h.sockets[0].open();
    const old = h.sockets[0];
    old.drop();
    h.live.retryNow();
    expect(h.sockets).toHaveLength(2);
    expect(h.timers.pending).toBe(0);
    old.receive({ type: "event" }); // a late message from the dead socket
    expect(h.messages).toEqual([]);
  });

  it("closes the socket and never reconnects after stop", () => {
    const h = harness();
    h.live.start();
    h.sockets[0].open();
    h.live.stop();
    expect(h.sockets[0].closed).toBe(true);
    expect(h.live.status).toBe("stopped");
    h.timers.advance(60_000);
    expect(h.sockets).toHaveLength(1);
  });

  it("retries when the socket cannot even be created", () => {
    const timers = new FakeTimers();
    let calls = 0;
    const live = new LiveSocket({
      url: "ws://x/",
      factory: () => {
        calls += 1;
        throw new Error("blocked");
      },
      onMessage: () => undefined,
      backoff: { initialMs: 100, maxMs: 100, factor: 2, jitter: 0 },
      timers,
    });
    live.start();
    expect(live.status).toBe("down");
    timers.advance(100);
    expect(calls).toBe(2);
    live.stop();
  });
});
