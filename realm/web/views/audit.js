// Audit: every decision the realm made, allow or deny, with every reason
// and the policies that decided it. The realm filters (action, decision,
// actor, since) and pages (GET /v1/audit: limit, before/next), so the
// viewer reaches past the newest page with "Load older"; the free-text
// search looks through what is loaded. And a check of the audit log's hash
// chains (GET /v1/audit/verify).
//
// The realm decides what the avatar may read: an avatar with an audit role
// (admin or auditor by default) reads every decision; any other only its
// own (the answer's scope is "own"), so "only my decisions" is then forced
// on, with a note saying why. The realm enforces it; the checkbox only
// shows it.

import { BucketChart, bucketsOf, seriesColor } from "../chart.js";

let reload = null;

// BUCKETS is how many bars the decisions chart has across the loaded time.
const BUCKETS = 24;

export async function mount(section, ctx) {
  const { el, api, run, me } = ctx;
  const self = (await me()).avatar;
  const action = el("select", { id: "audit-action", name: "action" }, el("option", { value: "" }, "every action"));
  const outcome = el("select", { id: "audit-outcome", name: "decision" },
    el("option", { value: "" }, "allow and deny"), el("option", { value: "allow" }, "allow"), el("option", { value: "deny" }, "deny"));
  const mine = el("input", { id: "audit-mine", type: "checkbox", name: "mine" });
  const scopeNote = el("p", { id: "audit-scope", class: "muted small", hidden: true },
    "You see only your own decisions: reading every avatar's needs an audit role (by default admin or auditor), which an administrator grants.");
  const since = el("input", { id: "audit-since", type: "datetime-local", name: "since", step: "1" });
  const text = el("input", { id: "audit-search", type: "search", name: "search", placeholder: "resource, reason, policy…" });
  const limit = el("select", { id: "audit-limit", name: "limit" }, ["200", "500", "1000"].map((n) => el("option", { value: n }, `${n} a page`)));
  const refresh = el("button", { id: "audit-refresh", type: "submit", class: "primary" }, "Refresh");
  const verify = el("button", { id: "audit-verify", type: "button" }, "Verify the chain");
  const verdict = el("div", { id: "audit-verify-result", "aria-live": "polite" });
  const summary = el("p", { id: "audit-summary", class: "muted", "aria-live": "polite" });
  const rows = el("tbody", { id: "audit-rows" });
  const more = el("button", { id: "audit-more", type: "button", hidden: true }, "Load older");
  const chartCanvas = el("canvas", { id: "audit-chart", class: "chart", role: "img", dataset: { title: "Decisions over time" } });
  const chartLegend = el("ul", { id: "audit-chart-legend", class: "legend chips" });
  const chart = new BucketChart(chartCanvas, { above: "allowed", below: "denied" });

  section.append(
    el("div", { class: "page-head" },
      el("h1", null, "Audit"),
      el("p", { class: "muted" }, "Every decision of every realm node, newest first. Each node's events form a hash chain that anyone can verify.")),
    el("article", { class: "card" },
      el("form", { class: "form", onsubmit: (e) => { e.preventDefault(); run("audit", load); } },
        el("label", null, "Action ", action),
        el("label", null, "Decision ", outcome),
        el("label", null, "Since ", since),
        el("label", null, "Search ", text),
        el("label", null, "Page ", limit),
        el("label", { class: "check" }, mine, " only my decisions"),
        refresh, verify),
      scopeNote,
      verdict),
    el("article", { class: "card", "aria-labelledby": "audit-chart-title" },
      el("div", { class: "card-head" }, el("h2", { id: "audit-chart-title" }, "Decisions over time")),
      el("p", { class: "muted small" }, "The decisions loaded below, by action: allowed above the line, denied below it (paler)."),
      chartCanvas,
      chartLegend),
    el("article", { class: "card" },
      summary,
      el("div", { class: "table-wrap" },
        el("table", { class: "table audit" },
          el("caption", { class: "sr-only" }, "Audit events"),
          el("thead", null, el("tr", null, ...["Time and node", "Actor", "Action", "Resource", "Decision", "Reasons and policies"].map((h) => el("th", { scope: "col" }, h)))),
          rows)),
      more),
  );

  // events: the pages loaded for the current filters, newest first; next:
  // the realm's cursor for the following, older page. known: every event
  // loaded under the current decision, actor and since filters, whatever
  // the action: it lists the actions to choose from, and shows at once the
  // ones of an action just chosen while the realm is asked.
  let events = [];
  let next = "";
  let truncated = false;
  let known = new Map();
  let knownKey = "";
  const actionsSeen = new Set(); // every action loaded in this visit, to choose from

  const actorName = (id) => (id === self.id ? `you (${self.name})` : id.length > 14 ? id.slice(0, 12) + "…" : id);

  const filters = () => {
    const q = new URLSearchParams({ limit: limit.value });
    if (action.value) q.set("action", action.value);
    if (outcome.value) q.set("decision", outcome.value);
    if (mine.checked) q.set("actor", self.id);
    if (since.value) {
      const t = new Date(since.value);
      if (!Number.isNaN(t.getTime())) q.set("since", t.toISOString());
    }
    return q;
  };
  // sameQuery compares two queries whatever the order of their parameters.
  const canonical = (q) => { const c = new URLSearchParams(q); c.sort(); return c.toString(); };
  const sameQuery = (a, b) => canonical(a) === canonical(b);
  // baseOf names a query's filters other than the action (and paging):
  // known holds events loaded under knownKey, and is emptied when those
  // filters change, so that it never shows an event they exclude.
  const baseOf = (q) => { const b = new URLSearchParams(q); for (const k of ["action", "limit", "before"]) b.delete(k); return canonical(b); };
  knownKey = baseOf(filters());
  const rebase = () => { known = new Map(); knownKey = baseOf(filters()); };

  // remember keeps the events of an answer to q, even one that comes back
  // after the action changed, and lists their actions to choose from.
  const remember = (q, list) => {
    for (const e of list) actionsSeen.add(e.action);
    if (baseOf(q) === knownKey) for (const e of list) known.set(e.id, e);
    const seen = [...actionsSeen].sort();
    const keep = action.value;
    action.replaceChildren(el("option", { value: "" }, "every action"), ...seen.map((a) => el("option", { value: a }, a)));
    if (keep && !seen.includes(keep)) action.append(el("option", { value: keep }, keep));
    action.value = keep;
  };

  const matches = (e) => {
    const q = text.value.trim().toLowerCase();
    if (!q) return true;
    return [e.resource, e.actor, e.action, ...(e.reasons || []), ...(e.policies || [])].some((s) => String(s || "").toLowerCase().includes(q));
  };

  const render = () => {
    const list = events.filter(matches);
    rows.replaceChildren(...list.map((e) => el("tr", { dataset: { action: e.action, outcome: e.outcome, node: e.node, index: String(e.index), actor: e.actor } },
      el("td", { class: "when", dataset: { label: "Time" } }, el("time", { datetime: e.time }, new Date(e.time).toLocaleString()), el("div", { class: "muted small" }, `${e.node} #${e.index}`)),
      el("td", { title: e.actor, dataset: { label: "Actor" } }, actorName(e.actor)),
      el("td", { class: "action", dataset: { label: "Action" } }, e.action),
      el("td", { class: "resource", dataset: { label: "Resource" } }, e.resource),
      el("td", { dataset: { label: "Decision" } }, el("span", { class: "verdict", "data-decision": e.outcome }, e.outcome)),
      el("td", { class: "why", dataset: { label: "Why" } },
        (e.reasons || []).length ? el("ul", { class: "reasons" }, e.reasons.map((r) => el("li", { class: "reason" }, r))) : null,
        (e.policies || []).length ? el("div", { class: "muted small policies" }, "policies: ", e.policies.join(", ")) : null))));
    more.hidden = !next;
    const searched = text.value.trim() ? `${list.length} of the ${events.length} loaded decisions match the search` : `${events.length} decisions`;
    summary.textContent = searched + (next ? "; older ones: Load older." : truncated ? "; older ones are past this node's window of recent decisions (Verify the chain reads them all)." : "; that is all.");
    section.dataset.rows = String(list.length);
    plot(list);
  };

  // plot draws the decisions shown, from the oldest to now, by action and
  // effect, and lists the actions with their colors.
  const plot = (list) => {
    const to = Date.now();
    const oldest = list.reduce((m, e) => Math.min(m, Date.parse(e.time)), to);
    // At least ten minutes, so a fresh realm's first decisions have room.
    const from = Math.min(oldest, to - 10 * 60000) - 1000;
    const series = bucketsOf(list, from, to, BUCKETS, (e) => ({ key: e.action, sign: e.outcome === "deny" ? -1 : 1 }));
    chart.set({ from, to, n: BUCKETS, series });
    const totals = new Map();
    for (const e of list) {
      const t = totals.get(e.action) || { allow: 0, deny: 0 };
      t[e.outcome === "deny" ? "deny" : "allow"]++;
      totals.set(e.action, t);
    }
    chartLegend.replaceChildren(...[...totals].sort(([a], [b]) => (a < b ? -1 : 1)).map(([a, t]) => {
      const li = el("li", { class: "chip key-swatch", dataset: { action: a } }, `${a}: ${t.allow} allowed`, t.deny ? `, ${t.deny} denied` : "");
      // The CSP allows no style attributes; a custom property set here is fine.
      li.style.setProperty("--key", seriesColor(a));
      return li;
    }));
  };

  // applyScope follows the realm's answer: scope "own" means the realm
  // answered with the avatar's own decisions only, whatever was asked, so
  // the query q was in effect narrowed to this actor, and "only my
  // decisions" is forced on (and stays on for this visit).
  const applyScope = (q, page) => {
    if (page.scope !== "own") return;
    q.set("actor", self.id);
    if (!mine.disabled) {
      mine.checked = true;
      mine.disabled = true;
      scopeNote.hidden = false;
      section.dataset.scope = "own";
      rebase();
    }
  };

  // load asks the realm for the newest page under the filters; an answer
  // that comes back after the filters changed is dropped, so a slow answer
  // never shows under filters it was not asked with.
  const load = async () => {
    const q = filters();
    const page = await api("GET", "/v1/audit?" + q);
    applyScope(q, page);
    remember(q, page.events);
    if (!sameQuery(q, filters())) return { stale: true };
    events = page.events;
    next = page.next || "";
    truncated = !!page.truncated;
    render();
    return { events: events.length, more: !!next };
  };

  const loadOlder = async () => {
    const q = filters();
    const before = next;
    if (!before) return { events: events.length, more: false };
    q.set("before", before);
    more.disabled = true;
    try {
      const page = await api("GET", "/v1/audit?" + q);
      applyScope(q, page);
      remember(q, page.events);
      q.delete("before");
      if (!sameQuery(q, filters()) || next !== before) return { stale: true };
      events = events.concat(page.events);
      next = page.next || "";
      truncated = !!page.truncated;
      render();
      return { events: events.length, more: !!next };
    } finally {
      more.disabled = false;
    }
  };

  // Choosing an action shows the known events of it at once, then the
  // realm's answer.
  action.addEventListener("change", () => {
    events = [...known.values()].filter((e) => !action.value || e.action === action.value)
      .sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
    next = "";
    truncated = false;
    render();
    summary.textContent = `${events.length} decisions loaded earlier; asking the realm for the rest…`;
    run("audit", load);
  });
  text.addEventListener("input", render);
  for (const c of [outcome, mine, since]) c.addEventListener("change", () => { rebase(); run("audit", load); });
  limit.addEventListener("change", () => run("audit", load));
  more.addEventListener("click", () => run("audit-older", loadOlder));
  verify.addEventListener("click", () => run("audit-verify", async () => {
    const v = await api("GET", "/v1/audit/verify");
    verdict.dataset.ok = String(v.ok);
    verdict.replaceChildren(
      el("p", null, el("span", { class: "verdict", "data-decision": v.ok ? "allow" : "deny" }, v.ok ? "Chain verified" : "Chain broken")),
      el("ul", { class: "list compact" }, v.chains.map((c) => el("li", { dataset: { node: c.node } },
        `${c.node}: ${c.events} events verified`,
        c.head ? el("code", { class: "small" }, ` head ${c.head.slice(0, 16)}…`) : null,
        c.break ? el("div", { class: "error" }, `first broken link: ${JSON.stringify(c.break)}`) : null))));
    if (!v.ok) throw Object.assign(new Error("the audit chain is broken"), { problem: v });
    return v;
  }));
  reload = load;
  await load();
}

export async function show() {
  if (reload) await reload();
}
