// EIP-712 typed data as eth_signTypedData_v4 carries it: hashing, signing
// with a secp256k1 key, and recovering the signer, on @noble/hashes'
// keccak-256 and @noble/curves' secp256k1. Signatures are 65 bytes
// r || s || v (v 27 or 28) with s in the lower half of the order, the
// form the realm accepts and produces.
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";

/** EIP-712 typed data: `types`, `primaryType`, `domain`, `message`. */
export interface TypedData {
  types: Record<string, unknown>;
  primaryType: string;
  domain: Record<string, unknown>;
  message: Record<string, unknown>;
}

/** Typed data or a signature that does not follow EIP-712 or the realm's rules. */
export class EIP712Error extends Error {
  constructor(
    readonly code: string,
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = "EIP712Error";
  }
}

const utf8 = new TextEncoder();

/** 0x-prefixed lowercase hex. */
export function bytesToHex(b: Uint8Array): string {
  let s = "0x";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Reads 0x-prefixed hex of whole bytes; `length`, when given, is the exact byte count. */
export function hexToBytes(h: unknown, length?: number): Uint8Array {
  if (typeof h !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(h)) {
    throw new EIP712Error("malformed", `${preview(h)} is not 0x-prefixed hex of whole bytes`);
  }
  const out = new Uint8Array((h.length - 2) / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 + 2 * i, 4 + 2 * i), 16);
  if (length !== undefined && out.length !== length) throw new EIP712Error("malformed", `${preview(h)} is ${out.length} bytes, want ${length}`);
  return out;
}

/** keccak-256 of bytes, or of a string as UTF-8. */
export function keccak256(data: Uint8Array | string): Uint8Array {
  return keccak_256(typeof data === "string" ? utf8.encode(data) : data);
}

/** The bytes of every part, in order. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function word(v: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function toBig(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

function preview(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 70 ? s.slice(0, 67) + "..." : s;
}

/** An integer field: a safe JS number, a decimal or 0x string, or a bigint. */
export function toBigInt(v: unknown, what: string): bigint {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new EIP712Error("malformed", `${what}: ${v} is not an exact integer`);
    return BigInt(v);
  }
  if (typeof v === "string" && /^(0x[0-9a-fA-F]+|-?[0-9]+)$/.test(v)) return BigInt(v);
  if (typeof v === "bigint") return v;
  throw new EIP712Error("malformed", `${what}: ${preview(v)} is not an integer`);
}

type Field = { name: string; type: string };

function fieldsOf(types: Record<string, unknown>, name: string): Field[] | undefined {
  const f = types[name];
  return Array.isArray(f) ? (f as Field[]) : undefined;
}

function baseType(t: string): string {
  const i = t.indexOf("[");
  return i < 0 ? t : t.slice(0, i);
}

function dependencies(primary: string, types: Record<string, unknown>, found = new Set<string>()): Set<string> {
  const fields = fieldsOf(types, primary);
  if (found.has(primary) || !fields) return found;
  found.add(primary);
  for (const f of fields) dependencies(baseType(f.type), types, found);
  return found;
}

/** The EIP-712 type string: the primary type, then the types it references, sorted by name. */
export function encodeType(primary: string, types: Record<string, unknown>): string {
  if (!fieldsOf(types, primary)) throw new EIP712Error("malformed", `no type ${primary} in the typed data`);
  const deps = [...dependencies(primary, types)].filter((t) => t !== primary).sort();
  return [primary, ...deps].map((t) => `${t}(${fieldsOf(types, t)!.map((f) => `${f.type} ${f.name}`).join(",")})`).join("");
}

function encodeValue(type: string, value: unknown, types: Record<string, unknown>, what: string): Uint8Array {
  if (fieldsOf(types, type)) return hashStruct(type, value, types, what);
  const arr = /^(.*)\[(\d*)\]$/.exec(type);
  if (arr) {
    if (!Array.isArray(value)) throw new EIP712Error("malformed", `${what}: want an array`);
    if (arr[2] !== "" && value.length !== Number(arr[2])) throw new EIP712Error("malformed", `${what}: want ${arr[2]} elements`);
    return keccak256(concatBytes(...value.map((v, i) => encodeValue(arr[1]!, v, types, `${what}[${i}]`))));
  }
  switch (type) {
    case "string":
      if (typeof value !== "string") throw new EIP712Error("malformed", `${what}: want a string`);
      return keccak256(value);
    case "bytes":
      return keccak256(hexToBytes(value));
    case "address":
      if (typeof value !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(value)) throw new EIP712Error("malformed", `${what}: ${preview(value)} is not an address`);
      return concatBytes(new Uint8Array(12), hexToBytes(value));
    case "bool":
      if (typeof value !== "boolean") throw new EIP712Error("malformed", `${what}: want true or false`);
      return word(value ? 1n : 0n);
  }
  let m = /^bytes(\d+)$/.exec(type);
  if (m) {
    const n = Number(m[1]);
    if (n < 1 || n > 32) throw new EIP712Error("malformed", `${what}: no type ${type}`);
    const out = new Uint8Array(32);
    out.set(hexToBytes(value, n));
    return out;
  }
  m = /^(u?)int(\d*)$/.exec(type);
  if (m) {
    const bits = BigInt(m[2] || "256");
    if (bits < 8n || bits > 256n || bits % 8n !== 0n) throw new EIP712Error("malformed", `${what}: no type ${type}`);
    const v = toBigInt(value, what);
    const lo = m[1] ? 0n : -(1n << (bits - 1n));
    const hi = m[1] ? (1n << bits) - 1n : (1n << (bits - 1n)) - 1n;
    if (v < lo || v > hi) throw new EIP712Error("malformed", `${what}: ${v} does not fit ${type}`);
    return word(v < 0n ? (1n << 256n) + v : v);
  }
  throw new EIP712Error("malformed", `${what}: unknown type ${type}`);
}

/** hashStruct of EIP-712. */
export function hashStruct(primary: string, data: unknown, types: Record<string, unknown>, what = primary): Uint8Array {
  if (data === null || typeof data !== "object" || Array.isArray(data)) throw new EIP712Error("malformed", `${what}: want an object`);
  const record = data as Record<string, unknown>;
  const parts = [keccak256(encodeType(primary, types))];
  for (const f of fieldsOf(types, primary)!) parts.push(encodeValue(f.type, record[f.name], types, `${what}.${f.name}`));
  return keccak256(concatBytes(...parts));
}

/** The EIP-712 digest, 0x hex: keccak256(0x19 0x01 || hashStruct(domain) || hashStruct(message)). */
export function hashTypedData(td: TypedData): string {
  if (!td || typeof td !== "object" || !td.types || typeof td.primaryType !== "string") {
    throw new EIP712Error("malformed", "not EIP-712 typed data (types, primaryType, domain, message)");
  }
  const domain = hashStruct("EIP712Domain", td.domain, td.types, "domain");
  const message = hashStruct(td.primaryType, td.message, td.types, "message");
  return bytesToHex(keccak256(concatBytes(Uint8Array.of(0x19, 0x01), domain, message)));
}

const N = secp256k1.Point.CURVE().n;

/** Reads r || s || v and applies the realm's rules: r, s in range, s low, v 27 or 28. */
export function parseSignature(hex: string): { r: bigint; s: bigint; recovery: number } {
  let b: Uint8Array;
  try {
    b = hexToBytes(hex, 65);
  } catch (e) {
    throw new EIP712Error("signature-encoding", `the signature must be 0x and 130 hex digits (r || s || v): ${(e as EIP712Error).detail}`);
  }
  const r = toBig(b.subarray(0, 32));
  const s = toBig(b.subarray(32, 64));
  const v = b[64]!;
  if (v !== 27 && v !== 28) throw new EIP712Error("signature-encoding", `recovery id v is ${v}, want 27 or 28`);
  if (r < 1n || r >= N) throw new EIP712Error("signature-encoding", "r is outside 1..n-1");
  if (s < 1n || s >= N) throw new EIP712Error("signature-encoding", "s is outside 1..n-1");
  if (s > N >> 1n) throw new EIP712Error("signature-high-s", "s is in the upper half of the curve order: a malleated signature");
  return { r, s, recovery: v - 27 };
}

/** The EIP-55 address that signed the 32-byte digest (0x hex). */
export function recoverAddress(digest: string, signature: string): string {
  const d = hexToBytes(digest, 32);
  const { r, s, recovery } = parseSignature(signature);
  let pub: Uint8Array;
  try {
    pub = new secp256k1.Signature(r, s, recovery).recoverPublicKey(d).toBytes(false);
  } catch (e) {
    throw new EIP712Error("signature-invalid", `no public key recovers from this signature: ${(e as Error).message}`);
  }
  return addressOfPublicKey(pub);
}

/** The EIP-55 address of an uncompressed secp256k1 public key (0x04 || x || y). */
export function addressOfPublicKey(pub: Uint8Array): string {
  return checksumAddress(keccak256(pub.subarray(1)).subarray(12));
}

/** The EIP-55 form of an address (20 bytes, or hex in any case). */
export function checksumAddress(address: Uint8Array | string): string {
  const lower = (typeof address === "string" ? bytesToHex(hexToBytes(address, 20)) : bytesToHex(address)).slice(2);
  const h = keccak256(lower);
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    const nibble = (h[i >> 1]! >> (i & 1 ? 0 : 4)) & 0xf;
    out += nibble >= 8 ? lower[i]!.toUpperCase() : lower[i]!;
  }
  return out;
}

/** Signs a 32-byte digest: r || s || v, v 27 or 28, low s (RFC 6979 deterministic). */
export function signDigest(digest: string, secretKey: Uint8Array): string {
  // noble's "recovered" format is recovery || r || s.
  const sig = secp256k1.sign(hexToBytes(digest, 32), secretKey, { prehash: false, format: "recovered", lowS: true });
  return bytesToHex(concatBytes(sig.subarray(1, 65), Uint8Array.of(27 + sig[0]!)));
}
