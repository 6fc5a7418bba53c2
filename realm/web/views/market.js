// Marketplace: the avatar's wallets (a custodial one the realm keeps, or a
// browser wallet linked by signing EIP-712 LinkWallet), what they hold,
// minting for administrators, transfers confirmed with a passkey bound to
// the exact transfer's EIP-712 digest, and receipts that this page
// verifies itself with the SDK's verifier (verifyReceipt of the bundled
// @zerorealm/sdk), without trusting the realm's code.
//
// Wire formats: docs/assets.md, realm/assets.go. Amounts are entered as
// the ledger's base units, exactly what the intent signs, and shown beside
// them in the collection's units (credits have 2 decimals: 1250 units are
// 12.50 credits).

import { checksumAddress, hexToBytes, verifyReceipt } from "../vendor/zerorealm-sdk.js";
import { BucketChart, bucketsOf, seriesColor } from "../chart.js";

// ACTIVITY_HOURS is how far back the market activity chart reads the
// audit log, and ACTIVITY_BUCKETS how many bars it draws across it.
const ACTIVITY_HOURS = 6;
const ACTIVITY_BUCKETS = 24;
// The audited actions that move assets, and how the chart names them.
const MARKET_ACTIONS = { TransferAsset: "transfers", MintAsset: "mints" };

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const TRANSFER_VALIDITY_S = 10 * 60;
const MAX_REMEMBERED = 50;

const shortAddr = (a) => (a ? `${a.slice(0, 8)}…${a.slice(-6)}` : "");
const shortHash = (h) => (h ? `${h.slice(0, 10)}…${h.slice(-6)}` : "");

const MAX_AMOUNT = (1n << 63n) - 1n; // the ledger's limit: a Cedar Long

// checkAddress refuses what the realm refuses, before an intent is made: a
// mixed-case address must carry its EIP-55 checksum, which catches a
// mistyped address instead of losing the assets.
export function checkAddress(a, what) {
  if (!ADDRESS.test(a)) throw new Error(`${what} must be an address: 0x and 40 hex digits`);
  const body = a.slice(2);
  const sum = checksumAddress(hexToBytes("0x" + body.toLowerCase()));
  if (body !== body.toLowerCase() && body !== body.toUpperCase() && sum !== a) {
    throw new Error(`${what} ${a} fails its EIP-55 checksum: check it for a typo (the checksummed form of what was typed is ${sum})`);
  }
  return a;
}

// parseUnits reads an amount in base units, the ledger's integers.
export function parseUnits(text) {
  const t = String(text).trim();
  if (!/^[0-9]+$/.test(t)) throw new Error(`${JSON.stringify(t)} is not a whole number of base units`);
  const v = BigInt(t);
  if (v < 1n || v > MAX_AMOUNT) throw new Error(`amounts are 1 to ${MAX_AMOUNT} base units`);
  return v;
}

// fromBase shows base units in the collection's units.
export function fromBase(units, decimals) {
  const s = BigInt(units).toString().padStart(decimals + 1, "0");
  if (!decimals) return BigInt(s).toLocaleString();
  return `${BigInt(s.slice(0, -decimals)).toLocaleString()}.${s.slice(-decimals)}`;
}

let instance = null;

export function mount(section, ctx) {
  const { el, api, stepUp, setStatus, me, refreshMe, idempotencyKey, describe, jsonDetails } = ctx;
  const state = { wallet: null, collections: [], holdings: [], domain: null, signers: null, receipts: new Map(), avatar: "" };
  const explain = (err) => (describe ? describe(err) : err.message);

  // --- wallet ---
  const walletAddress = el("output", { id: "wallet-address", class: "ops-address", "aria-live": "polite" }, "…");
  const walletKind = el("span", { class: "ops-badge", hidden: true });
  const walletOthers = el("ul", { class: "ops-list ops-compact", "aria-label": "Your other addresses" });
  const walletCreate = el("button", { id: "wallet-create", type: "button", class: "primary" }, "Create a custodial wallet");
  const walletLink = el("button", { id: "wallet-link", type: "button", hidden: !globalThis.ethereum }, "Link my browser wallet");

  // --- holdings ---
  const holdings = el("ul", { id: "holdings", class: "ops-list", "aria-label": "Your assets and balances" });

  // --- mint (administrators) ---
  const mintCollection = el("select", { id: "mint-collection", name: "collection" });
  const mintItem = el("input", { id: "mint-item", name: "item", placeholder: "item id, e.g. gold-cup", pattern: "[A-Za-z0-9_\\-]{1,64}" });
  const mintAmount = el("input", { id: "mint-amount", name: "amount", inputmode: "numeric", placeholder: "10000", "aria-describedby": "mint-amount-hint" });
  const mintHint = el("span", { id: "mint-amount-hint", class: "ops-hint", "aria-live": "polite" });
  const mintTo = el("input", { id: "mint-to", name: "to", placeholder: "0x… (default: your wallet)", spellcheck: "false" });
  const mintSend = el("button", { id: "mint-send", type: "submit", class: "primary" }, "Mint");
  const mintResult = el("div", { id: "mint-result", class: "ops-note", role: "status", "aria-live": "polite" });
  const mintCard = el("section", { id: "mint-card", class: "ops-card", "aria-labelledby": "mint-title", hidden: true },
    el("h2", { id: "mint-title" }, "Mint ", el("span", { class: "ops-badge", dataset: { state: "admin" } }, "admin")),
    el("form", { class: "ops-form", onsubmit: (e) => { e.preventDefault(); mint(); } },
      el("label", null, "Collection", mintCollection),
      el("label", { class: "ops-unique" }, "Item", mintItem),
      el("label", { class: "ops-fungible" }, el("span", { class: "ops-amount-label" }, "Amount"), mintAmount, mintHint),
      el("label", null, "To", mintTo),
      el("div", { class: "ops-actions" }, mintSend)),
    mintResult);

  // --- transfer ---
  const transferFrom = el("select", { id: "transfer-from", name: "from" });
  const transferCollection = el("select", { id: "transfer-collection", name: "collection" });
  const itemChoices = el("datalist", { id: "transfer-items" });
  const transferItem = el("input", { id: "transfer-item", name: "item", list: "transfer-items", placeholder: "item id" });
  const transferAmount = el("input", { id: "transfer-amount", name: "amount", inputmode: "numeric", placeholder: "2500", "aria-describedby": "transfer-amount-hint" });
  const transferHint = el("span", { id: "transfer-amount-hint", class: "ops-hint", "aria-live": "polite" });
  const transferTo = el("input", { id: "transfer-to", name: "to", placeholder: "0x… recipient address", spellcheck: "false", autocomplete: "off" });
  const transferSend = el("button", { id: "transfer-send", type: "submit", class: "primary" }, "Review and confirm with passkey");
  const transferIntent = el("div", { id: "transfer-intent", class: "ops-intent", "aria-live": "polite", hidden: true });
  const transferResult = el("div", { id: "transfer-result", class: "ops-result", role: "status", "aria-live": "polite", hidden: true });

  // --- receipts ---
  const receipts = el("ul", { id: "receipts", class: "ops-list", "aria-label": "Receipts" });
  const signersInput = el("input", { id: "trusted-signers", name: "signers", placeholder: "0x…, 0x… (optional)", spellcheck: "false" });
  const signerNote = el("div", { id: "signer-note", class: "ops-sub" });
  const chainMore = el("button", { id: "receipts-chain", type: "button" }, "Browse the realm's receipt chain");

  // --- activity: transfers and mints over time, from the audit log ---
  const activityCanvas = el("canvas", { id: "market-activity", class: "chart", role: "img", dataset: { title: "Market activity" } });
  const activityLegend = el("ul", { class: "legend chips", id: "market-activity-legend" });
  const activityNote = el("p", { class: "ops-sub", id: "market-activity-scope" });
  const activity = new BucketChart(activityCanvas, { above: "carried out", below: "refused" });

  section.append(
    el("header", { class: "ops-head" },
      el("div", null, el("h1", null, "Marketplace"),
        el("p", { class: "ops-sub" }, "Assets live on a signed ledger. You move yours only with your passkey (or your wallet's signature), and every transfer comes back with a receipt this page checks itself."))),
    el("div", { class: "ops-grid ops-grid-market" },
      el("section", { class: "ops-card", "aria-labelledby": "wallet-title" },
        el("h2", { id: "wallet-title" }, "Wallet"),
        el("p", null, el("label", { for: "wallet-address", class: "ops-inline" }, "Address"), " ", walletAddress, " ", walletKind),
        walletOthers,
        el("div", { class: "ops-actions" }, walletCreate, walletLink)),
      el("section", { class: "ops-card", "aria-labelledby": "holdings-title" },
        el("h2", { id: "holdings-title" }, "Holdings ", el("button", { type: "button", class: "ops-link", onclick: () => loadHoldings(), "aria-label": "Refresh holdings" }, "refresh")),
        holdings),
      mintCard,
      el("section", { class: "ops-card ops-wide", "aria-labelledby": "transfer-title" },
        el("h2", { id: "transfer-title" }, "Transfer"),
        el("form", { class: "ops-form", onsubmit: (e) => { e.preventDefault(); transfer(); } },
          el("label", null, "From", transferFrom),
          el("label", null, "Collection", transferCollection),
          el("label", { class: "ops-unique" }, "Item", transferItem, itemChoices),
          el("label", { class: "ops-fungible" }, el("span", { class: "ops-amount-label" }, "Amount"), transferAmount, transferHint),
          el("label", { class: "ops-grow" }, "To", transferTo),
          el("div", { class: "ops-actions" }, transferSend)),
        transferIntent, transferResult),
      el("section", { class: "ops-card ops-wide", "aria-labelledby": "activity-title" },
        el("h2", { id: "activity-title" }, "Market activity ", el("button", { type: "button", class: "ops-link", onclick: () => loadActivity().catch((err) => setStatus("market", err)), "aria-label": "Refresh market activity" }, "refresh")),
        activityNote, activityCanvas, activityLegend),
      el("section", { class: "ops-card ops-wide", "aria-labelledby": "receipts-title" },
        el("h2", { id: "receipts-title" }, "Receipts"),
        el("p", { class: "ops-sub" }, "Verify checks the realm's EIP-712 signature, the signer, and the receipt's place in a signed checkpoint, with this page's own keccak-256, secp256k1 and Merkle code."),
        el("div", { class: "ops-row" }, el("label", { class: "ops-grow" }, "Also trust these signers", signersInput)),
        signerNote,
        receipts,
        el("div", { class: "ops-actions" }, chainMore))));

  // --- helpers ---
  const collection = (id) => state.collections.find((c) => c.id === id);
  const units = (c) => (c && c.kind === "fungible" ? `${c.name || c.id}${c.decimals ? `, ${c.decimals} decimals` : ""}` : "");
  const myAddresses = () => {
    const w = state.wallet;
    if (!w) return [];
    return [...(w.custodial ? [{ address: w.custodial.address, kind: "custodial" }] : []), ...w.wallets.map((x) => ({ address: x.address, kind: "linked" }))];
  };
  const addressLabel = (a) => {
    const mine = myAddresses().find((x) => x.address.toLowerCase() === a.toLowerCase());
    return mine ? `${shortAddr(a)} (your ${mine.kind} wallet)` : shortAddr(a);
  };

  function shapeForm(select, root) {
    const c = collection(select.value);
    const unique = c && c.kind === "unique";
    for (const n of root.querySelectorAll(".ops-unique")) n.hidden = !unique;
    for (const n of root.querySelectorAll(".ops-fungible")) n.hidden = unique;
    for (const n of root.querySelectorAll(".ops-amount-label")) n.textContent = c && !unique ? "Amount (base units)" : "Amount";
    hint(root === mintCollection.form ? mintAmount : transferAmount, root === mintCollection.form ? mintHint : transferHint, c);
  }

  // hint shows what an amount of base units is in the collection's units.
  function hint(input, out, c) {
    if (!c || c.kind !== "fungible" || input.value.trim() === "") {
      out.textContent = c && c.kind === "fungible" && c.decimals ? `${units(c)}: 100 units are ${fromBase(100n, c.decimals)}` : "";
      return;
    }
    try {
      out.textContent = `= ${fromBase(parseUnits(input.value), c.decimals || 0)} ${c.name || c.id}`;
    } catch (err) {
      out.textContent = err.message;
    }
  }
  mintAmount.addEventListener("input", () => hint(mintAmount, mintHint, collection(mintCollection.value)));
  transferAmount.addEventListener("input", () => hint(transferAmount, transferHint, collection(transferCollection.value)));

  function fillCollections() {
    const opts = (forTransfer) => state.collections.map((c) => el("option", { value: c.id },
      `${c.name || c.id} · ${c.kind}${c.soulbound ? (forTransfer ? " · soulbound, never moves" : " · soulbound") : ""}`));
    const keepT = transferCollection.value, keepM = mintCollection.value;
    transferCollection.replaceChildren(...opts(true));
    mintCollection.replaceChildren(...opts(false));
    const prefer = state.collections.find((c) => c.kind === "fungible" && !c.soulbound);
    transferCollection.value = collection(keepT) ? keepT : (prefer?.id || transferCollection.value);
    mintCollection.value = collection(keepM) ? keepM : (prefer?.id || mintCollection.value);
    shapeForm(transferCollection, transferCollection.form);
    shapeForm(mintCollection, mintCollection.form);
    fillItems();
  }

  function fillItems() {
    itemChoices.replaceChildren(...state.holdings.filter((h) => h.item && h.collection === transferCollection.value)
      .map((h) => el("option", { value: h.item }, h.item)));
  }

  transferCollection.addEventListener("change", () => { shapeForm(transferCollection, transferCollection.form); fillItems(); });
  mintCollection.addEventListener("change", () => shapeForm(mintCollection, mintCollection.form));

  // --- wallet ---
  async function loadWallet() {
    state.wallet = await api("GET", "/v1/assets/wallet");
    const w = state.wallet;
    const primary = w.custodial?.address || w.wallets[0]?.address || "";
    walletAddress.textContent = primary || "No wallet yet";
    walletAddress.dataset.address = primary;
    walletAddress.title = primary;
    walletCreate.hidden = !!w.custodial;
    const kind = w.custodial ? "custodial" : (primary ? "linked" : "");
    walletKind.hidden = !kind;
    walletKind.dataset.state = kind;
    walletKind.textContent = kind;
    walletOthers.replaceChildren(...myAddresses().filter((a) => a.address !== primary).map((a) => el("li", { dataset: { address: a.address, kind: a.kind } },
      el("code", null, a.address), el("span", { class: "ops-badge", dataset: { state: a.kind } }, a.kind))));
    const keep = transferFrom.value;
    transferFrom.replaceChildren(...myAddresses().map((a) => el("option", { value: a.address }, `${shortAddr(a.address)} · ${a.kind}`)));
    if (myAddresses().some((a) => a.address === keep)) transferFrom.value = keep;
    if (!mintTo.value && primary) mintTo.value = primary;
  }

  walletCreate.addEventListener("click", async () => {
    walletCreate.disabled = true;
    try {
      await api("POST", "/v1/assets/wallet/custodial");
      await loadWallet();
      await loadHoldings();
      setStatus("wallet", state.wallet, walletCreate);
    } catch (err) {
      setStatus("wallet", err, walletCreate);
    } finally {
      walletCreate.disabled = false;
    }
  });

  // Linking a browser wallet: it signs the realm's LinkWallet message
  // (eth_signTypedData_v4), which binds the address to this avatar.
  walletLink.addEventListener("click", async () => {
    const eth = globalThis.ethereum;
    if (!eth) return;
    walletLink.disabled = true;
    try {
      const [account] = await eth.request({ method: "eth_requestAccounts" });
      const p = await api("POST", "/v1/assets/wallet/link/payload", { wallet: account });
      const signature = await eth.request({ method: "eth_signTypedData_v4", params: [account, JSON.stringify(p.typed_data)] });
      await api("POST", "/v1/assets/wallet/link", { wallet: account, deadline: p.typed_data.message.deadline, signature });
      await loadWallet();
      await loadHoldings();
      setStatus("link-wallet", state.wallet, walletLink);
    } catch (err) {
      setStatus("link-wallet", err, walletLink);
    } finally {
      walletLink.disabled = false;
    }
  });

  // --- holdings ---
  async function loadHoldings() {
    const addrs = myAddresses();
    if (!addrs.length) {
      state.holdings = [];
      holdings.replaceChildren(el("li", { class: "ops-empty" }, "Create or link a wallet to hold assets."));
      fillItems();
      return;
    }
    const all = [];
    for (const a of addrs) {
      const h = await api("GET", `/v1/assets/owners/${a.address}?limit=500`);
      for (const b of h.balances) all.push({ collection: b.collection, balance: b.balance, owner: a.address });
      for (const it of h.items) all.push({ collection: it.collection, item: it.item, owner: a.address, history: it.history || [] });
    }
    state.holdings = all;
    holdings.dataset.count = String(all.length);
    if (!all.length) {
      holdings.replaceChildren(el("li", { class: "ops-empty" }, "Nothing yet."));
    } else {
      holdings.replaceChildren(...all.map((h) => {
        const c = collection(h.collection);
        const name = c?.name || h.collection;
        return el("li", { class: "holding", dataset: { collection: h.collection, item: h.item || "", balance: h.balance || "", owner: h.owner } },
          el("div", null,
            el("strong", null, h.item ? `${name}: ${h.item}` : name),
            c?.soulbound ? el("span", { class: "ops-badge", dataset: { state: "soulbound" } }, "soulbound") : "",
            el("div", { class: "ops-sub" }, addressLabel(h.owner))),
          h.item ? el("span", { class: "ops-qty" }, "1 item")
            : el("span", { class: "ops-qty" }, fromBase(h.balance, c?.decimals || 0), el("span", { class: "ops-sub" }, ` ${h.balance} units`)));
      }));
    }
    fillItems();
  }

  // --- mint ---
  async function mint() {
    const c = collection(mintCollection.value);
    mintResult.dataset.status = "";
    try {
      if (!c) throw new Error("choose a collection");
      const to = mintTo.value.trim() || walletAddress.dataset.address;
      if (!to) throw new Error("mint to an address: create a wallet first, or type one");
      checkAddress(to, "the recipient");
      const body = { collection: c.id, to };
      if (c.kind === "unique") body.item = mintItem.value.trim();
      else body.amount = parseUnits(mintAmount.value).toString();
      mintSend.disabled = true;
      const ans = await api("POST", "/v1/assets/mint", body);
      mintResult.dataset.status = "ok";
      mintResult.replaceChildren(c.kind === "unique"
        ? `Minted ${c.id}/${body.item} to ${addressLabel(to)} (ledger sequence ${ans.sequence}).`
        : `Minted ${fromBase(body.amount, c.decimals || 0)} ${c.name || c.id} to ${addressLabel(to)} (ledger sequence ${ans.sequence}).`, jsonDetails(ans));
      setStatus("mint", ans, null, true);
      await loadHoldings();
      loadActivity().catch(() => {});
    } catch (err) {
      mintResult.dataset.status = "error";
      mintResult.replaceChildren(explain(err), jsonDetails(err.problem));
      setStatus("mint", err, null, true);
    } finally {
      mintSend.disabled = false;
    }
  }

  // --- transfer ---
  function showIntent(typed, digest, custodial) {
    const m = typed.message;
    const c = collection(m.collection);
    const what = m.assetId ? `${c?.name || m.collection} item “${m.assetId}”` : `${fromBase(m.amount, c?.decimals || 0)} ${c?.name || m.collection} (${m.amount} base units)`;
    transferIntent.hidden = false;
    transferIntent.replaceChildren(
      el("h3", null, custodial ? "Confirm with your passkey" : "Sign with your wallet"),
      el("p", { class: "ops-intent-text" }, `Send ${what} from ${addressLabel(m.from)} to ${addressLabel(m.to)}.`),
      el("dl", { class: "ops-envelope" },
        el("dt", null, "Valid until"), el("dd", null, new Date(Number(m.deadline) * 1000).toLocaleString()),
        el("dt", null, "Nonce"), el("dd", null, m.nonce),
        el("dt", null, "Domain"), el("dd", null, `${typed.domain.name} v${typed.domain.version}, chain ${typed.domain.chainId}`),
        el("dt", null, "EIP-712 digest"), el("dd", null, el("code", { title: digest }, digest))),
      el("p", { class: "ops-sub" }, custodial
        ? "Your passkey confirms exactly this digest; the realm then signs it with your custodial key, once."
        : "Your wallet shows and signs this typed data."));
  }

  function transferDone(ok, ...content) {
    transferResult.hidden = false;
    transferResult.dataset.status = ok ? "ok" : "error";
    transferResult.replaceChildren(...content);
  }

  async function transfer() {
    transferSend.disabled = true;
    transferResult.hidden = true;
    try {
      const from = transferFrom.value;
      const mine = myAddresses().find((a) => a.address === from);
      if (!mine) throw new Error("create or link a wallet first");
      const c = collection(transferCollection.value);
      if (!c) throw new Error("choose a collection");
      const to = transferTo.value.trim();
      checkAddress(to, "the recipient");
      const unique = c.kind === "unique";
      const item = transferItem.value.trim();
      if (unique && !item) throw new Error("name the item to send");
      const amount = unique ? "1" : parseUnits(transferAmount.value).toString();
      const owner = await api("GET", `/v1/assets/owners/${from}?limit=1`);
      const intent = {
        collection: c.id, assetId: unique ? item : "", amount, from, to,
        nonce: owner.next_nonce, deadline: String(Math.floor(Date.now() / 1000) + TRANSFER_VALIDITY_S),
      };
      // The realm renders the typed data; this page shows its message,
      // which is what the digest (and so the passkey) binds.
      const payload = await api("POST", "/v1/assets/intents/transfer", { intent });
      showIntent(payload.typed_data, payload.digest, mine.kind === "custodial");
      const body = { intent };
      if (mine.kind === "custodial") {
        await stepUp(payload.digest);
      } else {
        const eth = globalThis.ethereum;
        if (!eth) throw new Error("this wallet signs for itself: open the console in a browser with the wallet");
        body.signature = await eth.request({ method: "eth_signTypedData_v4", params: [from, JSON.stringify(payload.typed_data)] });
      }
      const ans = await api("POST", "/v1/assets/transfers", body, { "Idempotency-Key": "console-" + idempotencyKey() });
      remember(ans.receipt.digest);
      addReceipt(ans.receipt, { intent: payload.digest, first: true });
      const rm = ans.receipt.receipt.message;
      transferDone(true, el("strong", null, "Transferred."),
        ` Ledger sequence ${ans.sequence}; receipt ${rm.index} of chain ${rm.chain}, signed by ${shortAddr(ans.receipt.signer)}. Verify it below.`,
        jsonDetails(ans));
      setStatus("transfer", ans, null, true);
      await loadHoldings();
      loadActivity().catch(() => {});
    } catch (err) {
      transferDone(false, el("strong", null, "Not transferred. "), explain(err), jsonDetails(err.problem));
      setStatus("transfer", err, null, true);
    } finally {
      transferSend.disabled = false;
    }
  }

  // --- receipts ---
  const storeKey = () => `zr.receipts.${state.avatar}`;
  function remembered() {
    try {
      const v = JSON.parse(localStorage.getItem(storeKey()) || "[]");
      return Array.isArray(v) ? v.filter((d) => /^0x[0-9a-f]{64}$/i.test(d)) : [];
    } catch {
      return [];
    }
  }
  function remember(digest) {
    try {
      localStorage.setItem(storeKey(), JSON.stringify([digest, ...remembered().filter((d) => d !== digest)].slice(0, MAX_REMEMBERED)));
    } catch { /* private mode: the list lasts as long as the page */ }
  }

  async function domainInfo() {
    if (!state.domain) state.domain = await api("GET", "/v1/assets/domain");
    return state.domain;
  }

  // published: every realm node's receipt signers, current and retired
  // (GET /v1/assets/signers), so that a receipt from another node or from
  // before a key rotation verifies too. It is trusted by default and shown
  // in full; the realm's documentation says to pin keys offline when the
  // cluster itself is not to be trusted. Without the list (an older realm,
  // an error), only the answering node's current key is trusted.
  async function publishedSigners() {
    if (!state.signers) {
      try {
        state.signers = (await api("GET", "/v1/assets/signers")).signers || [];
      } catch {
        state.signers = [];
      }
    }
    return state.signers;
  }

  // The answering node's key and the addresses typed in are trusted for
  // anything they signed; a published signer only for its period, so a
  // retired key vouches for nothing dated after its retirement.
  function trustedSigners(current, published) {
    const extra = signersInput.value.split(/[\s,]+/).filter((s) => ADDRESS.test(s));
    const periods = published.map((s) => ({ address: s.address, since: s.since, until: s.until }));
    return [...new Set([current, ...extra]), ...periods];
  }

  const day = (t) => (t ? new Date(t).toLocaleDateString() : "");
  function showSigners(current, published) {
    const others = published.filter((s) => s.address.toLowerCase() !== current.toLowerCase());
    signerNote.replaceChildren(
      `Trusted: ${current}, the key this realm node signs with (GET /v1/assets/domain)`,
      others.length ? ", and every realm node's published receipt signers (GET /v1/assets/signers):" : ".",
      others.length ? el("ul", { id: "published-signers", class: "ops-list compact" }, others.map((s) => el("li", { dataset: { address: s.address, node: s.node, current: String(s.current) } },
        el("code", null, s.address), ` ${s.node}, ${s.current ? `current since ${day(s.since)}` : `retired, ${day(s.since)} to ${day(s.until)}`}`))) : "",
      el("span", { class: "muted small" }, " The realm's list is a convenience; to trust only keys you pinned, compare it with ", el("code", null, "zerorealm keys export-public"), "."));
  }

  function addReceipt(doc, { intent, first } = {}) {
    if (!doc || !doc.digest) return;
    const key = doc.digest.toLowerCase();
    if (state.receipts.has(key)) {
      if (first) receipts.prepend(state.receipts.get(key));
      return;
    }
    const m = doc.receipt.message;
    const detail = el("span", { class: "verify-detail", "aria-live": "polite" }, "not verified yet");
    const checks = el("ol", { class: "ops-checks", "aria-label": "Checks made" });
    const button = el("button", { type: "button", class: "verify", "aria-label": `Verify receipt ${m.index} of chain ${m.chain}` }, "Verify");
    const row = el("li", { class: "receipt", dataset: { digest: key, intent: m.intent, chain: m.chain, index: m.index } },
      el("div", { class: "ops-receipt-main" },
        el("strong", null, `Receipt ${m.index} · ${m.chain}`),
        el("div", { class: "ops-sub" }, `intent `, el("code", { title: m.intent }, shortHash(m.intent)),
          ` · ledger sequence ${m.sequence} · ${doc.time ? new Date(doc.time).toLocaleString() : ""}`),
        detail, checks),
      button);
    button.addEventListener("click", () => verify(row, doc, intent, button, detail, checks));
    state.receipts.set(key, row);
    const empty = receipts.querySelector(".ops-empty");
    if (empty) empty.remove();
    if (first) receipts.prepend(row);
    else receipts.append(row);
  }

  async function verify(row, doc, intent, button, detail, checks) {
    button.disabled = true;
    detail.textContent = "verifying…";
    delete row.dataset.verified;
    try {
      const info = await domainInfo();
      let proof = null, checkpoint = null;
      try {
        proof = (await api("GET", `/v1/receipts/${doc.digest}/proof`)).proof || null;
      } catch (err) {
        if (err.status !== 404) throw err; // 404: not in a checkpoint yet
      }
      if (proof) {
        const cps = await api("GET", `/v1/checkpoints?chain=${encodeURIComponent(doc.receipt.message.chain)}`);
        checkpoint = (cps.checkpoints || []).find((c) => c.digest === proof.checkpoint_digest) || null;
      }
      // The held document is what is verified; the realm supplies only the
      // proof and the published checkpoint, both checked here too.
      const v = verifyReceipt(doc, { domain: info.domain, signers: trustedSigners(info.signer, await publishedSigners()), proof, checkpoint: checkpoint || undefined, intent });
      row.dataset.verified = String(v.ok);
      row.dataset.code = v.code;
      checks.replaceChildren(...v.checks.map((c) => el("li", { dataset: { ok: String(c.ok) } }, el("strong", null, c.check), " ", c.detail)));
      if (!v.ok) {
        detail.textContent = `Not valid: ${v.reason}`;
      } else if (proof) {
        const inc = v.checks.find((c) => c.check === "inclusion");
        detail.textContent = `Verified in this browser: signed by the realm (${shortAddr(v.signer)}), EIP-712 digest recomputed, and ${inc ? inc.detail.replace(/^receipt \d+ is /, "it is ") : "in a signed checkpoint"}.`;
      } else {
        detail.textContent = `Verified in this browser: signed by the realm (${shortAddr(v.signer)}), EIP-712 digest recomputed; not in a signed checkpoint yet (checkpoints are signed every few seconds).`;
      }
      setStatus("verify-receipt", { ok: v.ok, code: v.code, reason: v.reason, checks: v.checks.map((c) => c.check) }, null, true);
    } catch (err) {
      row.dataset.verified = "false";
      detail.textContent = "Could not verify: " + explain(err);
      setStatus("verify-receipt", err, null, true);
    } finally {
      button.disabled = false;
    }
  }

  // The realm lists receipts by chain; the avatar's own are the ones this
  // console created and those in its items' histories.
  async function loadReceipts() {
    const digests = new Set(remembered().map((d) => d.toLowerCase()));
    for (const h of state.holdings) for (const e of h.history || []) if (e.digest) digests.add(e.digest.toLowerCase());
    // History digests are intents; receipts are looked up by intent digest.
    const docs = await Promise.all([...digests].map((d) => api("GET", `/v1/receipts/${d}`).catch(() => null)));
    for (const doc of docs) if (doc) addReceipt(doc);
    if (!receipts.children.length) receipts.replaceChildren(el("li", { class: "ops-empty" }, "No receipts yet: transfer something."));
  }

  let chainFrom = 0;
  chainMore.addEventListener("click", async () => {
    chainMore.disabled = true;
    try {
      const page = await api("GET", `/v1/receipts?from=${chainFrom}&limit=20`);
      for (const doc of page.receipts) addReceipt(doc);
      chainFrom += page.receipts.length;
      chainMore.textContent = page.receipts.length < 20 ? "No more receipts on this chain" : "Load more of the chain";
      chainMore.disabled = page.receipts.length < 20;
    } catch (err) {
      setStatus("receipts", err, chainMore);
      chainMore.disabled = false;
    }
  });

  // loadActivity reads the decisions on transfers and mints of the last
  // hours (all of them for an auditor, one's own otherwise: the realm
  // decides) and draws them per bucket of time.
  async function loadActivity() {
    const to = Date.now(), from = to - ACTIVITY_HOURS * 3600000;
    const since = new Date(from).toISOString();
    const pages = await Promise.all(Object.keys(MARKET_ACTIONS).map((a) => api("GET", `/v1/audit?action=${a}&since=${encodeURIComponent(since)}&limit=1000`)));
    const events = pages.flatMap((p) => p.events || []);
    const own = pages.some((p) => p.scope === "own");
    // The chart spans from the oldest activity read (at least the last
    // quarter of an hour), so a young realm's first transfers are not
    // squeezed into one bar at the right edge.
    const oldest = events.reduce((m, e) => Math.min(m, Date.parse(e.time)), to);
    const start = Math.max(from, Math.min(oldest - 60000, to - 15 * 60000));
    activity.set({ from: start, to, n: ACTIVITY_BUCKETS, series: bucketsOf(events, start, to, ACTIVITY_BUCKETS, (e) => ({ key: MARKET_ACTIONS[e.action] || e.action, sign: e.outcome === "deny" ? -1 : 1 })) });
    const minutes = Math.round((to - start) / 60000);
    activityNote.textContent = `${own ? "Your" : "Every avatar's"} transfers and mints of the last ${minutes >= 120 ? Math.round(minutes / 60) + " hours" : minutes + " minutes"}, from the audit log: carried out above the line, refused below it (paler).`;
    activityLegend.replaceChildren(...Object.values(MARKET_ACTIONS).map((k) => {
      const n = events.filter((e) => MARKET_ACTIONS[e.action] === k);
      const li = el("li", { class: "chip key-swatch", dataset: { kind: k } }, `${k}: ${n.filter((e) => e.outcome !== "deny").length} carried out, ${n.filter((e) => e.outcome === "deny").length} refused`);
      li.style.setProperty("--key", seriesColor(k));
      return li;
    }));
  }

  async function refresh() {
    const m = await (refreshMe ? refreshMe() : me());
    state.avatar = m.avatar.id;
    mintCard.hidden = !(m.avatar.roles || []).includes("admin");
    state.domain = state.signers = null; // a node may have restarted with a new key since
    const [colls, info, published] = await Promise.all([api("GET", "/v1/assets/collections"), domainInfo(), publishedSigners()]);
    state.collections = colls.collections || [];
    showSigners(info.signer, published);
    await loadWallet();
    fillCollections();
    await loadHoldings();
    await loadReceipts();
    await loadActivity().catch((err) => setStatus("market", err));
  }

  // The shell calls show() right after mount(): one read serves both.
  let last = null;
  const refreshOnce = () => {
    if (!last) last = refresh().catch((err) => setStatus("market", err)).finally(() => setTimeout(() => { last = null; }, 1000));
    return last;
  };
  instance = { refresh: refreshOnce };
  return refreshOnce();
}

// show reads the wallet, holdings and roles again: a mint or a transfer
// elsewhere, or a new role, shows without reloading the page.
export function show() {
  return instance ? instance.refresh() : undefined;
}
