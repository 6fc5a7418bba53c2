import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ProblemError, RealmClient, retryAfterSeconds } from "../src/index.js";
import { ownAddress, newAvatar, newClient, realmURL } from "./realm.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");

test("the committed generated files are what the realm's OpenAPI document generates", async () => {
  // A variable specifier: the script is plain JS, outside the typed build.
  const script = path.join(root, "scripts", "generate.mjs");
  const { generate, readDocument } = (await import(script)) as {
    generate(doc: unknown): Promise<Record<string, string>>;
    readDocument(source: string): Promise<unknown>;
  };
  const files = await generate(await readDocument(realmURL()));
  for (const [name, text] of Object.entries(files)) {
    const committed = await readFile(path.join(root, "src", "generated", name), "utf8");
    assert.ok(
      committed === text,
      `src/generated/${name} differs from what the realm's /v1/openapi.json generates: run \`npm run generate -- ${realmURL()}\` and commit`,
    );
  }
});

test("a public read answers its typed body", async () => {
  const client = newClient();
  const version = await client.call("getVersion");
  assert.equal(typeof version.version, "string");
  const scenes = await client.call("listScenes");
  assert.ok(scenes.scenes.some((s) => s.id === "foundry"), "the shipped foundry scene is listed");
  const scene = await client.call("getScene", { path: { id: "foundry" } });
  assert.equal(scene.id, "foundry");
});

test("a refusal is a ProblemError with the problem's type, status and detail", async () => {
  const client = newClient();
  await assert.rejects(client.call("getMe"), (err: unknown) => {
    assert.ok(err instanceof ProblemError);
    assert.equal(err.status, 401);
    assert.ok(err.is("unauthenticated"), `type ${err.type}`);
    assert.ok(err.detail.length > 0);
    assert.ok(err.requestId, "the problem names its request id");
    return true;
  });
  await assert.rejects(client.call("getScene", { path: { id: "no-such-scene" } }), (err: unknown) => {
    assert.ok(err instanceof ProblemError);
    assert.equal(err.status, 404);
    assert.ok(err.is("not-found"), `type ${err.type}`);
    return true;
  });
  // A body the realm refuses (an unknown member) changes nothing and says where.
  await assert.rejects(
    client.call("beginRegistration", { body: { name: "x", extra: 1 } as unknown as { name: string } }),
    (err: unknown) => err instanceof ProblemError && err.status === 400 && err.is("invalid-request"),
  );
});

test("the ceremony limit's 429 carries Retry-After", async () => {
  // One address of its own, so no other test's ceremonies count.
  const client = new RealmClient({ baseUrl: realmURL(), ...ownAddress() });
  let refused: ProblemError | undefined;
  for (let i = 0; i < 200 && !refused; i++) {
    try {
      await client.call("beginLogin", { body: {} });
    } catch (err) {
      if (!(err instanceof ProblemError)) throw err;
      refused = err;
    }
  }
  assert.ok(refused, "the realm never limited 200 ceremonies from one address");
  assert.equal(refused.status, 429);
  assert.ok(refused.is("rate-limited"), `type ${refused.type}`);
  assert.ok(refused.retryAfter !== undefined && refused.retryAfter >= 1, `retryAfter ${refused.retryAfter}`);
});

test("Retry-After is read as seconds or an HTTP date, and nothing else", () => {
  const now = Date.parse("2026-12-05T12:00:00Z");
  assert.equal(retryAfterSeconds("7", now), 7);
  assert.equal(retryAfterSeconds("Sat, 05 Dec 2026 12:00:30 GMT", now), 30);
  assert.equal(retryAfterSeconds("Sat, 05 Dec 2026 11:00:00 GMT", now), 0);
  assert.equal(retryAfterSeconds("soon", now), undefined);
  assert.equal(retryAfterSeconds("-3", now), undefined);
  assert.equal(retryAfterSeconds(null, now), undefined);
});

test("a call that takes an Idempotency-Key sends one, the caller's or a fresh one", async () => {
  const { client } = await newAvatar("idem");
  const seen: string[] = [];
  const recording = new RealmClient({
    baseUrl: realmURL(),
    token: client.token!,
    fetch: (input, init) => {
      seen.push(new Headers(init?.headers).get("Idempotency-Key") ?? "");
      return fetch(input, init);
    },
  });
  const body = { op: "set" as const, value: 1 };
  const path = { twin: "press-1", actuator: "pressure" };
  await recording.callWithStatus("getCommandDigest", { path, body, idempotencyKey: "sdk-key-1" }).catch(() => undefined);
  await recording.callWithStatus("getCommandDigest", { path, body }).catch(() => undefined);
  await recording.call("getVersion");
  assert.equal(seen[0], "sdk-key-1");
  assert.match(seen[1]!, /^[0-9a-f-]{36}$/, "a fresh UUID when none is given");
  assert.equal(seen[2], "", "no key on an operation that takes none");
});
