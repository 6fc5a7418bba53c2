// Twin console: the digital twins of the scenes, their actuators with the
// envelope each command must stay in (unit, range, rate, risk, zone) and
// their live state; sending a command and seeing the realm's decision with
// its reasons and the gateway's signed acknowledgement; and the queue of
// critical commands waiting for a second operator.
//
// Wire formats: docs/twins.md, realm/twins_api.go, realm/twins_feed.go.
// High and critical actuators need a passkey step-up bound to the exact
// command hash (POST .../commands/digest names it) before the command is
// sent with the same Idempotency-Key; an approver steps up for the same
// hash with their own passkey.
//
// The zone a command is made from is not the console's to say: the realm
// decides it with the zone its presence admitted the avatar into (walk
// there in the Scene view, or with the headset). The view shows where the
// realm sees you (GET /v1/scenes/{id}/me), refreshed on your own presence
// events and every few seconds.

const RISK_HELP = {
  low: "Low risk: the scene's policy decides.",
  medium: "Medium risk: the scene's policy decides.",
  high: "High risk: you confirm this exact command with your passkey first.",
  critical: "Critical: you confirm with your passkey, then a second operator must approve.",
};

const fmtNum = (v, unit) => (v === undefined || v === null ? "—" : `${Number(v).toLocaleString(undefined, { maximumFractionDigits: 3 })}${unit ? " " + unit : ""}`);
const fmtTime = (s) => (s ? new Date(s).toLocaleTimeString() : "");
const shortHash = (h) => (h && h.length > 18 ? `${h.slice(0, 10)}…${h.slice(-6)}` : h || "");

import { LineChart } from "../chart.js";

// HISTORY_MS is how much of an actuator's telemetry the chart shows, and
// HISTORY_MAX how many readings it keeps per actuator.
const HISTORY_MS = 5 * 60000;
const HISTORY_MAX = 600;

// instance is the mounted view; the shell mounts it again after the next
// sign-in, and the old one's feed must stop then.
let instance = null;

export function mount(section, ctx) {
  const { el, api, stepUp, setStatus, me, idempotencyKey, live, twinFeed } = ctx;
  if (instance) instance.stop();
  const state = { twins: [], feed: null, busy: false, standing: null, standingTimer: 0, offPresence: null };

  // --- controls ---
  const twinSelect = el("select", { id: "twin-select", name: "twin" });
  const actuatorSelect = el("select", { id: "actuator-select", name: "actuator" });
  const envelope = el("dl", { id: "twin-envelope", class: "ops-envelope", "aria-live": "polite" });
  const gauge = el("div", { class: "ops-gauge", role: "meter", "aria-label": "Actuator position in its range" },
    el("div", { class: "ops-gauge-value" }), el("div", { class: "ops-gauge-target" }));
  const opSelect = el("select", { id: "command-op", name: "op" },
    el("option", { value: "set" }, "Set to a value"), el("option", { value: "stop" }, "Stop"));
  const valueInput = el("input", { id: "command-value", name: "value", type: "number", step: "any", required: true, inputmode: "decimal" });
  const valueUnit = el("span", { class: "ops-unit", "aria-hidden": "true" });
  const reasonInput = el("input", { id: "command-reason", name: "reason", maxlength: "200", placeholder: "why (kept in the audit log)" });
  // Read-only: where the realm sees you, which is the zone the command is
  // decided with.
  const zoneShown = el("output", { id: "command-zone", class: "ops-zone", "aria-live": "polite", dataset: { zone: "", present: "false" } }, "…");
  const riskNote = el("p", { id: "command-risk", class: "ops-note" });
  const sendButton = el("button", { id: "command-send", type: "submit", class: "primary" }, "Send command");
  const result = el("div", { id: "command-result", class: "ops-result", role: "status", "aria-live": "polite", hidden: true });
  const approvals = el("ul", { id: "approvals", class: "ops-list", "aria-label": "Commands waiting for approval" });
  const feedState = el("span", { id: "twin-feed-state", class: "ops-badge", dataset: { state: "connecting" } }, "connecting");
  const feedLog = el("ol", { id: "twin-feed", class: "ops-feed", "aria-label": "Live twin events" });
  // Telemetry: every state report of the selected actuator since the view
  // opened (the twin feed's state messages), its target, in its envelope.
  const history = new Map(); // "twin/actuator" -> [{at, value, target}]
  const telemetryCanvas = el("canvas", { id: "twin-telemetry", class: "chart", role: "img", dataset: { title: "Telemetry" } });
  const telemetry = new LineChart(telemetryCanvas);
  const telemetryNote = el("p", { id: "twin-telemetry-note", class: "ops-sub" });
  const remember = (twinID, actuatorID, st) => {
    if (!st || st.value === undefined) return;
    const key = twinID + "/" + actuatorID;
    const list = history.get(key) || [];
    const at = st.at ? Date.parse(st.at) : Date.now();
    if (list.length && list[list.length - 1].at >= at && list[list.length - 1].value === st.value) return;
    list.push({ at: Number.isFinite(at) ? at : Date.now(), value: Number(st.value), target: Number(st.target ?? st.value) });
    if (list.length > HISTORY_MAX) list.splice(0, list.length - HISTORY_MAX);
    history.set(key, list);
  };

  const form = el("form", { class: "ops-form", "aria-labelledby": "command-title", onsubmit: (e) => { e.preventDefault(); send(); } },
    el("h2", { id: "command-title" }, "Send a command"),
    el("label", null, "Operation", opSelect),
    el("label", { id: "command-value-label" }, "Value", el("span", { class: "ops-with-unit" }, valueInput, valueUnit)),
    el("label", null, "Reason", reasonInput),
    el("p", { class: "ops-row" }, el("span", null, "The realm sees you"), " ", zoneShown),
    riskNote,
    el("div", { class: "ops-actions" }, sendButton));

  section.append(
    el("header", { class: "ops-head" },
      el("div", null, el("h1", null, "Twin console"),
        el("p", { class: "ops-sub" }, "Every command is decided by the scene's policy, signed by the realm and verified again by the gateway beside the machine.")),
      el("div", { class: "ops-head-side" }, "Live feed ", feedState)),
    el("div", { class: "ops-grid ops-grid-twins" },
      el("section", { class: "ops-card", "aria-labelledby": "twin-title" },
        el("h2", { id: "twin-title" }, "Machine"),
        el("div", { class: "ops-row" },
          el("label", null, "Twin", twinSelect),
          el("label", null, "Actuator", actuatorSelect)),
        envelope, gauge,
        el("h3", { class: "ops-telemetry-title" }, "Telemetry"),
        telemetryNote, telemetryCanvas,
        el("ul", { class: "legend chips", "aria-hidden": "true" },
          el("li", { class: "chip key prob" }, "value"), el("li", { class: "chip key score dashed" }, "target"), el("li", { class: "chip key threshold" }, "envelope (allowed range)"))),
      el("section", { class: "ops-card" }, form, result),
      el("section", { class: "ops-card", "aria-labelledby": "approvals-title" },
        el("h2", { id: "approvals-title" }, "Waiting for approval"),
        el("p", { class: "ops-sub" }, "Critical commands run only when a second operator approves them with their own passkey."),
        approvals),
      el("section", { class: "ops-card", "aria-labelledby": "feed-title" },
        el("h2", { id: "feed-title" }, "Live events"), feedLog)));

  // --- model ---
  const twin = () => state.twins.find((t) => t.id === twinSelect.value);
  const actuator = () => twin()?.actuators.find((a) => a.id === actuatorSelect.value);

  // fillTwins lists the twins again, keeping the operator's choices; a
  // list that arrives again (the feed's first message, a reconnect) leaves
  // what they typed alone.
  function fillTwins() {
    for (const t of state.twins) for (const a of t.actuators) remember(t.id, a.id, a.state);
    const keep = twinSelect.value;
    twinSelect.replaceChildren(...state.twins.map((t) => el("option", { value: t.id }, `${t.name || t.id} (${t.id}) · ${t.zone}`)));
    const kept = state.twins.some((t) => t.id === keep);
    if (kept) twinSelect.value = keep;
    fillActuators(!kept);
  }

  function fillActuators(reset = true) {
    const t = twin();
    const keep = actuatorSelect.value;
    actuatorSelect.replaceChildren(...(t ? t.actuators : []).map((a) => el("option", { value: a.id }, `${a.name || a.id} (${a.id}) · ${a.risk}`)));
    const kept = !!t && t.actuators.some((a) => a.id === keep);
    if (kept) actuatorSelect.value = keep;
    refreshStanding();
    showActuator(reset || !kept);
  }

  // refreshStanding asks the realm where it sees the avatar in the
  // selected twin's scene, and shows it beside the machine's zone.
  async function refreshStanding() {
    const t = twin();
    if (!t) return;
    let st;
    try {
      st = await api("GET", `/v1/scenes/${encodeURIComponent(t.scene)}/me`);
    } catch {
      return; // the last known answer stays; the decision is the realm's anyway
    }
    if (twin() !== t) return;
    showStanding(st, t);
  }

  function showStanding(st, t) {
    state.standing = st;
    zoneShown.dataset.zone = st.zone;
    zoneShown.dataset.present = String(st.present);
    const here = st.zone && (st.zone === t.zone || st.zone === "control-room");
    zoneShown.dataset.fits = String(!!here);
    zoneShown.textContent = !st.present ? `nowhere in ${t.scene}: join it in the Scene view`
      : st.zone ? `in zone ${st.zone}${st.zone === t.zone ? " (the machine's zone)" : ""}`
      : `in ${t.scene}, in no zone`;
    zoneShown.title = st.where;
  }

  function showActuator(resetValue) {
    const t = twin(), a = actuator();
    if (!t || !a) {
      envelope.replaceChildren(el("dt", null, "No twins"), el("dd", null, "This realm's scenes declare no digital twins."));
      return;
    }
    const s = a.state;
    const row = (k, ...v) => [el("dt", null, k), el("dd", null, ...v)];
    envelope.replaceChildren(
      ...row("Range", `${fmtNum(a.min)} to ${fmtNum(a.max, a.unit)}`),
      ...row("Max rate", fmtNum(a.max_rate, `${a.unit}/s`)),
      ...row("Risk", el("span", { class: "ops-risk", dataset: { risk: a.risk } }, a.risk)),
      ...row("Zone", t.zone),
      ...row("State", s ? `${fmtNum(s.value, a.unit)}${s.moving ? ` → ${fmtNum(s.target, a.unit)} (moving)` : ""}` : "no report yet",
        s ? el("span", { class: "ops-sub" }, ` at ${fmtTime(s.at)}`) : ""),
      ...row("Gateway key", el("code", { title: t.gateway || "" }, t.gateway ? shortHash(t.gateway) : "none enrolled")));
    const span = a.max - a.min || 1;
    const pct = (v) => `${Math.max(0, Math.min(100, ((v - a.min) / span) * 100))}%`;
    gauge.firstChild.style.width = s ? pct(s.value) : "0%";
    gauge.lastChild.style.left = s ? pct(s.target) : "0%";
    gauge.setAttribute("aria-valuemin", String(a.min));
    gauge.setAttribute("aria-valuemax", String(a.max));
    gauge.setAttribute("aria-valuenow", String(s ? s.value : a.min));
    gauge.setAttribute("aria-valuetext", s ? fmtNum(s.value, a.unit) : "unknown");
    valueInput.min = String(a.min);
    valueInput.max = String(a.max);
    valueUnit.textContent = a.unit;
    if (resetValue) valueInput.value = String(s ? s.value : a.min);
    riskNote.dataset.risk = a.risk;
    riskNote.textContent = RISK_HELP[a.risk] || "";
    sendButton.textContent = a.risk === "high" || a.risk === "critical" ? "Confirm with passkey and send" : "Send command";
    drawTelemetry();
  }

  function drawTelemetry() {
    const t = twin(), a = actuator();
    if (!t || !a) return;
    remember(t.id, a.id, a.state);
    const points = history.get(t.id + "/" + a.id) || [];
    const to = Date.now();
    const from = Math.max(to - HISTORY_MS, Math.min(points.length ? points[0].at : to, to - 60000));
    telemetry.set({
      from, to, envelope: { min: a.min, max: a.max, unit: a.unit },
      series: [
        { key: "value", color: "#2f6fdf", points: points.map((p) => ({ at: p.at, value: p.value })) },
        { key: "target", color: "#e07b00", dashed: true, points: points.map((p) => ({ at: p.at, value: p.target })) },
      ],
    });
    telemetryNote.textContent = points.length
      ? `${a.name || a.id}: ${points.length} report${points.length === 1 ? "" : "s"} since this page opened, in ${a.unit}; the band is the range ${fmtNum(a.min)} to ${fmtNum(a.max, a.unit)} every command must stay in.`
      : `${a.name || a.id}: no report yet.`;
  }

  function syncOp() {
    const stop = opSelect.value === "stop";
    valueInput.disabled = stop;
    valueInput.required = !stop;
    document.getElementById("command-value-label")?.toggleAttribute("data-disabled", stop);
  }

  twinSelect.addEventListener("change", () => fillActuators(true));
  actuatorSelect.addEventListener("change", () => showActuator(true));
  opSelect.addEventListener("change", syncOp);
  syncOp();

  // --- command ---
  function showResult({ decision, status, reasons, hash, detail }) {
    result.hidden = false;
    result.dataset.decision = decision;
    result.dataset.status = status;
    result.replaceChildren(
      el("div", { class: "ops-verdict" },
        el("span", { class: "ops-decision", dataset: { decision } }, decision === "allow" ? "Allowed" : "Denied"),
        el("span", { class: "ops-badge", dataset: { state: status } }, status.replace(/_/g, " "))),
      el("ul", { class: "ops-reasons", "aria-label": "Reasons" }, ...reasons.map((r) => el("li", { class: "reason" }, r))),
      hash ? el("p", { class: "ops-sub" }, "Command ", el("code", { title: hash }, shortHash(hash))) : "",
      detail || "");
  }

  function answerReasons(ans) {
    const reasons = [];
    const d = ans.decision;
    if (d) reasons.push(d.reason || (d.policies.length ? `permitted by ${d.policies.join(", ")}` : "permitted"));
    if (ans.status === "pending_approval") {
      const exp = ans.approval ? ` (until ${fmtTime(ans.approval.expires)})` : "";
      reasons.push(`waiting for a second operator to approve it with their passkey${exp}`);
    }
    if (ans.ack) {
      const k = ans.ack;
      reasons.push(`gateway ${k.result}${k.reason ? ": " + k.reason : ""}${k.detail ? " (" + k.detail + ")" : ""}`);
      reasons.push(`actuator at ${fmtNum(k.value, ans.command.unit)}, target ${fmtNum(k.target, ans.command.unit)}`);
    }
    return reasons;
  }

  function ackDetail(ans) {
    if (!ans.ack && !ans.grant) return "";
    return el("details", { class: "ops-signed" },
      el("summary", null, "Signed grant and acknowledgement"),
      ans.grant ? el("p", null, "Grant signed by the realm key ", el("code", null, ans.grant.signer)) : "",
      ans.ack ? el("p", null, "Acknowledged by the gateway key ", el("code", null, ans.ack.signer)) : "",
      el("pre", null, JSON.stringify({ grant: ans.grant, ack: ans.ack }, null, 2)));
  }

  function showAnswer(ans) {
    const allow = !!ans.decision?.allow;
    showResult({ decision: allow ? "allow" : "deny", status: ans.status || "unknown", reasons: answerReasons(ans), hash: ans.command?.hash, detail: ackDetail(ans) });
  }

  function showRefusal(err, hash) {
    // Refusals are problem+json whose detail starts with the stable reason
    // ("policy: ...", "out_of_range: ...", the step-up demand).
    const detail = err.problem?.detail || err.message;
    const reasons = detail.startsWith("policy: ") ? [detail.slice(8)] : [detail];
    showResult({ decision: "deny", status: err.status === 403 ? "refused" : "error", reasons, hash });
  }

  async function send() {
    const t = twin(), a = actuator();
    if (!t || !a || state.busy) return;
    const body = { op: opSelect.value };
    if (body.op === "set") {
      const v = Number(valueInput.value);
      if (valueInput.value.trim() === "" || !Number.isFinite(v)) {
        showResult({ decision: "deny", status: "invalid", reasons: ["enter a number for the value"] });
        valueInput.focus();
        return;
      }
      body.value = v;
    }
    if (reasonInput.value.trim()) body.reason = reasonInput.value.trim();
    const path = `/v1/twins/${encodeURIComponent(t.id)}/actuators/${encodeURIComponent(a.id)}/commands`;
    // One key for the digest, the step-up and the command: the key is part
    // of the command, so of its hash.
    const key = "console-" + idempotencyKey();
    const headers = { "Idempotency-Key": key };
    state.busy = true;
    sendButton.disabled = true;
    let hash = "";
    try {
      if (a.risk === "high" || a.risk === "critical") {
        const dg = await api("POST", path + "/digest", body, headers);
        hash = dg.hash;
        if (dg.needs_step_up) {
          showResult({ decision: "pending", status: "confirm", reasons: [`confirm command ${shortHash(hash)} with your passkey`], hash });
          await stepUp(hash);
        }
      }
      const ans = await api("POST", path, body, headers);
      showAnswer(ans);
      refreshStanding();
      setStatus("command", ans, null, true);
      if (ans.status === "pending_approval") loadApprovals();
    } catch (err) {
      showRefusal(err, hash);
      setStatus("command", err, null, true);
      refreshStanding();
    } finally {
      state.busy = false;
      sendButton.disabled = false;
    }
  }

  // --- approvals ---
  async function decideApproval(entry, approve, button) {
    const id = entry.approval.id;
    button.disabled = true;
    try {
      if (approve) await stepUp(entry.command.hash);
      const ans = await api("POST", `/v1/approvals/${encodeURIComponent(id)}/${approve ? "approve" : "reject"}`);
      setStatus(approve ? "approve" : "reject", ans, null, true);
      if (ans.answer) showAnswer(ans.answer);
    } catch (err) {
      setStatus(approve ? "approve" : "reject", err, null, true);
      showRefusal(err, entry.command.hash);
    }
    await loadApprovals();
  }

  async function loadApprovals() {
    let list;
    try {
      list = (await api("GET", "/v1/approvals")).approvals || [];
    } catch (err) {
      approvals.replaceChildren(el("li", { class: "ops-error" }, "approvals: " + err.message));
      return;
    }
    const mine = (await me()).avatar.id;
    approvals.dataset.count = String(list.length);
    if (!list.length) {
      approvals.replaceChildren(el("li", { class: "ops-empty" }, "Nothing is waiting."));
      return;
    }
    approvals.replaceChildren(...list.map((entry) => {
      const c = entry.command, own = entry.approval.requester === mine;
      const li = el("li", { class: "ops-approval", dataset: { id: entry.approval.id, own: String(own) } },
        el("div", null,
          el("strong", null, `${c.op === "stop" ? "Stop" : "Set"} ${c.twin}/${c.actuator}${c.op === "set" ? " to " + fmtNum(c.value, c.unit) : ""}`),
          el("div", { class: "ops-sub" }, `${own ? "requested by you" : "requested by " + entry.approval.requester}`,
            c.reason ? ` · “${c.reason}”` : "", c.zone ? ` · from ${c.zone}` : "", ` · expires ${fmtTime(entry.approval.expires)}`),
          el("code", { class: "ops-sub", title: c.hash }, shortHash(c.hash))));
      const approve = el("button", { type: "button", class: "primary approve", disabled: own,
        title: own ? "A second operator must approve your own command" : "Approve with your passkey",
        "aria-label": `Approve ${c.twin}/${c.actuator} with your passkey` }, "Approve");
      const reject = el("button", { type: "button", class: "reject", "aria-label": `Reject ${c.twin}/${c.actuator}` }, "Reject");
      approve.addEventListener("click", () => decideApproval(entry, true, approve));
      reject.addEventListener("click", () => decideApproval(entry, false, reject));
      li.append(el("div", { class: "ops-actions" }, approve, reject));
      return li;
    }));
  }

  // --- live feed ---
  function logEvent(text, kind) {
    feedLog.prepend(el("li", { dataset: { kind } }, el("time", null, new Date().toLocaleTimeString()), " ", text));
    while (feedLog.children.length > 30) feedLog.lastChild.remove();
  }

  function onFeed(m) {
    switch (m.type) {
    case "twins":
      state.twins = m.twins || [];
      fillTwins();
      break;
    case "state": {
      const t = state.twins.find((x) => x.id === m.twin);
      const a = t?.actuators.find((x) => x.id === m.actuator);
      if (!a) break;
      if (a.state && m.state.seq && a.state.seq > m.state.seq) break; // an older report
      a.state = m.state;
      remember(t.id, a.id, m.state);
      if (t === twin() && a === actuator()) showActuator(false);
      break;
    }
    case "outcome": {
      const o = m.outcome;
      logEvent(`${o.command.twin}/${o.command.actuator}: ${o.command.op} ${o.command.op === "set" ? fmtNum(o.command.value, o.command.unit) : ""} → ${o.status}`, o.status);
      break;
    }
    case "approval": {
      const c = m.approval.command;
      logEvent(`${c.twin}/${c.actuator}: waiting for approval`, "approval");
      loadApprovals();
      break;
    }
    }
  }

  // The feed is the SDK's TwinFeed: it reconnects with back-off until
  // the view stops it, and stops on its own when the session ends (4401).
  function connectFeed() {
    const feed = twinFeed();
    state.feed = feed;
    feed.on("open", () => {
      feedState.dataset.state = "live";
      feedState.textContent = "live";
    });
    for (const type of ["twins", "state", "outcome", "approval"]) {
      feed.on(type, (m) => {
        try {
          onFeed(m);
        } catch (err) {
          console.error("twin feed", err);
        }
      });
    }
    feed.on("disconnect", () => {
      feedState.dataset.state = "offline";
      feedState.textContent = "reconnecting";
    });
    feed.on("closed", () => {
      if (state.feed !== feed) return;
      state.feed = null;
      feedState.dataset.state = "offline";
      feedState.textContent = "offline";
    });
    feed.connect().catch(() => {});
  }

  // The feed's first message lists every twin; reading them over HTTP
  // too means the view works before (or without) the WebSocket.
  const ready = api("GET", "/v1/twins").then((ans) => {
    if (!state.twins.length) {
      state.twins = ans.twins || [];
      fillTwins();
    }
  }).catch((err) => setStatus("twins", err));
  connectFeed();
  loadApprovals();
  // Your own zone changes come over the realm WebSocket; the poll covers
  // a connection of yours elsewhere (a headset, another node).
  me().then(({ avatar }) => {
    state.offPresence = live.on("presence", (m) => { if (m.avatar === avatar.id) refreshStanding(); });
  }).catch(() => {});
  state.standingTimer = setInterval(() => {
    if (zoneShown.offsetParent === null) return;
    refreshStanding();
    drawTelemetry(); // the time axis moves on between reports
  }, 3000);
  instance = {
    async show() {
      await ready;
      await Promise.all([loadApprovals(), refreshStanding()]);
      if (!state.feed) connectFeed();
    },
    stop() {
      if (state.feed) state.feed.close();
      state.feed = null;
      clearInterval(state.standingTimer);
      if (state.offPresence) state.offPresence();
    },
  };
  return ready;
}

// show refreshes the approvals queue and the feed each time the view
// becomes visible.
export function show() {
  return instance ? instance.show() : undefined;
}
