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

// What each action is called in the results a person reads: [what it is
// while it runs, what it says when done]. An action not named here is
// called by its label.
const ACTIONS = {
  register: ["Creating your avatar with a passkey", "Your avatar is created and signed in."],
  "sign-in": ["Signing in with a passkey", "Signed in."],
  "step-up": ["Confirming with your passkey", "Confirmed with your passkey."],
  "sign-out": ["Signing out", "Signed out."],
  "sign-out-everywhere": ["Signing out everywhere", "Signed out on every device."],
  "add-passkey": ["Adding a passkey", "The new passkey is added."],
  "delete-passkey": ["Deleting the passkey", "The passkey is deleted."],
  "end-session": ["Ending the session", "The session is ended."],
  "change-roles": ["Saving the roles", "The roles are saved."],
  avatars: ["Listing avatars", "Avatars listed."],
  audit: ["Asking the realm for decisions", "Decisions loaded."],
  "audit-older": ["Loading older decisions", "Older decisions loaded."],
  "audit-verify": ["Verifying the audit chain", "The audit chain is verified."],
  "join-scene": ["Joining the scene", "You joined the scene."],
  "leave-scene": ["Leaving the scene", "You left the scene."],
  "scene-access": ["Asking the policies", "The policies answered."],
  walk: ["Walking", "You are there."],
  start: ["Putting the headset on", "The headset is on and streaming."],
  handover: ["Handing the headset over", "The headset is on someone else now."],
  stop: ["Taking the headset off", "The headset is off."],
  "enter-xr": ["Entering XR", "In XR."],
  wallet: ["Creating a custodial wallet", "Your custodial wallet is ready."],
  "link-wallet": ["Linking the browser wallet", "The wallet is linked to your avatar."],
  receipts: ["Loading the receipts", "Receipts loaded."],
  market: ["Loading the market", "The market is up to date."],
  twins: ["Loading the twins", "Twins loaded."],
  delegate: ["Delegating: the realm prepares the grant, your passkey confirms it", "The delegation is issued."],
  "revoke-delegation": ["Revoking the delegation", "The delegation is revoked."],
};
const actionWords = (label) => ACTIONS[label] || [label.replace(/[-_]/g, " "), "Done."];
// Actions whose success shows itself (a list filled, a verdict drawn)
// leave no message on success; a failure still shows beside them.
const SELF_EVIDENT = new Set(["audit", "audit-older", "audit-verify", "avatars", "scene-access", "walk", "receipts", "market", "twins"]);

// A result stays beside its action while it is news: a success fades
// after a while (the page shows the new state by then), a failure stays
// until the action is tried again.
const SUCCESS_SHOWN_MS = 20000;

// resultSlot finds or makes the place where an action's result shows:
// right under the form, button row or list the action belongs to (at, or
// the focused control), or at the top of the visible view.
function resultSlot(label, at) {
  const from = at instanceof Element ? at : document.activeElement;
  const host = from && from !== document.body && from.isConnected
    ? from.closest("ul.list, ol, .banner, form, .buttons, .card-head, .ops-actions, .ops-row") : null;
  // One result a place: the next action there replaces the last one's.
  const reuse = (slot) => {
    if (!slot) return null;
    slot.dataset.result = label;
    return slot;
  };
  if (host && host.classList.contains("banner")) {
    let slot = reuse(host.querySelector(":scope > .result"));
    if (!slot) host.append(slot = newSlot(label));
    return slot;
  }
  if (!host) {
    const view = document.querySelector("main > section:not([hidden])");
    if (!view) return null;
    let slot = reuse(view.querySelector(":scope > .result"));
    if (!slot) view.prepend(slot = newSlot(label));
    return slot;
  }
  const next = host.nextElementSibling;
  if (next && next.classList.contains("result")) return reuse(next);
  const slot = newSlot(label);
  host.after(slot);
  return slot;
}

function newSlot(label) {
  return el("div", { class: "result", role: "status", "aria-live": "polite", dataset: { result: label } });
}

// jsonDetails is the JSON of an answer or a problem, folded away under
// "Details (JSON)"; views that show a result of their own add it there.
export function jsonDetails(value) {
  if (value === undefined || value === null || (typeof value === "object" && !Object.keys(value).length)) return null;
  let text;
  try {
    text = JSON.stringify(value, null, 2);
  } catch {
    text = String(value);
  }
  return el("details", { class: "result-json" }, el("summary", null, "Details (JSON)"), el("pre", null, text));
}

// showOutcome writes an action's outcome into its slot: in words, with
// the problem's detail and reasons on a failure, and the JSON folded.
function showOutcome(slot, label, value) {
  if (!slot) return;
  clearTimeout(slot.fade);
  const failed = value instanceof Error;
  slot.dataset.status = failed ? "error" : "ok";
  if (failed) {
    const p = value.problem || {};
    const reasons = [].concat(p.reasons || p.errors || []).filter(Boolean);
    const said = p.detail || value.message || p.title || String(value);
    slot.setAttribute("role", "alert");
    slot.replaceChildren(
      el("p", null, el("strong", null, `${actionWords(label)[0].replace(/^./, (c) => c.toUpperCase())} did not work. `), said),
      reasons.length && !(reasons.length === 1 && reasons[0] === said) ? el("ul", { class: "reasons" }, reasons.map((r) => el("li", null, r))) : null,
      jsonDetails(value.problem || null));
  } else if (SELF_EVIDENT.has(label)) {
    slot.remove();
  } else {
    slot.setAttribute("role", "status");
    slot.replaceChildren(el("p", null, actionWords(label)[1]), jsonDetails(value));
    slot.fade = setTimeout(() => { if (slot.dataset.status === "ok") slot.remove(); }, SUCCESS_SHOWN_MS);
  }
}

// setStatus shows an action's outcome beside the action (at, or the
// focused control) and records it on <body data-last="label:ok|label:error">
// for tests and assistive tools. Views that show a result of their own
// (a decision, a receipt) pass at = null and quiet = true to record only.
export function setStatus(label, value, at, quiet = false) {
  const failed = value instanceof Error;
  if (!quiet) showOutcome(resultSlot(label, at), label, value);
  document.body.dataset.last = label + (failed ? ":error" : ":ok");
}

// run performs an action for a control: shows that it is under way under
// the control (at, or the focused one), then its outcome there. It
// returns the result, or undefined on error.
export async function run(label, fn, at) {
  const slot = resultSlot(label, at);
  if (slot) {
    clearTimeout(slot.fade);
    slot.dataset.status = "busy";
    slot.setAttribute("role", "status");
    slot.replaceChildren(el("p", null, actionWords(label)[0] + "…"));
  }
  let result, failed = null;
  try {
    result = await fn();
  } catch (err) {
    failed = err;
  }
  try {
    showOutcome(slot && slot.isConnected ? slot : resultSlot(label, at), label, failed || result);
  } catch (err) {
    console.error("showing the result of", label, err);
  }
  document.body.dataset.last = label + (failed ? ":error" : ":ok");
  return failed ? undefined : result;
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
    // Only the page's current connection speaks for the session: the end of
    // one closed at sign-out, arriving after the next sign-in, must not
    // sign the new session out.
    socket.on("session-ended", (e) => { if (this.socket === socket) document.dispatchEvent(new CustomEvent("zr:signed-out", { detail: e.reason })); });
    socket.on("replaced", (e) => { if (this.socket === socket) document.dispatchEvent(new CustomEvent("zr:replaced", { detail: e.reason })); });
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
