// The console's one way to talk to the realm, on the TypeScript SDK
// (clients/js, served bundled as vendor/zerorealm-sdk.js): JSON requests
// with the session cookie and CSRF token, the passkey ceremonies, and the
// one live WebSocket (/v1/realm) every view shares. This module keeps the
// console's own conventions on top: errors with .problem and .status,
// the trust every view shows, and the page events of a session's end.

import {
  Passkeys,
  ProblemError,
  RealmClient,
  RealmSocket,
  TwinFeed,
  browserAuthenticator,
  decodeBase64url,
  encodeBase64url,
  newIdempotencyKey,
} from "./vendor/zerorealm-sdk.js";

// The client of the page's own origin: a cookie session, whose CSRF token
// the client keeps from the sign-in answers and /v1/avatars/me.
const client = new RealmClient();
const passkeys = new Passkeys(client);
let meCache = null;

// --- small helpers ---

export const b64u = {
  encode: encodeBase64url,
  decode: (str) => decodeBase64url(str).buffer,
};

// el builds an element: attributes (on* functions become listeners,
// `dataset` an object, `class` the class name, true an empty attribute,
// false/null/undefined nothing) and children (strings, nodes, arrays).
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "class") node.className = v;
    else if (k === "value" && "value" in node) node.value = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  const add = (c) => {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) c.forEach(add);
    else node.append(c instanceof Node ? c : String(c));
  };
  children.forEach(add);
  return node;
}

// describe turns an error into the text a person reads: the problem's
// detail and, where the realm gave them, its reasons.
export function describe(err) {
  if (!(err instanceof Error)) return String(err);
  const p = err.problem;
  if (!p) return err.message;
  const reasons = p.reasons || p.errors || [];
  return [p.title, p.detail, ...[].concat(reasons)].filter(Boolean).join("\n");
}

// setStatus shows an action's outcome in the shared #status panel and
// records it on <body data-last="label:ok|label:error"> for tests and
// assistive tools.
export function setStatus(label, value) {
  const out = document.getElementById("status");
  const failed = value instanceof Error;
  const text = failed
    ? `${label} failed: ${value.problem ? JSON.stringify(value.problem, null, 2) : String(value)}`
    : label + (value === undefined ? "" : "\n" + JSON.stringify(value, null, 2));
  if (out) out.textContent = text;
  document.body.dataset.last = label + (failed ? ":error" : ":ok");
}

// run performs an action for a control: shows it in progress, then its
// result or error in #status. It returns the result, or undefined on error.
export async function run(label, fn) {
  const out = document.getElementById("status");
  if (out) out.textContent = label + "…";
  try {
    const result = await fn();
    setStatus(label, result);
    return result;
  } catch (err) {
    setStatus(label, err);
    return undefined;
  }
}

// --- requests ---

export async function api(method, path, body, headers = {}) {
  try {
    return (await client.request(method, path, body, headers)) ?? {};
  } catch (err) {
    // Views read the problem and the status; the message is the detail.
    if (err instanceof ProblemError) throw Object.assign(new Error(err.detail || err.problem.title), { problem: err.problem, status: err.status });
    throw err;
  }
}

// idempotencyKey names one attempt of an action, so a retried request is
// not carried out twice.
export function idempotencyKey() {
  return newIdempotencyKey();
}

// --- passkey ceremonies ---

const sdkAuthenticator = browserAuthenticator();

// viaSDK runs an SDK call with the console's error shape.
async function viaSDK(fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ProblemError) throw Object.assign(new Error(err.detail || err.problem.title), { problem: err.problem, status: err.status });
    throw err;
  }
}

// register creates an avatar with a new passkey. Signed in, it adds a
// passkey to the avatar instead (name and display are then ignored), which
// the realm allows only after a step-up bound to adding one: addPasskey.
export async function register(name, display) {
  const body = name ? { name, display_name: display } : {};
  const done = await viaSDK(() => (name ? passkeys.register(name, { displayName: display, useCookie: true }) : registerSignedIn(body)));
  meCache = null;
  return done;
}

// registerSignedIn adds a passkey to the signed-in avatar, after the
// step-up addPasskey made.
async function registerSignedIn() {
  const begin = await client.call("beginRegistration", { body: {} });
  const credential = await sdkAuthenticator.create(begin.publicKey);
  return client.call("finishRegistration", { body: { ceremony_id: begin.ceremony_id, credential, use_cookie: true } });
}

// addPasskey adds a passkey to the signed-in avatar: first a step-up with
// a passkey the avatar already holds, bound to its add_passkey_action_digest,
// then the new passkey's registration.
export async function addPasskey() {
  const mine = await refreshMe();
  await stepUp(mine.avatar.add_passkey_action_digest);
  return register("", "");
}

// signIn asserts a passkey; with no name the browser offers the
// discoverable passkeys it holds for the realm.
export async function signIn(name) {
  const done = await viaSDK(() => passkeys.signIn(name ? { name, useCookie: true } : { useCookie: true }));
  meCache = null;
  return done;
}

// stepUp re-asserts the passkey. Bound to an action digest (0x + 64 hex)
// it authorizes that one action, once, within two minutes; without one it
// answers the realm's request to confirm who is at the controls.
export async function stepUp(digest) {
  const done = await viaSDK(() => passkeys.stepUp(digest || undefined));
  if (done.trust) publishTrust(done.trust);
  return done;
}

export async function signOut(everywhere) {
  const done = await api("POST", everywhere ? "/v1/sessions/logout-all" : "/v1/sessions/logout");
  client.setCsrf(undefined);
  meCache = null;
  live.close();
  return done;
}

// --- the signed-in avatar ---

export async function refreshMe() {
  const me = await api("GET", "/v1/avatars/me");
  meCache = me;
  if (me.trust) publishTrust(me.trust);
  return me;
}

export async function me() {
  return meCache || refreshMe();
}

export function hasRole(role) {
  return !!meCache && (meCache.avatar.roles || []).includes(role);
}

// --- trust ---

const trustListeners = new Set();
let lastTrust = null;

// publishTrust merges a reading (a full assessment, or the state and score
// of an xr.score) into the last one and tells every listener.
function publishTrust(t, extra = {}) {
  // A full assessment (it has factors) is stamped, so a listener can tell
  // whether a match probability is newer than it.
  const stamp = t.factors ? { assessedAt: Date.now() } : {};
  lastTrust = { ...(lastTrust || {}), ...t, ...extra, ...stamp, received: Date.now() };
  for (const cb of trustListeners) {
    try {
      cb(lastTrust);
    } catch (err) {
      console.error("trust listener", err);
    }
  }
}

// onTrust calls cb with {state, score, factors, explanation, probability?}
// now (if known) and whenever trust changes. It returns an unsubscribe.
export function onTrust(cb) {
  trustListeners.add(cb);
  if (lastTrust) cb(lastTrust);
  return () => trustListeners.delete(cb);
}

export function currentTrust() {
  return lastTrust;
}

// --- the live WebSocket ---

// live is the one /v1/realm connection of the page: trust pushes, the
// headset's signaling and frames, scene membership. Views subscribe to
// message types; the connection reconnects unless the session ended.
export const live = {
  socket: null,
  handlers: new Map(),
  opening: null,

  on(type, cb) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(cb);
    return () => this.handlers.get(type).delete(cb);
  },

  emit(type, msg) {
    for (const cb of this.handlers.get(type) || []) {
      try {
        cb(msg);
      } catch (err) {
        console.error("live handler", type, err);
      }
    }
  },

  get open() {
    return !!this.socket && !this.socket.stopped && this.socket.connected;
  },

  // connect opens the connection if it is not open, and resolves when the
  // realm has said hello. The SDK's socket reconnects with back-off; it
  // stops for good on 4401 (the session ended) and 4409 (a newer
  // connection of this session took over: retrying on our own would take
  // it back, and two tabs would pass the session between them forever, so
  // the person chooses).
  connect() {
    if (this.open) return Promise.resolve(this.socket);
    if (this.opening) return this.opening;
    const socket = new RealmSocket(client);
    this.socket = socket;
    socket.on("open", () => this.emit("open", {}));
    socket.on("disconnect", (e) => this.emit("close", { code: e.code, reason: e.reason }));
    socket.on("session-ended", (e) => document.dispatchEvent(new CustomEvent("zr:signed-out", { detail: e.reason })));
    socket.on("replaced", (e) => document.dispatchEvent(new CustomEvent("zr:replaced", { detail: e.reason })));
    socket.on("hello", (m) => publishTrust(m.trust));
    socket.on("trust", (t) => publishTrust(t));
    socket.on("xr", (m) => {
      if (m.type === "xr.score") publishTrust({ state: m.xr.state, score: m.xr.score }, { probability: m.xr.probability, probabilityAt: Date.now() });
    });
    // Views see one presence message per event, in order, with the SDK
    // flattening a tick's list.
    socket.on("presence", (e) => this.emit("presence", { type: "presence", ...e }));
    socket.on("message", (m) => {
      if (m.type !== "presence") this.emit(m.type, m);
    });
    this.opening = socket.connect().then(
      () => {
        this.opening = null;
        return socket;
      },
      (err) => {
        this.opening = null;
        throw new Error("the realm refused the WebSocket: " + err.message);
      },
    );
    return this.opening;
  },

  send(msg) {
    if (!this.open) return false;
    if (msg instanceof ArrayBuffer) return this.socket.sendFrames(new Uint8Array(msg));
    if (ArrayBuffer.isView(msg)) return this.socket.sendFrames(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
    return this.socket.send(typeof msg === "string" ? JSON.parse(msg) : msg);
  },

  close() {
    if (this.socket) this.socket.close();
    this.socket = null;
    this.opening = null;
  },
};

// twinFeed is a new connection to the twin console feed
// (GET /v1/twins/feed): connect() it, and close() it when done.
export function twinFeed() {
  return new TwinFeed(client);
}

// pollTrust reads the assessment now and then: a trust push comes only
// with a change of state, and the factors (passkey age, a stream going
// quiet) move between pushes.
let pollTimer = 0;
export function pollTrust(everyMS = 5000) {
  clearInterval(pollTimer);
  pollTimer = setInterval(() => {
    if (document.hidden) return;
    refreshMe().catch(() => {});
  }, everyMS);
}
