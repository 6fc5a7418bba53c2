// Headset: put a headset on (a real one through WebXR when the browser has
// it, otherwise a simulated person), hand it to someone else, take it off;
// the link, frame counts and enrollment as the realm reports them. The
// stream goes on while the person uses the other views.

import { PERSONAS } from "../motion.js";
import { TrustChart } from "../chart.js";

let refresh = null;

export async function mount(section, ctx) {
  const { el, run, headset, onTrust } = ctx;
  const persona = el("select", { id: "persona", name: "persona" },
    PERSONAS.map((p) => el("option", { value: String(p.id) }, p.label)));
  const transport = el("select", { id: "transport", name: "transport" },
    el("option", { value: "webrtc" }, "WebRTC data channel"),
    el("option", { value: "websocket" }, "WebSocket"));
  const start = el("button", { id: "start", type: "submit", class: "primary" }, "Put the headset on");
  const handover = el("button", { id: "handover", type: "button", disabled: true }, "Hand the headset to someone else");
  const stop = el("button", { id: "stop", type: "button", disabled: true }, "Take it off");
  const enterXR = el("button", { id: "enter-xr", type: "button", hidden: true }, "Enter VR with this headset");
  const wearer = el("strong", { id: "wearer" }, "nobody");
  const link = el("span", { id: "link" }, "closed");
  const sent = el("span", { id: "sent" }, "0");
  const accepted = el("span", { id: "accepted" }, "0");
  const rejected = el("span", { id: "rejected" }, "none");
  const enrollment = el("span", { id: "enrollment", class: "badge" }, "unknown");
  const enrollHelp = el("p", { id: "enroll-help", class: "muted small" });
  const trustOut = el("strong", { id: "headset-trust" }, "?");
  const problem = el("p", { id: "headset-error", class: "error", hidden: true });
  const canvas = el("canvas", { id: "headset-chart", width: 720, height: 180, role: "img", "aria-label": "Match probability and trust score over the last two minutes" });
  const chart = new TrustChart(canvas, { spanMS: 120000 });

  section.append(
    el("div", { class: "page-head" },
      el("h1", null, "Headset"),
      el("p", { class: "muted" }, "The realm checks who wears the headset from how they move. Put it on, then hand it to someone else and watch the trust fall.")),
    el("article", { class: "card" },
      el("form", {
        id: "controls", class: "form",
        onsubmit: (e) => {
          e.preventDefault();
          run("start", async () => {
            await headset.putOn(Number(persona.value), transport.value);
            return { wearer: persona.selectedOptions[0].text, transport: transport.value, link: headset.link };
          });
        },
      },
      el("label", null, "Who puts it on ", persona),
      el("label", null, "Transport ", transport),
      start, handover, stop, enterXR),
      problem),
    el("div", { class: "grid two" },
      el("article", { class: "card" },
        el("h2", null, "Stream"),
        el("dl", { class: "facts" },
          el("dt", null, "Wearer"), el("dd", null, wearer),
          el("dt", null, "Link"), el("dd", null, link),
          el("dt", null, "Frames sent"), el("dd", null, sent),
          el("dt", null, "Accepted by the realm"), el("dd", null, accepted),
          el("dt", null, "Refused"), el("dd", null, rejected))),
      el("article", { class: "card" },
        el("h2", null, "Enrollment"),
        el("p", null, enrollment),
        enrollHelp,
        el("p", null, "Trust: ", trustOut))),
    el("article", { class: "card" },
      el("h2", null, "Match and trust"),
      canvas,
      el("p", { class: "legend muted small" },
        el("span", { class: "key prob" }, "match probability"), " ",
        el("span", { class: "key score" }, "trust score"), " ",
        el("span", { class: "key threshold" }, "trusted at 0.6, step-up below 0.5"))),
  );

  handover.addEventListener("click", () => run("handover", () => {
    headset.handOver();
    return { wearer: PERSONAS.find((p) => p.id === headset.persona).label };
  }));
  stop.addEventListener("click", () => run("stop", () => { headset.takeOff(); return { link: headset.link }; }));
  enterXR.addEventListener("click", () => run("enter-xr", async () => { await headset.enterXR(transport.value); return { link: headset.link }; }));
  if (await headset.xrSupported()) enterXR.hidden = false;

  let enrollingSince = 0;
  refresh = (h) => {
    const on = h.mode !== "off";
    handover.disabled = h.mode !== "simulated";
    stop.disabled = !on;
    start.textContent = on ? "Put it on again" : "Put the headset on";
    wearer.textContent = h.mode === "webxr" ? "you (WebXR)" : on ? PERSONAS.find((p) => p.id === h.persona).label : "nobody";
    if (h.mode === "simulated") persona.value = String(h.persona);
    link.textContent = h.link;
    sent.textContent = String(h.sent);
    accepted.textContent = String(h.accepted);
    const r = Object.entries(h.rejected || {});
    rejected.textContent = r.length ? r.map(([k, v]) => `${k}: ${v}`).join(", ") : "none";
    enrollment.textContent = h.enrollment;
    enrollment.dataset.state = h.enrollment;
    if (h.enrollment === "enrolling") {
      enrollingSince = enrollingSince || Date.now();
      const collected = h.enrollmentProgress === null ? "" : `${Math.round(100 * h.enrollmentProgress)} % collected, `;
      enrollHelp.textContent = `Collecting this wearer's motion for the template: ${collected}${Math.round((Date.now() - enrollingSince) / 1000)} s so far.`;
    } else {
      enrollingSince = 0;
      enrollHelp.textContent = {
        "enrolled": "Every window of motion is scored against the enrolled template.",
        "not-enrolled": "No template: put the headset on within two minutes of a passkey sign-in or step-up to enroll.",
        "unknown": "The realm could not read whether this avatar has a template yet; it reads again, and scores nothing until it knows.",
      }[h.enrollment] || "";
    }
    problem.hidden = !h.lastError;
    problem.textContent = h.lastError ? "The realm says: " + h.lastError : "";
  };
  headset.subscribe(refresh);
  onTrust((t) => {
    trustOut.textContent = `${t.state} (${Number(t.score).toFixed(2)})`;
    trustOut.dataset.state = t.state;
    document.body.dataset.headsetTrust = t.state;
  });
  chart.start();
}

export function show() {}
