// The realm's minimal passkey pages: register, sign in, step up, sign out.
// Plain ES module, no build step. It speaks the realm's documented API only.

const $ = (id) => document.getElementById(id);
let csrf = "";

// --- base64url helpers, for browsers without the WebAuthn JSON methods ---
const b64u = {
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

// --- API ---
async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrf && method !== "GET") headers["X-CSRF-Token"] = csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const text = await res.text();
  const data = text ? JSON.parse(text) : {};
  if (!res.ok) throw Object.assign(new Error(data.detail || res.statusText), { problem: data });
  return data;
}

function show(label, value) {
  $("status").textContent = label + "\n" + JSON.stringify(value, null, 2);
}

function fail(label, err) {
  $("status").textContent = label + " failed: " + (err.problem ? JSON.stringify(err.problem, null, 2) : String(err));
}

// --- ceremonies ---
async function register(name, displayName) {
  const begin = await api("POST", "/v1/webauthn/register/begin", { name, display_name: displayName });
  const cred = await navigator.credentials.create({ publicKey: creationOptions(begin.publicKey) });
  const done = await api("POST", "/v1/webauthn/register/finish", { ceremony_id: begin.ceremony_id, credential: credentialJSON(cred), use_cookie: true });
  csrf = done.csrf || csrf;
  return done;
}

async function signIn(name) {
  const begin = await api("POST", "/v1/webauthn/login/begin", name ? { name } : {});
  const cred = await navigator.credentials.get({ publicKey: requestOptions(begin.publicKey) });
  const done = await api("POST", "/v1/webauthn/login/finish", { ceremony_id: begin.ceremony_id, credential: credentialJSON(cred), use_cookie: true });
  csrf = done.csrf || csrf;
  return done;
}

async function stepUp(digest) {
  const body = digest ? { action_digest: digest } : {};
  const begin = await api("POST", "/v1/webauthn/stepup/begin", body);
  const cred = await navigator.credentials.get({ publicKey: requestOptions(begin.publicKey) });
  return api("POST", "/v1/webauthn/stepup/finish", { ...body, ceremony_id: begin.ceremony_id, credential: credentialJSON(cred) });
}

// --- page state ---
async function refresh() {
  try {
    const me = await api("GET", "/v1/avatars/me");
    csrf = me.csrf || csrf;
    $("signed-out").hidden = true;
    $("signed-in").hidden = false;
    $("me-name").textContent = `${me.avatar.display_name} (@${me.avatar.name})`;
    $("trust-state").textContent = me.trust.state;
    $("trust-score").textContent = `score ${me.trust.score.toFixed(2)}`;
    $("trust-explain").textContent = me.trust.explanation || "";
    const list = $("passkeys");
    list.replaceChildren(...me.avatar.passkeys.map((p) => {
      const li = document.createElement("li");
      li.textContent = `${p.id.slice(0, 12)}… ${p.attestation_format}${p.synced ? " (synced)" : ""}, last used ${p.last_used}`;
      return li;
    }));
    document.body.dataset.state = "signed-in";
  } catch {
    csrf = "";
    $("signed-out").hidden = false;
    $("signed-in").hidden = true;
    document.body.dataset.state = "signed-out";
  }
}

function on(id, event, label, action) {
  $(id).addEventListener(event, async (e) => {
    e.preventDefault();
    $("status").textContent = label + "…";
    try {
      const result = await action();
      show(label, result);
      document.body.dataset.last = label + ":ok";
    } catch (err) {
      fail(label, err);
      document.body.dataset.last = label + ":error";
    }
    await refresh();
  });
}

on("register-form", "submit", "register", () => register($("name").value.trim(), $("display").value.trim()));
on("signin-form", "submit", "sign-in", () => signIn($("signin-name").value.trim()));
on("stepup-form", "submit", "step-up", () => stepUp($("digest").value.trim()));
on("add-passkey", "click", "add-passkey", () => register("", ""));
on("signout", "click", "sign-out", () => api("POST", "/v1/sessions/logout"));
on("signout-all", "click", "sign-out-everywhere", () => api("POST", "/v1/sessions/logout-all"));

await refresh();
document.body.dataset.ready = "1";
