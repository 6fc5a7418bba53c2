// The console shell: sign-up and sign-in, the header (navigation, who is
// signed in, the trust pill), the step-up banner, and a hash router that
// shows one view at a time. Each view is a module under views/ that is
// loaded and mounted once after sign-in. Plain ES modules, no build step.

import * as zr from "./api.js";
import { headset } from "./headset.js";
import { checkHandle, handleRule } from "./vendor/zerorealm-sdk.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["account", "headset", "scene", "trust", "twins", "market", "agents", "audit"];
const mounted = new Map(); // view name -> its module (or null while loading)
let signedIn = false;

const ctx = { ...zr, headset, navigate: (name) => { location.hash = "#/" + name; } };

// --- header: trust pill and step-up banner ---

function showTrust(t) {
  const pill = $("trust-pill");
  pill.dataset.state = t.state;
  pill.textContent = `${t.state} · ${Number(t.score).toFixed(2)}`;
  pill.title = t.explanation || "Trust in this session";
  document.body.dataset.trust = t.state;
  const banner = $("stepup-banner");
  const needs = t.state === "step-up" || t.state === "suspended";
  banner.hidden = !needs;
  banner.dataset.state = t.state;
  // The first sentence of the explanation says what happened; the trust
  // view has the rest.
  const why = (t.explanation || "").split(/(?<=\.)\s/)[0];
  $("stepup-text").replaceChildren(
    t.state === "suspended"
      ? "This session is suspended. Confirm with your passkey once the cause is gone. "
      : "The realm asks you to confirm it is still you at the controls. ",
    zr.el("span", { class: "muted" }, why + " "),
    zr.el("a", { href: "#/trust" }, "Why?"));
}

zr.onTrust(showTrust);

$("stepup-now").addEventListener("click", async () => {
  $("stepup-now").disabled = true;
  const done = await zr.run("step-up", () => zr.stepUp(""));
  $("stepup-now").disabled = false;
  if (done) zr.refreshMe().catch(() => {});
});

// --- router ---

function currentView() {
  const name = location.hash.replace(/^#\/?/, "").split(/[/?]/)[0];
  return VIEWS.includes(name) ? name : "account";
}

async function load(name) {
  if (mounted.has(name)) return mounted.get(name);
  const section = $("view-" + name);
  mounted.set(name, null);
  try {
    const mod = await import(`./views/${name}.js`);
    section.replaceChildren();
    await mod.mount(section, ctx);
    mounted.set(name, mod);
    section.dataset.mounted = "1";
    return mod;
  } catch (err) {
    console.error("view", name, err);
    section.replaceChildren(zr.el("div", { class: "card error", role: "alert" },
      zr.el("h1", null, "This view could not load"),
      zr.el("p", null, String(err && err.message ? err.message : err))));
    section.dataset.mounted = "error";
    mounted.set(name, { mount() {} });
    return null;
  }
}

async function route() {
  const name = currentView();
  for (const a of document.querySelectorAll("nav a[data-nav]")) {
    if (a.dataset.nav === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!signedIn) {
    for (const v of VIEWS) $("view-" + v).hidden = true;
    document.body.dataset.view = "signed-out";
    return;
  }
  for (const v of VIEWS) $("view-" + v).hidden = v !== name;
  document.body.dataset.view = name;
  const mod = await load(name);
  if (currentView() !== name) return; // navigated away while loading
  if (mod && mod.show) {
    try {
      await mod.show();
    } catch (err) {
      zr.setStatus("show " + name, err);
    }
  }
  document.body.dataset.shown = name;
  // A person who chose a view from the navigation continues from its
  // heading: keyboard and screen reader users land on what they chose.
  if (navigated) {
    navigated = false;
    const heading = $("view-" + name).querySelector("h1");
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
  }
}

let navigated = false;
for (const a of document.querySelectorAll("nav a[data-nav]")) a.addEventListener("click", () => { navigated = true; });

window.addEventListener("hashchange", route);

// --- session ---

async function refresh() {
  try {
    const me = await zr.refreshMe();
    signedIn = true;
    $("signed-out").hidden = true;
    $("who").textContent = `${me.avatar.display_name} (@${me.avatar.name})`;
    document.body.dataset.state = "signed-in";
    zr.pollTrust();
    zr.live.connect().catch(() => {});
  } catch {
    signedIn = false;
    $("signed-out").hidden = false;
    $("who").textContent = "";
    const pill = $("trust-pill");
    pill.dataset.state = "unknown";
    pill.textContent = "signed out";
    $("stepup-banner").hidden = true;
    document.body.dataset.state = "signed-out";
  }
  await route();
}

// signedOut resets the console: views hold the signed-in avatar's state,
// so they are mounted again after the next sign-in.
function signedOut() {
  headset.takeOff();
  zr.live.close();
  mounted.clear();
  for (const v of VIEWS) {
    const s = $("view-" + v);
    s.replaceChildren();
    delete s.dataset.mounted;
  }
  signedIn = false;
  return refresh();
}

document.addEventListener("zr:signed-out", () => { signedOut(); });
document.addEventListener("zr:replaced", () => { $("replaced-banner").hidden = false; });
// Every session of the avatar hears of a new passkey: one its owner did not
// add means a taken session.
zr.live.on("passkey-added", (m) => {
  $("passkey-added-name").textContent = m.passkey && m.passkey.name ? ` (${m.passkey.name})` : "";
  $("passkey-added-banner").hidden = false;
});
$("passkey-added-ok").addEventListener("click", () => { $("passkey-added-banner").hidden = true; });
$("reconnect-here").addEventListener("click", () => {
  $("replaced-banner").hidden = true;
  zr.live.connect().catch(() => {});
});

function onSubmit(id, label, action) {
  $(id).addEventListener("submit", async (e) => {
    e.preventDefault();
    // The outcome is reported once the page shows the new state.
    await zr.run(label, async () => {
      const done = await action();
      await refresh();
      return done;
    });
  });
}

// The handle's rule is the realm's own (the SDK carries it from the API
// description): said before anything is typed, and in words at the first
// mistake, instead of the browser's generic message.
const nameInput = $("name");
const nameRule = $("name-rule");
const ruleText = `A handle is ${handleRule.description}.`;
nameInput.minLength = handleRule.minLength;
nameInput.pattern = handleRule.pattern.replace(/^\^|\$$/g, "");
nameRule.textContent = ruleText;
let nameTouched = false;
function checkName() {
  const problem = checkHandle(nameInput.value.trim());
  const show = !!problem && nameTouched;
  nameInput.setCustomValidity(problem);
  nameInput.setAttribute("aria-invalid", String(show));
  nameRule.textContent = show ? problem : ruleText;
  nameRule.dataset.state = show ? "error" : "";
  return problem;
}
nameInput.addEventListener("input", () => {
  if (nameInput.value.trim().length >= handleRule.minLength) nameTouched = true;
  checkName();
});
nameInput.addEventListener("blur", () => {
  if (nameInput.value !== "") nameTouched = true;
  checkName();
});

$("register-form").addEventListener("submit", (e) => {
  nameTouched = true;
  if (checkName()) {
    e.preventDefault();
    e.stopImmediatePropagation();
    zr.setStatus("register", new Error(nameRule.textContent), nameInput, true);
    nameInput.focus();
  }
});
onSubmit("register-form", "register", () => zr.register(nameInput.value.trim(), $("display").value.trim()));
onSubmit("signin-form", "sign-in", () => zr.signIn($("signin-name").value.trim()));

// The account view signs out through here so the shell can reset.
ctx.signOut = async (everywhere) => {
  return zr.run(everywhere ? "sign-out-everywhere" : "sign-out", async () => {
    const done = await zr.signOut(everywhere);
    await signedOut();
    return done;
  });
};

await refresh();
document.body.dataset.ready = "1";
