import type { RealmClient } from "./http.js";

/** The close codes of the realm's WebSockets (clients/PROTOCOL.md). */
export const CloseCode = {
  /** The client closed the socket. */
  Normal: 1000,
  /** The realm node is stopping: reconnect. */
  GoingAway: 1001,
  /** The connection dropped without a close frame: reconnect. */
  Abnormal: 1006,
  /** A text message was not UTF-8 or named a member twice: a client bug. */
  InvalidData: 1007,
  /** A message was larger than 16 KiB: a client bug. */
  TooBig: 1009,
  /** The realm failed reading the session's motion: reconnect. */
  InternalError: 1011,
  /** The session was revoked or expired: sign in again before reconnecting. */
  SessionEnded: 4401,
  /** The client did not read its messages in time: reconnect. */
  TooSlow: 4408,
  /** The same session connected again elsewhere: do not reconnect on your own. */
  Replaced: 4409,
  /** The client kept sending over the control-message limit. */
  Flooding: 4429,
} as const;

/** The part of the WHATWG WebSocket the SDK uses (browsers, Node 22, `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  send(data: string | ArrayBufferLike | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: () => void): void;
  addEventListener(type: "message", listener: (ev: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (ev: { code: number; reason: string }) => void): void;
  addEventListener(type: "error", listener: (ev: unknown) => void): void;
}

/**
 * Opens a WebSocket. The default, the global `WebSocket`, authenticates
 * with the browser's session cookie; a browser cannot send headers. In Node
 * pass one that sends the bearer header, e.g. with the `ws` package:
 * `(url, headers) => new WebSocket(url, { headers })`.
 */
export type WebSocketFactory = (url: string, headers: Record<string, string>) => WebSocketLike;

const defaultFactory: WebSocketFactory = (url) => {
  const WS = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (!WS) throw new TypeError("no global WebSocket: pass a webSocket factory (for example the ws package's)");
  return new WS(url);
};

/** Back-off between reconnection attempts: exponential, with full jitter. */
export interface Backoff {
  /** The first delay's ceiling, in milliseconds (default 500). */
  initialMs?: number;
  /** The largest delay, in milliseconds (default 30 000). */
  maxMs?: number;
}

/** The options every realm WebSocket takes. */
export interface LiveSocketOptions {
  webSocket?: WebSocketFactory;
  /** Reconnect after a drop (default true); false: every close is final. */
  reconnect?: boolean;
  backoff?: Backoff;
  /**
   * Called when the realm ends the session (4401): sign in again here (a
   * passkey ceremony, which needs the person in a browser), after which the
   * socket reconnects with the client's new token or cookie. Without it, or
   * when it throws, the socket stays closed and emits `session-ended`.
   */
  reauthenticate?: (reason: string) => Promise<void>;
  /** Random source for the jitter (tests); default Math.random. */
  random?: () => number;
}

/** Why a socket stopped for good, as its `closed` event and waiting calls report it. */
export class SocketClosedError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`socket closed (${code})${reason ? `: ${reason}` : ""}`);
    this.name = "SocketClosedError";
  }
}

/** Events every live socket emits. */
export interface LiveEvents {
  /** The connection is open (again). */
  open: { attempt: number };
  /** The connection dropped; `reconnectInMs` is set when another attempt follows. */
  disconnect: { code: number; reason: string; reconnectInMs?: number };
  /** 4409: the session connected again elsewhere; this socket will not reconnect. */
  replaced: { reason: string };
  /** 4401 with no way to sign in again: this socket will not reconnect. */
  "session-ended": { reason: string };
  /** The socket stopped for good (after replaced, session-ended, close() or a client fault). */
  closed: SocketClosedError;
}

type Listener<T> = (event: T) => void;

/**
 * LiveSocket is a JSON WebSocket of the realm that reconnects with
 * back-off and obeys the close codes: 4409 ends it (another connection of
 * the session took over, and taking it back would make the two pass the
 * session between them); 4401 signs in again through `reauthenticate` or
 * ends it; 1007 and 1009 end it (the client's own fault would repeat);
 * anything else reconnects after a jittered, growing delay.
 */
export class LiveSocket<Events extends LiveEvents> {
  #ws: WebSocketLike | undefined;
  #listeners = new Map<keyof Events, Set<Listener<never>>>();
  #attempt = 0;
  #failures = 0;
  #stopped: SocketClosedError | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #factory: WebSocketFactory;
  readonly #options: LiveSocketOptions;

  constructor(
    protected readonly client: RealmClient,
    private readonly path: string,
    options: LiveSocketOptions = {},
  ) {
    this.#factory = options.webSocket ?? defaultFactory;
    this.#options = options;
  }

  /** Listens for an event; returns the function that stops listening. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** Resolves with the next event of a type; rejects when the socket stops first. */
  next<K extends keyof Events>(type: K, match: (event: Events[K]) => boolean = () => true, signal?: AbortSignal): Promise<Events[K]> {
    return new Promise((resolve, reject) => {
      if (this.#stopped) return reject(this.#stopped);
      const off: Array<() => void> = [];
      const done = () => off.forEach((f) => f());
      off.push(
        this.on(type, (ev) => {
          if (!match(ev)) return;
          done();
          resolve(ev);
        }),
      );
      off.push(
        this.on("closed", (err) => {
          done();
          reject(err);
        }),
      );
      if (signal) {
        const abort = () => {
          done();
          reject(signal.reason);
        };
        signal.addEventListener("abort", abort, { once: true });
        off.push(() => signal.removeEventListener("abort", abort));
      }
    });
  }

  protected emit<K extends keyof Events>(type: K, event: Events[K]): void {
    for (const l of [...(this.#listeners.get(type) ?? [])]) (l as Listener<Events[K]>)(event);
  }

  /** Whether the socket has stopped for good. */
  get stopped(): boolean {
    return this.#stopped !== undefined;
  }

  /** Whether a connection is open now. */
  get connected(): boolean {
    return this.#ws?.readyState === 1;
  }

  /** How many connections were opened, the first included. */
  get attempts(): number {
    return this.#attempt;
  }

  /** Opens the connection; the first message handler decides when it is usable. */
  protected open(): void {
    if (this.#stopped) return;
    this.#attempt++;
    const url = wsURL(this.client.url(this.path));
    let ws: WebSocketLike;
    try {
      ws = this.#factory(url, this.client.authHeaders());
    } catch (err) {
      this.#stop(new SocketClosedError(CloseCode.Abnormal, String(err)));
      return;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    const attempt = this.#attempt;
    let opened = false;
    ws.addEventListener("open", () => {
      opened = true;
      this.emit("open", { attempt } as Events["open"]);
    });
    ws.addEventListener("message", (ev) => {
      if (typeof ev.data !== "string") return;
      let msg: unknown;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return; // the realm sends JSON; anything else is not ours to act on
      }
      if (typeof msg === "object" && msg !== null && typeof (msg as { type?: unknown }).type === "string") {
        this.#failures = 0;
        this.onMessage(msg as { type: string });
      }
    });
    ws.addEventListener("error", () => {
      // A close event always follows; the decision is made there.
    });
    ws.addEventListener("close", (ev) => {
      if (this.#ws === ws) this.#ws = undefined;
      void this.#closed(ev.code, ev.reason, opened);
    });
  }

  /** Handles one message from the realm. */
  protected onMessage(_msg: { type: string }): void {}

  /** Sends a JSON message; false when not connected. */
  protected sendJSON(msg: object): boolean {
    return this.sendRaw(JSON.stringify(msg));
  }

  /** Sends a text or binary message; false when not connected. */
  protected sendRaw(data: string | ArrayBufferLike | ArrayBufferView): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(data);
    return true;
  }

  // #sessionProblem is the detail of a 401 for the session, or "" when the
  // session stands (or the realm cannot say now: then the back-off retries).
  async #sessionProblem(): Promise<string> {
    try {
      await this.client.call("getMe");
      return "";
    } catch (err) {
      const p = err as { status?: unknown; detail?: unknown };
      return p.status === 401 ? String(p.detail || "the session is unknown, expired or revoked") : "";
    }
  }

  /** Closes the socket for good. */
  close(): void {
    this.#stop(new SocketClosedError(CloseCode.Normal, "closed by the client"));
  }

  #stop(err: SocketClosedError): void {
    if (this.#stopped) return;
    this.#stopped = err;
    clearTimeout(this.#timer);
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws && ws.readyState <= 1) ws.close(CloseCode.Normal);
    this.emit("closed", err as Events["closed"]);
  }

  async #closed(code: number, reason: string, opened: boolean): Promise<void> {
    if (this.#stopped) return;
    if (!opened && code === CloseCode.Abnormal) {
      // Refused before the upgrade: a WebSocket cannot see the HTTP status,
      // so ask over HTTP whether the session still stands. Without this a
      // revoked session would be retried for ever.
      const why = await this.#sessionProblem();
      if (this.#stopped) return;
      if (why) ({ code, reason } = { code: CloseCode.SessionEnded, reason: why });
    }
    if (code === CloseCode.Replaced) {
      this.emit("disconnect", { code, reason } as Events["disconnect"]);
      this.emit("replaced", { reason } as Events["replaced"]);
      return this.#stop(new SocketClosedError(code, reason));
    }
    if (code === CloseCode.InvalidData || code === CloseCode.TooBig) {
      this.emit("disconnect", { code, reason } as Events["disconnect"]);
      return this.#stop(new SocketClosedError(code, reason));
    }
    if (code === CloseCode.SessionEnded) {
      this.emit("disconnect", { code, reason } as Events["disconnect"]);
      const reauth = this.#options.reauthenticate;
      if (reauth && this.#options.reconnect !== false) {
        try {
          await reauth(reason);
        } catch {
          // Fall through: without a new session there is nothing to reconnect with.
          this.emit("session-ended", { reason } as Events["session-ended"]);
          return this.#stop(new SocketClosedError(code, reason));
        }
        if (this.#stopped) return;
        this.#failures = 0;
        return this.open();
      }
      this.emit("session-ended", { reason } as Events["session-ended"]);
      return this.#stop(new SocketClosedError(code, reason));
    }
    if (this.#options.reconnect === false) {
      this.emit("disconnect", { code, reason } as Events["disconnect"]);
      return this.#stop(new SocketClosedError(code, reason));
    }
    const delay = backoffDelay(this.#failures++, this.#options.backoff, this.#options.random);
    this.emit("disconnect", { code, reason, reconnectInMs: delay } as Events["disconnect"]);
    this.#timer = setTimeout(() => this.open(), delay);
  }
}

/**
 * backoffDelay is the wait before reconnection attempt n (0-based) after
 * failures: a random time up to min(max, initial * 2^n) ("full jitter"),
 * so that clients dropped together do not come back together.
 */
export function backoffDelay(n: number, b: Backoff = {}, random: () => number = Math.random): number {
  const initial = b.initialMs ?? 500;
  const max = b.maxMs ?? 30_000;
  const ceiling = Math.min(max, initial * 2 ** Math.min(n, 30));
  return Math.round(random() * ceiling);
}

function wsURL(httpURL: string): string {
  return httpURL.replace(/^http(s?):/, "ws$1:");
}
