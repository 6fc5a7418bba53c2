// Receipt verification in the browser, independent of the realm's code.
//
// A receipt is worth something only if whoever holds it can check it
// without asking the realm that issued it. This module does the whole
// check in the browser: EIP-712 hashing of the typed data exactly as the
// document carries it, Ethereum address derivation, and the RFC 9162
// Merkle inclusion proof of the receipt in a signed checkpoint (leaves
// keccak(0x00 || receipt digest), nodes keccak(0x01 || left || right)).
//
// What it trusts is only what the caller passes: the EIP-712 domain the
// realm publishes (GET /v1/assets/domain) and the signer addresses the
// holder decided to trust. Everything else comes from the document and is
// recomputed. Every check is reported, and the first failure stops the
// verification with a stable code and a reason.
//
// The code runs in browsers and in Node (realm/verifyjs_test.go runs it
// against receipts of a real ledger).
//
// The two primitives come from audited libraries, vendored unchanged but
// for their import paths (vendor/README.md records versions and hashes):
// keccak-256 (the Ethereum variant, padding byte 0x01, not SHA3-256's
// 0x06) from @noble/hashes, and secp256k1 public key recovery from
// @noble/curves. Plain ES modules, so the console's CSP (script-src
// 'self') allows them and no build step stands between the repository and
// what is served.

import { keccak_256 } from "./vendor/noble-hashes/sha3.js";
import { secp256k1 } from "./vendor/noble-curves/secp256k1.js";

// ---------------------------------------------------------------- bytes

const enc = new TextEncoder();

export function bytesToHex(b) {
  let s = "0x";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

// hexToBytes reads 0x-prefixed hex; want, when given, is the exact length.
export function hexToBytes(h, want) {
  if (typeof h !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(h)) {
    throw new VerifyError("malformed", `${short(h)} is not 0x-prefixed hex of whole bytes`);
  }
  const out = new Uint8Array((h.length - 2) / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(2 + 2 * i, 2), 16);
  if (want !== undefined && out.length !== want) {
    throw new VerifyError("malformed", `${short(h)} is ${out.length} bytes, want ${want}`);
  }
  return out;
}

function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function bigToBytes32(v) {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--) { out[i] = Number(v & 0xffn); v >>= 8n; }
  return out;
}

function bytesToBig(b) {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function short(v) {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s === undefined ? String(v) : (s.length > 70 ? s.slice(0, 67) + "..." : s);
}

// ---------------------------------------------------------------- keccak-256

// keccak256 hashes bytes (Uint8Array, or a string as UTF-8) to 32 bytes.
export function keccak256(data) {
  return keccak_256(typeof data === "string" ? enc.encode(data) : data);
}

export function keccakHex(data) {
  return bytesToHex(keccak256(data));
}

// ---------------------------------------------------------------- secp256k1

// The curve order n: r and s must lie in 1..n-1, and s in its lower half.
const N = secp256k1.Point.CURVE().n;
const HALF_N = N >> 1n;

// parseSignature reads r || s || v (65 bytes, v 27 or 28) and applies the
// realm's rules: r and s in range, s in the lower half of the order (the
// upper half is the malleated twin of a valid signature).
export function parseSignature(hex) {
  let b;
  try {
    b = hexToBytes(hex, 65);
  } catch (e) {
    throw new VerifyError("signature-encoding", `the signature must be 0x and 130 hex digits (r || s || v): ${e.detail}`);
  }
  const r = bytesToBig(b.subarray(0, 32)), s = bytesToBig(b.subarray(32, 64)), v = b[64];
  if (v !== 27 && v !== 28) throw new VerifyError("signature-encoding", `recovery id v is ${v}, want 27 or 28`);
  if (r < 1n || r >= N) throw new VerifyError("signature-encoding", "r is outside 1..n-1");
  if (s < 1n || s >= N) throw new VerifyError("signature-encoding", "s is outside 1..n-1");
  if (s > HALF_N) throw new VerifyError("signature-high-s", "s is in the upper half of the curve order: a malleated signature, refused as the realm refuses it");
  return { r, s, recid: v - 27 };
}

// recoverAddress returns the checksummed address that signed the 32-byte
// digest (0x hex) with the signature (0x hex), or throws VerifyError.
export function recoverAddress(digestHex, signatureHex) {
  const digest = hexToBytes(digestHex, 32);
  const { r, s, recid } = parseSignature(signatureHex);
  let pub;
  try {
    pub = new secp256k1.Signature(r, s, recid).recoverPublicKey(digest).toBytes(false);
  } catch (e) {
    throw new VerifyError("signature-invalid", `no public key recovers from this signature: ${e.message}`);
  }
  // Uncompressed: 0x04 || x || y; the address is the last 20 bytes of
  // keccak(x || y).
  return checksumAddress(keccak256(pub.subarray(1)).subarray(12));
}

// checksumAddress is the EIP-55 form of 20 address bytes.
export function checksumAddress(bytes) {
  const lower = bytesToHex(bytes).slice(2);
  const h = keccak256(lower);
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    const nibble = (h[i >> 1] >> (i & 1 ? 0 : 4)) & 0xf;
    out += nibble >= 8 ? lower[i].toUpperCase() : lower[i];
  }
  return out;
}

function sameAddress(a, b) {
  return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
}

// ---------------------------------------------------------------- EIP-712

function baseType(t) {
  const i = t.indexOf("[");
  return i < 0 ? t : t.slice(0, i);
}

function dependencies(primary, types, found = new Set()) {
  if (found.has(primary) || !types[primary]) return found;
  found.add(primary);
  for (const f of types[primary]) dependencies(baseType(f.type), types, found);
  return found;
}

// encodeType is the EIP-712 type string: the primary type, then the types
// it references, sorted by name.
export function encodeType(primary, types) {
  if (!Array.isArray(types[primary])) throw new VerifyError("malformed", `no type ${primary} in the typed data`);
  const deps = [...dependencies(primary, types)].filter((t) => t !== primary).sort();
  return [primary, ...deps].map((t) => `${t}(${types[t].map((f) => `${f.type} ${f.name}`).join(",")})`).join("");
}

function toBigInt(v, what) {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new VerifyError("malformed", `${what}: ${v} is not an exact integer`);
    return BigInt(v);
  }
  if (typeof v === "string" && /^(0x[0-9a-fA-F]+|-?[0-9]+)$/.test(v)) return BigInt(v);
  if (typeof v === "bigint") return v;
  throw new VerifyError("malformed", `${what}: ${short(v)} is not an integer`);
}

function encodeValue(type, value, types, what) {
  if (types[type]) return hashStruct(type, value, types, what);
  const arr = /^(.*)\[(\d*)\]$/.exec(type);
  if (arr) {
    if (!Array.isArray(value)) throw new VerifyError("malformed", `${what}: want an array`);
    if (arr[2] !== "" && value.length !== Number(arr[2])) throw new VerifyError("malformed", `${what}: want ${arr[2]} elements`);
    return keccak256(concat(...value.map((v, i) => encodeValue(arr[1], v, types, `${what}[${i}]`))));
  }
  if (type === "string") {
    if (typeof value !== "string") throw new VerifyError("malformed", `${what}: want a string`);
    return keccak256(enc.encode(value));
  }
  if (type === "bytes") return keccak256(hexToBytes(value));
  if (type === "address") {
    if (typeof value !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(value)) throw new VerifyError("malformed", `${what}: ${short(value)} is not an address`);
    return concat(new Uint8Array(12), hexToBytes(value));
  }
  if (type === "bool") {
    if (typeof value !== "boolean") throw new VerifyError("malformed", `${what}: want true or false`);
    return bigToBytes32(value ? 1n : 0n);
  }
  let m = /^bytes(\d+)$/.exec(type);
  if (m) {
    const n = Number(m[1]);
    if (n < 1 || n > 32) throw new VerifyError("malformed", `${what}: no type ${type}`);
    const out = new Uint8Array(32);
    out.set(hexToBytes(value, n));
    return out;
  }
  m = /^(u?)int(\d*)$/.exec(type);
  if (m) {
    const bits = BigInt(m[2] || "256");
    if (bits < 8n || bits > 256n || bits % 8n !== 0n) throw new VerifyError("malformed", `${what}: no type ${type}`);
    const v = toBigInt(value, what);
    const lo = m[1] ? 0n : -(1n << (bits - 1n));
    const hi = m[1] ? (1n << bits) - 1n : (1n << (bits - 1n)) - 1n;
    if (v < lo || v > hi) throw new VerifyError("malformed", `${what}: ${v} does not fit ${type}`);
    return bigToBytes32(v < 0n ? (1n << 256n) + v : v);
  }
  throw new VerifyError("malformed", `${what}: unknown type ${type}`);
}

export function hashStruct(primary, data, types, what = primary) {
  if (data === null || typeof data !== "object" || Array.isArray(data)) throw new VerifyError("malformed", `${what}: want an object`);
  const fields = types[primary];
  const parts = [keccak256(encodeType(primary, types))];
  for (const f of fields) parts.push(encodeValue(f.type, data[f.name], types, `${what}.${f.name}`));
  return keccak256(concat(...parts));
}

// hashTypedData is the EIP-712 digest of eth_signTypedData_v4 data, as
// 0x hex: keccak256(0x19 0x01 || hashStruct(domain) || hashStruct(message)).
export function hashTypedData(td) {
  if (!td || typeof td !== "object" || !td.types || typeof td.primaryType !== "string") {
    throw new VerifyError("malformed", "not EIP-712 typed data (types, primaryType, domain, message)");
  }
  const domain = hashStruct("EIP712Domain", td.domain, td.types, "domain");
  const message = hashStruct(td.primaryType, td.message, td.types, "message");
  return bytesToHex(keccak256(concat(Uint8Array.of(0x19, 0x01), domain, message)));
}

// The realm's documented types (docs/assets.md). A document whose types
// differ does not mean what a receipt means, whoever signed it.
const DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
const RECEIPT_TYPE = "Receipt(bytes32 intent,uint256 sequence,string chain,uint256 index,bytes32 previous,uint256 time)";
const CHECKPOINT_TYPE = "Checkpoint(string chain,uint256 first,uint256 count,bytes32 root,bytes32 previous,uint256 time)";

// ---------------------------------------------------------------- verification

export class VerifyError extends Error {
  constructor(code, detail) {
    super(`${code}: ${detail}`);
    this.code = code;
    this.detail = detail;
  }
}

// checkTyped checks that typed data is of the documented type, in the
// expected domain, with no message field the type does not sign, and
// returns its digest. A checkpoint's faults all read bad-checkpoint (as=
// "bad-checkpoint"); a receipt's are told apart.
function checkTyped(td, primary, typeString, domain, what, as = "") {
  const fail = (code, detail) => new VerifyError(as || code, detail);
  if (!td || typeof td !== "object" || !td.types || !td.message || typeof td.message !== "object" || !td.domain) {
    throw fail("malformed", `the ${what} is not EIP-712 typed data`);
  }
  if (td.primaryType !== primary) throw fail("wrong-type", `the ${what} is a ${short(td.primaryType)}, not a ${primary}`);
  let got, dom;
  try {
    got = encodeType(primary, td.types);
    dom = encodeType("EIP712Domain", td.types);
  } catch (e) {
    throw fail("wrong-type", e.detail || e.message);
  }
  if (got !== typeString || dom !== DOMAIN_TYPE) {
    throw fail("wrong-type", `the ${what}'s types are ${short(got)}, not the realm's ${typeString}`);
  }
  for (const k of Object.keys(td.message)) {
    if (!td.types[primary].some((f) => f.name === k)) {
      throw fail("wrong-type", `the ${what} carries ${short(k)}, which its signature does not cover`);
    }
  }
  const d = td.domain;
  const mismatch = [];
  if (d.name !== domain.name) mismatch.push(`name ${short(d.name)}`);
  if (d.version !== domain.version) mismatch.push(`version ${short(d.version)}`);
  let chain = null;
  try { chain = toBigInt(d.chainId, "chainId"); } catch { /* reported as a mismatch */ }
  if (chain === null || chain !== toBigInt(domain.chainId, "the expected chainId")) mismatch.push(`chain id ${short(d.chainId)}`);
  if (!sameAddress(d.verifyingContract, domain.verifyingContract)) mismatch.push(`contract ${short(d.verifyingContract)}`);
  if (mismatch.length) {
    throw fail("wrong-domain", `the ${what} was signed for ${mismatch.join(", ")}; the realm's domain is ` +
      `${domain.name} v${domain.version}, chain id ${domain.chainId}, contract ${domain.verifyingContract}`);
  }
  return hashTypedData(td);
}

// verifyInclusion is RFC 9162 section 2.1.3.2 with keccak-256: does path
// lead from the receipt digest at leaf index of a tree of size leaves to
// root?
export function verifyInclusion(leafDigest, index, size, path, root) {
  if (index >= size) return false;
  let fn = index, sn = size - 1n;
  let r = keccak256(concat(Uint8Array.of(0), leafDigest));
  for (const p of path) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = keccak256(concat(Uint8Array.of(1), p, r));
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = keccak256(concat(Uint8Array.of(1), r, p));
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equalBytes(r, root);
}

// periodSlackSeconds absorbs a signing node's clock being adjusted between
// stamping a key's period and stamping what the key signed.
const periodSlackSeconds = 60;

// trustEntries normalizes the signers option into {address, since, until}
// (seconds, or null for no bound); anything that is not an address, or
// an entry whose period does not parse, is dropped: the list only ever
// trusts less.
function trustEntries(signers) {
  if (!Array.isArray(signers)) return [];
  const out = [];
  const seconds = (t) => {
    if (t === undefined || t === null) return null;
    const ms = Date.parse(t);
    return Number.isFinite(ms) ? Math.floor(ms / 1000) : NaN;
  };
  for (const s of signers) {
    if (typeof s === "string") {
      if (ADDRESS_RE.test(s)) out.push({ address: s, since: null, until: null });
      continue;
    }
    if (!s || typeof s !== "object" || typeof s.address !== "string" || !ADDRESS_RE.test(s.address)) continue;
    const since = seconds(s.since), until = seconds(s.until);
    if (Number.isNaN(since) || Number.isNaN(until)) continue;
    out.push({ address: s.address, since, until });
  }
  return out;
}

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;

// inPeriod checks that what signer signed at time (the document's signed
// Unix seconds) falls in a period the holder trusts the key for, and says
// which; it throws outside-period otherwise.
function inPeriod(trusted, signer, time, what) {
  const mine = trusted.filter((s) => sameAddress(s.address, signer));
  if (mine.some((s) => s.since === null && s.until === null)) return "";
  let at;
  try {
    at = Number(toBigInt(time, `${what} time`));
  } catch (e) {
    throw new VerifyError("outside-period", `the ${what} carries no time to check against ${signer}'s signing period`);
  }
  const ok = mine.find((s) => (s.since === null || at >= s.since - periodSlackSeconds) && (s.until === null || at <= s.until + periodSlackSeconds));
  const iso = (t) => new Date(t * 1000).toISOString().replace(".000Z", "Z");
  if (!ok) {
    const periods = mine.map((s) => `${s.since === null ? "…" : iso(s.since)} to ${s.until === null ? "now" : iso(s.until)}`).join(", ");
    throw new VerifyError("outside-period", `the ${what} is dated ${iso(at)}, outside the period the holder trusts ${signer} for (${periods})`);
  }
  return `, signing in the period it was trusted for (${ok.since === null ? "…" : iso(ok.since)} to ${ok.until === null ? "now" : iso(ok.until)})`;
}

// verifyReceipt checks a receipt document (GET /v1/receipts/{digest},
// .../proof, or a transfer's answer) and, when given or embedded, its
// inclusion proof:
//   domain      the realm's EIP-712 domain ({name, version, chainId,
//               verifyingContract}, the "domain" of GET /v1/assets/domain);
//   signers     the receipt signers the holder trusts: an address string
//               trusts the key for anything it signed; {address, since,
//               until} (RFC 3339, until optional, as GET
//               /v1/assets/signers lists them) only for what it signed in
//               that period, so that a retired key, stolen later, cannot
//               vouch for a receipt dated after its retirement;
//   proof       a proof document (the "proof" of .../proof); default the
//               receipt's own;
//   checkpoint  a checkpoint document obtained separately (GET
//               /v1/checkpoints), which the proof's checkpoint must be;
//   intent      the intent digest the receipt must be for, when known.
// It answers {ok, checks: [{check, ok, detail}], code, reason, signer,
// digest}: code and reason name the first failed check.
export function verifyReceipt(receipt, { domain, signers, proof, checkpoint, intent } = {}) {
  const checks = [];
  const out = { ok: false, checks, code: "", reason: "", signer: "", digest: "" };
  const pass = (check, detail) => checks.push({ check, ok: true, detail });
  try {
    if (!domain || typeof domain !== "object") throw new VerifyError("no-domain", "the realm's EIP-712 domain is needed to know what the receipt must be bound to");
    const trusted = trustEntries(signers);
    if (trusted.length === 0) throw new VerifyError("no-signers", "no trusted signer address was given: a valid signature by anyone would prove nothing");
    let doc = receipt;
    // A transfer's answer holds the receipt document one level down.
    if (doc && typeof doc === "object" && doc.signature === undefined && doc.receipt && doc.receipt.signature !== undefined) doc = doc.receipt;
    if (!doc || typeof doc !== "object" || !doc.receipt || typeof doc.signature !== "string") {
      throw new VerifyError("malformed", "not a receipt document (receipt typed data and signature)");
    }
    const digest = checkTyped(doc.receipt, "Receipt", RECEIPT_TYPE, domain, "receipt");
    out.digest = digest;
    pass("type", `a ${RECEIPT_TYPE.slice(0, RECEIPT_TYPE.indexOf("("))} of the documented shape`);
    pass("domain", `bound to ${domain.name} v${domain.version}, chain id ${domain.chainId}, contract ${domain.verifyingContract}`);
    const m = doc.receipt.message;
    if (doc.digest !== undefined && doc.digest.toLowerCase() !== digest) {
      throw new VerifyError("digest-mismatch", `the document says digest ${doc.digest}, its typed data hashes to ${digest}: the receipt was altered`);
    }
    pass("digest", `EIP-712 digest ${digest}`);
    const signer = recoverAddress(digest, doc.signature);
    out.signer = signer;
    pass("signature", `well-formed, low-s, recovers to ${signer}`);
    if (doc.signer !== undefined && !sameAddress(doc.signer, signer)) {
      throw new VerifyError("wrong-signer", `the document names ${doc.signer}, the signature recovers to ${signer}`);
    }
    if (!trusted.some((s) => sameAddress(s.address, signer))) {
      throw new VerifyError("wrong-signer", `signed by ${signer}, which is not among the trusted signers ${trusted.map((s) => s.address).join(", ")}`);
    }
    pass("signer", `${signer} is a trusted realm signer${inPeriod(trusted, signer, m.time, "receipt")}`);
    if (intent !== undefined) {
      if (typeof m.intent !== "string" || m.intent.toLowerCase() !== String(intent).toLowerCase()) {
        throw new VerifyError("wrong-intent", `the receipt is for intent ${m.intent}, not ${intent}`);
      }
      pass("intent", `for intent ${m.intent}`);
    }

    const pf = proof !== undefined && proof !== null ? proof : doc.proof;
    if (!pf) {
      if (checkpoint) throw new VerifyError("bad-proof", "a checkpoint was given but no inclusion proof to connect the receipt to it");
      out.ok = true;
      pass("proof", "none given: the receipt is signed but not yet shown to be in a checkpoint");
      return out;
    }
    const cdigest = checkTyped(pf.checkpoint, "Checkpoint", CHECKPOINT_TYPE, domain, "checkpoint", "bad-checkpoint");
    if (pf.checkpoint_digest !== undefined && String(pf.checkpoint_digest).toLowerCase() !== cdigest) {
      throw new VerifyError("bad-checkpoint", `the proof says checkpoint digest ${pf.checkpoint_digest}, its typed data hashes to ${cdigest}`);
    }
    let csigner;
    try {
      csigner = recoverAddress(cdigest, pf.checkpoint_signature);
    } catch (e) {
      throw new VerifyError("bad-checkpoint", `checkpoint signature: ${e.message}`);
    }
    if (pf.checkpoint_signer !== undefined && !sameAddress(pf.checkpoint_signer, csigner)) {
      throw new VerifyError("bad-checkpoint", `the proof names checkpoint signer ${pf.checkpoint_signer}, the signature recovers to ${csigner}`);
    }
    if (!trusted.some((s) => sameAddress(s.address, csigner))) {
      throw new VerifyError("bad-checkpoint", `the checkpoint is signed by ${csigner}, which is not among the trusted signers`);
    }
    inPeriod(trusted, csigner, pf.checkpoint.message.time, "checkpoint");
    pass("checkpoint", `checkpoint ${cdigest} signed by ${csigner}`);
    if (checkpoint) {
      let other;
      try {
        other = checkTyped(checkpoint.checkpoint, "Checkpoint", CHECKPOINT_TYPE, domain, "given checkpoint", "bad-checkpoint");
      } catch (e) {
        throw new VerifyError("checkpoint-mismatch", e.detail || e.message);
      }
      if (other !== cdigest) {
        throw new VerifyError("checkpoint-mismatch", `the proof's checkpoint ${cdigest} is not the given checkpoint ${other}`);
      }
      pass("published-checkpoint", `the proof's checkpoint is the published one (${other})`);
    }
    const cm = pf.checkpoint.message;
    if (cm.chain !== m.chain) throw new VerifyError("bad-proof", `the checkpoint covers chain ${short(cm.chain)}, the receipt is on ${short(m.chain)}`);
    let leaf, first, count, index, path, root;
    try {
      leaf = toBigInt(pf.leaf_index, "leaf_index");
      first = toBigInt(cm.first, "first");
      count = toBigInt(cm.count, "count");
      index = toBigInt(m.index, "index");
      if (!Array.isArray(pf.path)) throw new VerifyError("malformed", "path: want a list of hashes");
      path = pf.path.map((h) => hexToBytes(h, 32));
      root = hexToBytes(cm.root, 32);
    } catch (e) {
      throw new VerifyError("bad-proof", e.detail || e.message);
    }
    if (leaf < 0n || index !== first + leaf) {
      throw new VerifyError("bad-proof", `leaf ${leaf} of a checkpoint starting at receipt ${first} is not receipt ${index}`);
    }
    if (!verifyInclusion(hexToBytes(digest, 32), leaf, count, path, root)) {
      throw new VerifyError("bad-proof", `the audit path does not lead from the receipt to the checkpoint's root ${cm.root}`);
    }
    pass("inclusion", `receipt ${index} is leaf ${leaf} of ${count} under root ${cm.root}`);
    out.ok = true;
    return out;
  } catch (e) {
    const code = e instanceof VerifyError ? e.code : "error";
    const detail = e instanceof VerifyError ? e.detail : String(e && e.message ? e.message : e);
    checks.push({ check: code, ok: false, detail });
    out.code = code;
    out.reason = `${code}: ${detail}`;
    return out;
  }
}
