import type { components } from "./generated/api.js";
import { newIdempotencyKey, type RealmClient } from "./http.js";
import { LiveSocket, type LiveEvents, type LiveSocketOptions } from "./live.js";
import type { Passkeys } from "./passkeys.js";

type Schemas = components["schemas"];
/** A twin command: `{op: "set", value, reason}` or `{op: "stop"}`. */
export type CommandRequest = Schemas["CommandRequest"];
/** What came of a command: the decision, the grant, the gateway's acknowledgement. */
export type CommandAnswer = Schemas["CommandAnswer"];
/** A command's hash and what it needs (step-up, approval). */
export type CommandDigest = Schemas["CommandDigest"];
/** A critical command waiting for (or given) a second operator's approval. */
export type ApprovalAnswer = Schemas["ApprovalAnswer"];

/** The options of one command. */
export interface CommandOptions {
  /**
   * Names the command across retries: a retry with the same key gets the
   * first answer, so keep it to retry after a network error. Generated when
   * omitted.
   */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** A command's answer and whether it was carried out (200) or waits for approval (202). */
export interface CommandResult {
  status: number;
  answer: CommandAnswer;
}

/**
 * Twins reads twins and commands their actuators. With {@link Passkeys},
 * a high-risk command is stepped up first (a passkey assertion bound to
 * the command's hash), and so is an approval.
 */
export class Twins {
  constructor(
    private readonly client: RealmClient,
    private readonly passkeys?: Passkeys,
  ) {}

  /** The twins the avatar may view, and the address that signs their grants. */
  list(signal?: AbortSignal): Promise<Schemas["Twins"]> {
    return this.client.call("listTwins", signal ? { signal } : {});
  }

  /** One twin: its actuators, envelopes and live state. */
  get(twin: string, signal?: AbortSignal): Promise<Schemas["Twin"]> {
    return this.client.call("getTwin", { path: { twin }, ...(signal ? { signal } : {}) });
  }

  /** The command's hash and whether it needs a step-up or an approval. */
  digest(twin: string, actuator: string, command: CommandRequest, idempotencyKey: string, signal?: AbortSignal): Promise<CommandDigest> {
    return this.client.call("getCommandDigest", {
      path: { twin, actuator },
      body: command,
      idempotencyKey,
      ...(signal ? { signal } : {}),
    });
  }

  /**
   * Commands an actuator. The operator's zone is where the realm sees the
   * avatar through its realm WebSocket. A refusal throws ProblemError (403
   * with the policy's reason, 422 out of the envelope, 503 no gateway).
   */
  async command(twin: string, actuator: string, command: CommandRequest, opts: CommandOptions = {}): Promise<CommandResult> {
    const idempotencyKey = opts.idempotencyKey ?? newIdempotencyKey();
    const signal = opts.signal ? { signal: opts.signal } : {};
    if (this.passkeys) {
      const d = await this.digest(twin, actuator, command, idempotencyKey, opts.signal);
      if (d.needs_step_up) await this.passkeys.stepUp(d.hash, signal);
    }
    const res = await this.client.callWithStatus("commandActuator", {
      path: { twin, actuator },
      body: command,
      idempotencyKey,
      ...signal,
    });
    return { status: res.status, answer: res.body as CommandAnswer };
  }

  /** The approvals of the twins the avatar may view. */
  async approvals(signal?: AbortSignal): Promise<ApprovalAnswer[]> {
    return (await this.client.call("listApprovals", signal ? { signal } : {})).approvals;
  }

  /** Approves a critical command (stepping up on its hash first, with Passkeys). */
  async approve(id: string, signal?: AbortSignal): Promise<ApprovalAnswer> {
    if (this.passkeys) await this.passkeys.stepUp(id, signal ? { signal } : {});
    return this.client.call("approveCommand", { path: { id }, ...(signal ? { signal } : {}) });
  }

  /** Rejects a critical command. */
  reject(id: string, signal?: AbortSignal): Promise<ApprovalAnswer> {
    return this.client.call("rejectCommand", { path: { id }, ...(signal ? { signal } : {}) });
  }

  /** The console feed of the twins the avatar may view. */
  feed(options: LiveSocketOptions = {}): TwinFeed {
    return new TwinFeed(this.client, options);
  }
}

/**
 * A message of the twin console feed; `twin` and `actuator` are set on
 * every message about one actuator (state, outcome, approval).
 */
export interface TwinFeedMessage {
  type: "twins" | "state" | "outcome" | "approval";
  twin?: string;
  actuator?: string;
  twins?: Schemas["Twin"][];
  state?: Record<string, unknown>;
  outcome?: CommandAnswer;
  approval?: CommandAnswer;
}

/** The events of a {@link TwinFeed}. */
export interface TwinFeedEvents extends LiveEvents {
  /** The twins the feed carries, first on every connection. */
  twins: TwinFeedMessage & { type: "twins" };
  /** A gateway reported an actuator's state. */
  state: TwinFeedMessage & { type: "state" };
  /** A command was carried out or refused by its gateway. */
  outcome: TwinFeedMessage & { type: "outcome" };
  /** A critical command started waiting for a second operator. */
  approval: TwinFeedMessage & { type: "approval" };
}

/**
 * TwinFeed is the twin console feed (`GET /v1/twins/feed`): the twins, then
 * their state, outcomes and approvals. It reconnects like every realm
 * socket; a console sends nothing on it, so its session is kept alive by
 * its HTTP requests.
 */
export class TwinFeed extends LiveSocket<TwinFeedEvents> {
  constructor(client: RealmClient, options: LiveSocketOptions = {}) {
    super(client, "/v1/twins/feed", options);
  }

  /** Connects and resolves with the first `twins` message. */
  async connect(signal?: AbortSignal): Promise<TwinFeedEvents["twins"]> {
    const first = this.next("twins", undefined, signal);
    this.open();
    return first;
  }

  protected override onMessage(msg: { type: string }): void {
    const m = msg as TwinFeedMessage;
    // Outcomes and approvals name their twin inside the command; the SDK
    // lifts it, so that every message can be filtered the same way.
    const command = (m.outcome ?? m.approval)?.command;
    if (command) {
      m.twin ??= command.twin;
      m.actuator ??= command.actuator;
    }
    switch (m.type) {
      case "twins":
      case "state":
      case "outcome":
      case "approval":
        this.emit(m.type, m as never);
        break;
    }
  }
}
