// What the SDK reads from the network is untrusted: each reader answers
// with its result or its documented error, whatever the bytes. These are
// property tests over random inputs (Node has no coverage-guided fuzzer
// built in); the seed is printed so that a failure can be replayed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ProblemError, decodeBase64url, encodeBase64url, presenceEvents, problemFromResponse } from "../src/index.js";

const seed = Number(process.env.ZR_FUZZ_SEED ?? Date.now() % 1_000_000);
console.log(`parsers: ZR_FUZZ_SEED=${seed}`);
// mulberry32: a small deterministic generator, so a seed replays a run.
let state = seed >>> 0;
function rand(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const randomString = (n: number, alphabet: string) => Array.from({ length: n }, () => pick([...alphabet])).join("");

function randomJSON(depth = 0): unknown {
  switch (Math.floor(rand() * (depth > 3 ? 5 : 7))) {
    case 0: return null;
    case 1: return rand() < 0.5;
    case 2: return Math.floor(rand() * 2 ** 40) * (rand() < 0.5 ? -1 : 1);
    case 3: return randomString(Math.floor(rand() * 12), "abcdefé\u0000\"\\{}[]:,0123456789");
    case 4: return pick(["join", "leave", "zone", "presence", "events", ""]);
    case 5: return Array.from({ length: Math.floor(rand() * 4) }, () => randomJSON(depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rand() * 5); i > 0; i--) o[pick(["type", "scene", "avatar", "event", "zone", "name", "events", "title", "status", "detail"])] = randomJSON(depth + 1);
      return o;
    }
  }
}

test("base64url: any text decodes or throws TypeError; any bytes round-trip", () => {
  for (let i = 0; i < 2000; i++) {
    const text = randomString(Math.floor(rand() * 40), "ABCxyz019-_+/=. \u00e9");
    try {
      const bytes = decodeBase64url(text);
      assert.equal(encodeBase64url(bytes), text.replace(/=+$/, ""), `seed ${seed}: ${JSON.stringify(text)}`);
    } catch (err) {
      assert.ok(err instanceof TypeError, `seed ${seed}: ${JSON.stringify(text)}: ${String(err)}`);
    }
    const bytes = Uint8Array.from({ length: Math.floor(rand() * 70) }, () => Math.floor(rand() * 256));
    assert.deepEqual(decodeBase64url(encodeBase64url(bytes)), bytes);
  }
});

test("presence: any message flattens to events without throwing", () => {
  for (let i = 0; i < 2000; i++) {
    const msg = randomJSON();
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) continue;
    const events = presenceEvents(msg as Record<string, unknown>);
    for (const e of events) {
      assert.equal(typeof e.avatar, "string");
      assert.equal(typeof e.zone, "string");
    }
  }
});

test("problems: any failed answer becomes a ProblemError with its status", async () => {
  for (let i = 0; i < 500; i++) {
    const status = pick([400, 401, 403, 404, 409, 422, 429, 500, 502, 503]);
    const body = rand() < 0.5 ? JSON.stringify(randomJSON()) : randomString(Math.floor(rand() * 80), "<html>{}\"problem: ");
    const headers: Record<string, string> = {};
    if (rand() < 0.5) headers["Retry-After"] = pick(["0", "7", "soon", "-1", "Sat, 05 Dec 2026 12:00:30 GMT", "1e3"]);
    const err = await problemFromResponse(new Response(body, { status, headers }));
    assert.ok(err instanceof ProblemError);
    assert.equal(typeof err.type, "string");
    assert.equal(typeof err.status, "number");
    assert.ok(err.retryAfter === undefined || (Number.isInteger(err.retryAfter) && err.retryAfter >= 0), `seed ${seed}: retryAfter ${err.retryAfter}`);
  }
});
