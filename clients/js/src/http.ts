import type { operations } from "./generated/api.js";
import { operationRoutes } from "./generated/operations.js";
import { problemFromResponse } from "./problem.js";

/** The name of every operation of the realm's OpenAPI document. */
export type OperationId = keyof operations;

type Op<O extends OperationId> = operations[O];

type Params<O extends OperationId> = Op<O>["parameters"];

/** The path parameters of an operation, or never when it has none. */
export type PathParams<O extends OperationId> = NonNullable<Params<O>["path"]>;

/** The query parameters of an operation, or never when it has none. */
export type QueryParams<O extends OperationId> = NonNullable<Params<O>["query"]>;

/** The JSON body an operation takes, or never when it takes none. */
export type RequestBody<O extends OperationId> = [NonNullable<Op<O>["requestBody"]>] extends [never]
  ? never
  : NonNullable<Op<O>["requestBody"]> extends { content: { "application/json": infer B } }
    ? B
    : never;

type SuccessStatus = 200 | 201 | 202 | 204;

/** The JSON an operation answers with on success (a union over its 2xx answers). */
export type ResponseBody<O extends OperationId> = {
  [S in SuccessStatus & keyof Op<O>["responses"]]: Op<O>["responses"][S] extends {
    content: { "application/json": infer R };
  }
    ? R
    : undefined;
}[SuccessStatus & keyof Op<O>["responses"]];

type NeedsIdempotencyKey<O extends OperationId> = [NonNullable<Params<O>["header"]>] extends [never]
  ? false
  : NonNullable<Params<O>["header"]> extends { "Idempotency-Key"?: string }
    ? true
    : false;

/** The options of one call: what the operation takes, and per-call knobs. */
export type CallOptions<O extends OperationId> = ([PathParams<O>] extends [never]
  ? { path?: undefined }
  : { path: PathParams<O> }) &
  ([QueryParams<O>] extends [never] ? { query?: undefined } : { query?: QueryParams<O> }) &
  ([RequestBody<O>] extends [never] ? { body?: undefined } : { body: RequestBody<O> }) &
  (NeedsIdempotencyKey<O> extends true
    ? {
        /**
         * Names the request across retries: a retry with the same key and
         * body gets the first answer. Generated when omitted; pass one you
         * keep to retry safely after a network error.
         */
        idempotencyKey?: string;
      }
    : { idempotencyKey?: undefined }) & {
    /** Aborts the request. */
    signal?: AbortSignal;
  };

/** The answer of a call: the status (2xx) and the parsed body. */
export interface CallResult<O extends OperationId> {
  status: number;
  body: ResponseBody<O>;
  headers: Headers;
}

/** How a client authenticates. */
export interface ClientConfig {
  /**
   * The realm's base URL, e.g. `https://realm.example.org`. Empty in a page
   * served by the realm itself: requests then go to its own origin.
   */
  baseUrl?: string;
  /** A bearer token (from a finish call). Browsers use the session cookie instead. */
  token?: string;
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /**
   * Headers sent with every request and WebSocket handshake (Node only: a
   * browser's WebSocket sends none), e.g. a proxy's or a tracing header.
   */
  headers?: Record<string, string>;
}

/**
 * RealmClient calls the realm's HTTP API, typed by the OpenAPI document:
 * `call("getTwin", { path: { twin: "press-1" } })` checks the operation
 * name, its parameters, its body and its answer at compile time. A refusal
 * throws {@link ProblemError}.
 *
 * With a cookie session (browsers), the CSRF token from the sign-in answer
 * or `getMe` is remembered and sent with every state-changing request.
 */
export class RealmClient {
  readonly baseUrl: string;
  #token: string | undefined;
  #csrf: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #headers: Record<string, string>;

  constructor(config: ClientConfig = {}) {
    this.#headers = { ...config.headers };
    this.baseUrl = (config.baseUrl ?? "").replace(/\/+$/, "");
    this.#token = config.token;
    this.#fetch = config.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** The bearer token in use, if any. */
  get token(): string | undefined {
    return this.#token;
  }

  /** Uses a bearer token from now on (undefined: none, e.g. after signing out). */
  setToken(token: string | undefined): void {
    this.#token = token;
  }

  /** Uses a cookie session's CSRF token from now on. */
  setCsrf(csrf: string | undefined): void {
    this.#csrf = csrf;
  }

  /** Resolves an API path against the base URL. */
  url(path: string): string {
    if (this.baseUrl) return this.baseUrl + path;
    if (typeof location !== "undefined") return new URL(path, location.href).href;
    throw new TypeError("RealmClient: no baseUrl, and no page location to resolve against");
  }

  /** The headers every request sends: the configured ones and the bearer token (for WebSockets in Node, too). */
  authHeaders(): Record<string, string> {
    return this.#token ? { ...this.#headers, Authorization: `Bearer ${this.#token}` } : { ...this.#headers };
  }

  /** Calls one operation and returns its parsed body. */
  async call<O extends OperationId>(operation: O, ...options: OptionalIfEmpty<CallOptions<O>>): Promise<ResponseBody<O>> {
    return (await this.callWithStatus(operation, ...options)).body;
  }

  /**
   * Calls one operation and returns its status and headers as well: some
   * operations answer differently by status (a critical twin command is 202,
   * waiting for approval).
   */
  async callWithStatus<O extends OperationId>(
    operation: O,
    ...options: OptionalIfEmpty<CallOptions<O>>
  ): Promise<CallResult<O>> {
    const opts = (options[0] ?? {}) as {
      path?: Record<string, string>;
      query?: Record<string, string | number | boolean | undefined>;
      body?: unknown;
      idempotencyKey?: string;
      signal?: AbortSignal;
    };
    const route = operationRoutes[operation];
    if (!route) throw new TypeError(`RealmClient: unknown operation ${String(operation)}`);
    let path: string = route.path;
    path = path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      const value = opts.path?.[name];
      if (value === undefined || value === "") throw new TypeError(`RealmClient: ${operation} needs path parameter ${name}`);
      return encodeURIComponent(value);
    });
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) query.set(k, String(v));
    const url = this.url(path) + (query.size ? `?${query}` : "");

    const headers: Record<string, string> = { Accept: "application/json, application/problem+json", ...this.authHeaders() };
    if (route.method !== "GET" && this.#csrf) headers["X-CSRF-Token"] = this.#csrf;
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    if (takesIdempotencyKey(operation)) headers["Idempotency-Key"] = opts.idempotencyKey ?? newIdempotencyKey();

    const init: RequestInit = { method: route.method, headers, credentials: "same-origin" };
    if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
    if (opts.signal) init.signal = opts.signal;
    const res = await this.#send(url, init);
    return { status: res.status, body: res.body as ResponseBody<O>, headers: res.headers };
  }

  /**
   * request calls a path by hand, for what the typed calls do not cover
   * (an operation newer than this SDK): the same authentication, CSRF
   * token and ProblemError, with an untyped answer.
   */
  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<unknown> {
    const h: Record<string, string> = { Accept: "application/json, application/problem+json", ...this.authHeaders(), ...headers };
    if (method !== "GET" && this.#csrf) h["X-CSRF-Token"] = this.#csrf;
    if (body !== undefined) h["Content-Type"] = "application/json";
    const init: RequestInit = { method, headers: h, credentials: "same-origin" };
    if (body !== undefined) init.body = JSON.stringify(body);
    return (await this.#send(this.url(path), init)).body;
  }

  async #send(url: string, init: RequestInit): Promise<{ status: number; body: unknown; headers: Headers }> {
    const res = await this.#fetch(url, init);
    if (!res.ok) throw await problemFromResponse(res);
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    // A cookie session's CSRF token comes with sign-in answers and getMe.
    if (typeof parsed === "object" && parsed !== null && "csrf" in parsed && typeof parsed.csrf === "string") this.#csrf = parsed.csrf;
    return { status: res.status, body: parsed, headers: res.headers };
  }
}

/** Makes the options argument optional when nothing in it is required. */
type OptionalIfEmpty<T> = {} extends T ? [options?: T] : [options: T];

function takesIdempotencyKey(operation: OperationId): boolean {
  return "idempotencyKey" in operationRoutes[operation];
}

/** A fresh random Idempotency-Key. */
export function newIdempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}
