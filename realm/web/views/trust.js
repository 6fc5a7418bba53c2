// Trust: the session's trust score and biometric match probability over
// time, the current state, the factors that produced the score, and the
// exact record the scene's policies see.

import { TrustChart } from "../chart.js";

export function mount(section, ctx) {
  const { el, onTrust, refreshMe } = ctx;
  const state = el("span", { id: "trust-state", class: "pill big", "data-state": "unknown" }, "?");
  const score = el("span", { id: "trust-score", class: "metric" }, "–");
  const probability = el("span", { id: "trust-probability", class: "metric" }, "–");
  const explanation = el("p", { id: "trust-explain" });
  const factors = el("tbody", { id: "trust-factors" });
  const context = el("pre", { id: "trust-context", class: "code" });
  const canvas = el("canvas", { id: "trust-chart", width: 900, height: 260, role: "img", "aria-label": "Trust score and match probability over the last three minutes" });
  const chart = new TrustChart(canvas, { spanMS: 180000 });

  section.append(
    el("div", { class: "page-head" },
      el("h1", null, "Trust"),
      el("p", { class: "muted" }, "How far the realm trusts this session right now, and why. Policies see the record at the bottom.")),
    el("div", { class: "grid three" },
      el("article", { class: "card stat" }, el("h2", null, "State"), state),
      el("article", { class: "card stat" }, el("h2", null, "Score"), score),
      el("article", { class: "card stat" }, el("h2", null, "Match probability"), probability)),
    el("article", { class: "card" },
      el("h2", null, "Over time"),
      canvas,
      el("p", { class: "legend muted small" },
        el("span", { class: "key prob" }, "match probability"), " ",
        el("span", { class: "key score" }, "trust score"), " ",
        el("span", { class: "key threshold" }, "trusted at 0.6, step-up below 0.5"), " · background: the state")),
    el("article", { class: "card" },
      el("h2", null, "Why"),
      explanation,
      el("div", { class: "table-wrap" }, el("table", { class: "table" },
        el("caption", { class: "sr-only" }, "Trust factors"),
        el("thead", null, el("tr", null, el("th", { scope: "col" }, "Factor"), el("th", { scope: "col" }, "Value"), el("th", { scope: "col" }, "Effect"))),
        factors))),
    el("article", { class: "card" }, el("h2", null, "What policies see (context.trust)"), context),
  );

  onTrust((t) => {
    state.textContent = t.state;
    state.dataset.state = t.state;
    score.textContent = Number(t.score).toFixed(2);
    // A reading is only evidence while the stream lives; the realm says
    // so with biometric 0 in what policies see.
    const streaming = !t.context || Number(t.context.biometric) > 0 || (t.probabilityAt || 0) > (t.assessedAt || 0);
    if (!streaming) probability.textContent = "no live stream";
    else if (t.probability !== undefined) probability.textContent = Number(t.probability).toFixed(3);
    if (t.explanation) explanation.textContent = t.explanation;
    if (t.factors) {
      factors.replaceChildren(...t.factors.map((f) => el("tr", { dataset: { factor: f.name } },
        el("th", { scope: "row" }, f.name), el("td", null, Number(f.value).toFixed(2)), el("td", null, f.effect))));
    }
    if (t.context) context.textContent = JSON.stringify(t.context, null, 2);
  });
  chart.start();
  mount.refresh = refreshMe;
}

export async function show() {
  if (mount.refresh) await mount.refresh().catch(() => {});
}
