import type { components } from "./generated/api.js";
import type { RealmClient } from "./http.js";
import { LiveSocket, type LiveEvents, type LiveSocketOptions } from "./live.js";

type Schemas = components["schemas"];
/** A trust assessment (clients/PROTOCOL.md "Trust"). */
export type Trust = Schemas["Trust"];

/** A position in metres and a unit quaternion x, y, z, w (OpenXR's frame). */
export interface Pose {
  pos: [number, number, number];
  rot: [number, number, number, number];
}

/** Where an avatar is: its head and, when tracked, its hands. */
export interface AvatarPose {
  head: Pose;
  left?: Pose;
  right?: Pose;
}

/** The first message of every connection. */
export interface Hello {
  type: "hello";
  v: number;
  session: Schemas["Session"];
  avatar: Schemas["Avatar"];
  trust: Trust;
}

/**
 * Whose authority an agent in a scene acts with: its owner, how deep in
 * the owner's delegation chain it stands (1 for the owner's own agent)
 * and, for a sub-agent, the agent that delegated to it.
 */
export interface OnBehalfOf {
  avatar: string;
  handle: string;
  depth: number;
  via?: string;
}

/**
 * What a member is, set by the realm on every join and snapshot: a person,
 * or an AI agent (then `avatar` and `agent` are the agent's id) with the
 * person it acts for. Show an agent as one, with its owner.
 */
export interface MemberMark {
  kind?: "person" | "agent";
  agent?: string;
  on_behalf_of?: OnBehalfOf;
}

/** A scene member, as a join's snapshot lists it. */
export interface Member extends MemberMark {
  avatar: string;
  name: string;
  zone: string;
}

/** The answer to a join: the scene's other members now. */
export interface Joined {
  type: "joined";
  scene: string;
  members: Member[];
}

/** One presence change; the realm's batched form is delivered one by one. */
export interface PresenceEvent extends MemberMark {
  scene: string;
  avatar: string;
  name?: string;
  event: "join" | "leave" | "zone";
  zone: string;
}

/** The other members' newest poses. */
export interface Poses {
  type: "poses";
  scene: string;
  poses: Array<AvatarPose & { avatar: string }>;
}

/** A message the realm refused; the connection stays. */
export interface RealmErrorMessage {
  type: "error";
  error: string;
  code?: "invalid" | "denied" | "unknown-scene" | "not-joined" | "already-joined" | "rate-limited" | "node-busy";
  reason?: string;
  /** With node-busy: seconds to wait before streaming (or offering) again. */
  retry_after?: number;
}

/** A passkey was added to the avatar (through any session, any node). */
export interface PasskeyAdded {
  type: "passkey-added";
  passkey: { id: string; name?: string; created: string; attestation_format?: string; attested?: boolean; synced?: boolean };
  at: string;
}

/** What the realm reports of a session's frames, at most once a second while they flow. */
export interface XRStatus {
  at: string;
  transport: "webrtc" | "websocket";
  frames_accepted: number;
  /** Refused frames by reason ("head not tracked", ...). */
  frames_rejected?: Record<string, number>;
  /** "unknown": the realm could not read whether the avatar has a template yet, and reads again. */
  enrollment: "not-enrolled" | "enrolling" | "enrolled" | "unknown";
  /** While enrolling: the share of the motion collected, 0 to 1. */
  enrollment_progress?: number;
  [member: string]: unknown;
}

/** The verdict on one window of motion scored against the avatar's template. */
export interface XRScore {
  at: string;
  /** The newest frame the window included (seq and time_us as sent). */
  seq: number;
  time_us: number;
  /** The accumulated probability that the wearer is the enrolled person. */
  probability: number;
  state: string;
  score: number;
  [member: string]: unknown;
}

/** The verdicts on the session's motion (XR streaming). */
export type XRMessage = { type: "xr.status"; xr: XRStatus } | { type: "xr.score"; xr: XRScore };

/** The events of a {@link RealmSocket}. */
export interface RealmEvents extends LiveEvents {
  hello: Hello;
  trust: Trust;
  joined: Joined;
  presence: PresenceEvent;
  poses: Poses;
  error: RealmErrorMessage;
  "passkey-added": PasskeyAdded;
  xr: XRMessage;
  "webrtc.answer": { type: "webrtc.answer"; sdp: string };
  /** Every message, as it came (the ones above included). */
  message: { type: string } & Record<string, unknown>;
}

/** A join or zone step the realm refused. */
export class JoinError extends Error {
  constructor(readonly message_: RealmErrorMessage) {
    super(message_.reason ?? message_.error);
    this.name = "JoinError";
  }
  /** The error's code: `denied`, `unknown-scene`, ... */
  get code(): string | undefined {
    return this.message_.code;
  }
}

/**
 * How long to wait after a `node-busy` refusal that names no
 * `retry_after`, in milliseconds: the longer of the realm's two waits
 * (5 s behind its streams, 15 s at its cap; clients/PROTOCOL.md).
 */
export const defaultNodeBusyRetryMs = 15_000;

// setTimeout fires at once for a delay beyond 2^31 - 1 ms, so a longer
// wait is held at that.
const longestTimerMs = 2 ** 31 - 1;

/**
 * The realm node opened no XR stream for the session: it is behind its
 * streams or at its cap. The session keeps its trust; the client sends no
 * frames (or offer) for {@link retryAfter} seconds and then tries again,
 * on this connection or on another node.
 */
export class NodeBusyError extends Error {
  /** Seconds to wait before streaming (or offering) again, as the realm said or the default. */
  readonly retryAfter: number;

  constructor(readonly refusal: RealmErrorMessage) {
    super(refusal.reason ?? refusal.error);
    this.name = "NodeBusyError";
    const s = refusal.retry_after;
    this.retryAfter = typeof s === "number" && Number.isFinite(s) && s >= 0 ? s : defaultNodeBusyRetryMs / 1000;
  }

  get code(): "node-busy" {
    return "node-busy";
  }

  /** {@link retryAfter} in milliseconds, as a timer takes it. */
  get retryAfterMs(): number {
    return Math.min(this.retryAfter * 1000, longestTimerMs);
  }
}

/** The options of a realm socket. */
export interface RealmSocketOptions extends LiveSocketOptions {
  /**
   * Sends `{"type":"ping"}` this often, in milliseconds, so that a client
   * that only listens keeps its session from idling out (default 60 000;
   * 0: never).
   */
  pingIntervalMs?: number;
}

/**
 * RealmSocket is the realm WebSocket (`GET /v1/realm`): hello, trust
 * changes, joining a scene, presence, poses, and XR frames as binary
 * messages. It reconnects as {@link LiveSocket} says and joins its scene
 * again after a reconnection.
 */
export class RealmSocket extends LiveSocket<RealmEvents> {
  #scene: string | undefined;
  #hello: Hello | undefined;
  #ping: ReturnType<typeof setInterval> | undefined;

  constructor(client: RealmClient, options: RealmSocketOptions = {}) {
    super(client, "/v1/realm", options);
    const every = options.pingIntervalMs ?? 60_000;
    if (every > 0) {
      this.on("open", () => {
        clearInterval(this.#ping);
        this.#ping = setInterval(() => this.ping(), every);
      });
      this.on("disconnect", () => clearInterval(this.#ping));
      this.on("closed", () => clearInterval(this.#ping));
    }
    this.on("hello", () => {
      // A reconnection is a new connection: it is in no scene until it joins.
      if (this.#scene) this.sendJSON({ type: "join", scene: this.#scene });
    });
  }

  /** Connects and resolves with the realm's hello. */
  async connect(signal?: AbortSignal): Promise<Hello> {
    const hello = this.next("hello", undefined, signal);
    this.open();
    return hello;
  }

  /** The latest hello (its session, avatar and trust). */
  get hello(): Hello | undefined {
    return this.#hello;
  }

  /** The scene this socket is in, or is joining again after a reconnection. */
  get scene(): string | undefined {
    return this.#scene;
  }

  /** Joins a scene; resolves with its members, or rejects with a {@link JoinError}. */
  async join(scene: string, signal?: AbortSignal): Promise<Joined> {
    const answer = Promise.race([
      this.next("joined", (m) => m.scene === scene, signal),
      this.next("error", isJoinRefusal, signal).then((e) => Promise.reject(new JoinError(e))),
    ]);
    if (!this.sendJSON({ type: "join", scene })) throw new Error("realm socket: not connected");
    const joined = await answer;
    this.#scene = scene;
    return joined;
  }

  /** Leaves the scene. */
  leave(): void {
    this.#scene = undefined;
    this.sendJSON({ type: "leave" });
  }

  /** Says where the avatar is (for clients that do not stream XR frames). */
  sendPose(pose: AvatarPose): boolean {
    return this.sendJSON({ type: "pose", ...pose });
  }

  /** Sends a ping; the realm answers `pong`. */
  ping(): boolean {
    return this.sendJSON({ type: "ping" });
  }

  /** Sends one XR frame message (binary), where WebRTC is not available. */
  sendFrames(message: Uint8Array): boolean {
    return this.sendRaw(message);
  }

  /** Sends a message of the protocol (WebRTC signaling, ...). */
  send(message: { type: string } & Record<string, unknown>): boolean {
    return this.sendJSON(message);
  }

  protected override onMessage(msg: { type: string } & Record<string, unknown>): void {
    this.emit("message", msg);
    switch (msg.type) {
      case "hello":
        this.#hello = msg as unknown as Hello;
        this.emit("hello", this.#hello);
        break;
      case "trust":
        this.emit("trust", msg.trust as Trust);
        break;
      case "joined":
        this.emit("joined", msg as unknown as Joined);
        break;
      case "presence":
        for (const ev of presenceEvents(msg)) this.emit("presence", ev);
        break;
      case "poses":
        this.emit("poses", msg as unknown as Poses);
        break;
      case "error":
        this.emit("error", msg as unknown as RealmErrorMessage);
        break;
      case "passkey-added":
        this.emit("passkey-added", msg as unknown as PasskeyAdded);
        break;
      case "xr.score":
      case "xr.status":
        this.emit("xr", msg as unknown as XRMessage);
        break;
      case "webrtc.answer":
        this.emit("webrtc.answer", msg as unknown as { type: "webrtc.answer"; sdp: string });
        break;
    }
  }
}

function isJoinRefusal(e: RealmErrorMessage): boolean {
  return e.code === "denied" || e.code === "unknown-scene" || e.code === "already-joined" || e.code === "invalid";
}

/**
 * presenceEvents flattens a presence message: one event, or a tick's
 * events as a list (in the order they happened), each with the scene.
 */
export function presenceEvents(msg: Record<string, unknown>): PresenceEvent[] {
  const scene = String(msg.scene ?? "");
  const list: unknown[] = Array.isArray(msg.events) ? msg.events : [msg];
  // Anything in the list that is not an object names no event.
  const objects = list.filter((e): e is Record<string, unknown> => typeof e === "object" && e !== null && !Array.isArray(e));
  return objects.map((e) => {
    const ev: PresenceEvent = {
      scene,
      avatar: String(e.avatar ?? ""),
      event: e.event as PresenceEvent["event"],
      zone: String(e.zone ?? ""),
    };
    if (typeof e.name === "string") ev.name = e.name;
    if (e.kind === "person" || e.kind === "agent") ev.kind = e.kind;
    if (typeof e.agent === "string") ev.agent = e.agent;
    const on = e.on_behalf_of as Record<string, unknown> | undefined;
    if (typeof on === "object" && on !== null && typeof on.avatar === "string" && typeof on.handle === "string" && typeof on.depth === "number") {
      ev.on_behalf_of = { avatar: on.avatar, handle: on.handle, depth: on.depth };
      if (typeof on.via === "string") ev.on_behalf_of.via = on.via;
    }
    return ev;
  });
}
