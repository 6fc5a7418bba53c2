// Account: who is signed in and with which roles, the avatar's passkeys
// (add, delete with a step-up bound to the deletion), its sessions (end
// one, sign out, sign out everywhere), its biometric template, and a
// step-up optionally bound to an action digest.

import { el, refreshMe as reloadMe } from "../api.js";

let rerender = null;

const fmtTime = (s) => (!s || s.startsWith("0001-") ? "never" : new Date(s).toLocaleString());

// when is a time as people say it ("3 minutes ago"), with the exact time
// on hover and for assistive tools.
function when(s) {
  if (!s || s.startsWith("0001-")) return "never";
  const t = new Date(s);
  const ago = (Date.now() - t.getTime()) / 1000;
  const rel = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const words = Math.abs(ago) < 45 ? "just now"
    : Math.abs(ago) < 3600 ? rel.format(-Math.round(ago / 60), "minute")
    : Math.abs(ago) < 86400 ? rel.format(-Math.round(ago / 3600), "hour")
    : rel.format(-Math.round(ago / 86400), "day");
  return el("time", { datetime: t.toISOString(), title: t.toLocaleString() }, words);
}

// authenticatorName names a passkey by its authenticator: the realm
// resolves its AAGUID in the community list it ships; one the list does
// not know is named by the AAGUID's first 8 hex digits.
function authenticatorName(p) {
  if (p.authenticator) return p.authenticator;
  const id = (p.aaguid || "").replace(/^0+$/, "");
  return id ? `Unknown authenticator (${p.aaguid.slice(0, 8)})` : "Unknown authenticator (no AAGUID)";
}

// clientName is a session's browser and system, as the realm read them
// from its user agent.
function clientName(s) {
  if (s.browser && s.os) return `${s.browser} on ${s.os}`;
  return s.browser || s.os || "Unknown browser";
}


export function mount(section, ctx) {
  const { api, run, me, refreshMe, stepUp, register } = ctx;
  const nameOut = el("span", { id: "me-name" });
  const roles = el("ul", { id: "roles", class: "chips", "aria-label": "Roles" });
  const passkeys = el("ul", { id: "passkeys", class: "list" });
  const sessions = el("ul", { id: "sessions", class: "list" });
  const template = el("p", { id: "template", class: "muted" }, "…");
  const digest = el("input", { id: "digest", name: "digest", pattern: "(0x[0-9a-fA-F]{64})?", placeholder: "0x… (optional)", "aria-describedby": "digest-help" });

  let render = async () => {
    const m = await me();
    nameOut.textContent = `${m.avatar.display_name} (@${m.avatar.name})`;
    roles.replaceChildren(...(m.avatar.roles.length ? m.avatar.roles : ["none"]).map((r) => el("li", { class: "chip", dataset: { role: r } }, r)));
    passkeys.replaceChildren(...m.avatar.passkeys.map((p) => {
      const who = authenticatorName(p);
      return el("li", { dataset: { id: p.id, aaguid: p.aaguid || "", known: String(!!p.authenticator) } },
        el("div", null,
          el("strong", { class: "passkey-name" }, who),
          p.name ? el("span", { class: "muted" }, ` “${p.name}”`) : null,
          el("div", { class: "muted small" },
            [p.synced ? "synced passkey" : "device-bound passkey", p.attested ? "attested" : null, p.cloned ? "CLONED: signature counter went backwards" : null].filter(Boolean).join(" · ")),
          el("div", { class: "muted small" },
            "created ", when(p.created), " · last used ", when(p.last_used), ` · device assurance ${Number(p.device_assurance).toFixed(2)}`)),
        el("button", {
          type: "button", class: "danger", "aria-label": `Delete passkey ${who} (${p.id.slice(0, 8)})`,
          disabled: m.avatar.passkeys.length < 2,
          title: m.avatar.passkeys.length < 2 ? "The last passkey cannot be deleted" : "Delete after confirming with a passkey",
          onclick: (e) => run("delete-passkey", async () => {
            await stepUp(p.delete_action_digest);
            await api("DELETE", `/v1/avatars/me/passkeys/${encodeURIComponent(p.id)}`);
            await refreshMe();
            await render();
            return { deleted: p.id };
          }, e.currentTarget),
        }, "Delete"));
    }));
    try {
      const list = await api("GET", "/v1/sessions");
      sessions.replaceChildren(...list.sessions.map((s) => el("li", { dataset: { id: s.id, current: String(!!s.current) } },
        el("div", null,
          el("strong", { class: "session-client" }, clientName(s)),
          s.current ? el("span", { class: "chip current" }, "this device") : null,
          s.revoked ? el("span", { class: "muted" }, " (ended)") : null,
          el("div", { class: "muted small", title: s.user_agent || "" },
            "signed in ", when(s.created), " · last seen ", when(s.last_seen), ` · expires ${fmtTime(s.expires)} · node ${s.node}`)),
        s.current || s.revoked ? null : el("button", {
          type: "button", "aria-label": `End the session of ${clientName(s)} (${s.id.slice(0, 8)})`,
          onclick: (e) => run("end-session", async () => { await api("DELETE", "/v1/sessions/" + encodeURIComponent(s.id)); await render(); return { ended: s.id }; }, e.currentTarget),
        }, "End"))));
    } catch (err) {
      sessions.replaceChildren(el("li", { class: "error" }, "sessions: " + err.message));
    }
    try {
      const t = await api("GET", "/v1/avatars/me/template");
      template.textContent = t.enrolled
        ? "Your motion template is enrolled: every window of headset motion is scored against it."
        : `No motion template yet${t.enrollment ? " (" + t.enrollment + ")" : ""}: put the headset on within two minutes of a passkey sign-in or step-up to enroll.`;
      template.dataset.enrolled = String(!!t.enrolled);
    } catch (err) {
      template.textContent = "template: " + err.message;
    }
  };

  // --- administrators: every avatar's roles ---
  const people = el("tbody", { id: "avatars" });
  const morePeople = el("button", { id: "avatars-more", type: "button", hidden: true }, "More avatars");
  // Listing avatars is an audited administrator action: it happens when
  // asked for, not on every visit.
  const listPeople = el("button", { id: "avatars-load", type: "button" }, "List avatars");
  const admin = el("article", { class: "card", id: "avatars-card", hidden: true },
    el("div", { class: "card-head" }, el("h2", null, "Avatars and roles ", el("span", { class: "chip" }, "admin")), listPeople),
    el("p", { class: "muted small" }, "Give people the roles the scenes' policies ask for. Each change is confirmed with your passkey, bound to exactly that change, and audited."),
    el("div", { class: "table-wrap" }, el("table", { class: "table" },
      el("thead", null, el("tr", null, ...["Avatar", "Handle", "Roles"].map((h) => el("th", { scope: "col" }, h)))),
      people)),
    morePeople);
  let after = "";

  const personRow = (a) => {
    const input = el("input", { id: "roles-" + a.name, name: "roles-" + a.name, value: a.roles.join(" "), "aria-label": `Roles of ${a.display_name}, separated by spaces`, spellcheck: "false" });
    const save = el("button", { type: "submit", class: "primary", id: "roles-save-" + a.name }, "Save");
    const row = el("tr", { dataset: { avatar: a.id, name: a.name, roles: a.roles.join(" ") } },
      el("td", null, a.display_name), el("td", null, "@" + a.name),
      el("td", null, el("form", {
        class: "form inline",
        onsubmit: (e) => {
          e.preventDefault();
          run("change-roles", async () => {
            const roles = input.value.split(/[\s,]+/).filter(Boolean);
            const path = `/v1/avatars/${encodeURIComponent(a.id)}/roles`;
            const { action_digest: digest } = await api("POST", path + "/digest", { roles });
            await stepUp(digest);
            const done = await api("PUT", path, { roles });
            row.dataset.roles = done.avatar.roles.join(" ");
            input.value = done.avatar.roles.join(" ");
            if (a.id === (await me()).avatar.id) { await refreshMe(); await render(); }
            return done;
          });
        },
      }, input, save)));
    return row;
  };

  const loadPeople = async (reset) => {
    if (reset) { after = ""; people.replaceChildren(); }
    const q = new URLSearchParams({ limit: "50" });
    if (after) q.set("after", after);
    const page = await api("GET", "/v1/avatars?" + q);
    people.append(...page.avatars.map(personRow));
    after = page.next || "";
    morePeople.hidden = !after;
  };
  morePeople.addEventListener("click", () => run("avatars", () => loadPeople(false)));
  listPeople.addEventListener("click", () => run("avatars", async () => {
    await loadPeople(true);
    listPeople.textContent = "Refresh";
    return { avatars: people.children.length };
  }));

  const baseRender = render;
  render = async () => {
    await baseRender();
    const isAdmin = (await me()).avatar.roles.includes("admin");
    admin.hidden = !isAdmin;
  };

  section.append(
    el("div", { class: "page-head" },
      el("h1", null, "Account"),
      el("p", { class: "muted" }, "Signed in as ", nameOut)),
    el("div", { class: "grid two" },
      el("article", { class: "card" },
        el("h2", null, "Roles"),
        roles,
        el("p", { class: "muted small" }, "Roles decide what the scene's policies allow you: operators command machines, supervisors approve critical commands, admins mint assets.")),
      el("article", { class: "card" },
        el("h2", null, "Step up"),
        el("p", { id: "digest-help", class: "muted small" }, "Confirm with your passkey now. Bound to an action digest, the confirmation authorizes that one action, once, within two minutes."),
        el("form", {
          id: "stepup-form", class: "form",
          onsubmit: (e) => { e.preventDefault(); run("step-up", () => stepUp(digest.value.trim())).then(() => refreshMe().catch(() => {})); },
        }, el("label", null, "Action digest ", digest), el("button", { id: "stepup", type: "submit", class: "primary" }, "Confirm with my passkey")))),
    el("article", { class: "card" },
      el("div", { class: "card-head" },
        el("h2", null, "Passkeys"),
        el("button", {
          id: "add-passkey", type: "button",
          onclick: () => run("add-passkey", async () => { const d = await register("", ""); await refreshMe(); await render(); return d; }),
        }, "Add a passkey")),
      passkeys),
    el("article", { class: "card" },
      el("div", { class: "card-head" },
        el("h2", null, "Sessions"),
        el("div", { class: "buttons" },
          el("button", { id: "signout", type: "button", onclick: () => ctx.signOut(false) }, "Sign out"),
          el("button", { id: "signout-all", type: "button", class: "danger", onclick: () => ctx.signOut(true) }, "Sign out everywhere"))),
      sessions),
    el("article", { class: "card" }, el("h2", null, "Biometric template"), template),
    admin,
  );
  rerender = render;
}

export async function show() {
  if (!rerender) return;
  await reloadMe().catch(() => {});
  await rerender();
}
