// Agents: the delegations this avatar gave its agents (what each grants,
// its limits, revoke), and the actions its agents asked for that wait for
// this avatar's approval. The queue is live: the realm pushes every change
// of a waiting action on the realm WebSocket ("agent-approval"). Approving
// asks for a passkey step-up bound to that one action's digest; a
// transfer's receipt is verified in this page (the SDK's verifyReceipt).
//
// Delegating: the "New delegation" form prepares the grant (the realm
// answers its digest), confirms it with a user-verified passkey step-up
// bound to that digest, then issues it; the token is shown once.
//
// Wire formats: docs/agents.md ("The delegation API", "The owner's
// approval queue").

import { verifyReceipt } from "../vendor/zerorealm-sdk.js";
import { LineChart } from "../chart.js";

const FINAL = new Set(["done", "failed", "rejected", "expired", "cancelled"]);

// What a delegation may grant (agents.delegableActions): approving a
// critical command is a person's, never an agent's.
const DELEGABLE = [
  ["JoinScene", "join scenes"],
  ["EnterZone", "enter zones"],
  ["ViewTwin", "view twins"],
  ["CommandActuator", "command actuators"],
  ["TransferAsset", "transfer assets"],
];
const RISKS = ["low", "medium", "high"]; // never critical
const MAX_HOURS = 24;
// An agent's recent activity: the newest audited decisions it was the
// actor of (the realm lets an owner read its own agents').
const ACTIVITY_LIMIT = 100;
const ACTIVITY_REFRESH_MS = 15000;
const TRUSTED_FROM = 0.6; // agents' trust states, as people's (docs/agents.md)
// Names the owner gave its agents: the realm knows an agent by its key
// only, so the name is this browser's label for it.
const NAMES_KEY = "zr-agent-names";

// agentKeyProblem says what is wrong with a pasted agent key (the
// agent's Ed25519 public key, 32 bytes as unpadded base64url: 43
// characters, as the agent program prints it), or "" if nothing is.
export function agentKeyProblem(key) {
  if (!key) return "Paste the agent's public key, as the agent program prints it.";
  if (key.length !== 43) return `The agent's public key is 43 characters of base64url (an Ed25519 key); this one has ${key.length}.`;
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return "The agent's public key is base64url: letters, digits, '-' and '_' only.";
  // 43 characters carry 258 bits: the last character's low 2 bits are 0.
  if ("AEIMQUYcgkosw048".indexOf(key[42]) < 0) return "The agent's public key does not decode to 32 bytes: was it copied whole?";
  return "";
}

function loadNames() {
  try { return JSON.parse(localStorage.getItem(NAMES_KEY) || "{}") || {}; } catch { return {}; }
}

let instance = null;

export function mount(section, ctx) {
  const { el, api, stepUp, run, live, describe } = ctx;
  const approvals = new Map(); // id -> view
  const explain = (err) => (describe ? describe(err) : err.message);

  const queue = el("ul", { id: "agent-approvals", class: "ops-list", "aria-label": "Actions waiting for your approval", "aria-live": "polite" });
  const queueEmpty = el("p", { id: "agent-approvals-empty", class: "ops-note" }, "Nothing waits for your approval.");
  const history = el("ul", { id: "agent-approvals-done", class: "ops-list ops-compact", "aria-label": "Decided actions" });
  // Shown only once something was decided: an empty heading says nothing.
  const historyTitle = el("h3", null, "Decided");
  historyTitle.hidden = true;
  const delegations = el("ul", { id: "agent-delegations", class: "ops-list", "aria-label": "Your delegations" });
  const delegationsEmpty = el("p", { class: "ops-note" }, "You have not delegated to any agent.");

  // --- the new delegation form ---
  const nameInput = el("input", { id: "delegation-name", name: "name", maxlength: "60", placeholder: "e.g. shopping agent", autocomplete: "off" });
  const keyInput = el("input", { id: "delegation-key", name: "agent_key", maxlength: "200", placeholder: "43 characters, as the agent prints it", autocomplete: "off", spellcheck: "false" });
  const actionBoxes = DELEGABLE.map(([id, words]) => el("label", { class: "ops-inline" },
    el("input", { type: "checkbox", name: "action", value: id, dataset: { action: id } }), " ", words, " ", el("code", null, id)));
  const resourceList = el("div", { id: "delegation-resources", class: "ops-choices", role: "group", "aria-label": "What the agent may act on" });
  const num = (id, label, hint) => el("label", null, label, el("input", { id, type: "number", min: "0", step: "1", value: "0", inputmode: "numeric", title: hint }));
  const limitInputs = el("div", { class: "ops-row" },
    num("delegation-transfer-value", "Value per transfer", "the most one transfer may move"),
    num("delegation-daily-value", "Value a day", "the most all transfers may move in one UTC day"),
    num("delegation-auto-approve", "Ask me above", "a transfer above this value waits for your approval"),
    num("delegation-commands", "Commands a minute", "actuator commands in any minute, at most 600"),
    el("label", null, "Highest risk", el("select", { id: "delegation-max-risk" }, RISKS.map((r) => el("option", { value: r }, r)))),
    el("label", null, "Valid for (hours)", el("input", { id: "delegation-hours", type: "number", min: "1", max: String(MAX_HOURS), step: "1", value: "8" })));
  const issueButton = el("button", { id: "delegation-issue", type: "submit", class: "primary" }, "Delegate with passkey");
  const tokenBox = el("div", { id: "delegation-token", class: "ops-result", role: "status", "aria-live": "polite", hidden: true });
  const form = el("form", { id: "delegation-form", class: "ops-form", "aria-labelledby": "delegation-form-title", onsubmit: (e) => { e.preventDefault(); issue(); } },
    el("h2", { id: "delegation-form-title" }, "New delegation"),
    el("p", { class: "ops-note" }, "Your agent acts for you within what you pick here, and never beyond: a transfer above \"ask me above\" and every high-risk command wait for your approval; critical commands are never delegated. Confirming asks for your passkey, bound to this exact delegation."),
    el("label", null, "Agent's name (kept in this browser)", nameInput),
    el("label", { class: "ops-grow" }, "Agent's public key", keyInput),
    el("fieldset", { class: "ops-fieldset", id: "delegation-actions" }, el("legend", null, "It may"), actionBoxes),
    el("fieldset", { class: "ops-fieldset" }, el("legend", null, "On"), resourceList),
    el("fieldset", { class: "ops-fieldset" }, el("legend", null, "Limits"), limitInputs),
    el("div", { class: "ops-actions" }, issueButton));

  function fillResources(scenes, twins, collections) {
    const box = (type, id, words) => el("label", { class: "ops-inline" },
      el("input", { type: "checkbox", name: "resource", value: `${type}\u0000${id}`, dataset: { resource: `${type}:${id}` } }), " ", words);
    const group = (title, boxes) => (boxes.length ? el("div", null, el("strong", null, title), " ", boxes) : null);
    const groups = [
      group("Scenes", scenes.map((s) => box("Scene", s.id, s.name || s.id))),
      group("Twins (with every actuator)", twins.map((t) => box("Twin", t.id, t.name || t.id))),
      group("Actuators", twins.flatMap((t) => (t.actuators || []).map((a) => box("Actuator", `${t.id}/${a.id}`, `${t.name || t.id}: ${a.name || a.id} (${a.risk})`)))),
      group("Collections (every asset of it)", collections.map((c) => box("Collection", c.id, c.name || c.id))),
    ].filter(Boolean);
    resourceList.replaceChildren(...(groups.length ? groups : [el("p", { class: "ops-note" }, "This realm lists no scenes, twins or collections.")]));
  }

  async function loadResources() {
    const [sc, tw, co] = await Promise.all([
      api("GET", "/v1/scenes").catch(() => ({})),
      api("GET", "/v1/twins").catch(() => ({})),
      api("GET", "/v1/assets/collections").catch(() => ({})),
    ]);
    fillResources(sc.scenes || [], tw.twins || [], co.collections || []);
  }

  // grantFromForm reads the form into the body of the digest request, or
  // throws an error that says in words what to fix.
  function grantFromForm() {
    const key = keyInput.value.trim();
    const bad = agentKeyProblem(key);
    if (bad) throw new Error(bad);
    const actions = actionBoxes.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    if (!actions.length) throw new Error("Pick at least one thing the agent may do.");
    const resources = [...resourceList.querySelectorAll("input:checked")].map((i) => {
      const [type, id] = i.value.split("\u0000");
      return { type, id };
    });
    if (!resources.length) throw new Error("Pick at least one scene, twin, actuator or collection the agent may act on.");
    const whole = (id, what, max) => {
      const v = form.querySelector("#" + id).value.trim();
      const n = v === "" ? 0 : Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${what} is a whole number, 0 or more.`);
      if (max !== undefined && n > max) throw new Error(`${what} is at most ${max}.`);
      return n;
    };
    const limits = {
      transfer_value: whole("delegation-transfer-value", "Value per transfer"),
      daily_value: whole("delegation-daily-value", "Value a day"),
      auto_approve_value: whole("delegation-auto-approve", "Ask me above"),
      commands_per_minute: whole("delegation-commands", "Commands a minute", 600),
      max_risk: form.querySelector("#delegation-max-risk").value,
    };
    if (limits.auto_approve_value > limits.transfer_value) throw new Error("\"Ask me above\" is at most the value per transfer.");
    const hours = whole("delegation-hours", "Valid for (hours)", MAX_HOURS);
    if (hours < 1) throw new Error("A delegation is valid for 1 to 24 hours.");
    return { agent_key: key, actions, resources, limits, expires_in: hours * 3600 };
  }

  async function issue() {
    issueButton.disabled = true;
    tokenBox.hidden = true;
    const name = nameInput.value.trim();
    const issued = await run("delegate", async () => {
      const body = grantFromForm();
      const prepared = await api("POST", "/v1/agents/delegations/digest", body);
      await stepUp(prepared.action_digest);
      return api("POST", "/v1/agents/delegations", { grant: prepared.grant });
    }, form);
    issueButton.disabled = false;
    if (!issued || !issued.token) return;
    const agent = issued.delegation && issued.delegation.agent;
    if (name && agent) {
      const names = loadNames();
      names[agent] = name;
      try { localStorage.setItem(NAMES_KEY, JSON.stringify(names)); } catch { /* a label only */ }
    }
    const token = el("input", { id: "delegation-token-value", readonly: true, value: issued.token, "aria-label": "The new delegation's token", class: "ops-token" });
    const copy = el("button", { type: "button", id: "delegation-token-copy" }, "Copy");
    copy.addEventListener("click", async () => {
      token.select();
      try { await navigator.clipboard.writeText(issued.token); copy.textContent = "Copied"; } catch { copy.textContent = "Select and copy it"; }
    });
    tokenBox.dataset.delegation = issued.delegation ? issued.delegation.id : "";
    tokenBox.replaceChildren(
      el("p", null, el("strong", null, `Delegated to ${name || agent}.`), " Give this token to the agent now: it is shown only this once, and the realm keeps no copy. Without the agent's own private key it is useless to anyone else."),
      el("div", { class: "ops-row" }, token, copy));
    tokenBox.hidden = false;
    // Ready for another agent: the limits stay as a starting point.
    nameInput.value = keyInput.value = "";
    for (const box of form.querySelectorAll('input[type="checkbox"]')) box.checked = false;
    await loadDelegations();
  }

  // The queue first: an action waiting for the owner expires.
  section.append(el("div", { class: "ops-grid" },
    el("section", { class: "ops-card", "aria-labelledby": "agent-approvals-title" },
      el("h2", { id: "agent-approvals-title" }, "Waiting for your approval"),
      el("p", { class: "ops-note" }, "Your agents ask here for what their delegation does not let them do alone: a transfer above its auto-approval value, a high-risk command. Approving asks for your passkey, bound to that one action."),
      queueEmpty, queue,
      historyTitle, history),
    el("section", { class: "ops-card", "aria-labelledby": "agent-delegations-title" },
      el("h2", { id: "agent-delegations-title" }, "Your delegations"),
      delegationsEmpty, delegations),
    el("section", { class: "ops-card", "aria-labelledby": "delegation-form-title" }, form, tokenBox)));

  const short = (s) => (s && s.length > 18 ? `${s.slice(0, 10)}…${s.slice(-6)}` : s || "");
  const when = (t) => (t ? new Date(t).toLocaleTimeString() : "");

  // --- the approval queue ---

  function renderQueue() {
    const all = [...approvals.values()].sort((a, b) => (a.created < b.created ? 1 : -1));
    const now = Date.now();
    const pending = all.filter((a) => a.state === "pending" && Date.parse(a.expires) > now);
    queue.replaceChildren(...pending.map(pendingRow));
    queueEmpty.hidden = pending.length > 0;
    history.replaceChildren(...all.filter((a) => !pending.includes(a)).slice(0, 20).map(decidedRow));
    historyTitle.hidden = history.childElementCount === 0;
  }

  function pendingRow(a) {
    const approve = el("button", { type: "button", class: "primary", dataset: { approve: a.id } }, "Approve with passkey");
    const reject = el("button", { type: "button", dataset: { reject: a.id } }, "Reject");
    approve.addEventListener("click", () => decide(a, true, [approve, reject]));
    reject.addEventListener("click", () => decide(a, false, [approve, reject]));
    return el("li", { dataset: { approval: a.id, state: a.state } },
      el("div", null,
        el("strong", null, a.summary || `${a.action.name} on ${a.action.resource.type} ${a.action.resource.id}`),
        el("div", { class: "ops-note" }, `value ${a.action.value}${a.action.risk ? ", risk " + a.action.risk : ""} · asked by `, el("code", { title: a.chain }, a.chain)),
        el("div", { class: "ops-note" }, `asked ${when(a.created)}, expires ${when(a.expires)}`)),
      el("div", null, approve, " ", reject));
  }

  function decidedRow(a) {
    const state = a.state === "pending" ? "expired" : a.state;
    const detail = el("span", { class: "ops-note", dataset: { detail: a.id } },
      a.problem ? `: ${a.problem.detail}` : "");
    const row = el("li", { dataset: { approval: a.id, state } },
      el("div", null, el("strong", null, a.summary || a.action.name), " ", el("span", { class: "ops-badge", dataset: { state } }, state), detail));
    if (state === "done" && a.kind === "transfer" && a.result) verifyInto(row, detail, a.result);
    return row;
  }

  // verifyInto checks a transfer's receipt in this page: the realm's
  // domain and its published signers, the EIP-712 digest recomputed.
  async function verifyInto(row, detail, result) {
    try {
      const [info, signers] = await Promise.all([api("GET", "/v1/assets/domain"), api("GET", "/v1/assets/signers")]);
      const trusted = [info.signer, ...(signers.signers || []).map((s) => ({ address: s.address, since: s.since, until: s.until }))];
      const v = verifyReceipt(result, { domain: info.domain, signers: trusted, intent: result.digest });
      row.dataset.verified = String(v.ok);
      detail.textContent = v.ok ? `: receipt ${short(v.digest)} verified in this browser, signed by ${short(v.signer)}` : `: the receipt does not verify: ${v.reason}`;
    } catch (err) {
      row.dataset.verified = "false";
      detail.textContent = ": the receipt could not be checked: " + explain(err);
    }
  }

  async function decide(a, approve, buttons) {
    for (const b of buttons) b.disabled = true;
    const label = approve ? "approve-agent-action" : "reject-agent-action";
    const done = await run(label, async () => {
      if (approve) await stepUp(a.action_digest);
      return api("POST", `/v1/agents/approvals/${a.id}/${approve ? "approve" : "reject"}`);
    });
    if (done && done.id) approvals.set(done.id, done);
    for (const b of buttons) b.disabled = false;
    renderQueue();
  }

  async function loadQueue() {
    const out = await api("GET", "/v1/agents/approvals");
    approvals.clear();
    for (const a of out.approvals || []) approvals.set(a.id, a);
    renderQueue();
  }

  // --- delegations ---

  async function loadDelegations() {
    const out = await api("GET", "/v1/agents/delegations");
    const list = out.delegations || [];
    const names = loadNames();
    delegations.replaceChildren(...list.map((d) => {
      const revoke = el("button", { type: "button", dataset: { revoke: d.id }, hidden: d.state !== "active" }, "Revoke");
      revoke.addEventListener("click", async () => {
        revoke.disabled = true;
        await run("revoke-delegation", () => api("DELETE", `/v1/agents/delegations/${d.id}`));
        await loadDelegations();
      });
      const limits = d.limits || {};
      return el("li", { dataset: { delegation: d.id, state: d.state } },
        el("div", null,
          el("strong", null, names[d.agent] ? `${names[d.agent]} ` : "Agent ", el("code", null, d.agent)), " ", el("span", { class: "ops-badge", dataset: { state: d.state } }, d.state),
          el("div", { class: "ops-note" }, `${(d.actions || []).join(", ")} on ${(d.resources || []).map((r) => `${r.type} ${r.id}`).join(", ")}`),
          el("div", { class: "ops-note" }, `per transfer ${limits.transfer_value ?? 0}, a day ${limits.daily_value ?? 0}, approve above ${limits.auto_approve_value ?? 0}, ${limits.commands_per_minute ?? 0} commands a minute, up to ${limits.max_risk || "low"} risk · until ${new Date(d.expires).toLocaleString()}`)),
        el("div", null, revoke),
        activityOf(d.agent, names[d.agent]));
    }));
    delegationsEmpty.hidden = list.length > 0;
  }

  // --- each agent's activity and trust ---

  // activityOf is a delegation's "Activity and trust" disclosure: opened,
  // it reads the agent's audited decisions (GET /v1/audit?actor=ag_...)
  // and draws the agent's trust score as each decision recorded it.
  function activityOf(agent, name) {
    const canvas = el("canvas", { class: "chart", role: "img", dataset: { title: `Trust of ${name || agent}`, trustChart: agent } });
    const chart = new LineChart(canvas);
    const note = el("p", { class: "ops-note", dataset: { activityNote: agent } }, "Loading…");
    const rows = el("ol", { class: "ops-list ops-compact", "aria-label": `What ${name || agent} did, newest first`, dataset: { activity: agent } });
    const refresh = el("button", { type: "button" }, "Refresh");
    const box = el("details", { class: "ops-activity", dataset: { agentActivity: agent } },
      el("summary", null, "Activity and trust"),
      note, canvas,
      el("ul", { class: "legend chips", "aria-hidden": "true" },
        el("li", { class: "chip key score" }, "trust score"), el("li", { class: "chip key threshold" }, `trusted from ${TRUSTED_FROM}`)),
      rows, refresh);
    const load = async () => {
      let page;
      try {
        page = await api("GET", `/v1/audit?actor=${encodeURIComponent(agent)}&limit=${ACTIVITY_LIMIT}`);
      } catch (err) {
        note.textContent = "The agent's activity could not be read: " + explain(err);
        box.dataset.loaded = "error";
        return;
      }
      const events = page.events || [];
      rows.replaceChildren(...events.map((ev) => el("li", { dataset: { action: ev.action, outcome: ev.outcome } },
        el("div", null,
          el("strong", null, ev.action), " ", el("code", null, ev.resource || ""), " ",
          el("span", { class: "ops-badge", dataset: { state: ev.outcome === "allow" ? "active" : "revoked" } }, ev.outcome),
          el("div", { class: "ops-note" }, `${when(ev.time)}${(ev.reasons || []).length ? " · " + ev.reasons.join("; ") : ""}`)))));
      // Oldest first for the chart; only decisions that carry the
      // agent's trust (its Guard's) are points.
      const points = events.map((ev) => ({ at: Date.parse(ev.time), value: Number(ev.signals?.agent?.trust?.score) }))
        .filter((p) => Number.isFinite(p.at) && Number.isFinite(p.value)).reverse();
      const to = Date.now();
      const from = points.length ? Math.min(points[0].at, to - 60000) : to - 600000;
      chart.set({ from, to, envelope: { min: TRUSTED_FROM, max: 1, unit: "", words: `trusted from ${TRUSTED_FROM} to 1` }, range: { lo: 0, hi: 1.05 },
        series: [{ key: "score", color: "#e07b00", points }] });
      const last = events.find((ev) => ev.signals?.agent?.trust);
      note.textContent = events.length
        ? `${events.length} decision${events.length === 1 ? "" : "s"}${page.truncated || page.next ? " (the newest)" : ""}; trust ${last ? `${last.signals.agent.trust.state}, ${Number(last.signals.agent.trust.score).toFixed(2)}` : "not assessed yet"}. The line is the trust score each decision was made with.`
        : "This agent has done nothing yet.";
      box.dataset.loaded = "1";
    };
    box.addEventListener("toggle", () => { if (box.open) load(); });
    box.reload = load;
    refresh.addEventListener("click", load);
    return box;
  }

  // Every change of a waiting action, on any node, arrives here.
  live.on("agent-approval", (m) => {
    if (!m.approval || !m.approval.id) return;
    const known = approvals.get(m.approval.id);
    // A late message never takes a decided action back to pending.
    if (known && FINAL.has(known.state) && !FINAL.has(m.approval.state)) return;
    approvals.set(m.approval.id, m.approval);
    renderQueue();
  });
  live.on("open", () => { loadQueue().catch(() => {}); });
  // An open activity on screen is read again now and then: the agent
  // keeps acting while its owner watches.
  setInterval(() => {
    if (document.hidden) return;
    for (const box of delegations.querySelectorAll("details[data-agent-activity][open]")) {
      if (box.offsetParent !== null && box.reload) box.reload();
    }
  }, ACTIVITY_REFRESH_MS);
  // A pending action past its expiry leaves the queue on screen without
  // waiting for a message: nobody can approve it any more.
  setInterval(() => {
    const now = Date.now();
    const lapsed = [...approvals.values()].some((a) => a.state === "pending" && Date.parse(a.expires) <= now && queue.querySelector(`[data-approval="${a.id}"]`));
    if (lapsed) renderQueue();
  }, 5000);

  instance = {
    async show() {
      await Promise.all([loadQueue(), loadDelegations(), loadResources()]);
      section.dataset.loaded = "1";
    },
  };
}

export async function show() {
  if (instance) await instance.show();
}
