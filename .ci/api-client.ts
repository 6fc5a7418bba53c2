// A small typed client over the types openapi-typescript generates from
// the realm's OpenAPI document (api.d.ts beside this file in CI). It
// compiles under tsc --strict only if the generated types are usable: real
// schemas, not Record<string, never>.
import type { components, operations, paths } from "./api.js";

type Schemas = components["schemas"];
type Json<Op extends keyof operations, Status extends number> =
  operations[Op]["responses"] extends Record<Status, { content: { "application/json": infer T } }> ? T : never;

export type Problem = Schemas["Problem"];

export class RealmError extends Error {
  constructor(readonly problem: Problem) {
    super(`${problem.status} ${problem.title}${problem.detail ? ": " + problem.detail : ""}`);
  }
}

export class RealmClient {
  constructor(private readonly base: string, private readonly token?: string) {}

  private async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const h: Record<string, string> = { ...headers };
    if (this.token) h["Authorization"] = `Bearer ${this.token}`;
    if (body !== undefined) h["Content-Type"] = "application/json";
    const resp = await fetch(this.base + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!resp.ok) throw new RealmError((await resp.json()) as Problem);
    return (await resp.json()) as T;
  }

  version(): Promise<Json<"getVersion", 200>> {
    return this.call("GET", "/v1/version");
  }

  async passkeyIds(): Promise<string[]> {
    const me: Json<"getMe", 200> = await this.call("GET", "/v1/avatars/me");
    return me.avatar.passkeys.map((p) => p.id);
  }

  beginLogin(name?: string): Promise<Json<"beginLogin", 200>> {
    const body: Schemas["LoginBeginRequest"] = name === undefined ? {} : { name };
    return this.call("POST", "/v1/webauthn/login/begin", body);
  }

  command(twin: string, actuator: string, idempotencyKey: string, req: Schemas["CommandRequest"]): Promise<Schemas["CommandAnswer"]> {
    const headers: operations["commandActuator"]["parameters"]["header"] = { "Idempotency-Key": idempotencyKey };
    return this.call("POST", `/v1/twins/${encodeURIComponent(twin)}/actuators/${encodeURIComponent(actuator)}/commands`, req, headers);
  }

  transfer(req: Schemas["TransferRequest"], idempotencyKey?: string): Promise<Schemas["TransferAnswer"]> {
    return this.call("POST", "/v1/assets/transfers", req, idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {});
  }

  scenes(): Promise<paths["/v1/scenes"]["get"]["responses"][200]["content"]["application/json"]> {
    return this.call("GET", "/v1/scenes");
  }
}

// The trust state is a string and the score a number: a type that
// generated Record<string, never> would refuse these reads.
export function describeTrust(t: Schemas["Trust"]): string {
  return `${t.state} (${t.score.toFixed(2)})`;
}
