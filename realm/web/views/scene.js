// Scene: join a scene over the realm WebSocket, see the other avatars on a
// top-down map from presence and poses, and walk into zones: each entry is
// decided by the scene's policies, and the decision with its reasons is
// shown (from the audit log, where every decision is recorded).

const OUTSIDE = [-2, -2]; // a spot outside every zone of a scene's floor

export async function mount(section, ctx) {
  const { el, api, run, live, me, headset, setStatus } = ctx;
  const self = (await me()).avatar;
  const { scenes } = await api("GET", "/v1/scenes");
  const picker = el("select", { id: "scene-select", name: "scene" }, scenes.map((s) => el("option", { value: s.id }, s.name || s.id)));
  const join = el("button", { id: "scene-join", type: "submit", class: "primary" }, "Join");
  const leave = el("button", { id: "scene-leave", type: "button", disabled: true }, "Leave");
  const membership = el("p", { id: "scene-membership", class: "muted" }, "Not in a scene.");
  const members = el("ul", { id: "scene-members", class: "list compact" });
  const zones = el("div", { id: "zone-buttons", class: "buttons wrap" });
  const result = el("div", { id: "zone-result", class: "decision", "aria-live": "polite" });
  const access = el("tbody", { id: "scene-access" });
  const canvas = el("canvas", { id: "scene-map", width: 900, height: 320, role: "img", "aria-label": "Top-down map of the scene: zones and avatars" });
  const note = el("p", { class: "muted small", id: "zone-note" });

  const st = { scene: null, detail: null, joined: false, zone: "", me: null, others: new Map(), pending: "" };

  section.append(
    el("div", { class: "page-head" },
      el("h1", null, "Scene"),
      el("p", { class: "muted" }, "Join a scene to see who else is in it. Walking into a zone asks the scene's policies first.")),
    el("article", { class: "card" },
      el("form", {
        class: "form",
        onsubmit: (e) => { e.preventDefault(); run("join-scene", () => doJoin(picker.value)); },
      }, el("label", null, "Scene ", picker), join, leave),
      membership),
    el("div", { class: "grid map" },
      el("article", { class: "card" }, el("h2", null, "Floor (seen from above)"), canvas),
      el("article", { class: "card" }, el("h2", null, "Who is here"), members)),
    el("article", { class: "card" },
      el("h2", null, "Zones"),
      zones, note, result),
    el("article", { class: "card" },
      el("div", { class: "card-head" },
        el("h2", null, "What may I do here now?"),
        el("button", { id: "scene-access-check", type: "button", onclick: () => run("scene-access", checkAccess) }, "Ask the policies")),
      el("div", { class: "table-wrap" }, el("table", { class: "table" },
        el("caption", { class: "sr-only" }, "What the scene's policies allow you here now"),
        el("thead", null, el("tr", null, el("th", { scope: "col" }, "Action"), el("th", { scope: "col" }, "Resource"), el("th", { scope: "col" }, "Decision"), el("th", { scope: "col" }, "Why"))),
        access))),
  );

  // --- decisions ---

  // showDecision renders a zone decision, with the audited reasons and
  // policies of the matching audit event when it can be found.
  const showDecision = async (zone, allow, reason) => {
    let ev = null;
    for (let i = 0; i < 10 && !ev; i++) {
      try {
        const { events } = await api("GET", `/v1/audit?actor=${encodeURIComponent(self.id)}&limit=50`);
        ev = events.find((e) => e.action === "EnterZone" && e.resource === `Zone::"${zone}"` && (e.outcome === "allow") === allow);
      } catch { /* the decision itself is shown anyway */ }
      if (!ev) await new Promise((r) => setTimeout(r, 200));
    }
    const reasons = [...new Set([...(reason ? [reason] : []), ...((ev && ev.reasons) || [])])];
    const policies = (ev && ev.policies) || [];
    result.dataset.decision = allow ? "allow" : "deny";
    result.dataset.zone = zone;
    result.replaceChildren(...[
      el("p", null, el("span", { class: "verdict", "data-decision": allow ? "allow" : "deny" }, allow ? "Allowed" : "Denied"), ` EnterZone ${zone}`),
      reasons.length ? el("ul", { class: "reasons" }, reasons.map((r) => el("li", { class: "reason" }, r))) : null,
      policies.length ? el("p", { class: "muted small" }, allow ? "Permitted by " : "Decided by ", policies.join(", ")) : null,
      !reasons.length && !policies.length ? el("p", { class: "reason muted" }, allow ? "a permit matched and no forbid did" : "no policy permitted it") : null,
    ].filter(Boolean));
    setStatus("enter-zone", allow ? { zone, allow, reasons, policies } : Object.assign(new Error(`entering ${zone} was denied`), { problem: { detail: reasons.join("; ") } }), null, true);
  };

  const checkAccess = async () => {
    if (!st.scene) throw new Error("choose a scene first");
    const a = await api("GET", `/v1/scenes/${encodeURIComponent(st.scene)}/access`);
    access.replaceChildren(...a.decisions.map((d) => el("tr", { dataset: { action: d.action, decision: d.allow ? "allow" : "deny" } },
      el("td", null, d.action), el("td", null, d.resource),
      el("td", null, el("span", { class: "verdict", "data-decision": d.allow ? "allow" : "deny" }, d.allow ? "allow" : "deny")),
      el("td", null, d.reason || (d.policies.length ? "permitted by " + d.policies.join(", ") : "")))));
    return { scene: a.scene, decisions: a.decisions.length };
  };

  // --- membership ---

  const doJoin = async (id) => {
    await live.connect();
    if (st.joined) live.send({ type: "leave" });
    st.scene = id;
    st.detail = await api("GET", `/v1/scenes/${encodeURIComponent(id)}`);
    renderZones();
    st.others.clear();
    const answer = await awaitReply(["joined"], () => live.send({ type: "join", scene: id }));
    return { joined: answer.scene, members: answer.members.length };
  };

  // awaitReply sends and waits for one of the message types, or an error.
  const awaitReply = (types, send) => new Promise((resolve, reject) => {
    const offs = [];
    const done = (fn, v) => { offs.forEach((o) => o()); clearTimeout(timer); fn(v); };
    const timer = setTimeout(() => done(reject, new Error("the realm did not answer within 10 s")), 10000);
    for (const t of types) offs.push(live.on(t, (m) => done(resolve, m)));
    offs.push(live.on("error", (m) => done(reject, Object.assign(new Error(m.reason || m.error), { problem: { detail: m.reason || m.error, code: m.code } }))));
    send();
  });

  leave.addEventListener("click", () => run("leave-scene", () => {
    live.send({ type: "leave" });
    st.joined = false;
    st.zone = "";
    st.others.clear();
    render();
    return { left: st.scene };
  }));

  live.on("joined", (m) => {
    st.joined = true;
    st.zone = "";
    for (const o of m.members) st.others.set(o.avatar, { name: o.name, zone: o.zone, pos: null, agentOf: o.kind === "agent" ? o.on_behalf_of : null });
    render();
  });
  live.on("presence", (m) => {
    if (m.avatar === self.id) {
      if (m.event === "zone") {
        st.zone = m.zone;
        if (st.pending && m.zone === st.pending) {
          const z = st.pending;
          st.pending = "";
          showDecision(z, true, "");
        }
      }
      render();
      return;
    }
    if (m.event === "leave") st.others.delete(m.avatar);
    else {
      const o = st.others.get(m.avatar) || { name: m.name, zone: "", pos: null, agentOf: null };
      if (m.name) o.name = m.name;
      // What a member is comes with its join, set by the realm.
      if (m.kind) o.agentOf = m.kind === "agent" ? m.on_behalf_of : null;
      if (m.event === "zone") o.zone = m.zone;
      st.others.set(m.avatar, o);
    }
    render();
  });
  live.on("poses", (m) => {
    for (const p of m.poses) {
      const o = st.others.get(p.avatar);
      if (o) o.pos = p.head.pos;
    }
    draw();
  });
  live.on("error", (m) => {
    if (m.code === "denied" && st.pending) {
      const z = st.pending;
      st.pending = "";
      showDecision(z, false, m.reason || m.error);
    }
  });
  live.on("open", () => {
    // A new connection is in no scene: join again.
    if (st.joined && st.scene) {
      st.joined = false;
      live.send({ type: "join", scene: st.scene });
    }
  });

  // --- zones ---

  const walkTo = (zone) => run("walk", async () => {
    if (!st.joined) throw new Error("join the scene first");
    if (headset.mode !== "off") throw new Error("the headset positions you while it streams: take it off to walk with the buttons");
    let x = OUTSIDE[0], z = OUTSIDE[1];
    if (zone) {
      x = (zone.min[0] + zone.max[0]) / 2;
      z = (zone.min[2] + zone.max[2]) / 2;
    }
    st.me = [x, 1.6, z];
    headset.origin = [x, z];
    st.pending = zone ? zone.id : "";
    result.replaceChildren(el("p", { class: "muted" }, zone ? `Asking to enter ${zone.id}…` : "Stepping out of every zone (needs no decision)."));
    delete result.dataset.decision;
    live.send({ type: "pose", head: { pos: st.me, rot: [0, 0, 0, 1] } });
    draw();
    return { walking: zone ? zone.id : "out of every zone" };
  });

  const renderZones = () => {
    zones.replaceChildren(
      ...st.detail.zones.map((z) => el("button", { type: "button", id: "zone-" + z.id, dataset: { zone: z.id }, onclick: () => walkTo(z) }, "Walk into " + (z.name || z.id))),
      el("button", { type: "button", id: "zone-none", onclick: () => walkTo(null) }, "Step out of every zone"));
  };

  // --- drawing ---

  const render = () => {
    join.textContent = st.joined ? "Join again" : "Join";
    leave.disabled = !st.joined;
    membership.textContent = st.joined ? `In ${st.detail ? st.detail.name || st.scene : st.scene}${st.zone ? ", zone " + st.zone : ", in no zone"}.` : "Not in a scene.";
    membership.dataset.joined = String(st.joined);
    membership.dataset.zone = st.zone;
    note.textContent = headset.mode !== "off" ? "The headset is streaming: your position is the headset's." : "";
    members.replaceChildren(
      el("li", { class: "me" }, el("strong", null, `${self.display_name} (you)`), st.zone ? ` · ${st.zone}` : ""),
      ...[...st.others.entries()].map(([id, o]) => el("li", { dataset: { avatar: id, kind: o.agentOf ? "agent" : "person" } },
        o.name || id.slice(0, 8), o.agentOf ? agentBadge(o.agentOf) : "", o.zone ? ` · ${o.zone}` : "")));
    draw();
  };

  // An agent is never shown as a person: its badge names the person whose
  // authority it acts with, and the label read aloud says so in words.
  const agentBadge = (on) => {
    const via = on.depth > 1 ? `, delegated by agent ${on.via}` : "";
    return el("span", { class: "badge agent-of", role: "img", "aria-label": `AI agent acting for @${on.handle}${via}`, title: `AI agent of @${on.handle} (${on.avatar})${via}` },
      `agent of @${on.handle}`);
  };

  const draw = () => {
    const c = canvas, g = c.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    const cw = c.clientWidth || c.width, ch = c.clientHeight || c.height;
    if (c.width !== Math.round(cw * ratio)) { c.width = Math.round(cw * ratio); c.height = Math.round(ch * ratio); }
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, cw, ch);
    if (!st.detail) return;
    const zs = st.detail.zones;
    const minX = Math.min(0, ...zs.map((z) => z.min[0])) - 1, maxX = Math.max(...zs.map((z) => z.max[0])) + 1;
    const minZ = Math.min(0, ...zs.map((z) => z.min[2])) - 1, maxZ = Math.max(...zs.map((z) => z.max[2])) + 1;
    const s = Math.min(cw / (maxX - minX), ch / (maxZ - minZ));
    const X = (x) => (x - minX) * s, Z = (z) => (z - minZ) * s;
    g.font = "12px system-ui, sans-serif";
    zs.forEach((z, i) => {
      const mine = z.id === st.zone;
      g.fillStyle = mine ? "rgba(47,111,223,0.22)" : `hsla(${(i * 57) % 360},40%,60%,0.14)`;
      g.fillRect(X(z.min[0]), Z(z.min[2]), (z.max[0] - z.min[0]) * s, (z.max[2] - z.min[2]) * s);
      g.strokeStyle = mine ? "#2f6fdf" : "rgba(120,120,120,0.7)";
      g.strokeRect(X(z.min[0]), Z(z.min[2]), (z.max[0] - z.min[0]) * s, (z.max[2] - z.min[2]) * s);
      g.fillStyle = getComputedStyle(c).color;
      g.fillText(z.name || z.id, X(z.min[0]) + 4, Z(z.min[2]) + 14);
    });
    const dot = (pos, color, label) => {
      g.fillStyle = color;
      g.beginPath(); g.arc(X(pos[0]), Z(pos[2]), 6, 0, 2 * Math.PI); g.fill();
      g.fillStyle = getComputedStyle(c).color;
      g.fillText(label, X(pos[0]) + 9, Z(pos[2]) + 4);
    };
    let others = 0;
    for (const o of st.others.values()) {
      if (!o.pos) continue;
      dot(o.pos, o.agentOf ? "#7a4fd0" : "#e07b00", o.agentOf ? `${o.name} (agent of @${o.agentOf.handle})` : o.name || "avatar");
      others++;
    }
    c.dataset.others = String(others);
    const mine = headset.mode !== "off" && headset.lastHead ? headset.lastHead : st.me;
    if (st.joined && mine) dot(mine, "#2f6fdf", "you");
  };

  headset.subscribe(() => { note.textContent = headset.mode !== "off" ? "The headset is streaming: your position is the headset's." : ""; });
  setInterval(() => { if (canvas.offsetParent !== null) draw(); }, 1000);
  render();
}

export function show() {}
