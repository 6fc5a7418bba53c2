// Agents: the delegations this avatar gave its agents (what each grants,
// its limits, revoke), and the actions its agents asked for that wait for
// this avatar's approval. The queue is live: the realm pushes every change
// of a waiting action on the realm WebSocket ("agent-approval"). Approving
// asks for a passkey step-up bound to that one action's digest; a
// transfer's receipt is verified in this page (the SDK's verifyReceipt).
//
// Wire formats: docs/agents.md ("The owner's approval queue").

import { verifyReceipt } from "../vendor/zerorealm-sdk.js";

const FINAL = new Set(["done", "failed", "rejected", "expired", "cancelled"]);

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

  section.append(el("div", { class: "ops-grid" },
    el("section", { class: "ops-card", "aria-labelledby": "agent-approvals-title" },
      el("h2", { id: "agent-approvals-title" }, "Waiting for your approval"),
      el("p", { class: "ops-note" }, "Your agents ask here for what their delegation does not let them do alone: a transfer above its auto-approval value, a high-risk command. Approving asks for your passkey, bound to that one action."),
      queueEmpty, queue,
      historyTitle, history),
    el("section", { class: "ops-card", "aria-labelledby": "agent-delegations-title" },
      el("h2", { id: "agent-delegations-title" }, "Your delegations"),
      delegationsEmpty, delegations)));

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
          el("strong", null, "Agent ", el("code", null, d.agent)), " ", el("span", { class: "ops-badge", dataset: { state: d.state } }, d.state),
          el("div", { class: "ops-note" }, `${(d.actions || []).join(", ")} on ${(d.resources || []).map((r) => `${r.type} ${r.id}`).join(", ")}`),
          el("div", { class: "ops-note" }, `per transfer ${limits.transfer_value ?? 0}, a day ${limits.daily_value ?? 0}, approve above ${limits.auto_approve_value ?? 0}, ${limits.commands_per_minute ?? 0} commands a minute, up to ${limits.max_risk || "low"} risk · until ${new Date(d.expires).toLocaleString()}`)),
        el("div", null, revoke));
    }));
    delegationsEmpty.hidden = list.length > 0;
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
  // A pending action past its expiry leaves the queue on screen without
  // waiting for a message: nobody can approve it any more.
  setInterval(() => {
    const now = Date.now();
    const lapsed = [...approvals.values()].some((a) => a.state === "pending" && Date.parse(a.expires) <= now && queue.querySelector(`[data-approval="${a.id}"]`));
    if (lapsed) renderQueue();
  }, 5000);

  instance = {
    async show() {
      await Promise.all([loadQueue(), loadDelegations()]);
      section.dataset.loaded = "1";
    },
  };
}

export async function show() {
  if (instance) await instance.show();
}
