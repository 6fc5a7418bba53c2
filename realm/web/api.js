// The console's one way to talk to the realm: JSON requests with the
// session cookie and CSRF token, the passkey ceremonies, and the one live
// WebSocket (/v1/realm) every view shares. Plain ES module, no build step;
// it speaks only the documented API (clients/PROTOCOL.md).

let csrf = "";
let meCache = null;

// --- small helpers ---

export const b64u = {
  encode(buf) {
    const bytes = new Uint8Array(buf);
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
  decode(str) {
    const s = atob(str.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((str.length + 3) % 4));
    return Uint8Array.from(s, (c) => c.charCodeAt(0)).buffer;
  },
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
  const h = { Accept: "application/json", ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (csrf && method !== "GET") h["X-CSRF-Token"] = csrf;
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const text = await res.text();
  let data = {};
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text };
    }
  }
  if (!res.ok) throw Object.assign(new Error(data.detail || data.title || res.statusText), { problem: data, status: res.status });
  return data;
}

// idempotencyKey names one attempt of an action, so a retried request is
// not carried out twice.
export function idempotencyKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// --- passkey ceremonies ---

function creationOptions(json) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  return {
    ...json,
    challenge: b64u.decode(json.challenge),
    user: { ...json.user, id: b64u.decode(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: b64u.decode(c.id) })),
  };
}

function requestOptions(json) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  return {
    ...json,
    challenge: b64u.decode(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: b64u.decode(c.id) })),
  };
}

function credentialJSON(cred) {
  if (cred.toJSON) return cred.toJSON();
  const r = cred.response;
  const response = { clientDataJSON: b64u.encode(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = b64u.encode(r.attestationObject);
    response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    response.authenticatorData = b64u.encode(r.authenticatorData);
    response.signature = b64u.encode(r.signature);
    if (r.userHandle) response.userHandle = b64u.encode(r.userHandle);
  }
  return {
    id: cred.id, rawId: b64u.encode(cred.rawId), type: cred.type, response,
    authenticatorAttachment: cred.authenticatorAttachment ?? undefined,
    clientExtensionResults: cred.getClientExtensionResults(),
  };
}

// register creates an avatar with a new passkey. Signed in, it adds a
// passkey to the avatar instead (name and display are then ignored), which
// the realm allows only after a step-up bound to adding one: addPasskey.
export async function register(name, display) {
  const begin = await api("POST", "/v1/webauthn/register/begin", { name, display_name: display });
  const cred = await navigator.credentials.create({ publicKey: creationOptions(begin.publicKey) });
  const done = await api("POST", "/v1/webauthn/register/finish", { ceremony_id: begin.ceremony_id, credential: credentialJSON(cred), use_cookie: true });
  csrf = done.csrf || csrf;
  meCache = null;
  return done;
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
  const begin = await api("POST", "/v1/webauthn/login/begin", name ? { name } : {});
  const cred = await navigator.credentials.get({ publicKey: requestOptions(begin.publicKey) });
  const done = await api("POST", "/v1/webauthn/login/finish", { ceremony_id: begin.ceremony_id, credential: credentialJSON(cred), use_cookie: true });
  csrf = done.csrf || csrf;
  meCache = null;
  return done;
}

// stepUp re-asserts the passkey. Bound to an action digest (0x + 64 hex)
// it authorizes that one action, once, within two minutes; without one it
// answers the realm's request to confirm who is at the controls.
export async function stepUp(digest) {
  const body = digest ? { action_digest: digest } : {};
  const begin = await api("POST", "/v1/webauthn/stepup/begin", body);
  const cred = await navigator.credentials.get({ publicKey: requestOptions(begin.publicKey) });
  const done = await api("POST", "/v1/webauthn/stepup/finish", { ...body, ceremony_id: begin.ceremony_id, credential: credentialJSON(cred) });
  if (done.trust) publishTrust(done.trust);
  return done;
}

export async function signOut(everywhere) {
  const done = await api("POST", everywhere ? "/v1/sessions/logout-all" : "/v1/sessions/logout");
  csrf = "";
  meCache = null;
  live.close();
  return done;
}

// --- the signed-in avatar ---

export async function refreshMe() {
  const me = await api("GET", "/v1/avatars/me");
  csrf = me.csrf || csrf;
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
  ws: null,
  handlers: new Map(),
  opening: null,
  wanted: false,
  retry: 0,

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
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  },

  // connect opens the connection if it is not open, and resolves when it is.
  connect() {
    this.wanted = true;
    if (this.open) return Promise.resolve(this.ws);
    if (this.opening) return this.opening;
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/realm`;
    this.opening = new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        this.ws = ws;
        this.opening = null;
        this.retry = 0;
        this.emit("open", {});
        resolve(ws);
      };
      ws.onerror = () => {
        if (this.opening) {
          this.opening = null;
          reject(new Error("the realm refused the WebSocket"));
        }
      };
      ws.onmessage = (ev) => {
        if (typeof ev.data !== "string") return;
        let m;
        try {
          m = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (m.type === "hello" || m.type === "trust") publishTrust(m.trust);
        if (m.type === "xr.score") publishTrust({ state: m.xr.state, score: m.xr.score }, { probability: m.xr.probability, probabilityAt: Date.now() });
        // A tick with several presence events carries them as a list;
        // views see one presence message per event, in order.
        if (m.type === "presence" && Array.isArray(m.events)) {
          for (const e of m.events) this.emit("presence", { type: "presence", scene: m.scene, ...e });
          return;
        }
        this.emit(m.type, m);
      };
      ws.onclose = (e) => {
        if (this.ws === ws) this.ws = null;
        this.emit("close", { code: e.code, reason: e.reason });
        // 4401: the session ended; anything else is worth a retry while
        // some view still wants the connection.
        if (e.code === 4401) {
          this.wanted = false;
          document.dispatchEvent(new CustomEvent("zr:signed-out", { detail: e.reason }));
          return;
        }
        // 4409: a newer connection of this session took over. Retrying on
        // our own would take it back, and two tabs would pass the session
        // between them forever: the person chooses.
        if (e.code === 4409) {
          this.wanted = false;
          document.dispatchEvent(new CustomEvent("zr:replaced", { detail: e.reason }));
          return;
        }
        if (this.wanted) {
          const wait = Math.min(10000, 500 * 2 ** this.retry++);
          setTimeout(() => { if (this.wanted && !this.open) this.connect().catch(() => {}); }, wait);
        }
      };
    });
    return this.opening;
  },

  send(msg) {
    if (!this.open) return false;
    this.ws.send(typeof msg === "string" || msg instanceof ArrayBuffer ? msg : JSON.stringify(msg));
    return true;
  },

  close() {
    this.wanted = false;
    if (this.ws) this.ws.close(1000, "console closed");
    this.ws = null;
  },
};

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
