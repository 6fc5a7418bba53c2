import { secp256k1 } from "@noble/curves/secp256k1.js";
import {
  EIP712Error,
  addressOfPublicKey,
  concatBytes,
  encodeType,
  hashTypedData,
  hexToBytes,
  keccak256,
  recoverAddress,
  signDigest,
  toBigInt,
  type TypedData,
} from "./eip712.js";
import type { components } from "./generated/api.js";
import type { RealmClient } from "./http.js";

type Schemas = components["schemas"];
/** The EIP-712 domain every intent and receipt is signed under. */
export type Domain = Schemas["Domain"];
/** A transfer intent's message (amounts, nonces and deadlines are decimal strings). */
export type TransferMessage = Schemas["TransferMessage"];
/** A transfer's answer: the receipt, signed by the realm. */
export type TransferAnswer = Schemas["TransferAnswer"];
/** A receipt document (GET /v1/receipts/{digest}, a transfer's answer). */
export type Receipt = Schemas["Receipt"];

/**
 * What signs EIP-712 typed data for an address: a wallet through EIP-1193
 * ({@link eip1193Signer}), a local key ({@link localKeySigner}), or
 * anything else that answers `eth_signTypedData_v4`'s 65-byte signature.
 */
export interface TypedDataSigner {
  readonly address: string;
  signTypedData(typedData: TypedData): Promise<string>;
}

/** The part of an EIP-1193 provider (`window.ethereum`, WalletConnect, ...) signing needs. */
export interface EIP1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

/**
 * eip1193Signer signs with an injected wallet: `eth_signTypedData_v4` with
 * the realm's typed data, for the account given (ask the wallet for it
 * with `eth_requestAccounts` first). The signature is checked to recover
 * to that account before it is used.
 */
export function eip1193Signer(provider: EIP1193Provider, account: string): TypedDataSigner {
  return {
    address: account,
    async signTypedData(td) {
      const sig = await provider.request({ method: "eth_signTypedData_v4", params: [account, JSON.stringify(td)] });
      if (typeof sig !== "string") throw new EIP712Error("signature-encoding", "the wallet answered no signature");
      const signer = recoverAddress(hashTypedData(td), normalizeV(sig));
      if (signer.toLowerCase() !== account.toLowerCase()) {
        throw new EIP712Error("wrong-signer", `the wallet signed with ${signer}, not ${account}`);
      }
      return normalizeV(sig);
    },
  };
}

// Some wallets answer v as 0 or 1; the realm wants 27 or 28.
function normalizeV(sig: string): string {
  if (/^0x[0-9a-fA-F]{128}0[01]$/.test(sig)) return sig.slice(0, 130) + (27 + Number(sig.slice(130))).toString(16);
  return sig;
}

/** localKeySigner signs with a secp256k1 secret key held here (32 bytes, or 0x hex). */
export function localKeySigner(secretKey: Uint8Array | string): TypedDataSigner {
  const key = typeof secretKey === "string" ? hexToBytes(secretKey, 32) : secretKey;
  if (!secp256k1.utils.isValidSecretKey(key)) throw new EIP712Error("malformed", "not a secp256k1 secret key");
  const address = addressOfPublicKey(secp256k1.getPublicKey(key, false));
  return {
    address,
    async signTypedData(td) {
      return signDigest(hashTypedData(td), key);
    },
  };
}

/** A fresh random secp256k1 secret key, for a new wallet. */
export function randomSecretKey(): Uint8Array {
  return secp256k1.utils.randomSecretKey();
}

/**
 * Market is the realm's marketplace for one signed-in avatar: wallets,
 * transfer intents signed by their owner, mints, and receipts.
 */
export class Market {
  constructor(private readonly client: RealmClient) {}

  /** The EIP-712 domain, the realm's receipt signer and treasury. */
  domain(signal?: AbortSignal): Promise<Schemas["AssetDomain"]> {
    return this.client.call("getAssetDomain", signal ? { signal } : {});
  }

  /** Links a wallet to the avatar: the wallet signs the realm's link payload. */
  async linkWallet(signer: TypedDataSigner, signal?: AbortSignal): Promise<Schemas["Wallet"]> {
    const s = signal ? { signal } : {};
    const payload = await this.client.call("getLinkPayload", { body: { wallet: signer.address }, ...s });
    const signature = await signer.signTypedData(payload.typed_data as TypedData);
    const deadline = String((payload.typed_data.message as { deadline?: unknown }).deadline ?? "");
    return this.client.call("linkWallet", { body: { wallet: signer.address, deadline, signature }, ...s });
  }

  /** The avatar's wallets and custodial address, with their next nonces. */
  wallet(signal?: AbortSignal): Promise<Schemas["Wallet"]> {
    return this.client.call("getWallet", signal ? { signal } : {});
  }

  /**
   * Transfers an asset: asks the realm for the intent's typed data, has the
   * owner sign it, checks that the typed data is the intent asked for and
   * hashes to the digest the realm named, and applies it. The answer is
   * the realm's signed receipt; verify it with {@link verifyReceipt}.
   */
  async transfer(
    intent: TransferMessage,
    signer: TypedDataSigner,
    opts: { idempotencyKey?: string; signal?: AbortSignal } = {},
  ): Promise<TransferAnswer> {
    const s = opts.signal ? { signal: opts.signal } : {};
    const payload = await this.client.call("getTransferPayload", { body: { intent }, ...s });
    const td = payload.typed_data as TypedData;
    // Sign only what was asked for: the realm's typed data must carry this
    // intent, and hash to the digest it says.
    for (const [k, v] of Object.entries(intent)) {
      if (v !== undefined && String(td.message[k]).toLowerCase() !== String(v).toLowerCase()) {
        throw new EIP712Error("wrong-intent", `the realm's typed data has ${k} ${String(td.message[k])}, the intent ${String(v)}`);
      }
    }
    if (hashTypedData(td) !== payload.digest.toLowerCase()) {
      throw new EIP712Error("digest-mismatch", "the realm's typed data does not hash to the digest it named");
    }
    const signature = await signer.signTypedData(td);
    const answer = await this.client.call("applyTransfer", {
      body: { intent, signature },
      ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}),
      ...s,
    });
    // 202 with a waiting action answers an agent's transfer only (DPoP);
    // a person's transfer is applied or refused.
    if (!("receipt" in answer)) {
      throw new Error(`the realm answered a waiting agent action (${answer.id}) to a person's transfer`);
    }
    return answer;
  }

  /** Mints to an address (needs the realm's minting role). */
  mint(body: Schemas["MintRequest"], signal?: AbortSignal): Promise<Schemas["Sequence"]> {
    return this.client.call("mint", { body, ...(signal ? { signal } : {}) });
  }

  /** Every realm node's receipt signer addresses, current and retired, with their periods. */
  async receiptSigners(signal?: AbortSignal): Promise<Schemas["Signers"]["signers"]> {
    return (await this.client.call("listReceiptSigners", signal ? { signal } : {})).signers;
  }

  /** A receipt by intent or receipt digest; with `proof`, its inclusion proof in a signed checkpoint. */
  receipt(digest: string, opts: { proof?: boolean; signal?: AbortSignal } = {}): Promise<Receipt> {
    const s = opts.signal ? { signal: opts.signal } : {};
    return opts.proof
      ? this.client.call("getReceiptProof", { path: { digest }, ...s })
      : this.client.call("getReceipt", { path: { digest }, ...s });
  }
}

/** A signer the holder trusts: an address, or an address for a period (RFC 3339; `until` optional). */
export type TrustedSigner = string | { address: string; since?: string; until?: string | null };

/** An inclusion proof (the `proof` of GET /v1/receipts/{digest}/proof). */
export type ReceiptProof = NonNullable<Receipt["proof"]>;

/** A published checkpoint (an entry of GET /v1/checkpoints). */
export interface PublishedCheckpoint {
  checkpoint: TypedData;
  [k: string]: unknown;
}

/** What {@link verifyReceipt} needs besides the receipt. */
export interface VerifyOptions {
  /** The realm's EIP-712 domain (`domain` of GET /v1/assets/domain). */
  domain: Domain;
  /**
   * The receipt signers the holder trusts: a bare address for anything it
   * signed, or with its period, so that a retired key stolen later cannot
   * vouch for a receipt dated after its retirement. Pin them out of band
   * (`zerorealm keys export-public`) to trust no realm node.
   */
  signers: TrustedSigner[];
  /** The intent digest the receipt must be for, when known. */
  intent?: string;
  /** An inclusion proof obtained separately; default the receipt's own. */
  proof?: ReceiptProof | null;
  /** A checkpoint obtained separately (GET /v1/checkpoints), which the proof's checkpoint must be. */
  checkpoint?: PublishedCheckpoint | null;
}

/** The outcome of a verification: every check, and the first failure's code and reason. */
export interface Verification {
  ok: boolean;
  checks: Array<{ check: string; ok: boolean; detail: string }>;
  code: string;
  reason: string;
  signer: string;
  digest: string;
}

const domainType = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
const receiptType = "Receipt(bytes32 intent,uint256 sequence,string chain,uint256 index,bytes32 previous,uint256 time)";
const checkpointType = "Checkpoint(string chain,uint256 first,uint256 count,bytes32 root,bytes32 previous,uint256 time)";
// A signing node's clock may be adjusted between stamping a key's period and
// stamping what the key signed.
const periodSlackSeconds = 60;

// loose is what a document from elsewhere is until checked: any field may
// be missing or of any type.
type Loose = Record<string, any>;

/**
 * verifyReceipt checks a receipt offline, trusting only the domain and
 * the signers given: the documented EIP-712 types, the domain, the digest,
 * a low-s signature recovering to a trusted signer within its period,
 * the intent, and, when the document carries one or one is given, the
 * RFC 9162 inclusion proof (keccak-256, leaves 0x00 || digest, nodes
 * 0x01 || left || right) in a checkpoint signed by a trusted signer, which
 * must be the published checkpoint when one is given. It never throws:
 * the answer lists every check made and names the first that failed
 * (code: no-domain, no-signers, malformed, wrong-type, wrong-domain,
 * digest-mismatch, signature-encoding, signature-high-s,
 * signature-invalid, wrong-signer, outside-period, wrong-intent,
 * bad-checkpoint, checkpoint-mismatch, bad-proof).
 */
export function verifyReceipt(receipt: Receipt | TransferAnswer, opts: VerifyOptions): Verification {
  const out: Verification = { ok: false, checks: [], code: "", reason: "", signer: "", digest: "" };
  const pass = (check: string, detail: string) => out.checks.push({ check, ok: true, detail });
  const { domain, signers, intent, proof, checkpoint } = (opts ?? {}) as Partial<VerifyOptions>;
  try {
    if (!domain || typeof domain !== "object") throw new EIP712Error("no-domain", "the realm's EIP-712 domain is needed to know what the receipt must be bound to");
    const trusted = trustEntries(signers ?? []);
    if (trusted.length === 0) throw new EIP712Error("no-signers", "no trusted signer was given: a valid signature by anyone would prove nothing");
    let doc = receipt as Loose;
    // A transfer's answer holds the receipt document one level down.
    if (doc && typeof doc === "object" && doc.signature === undefined && doc.receipt && doc.receipt.signature !== undefined) doc = doc.receipt;
    if (!doc || typeof doc !== "object" || !doc.receipt || typeof doc.signature !== "string") {
      throw new EIP712Error("malformed", "not a receipt document (receipt typed data and signature)");
    }
    const td = doc.receipt as TypedData;
    const digest = checkTyped(td, "Receipt", receiptType, domain, "receipt");
    out.digest = digest;
    pass("type", "a Receipt of the documented shape");
    pass("domain", `bound to ${domain.name} v${domain.version}, chain id ${domain.chainId}, contract ${domain.verifyingContract}`);
    const m = td.message as Loose;
    if (doc.digest !== undefined && String(doc.digest).toLowerCase() !== digest) {
      throw new EIP712Error("digest-mismatch", `the document says digest ${preview(doc.digest)}, its typed data hashes to ${digest}: the receipt was altered`);
    }
    pass("digest", `EIP-712 digest ${digest}`);
    const signer = recoverAddress(digest, doc.signature);
    out.signer = signer;
    pass("signature", `well-formed, low-s, recovers to ${signer}`);
    if (doc.signer !== undefined && !sameAddress(doc.signer, signer)) {
      throw new EIP712Error("wrong-signer", `the document names ${preview(doc.signer)}, the signature recovers to ${signer}`);
    }
    if (!trusted.some((s) => sameAddress(s.address, signer))) {
      throw new EIP712Error("wrong-signer", `signed by ${signer}, which is not among the trusted signers ${trusted.map((s) => s.address).join(", ")}`);
    }
    pass("signer", `${signer} is a trusted realm signer${inPeriod(trusted, signer, m.time, "receipt")}`);
    if (intent !== undefined) {
      if (typeof m.intent !== "string" || m.intent.toLowerCase() !== String(intent).toLowerCase()) {
        throw new EIP712Error("wrong-intent", `the receipt is for intent ${preview(m.intent)}, not ${intent}`);
      }
      pass("intent", `for intent ${m.intent}`);
    }

    const pf = (proof !== undefined && proof !== null ? proof : doc.proof) as Loose | undefined | null;
    if (!pf) {
      if (checkpoint) throw new EIP712Error("bad-proof", "a checkpoint was given but no inclusion proof to connect the receipt to it");
      out.ok = true;
      pass("proof", "none given: the receipt is signed but not yet shown to be in a checkpoint");
      return out;
    }
    const ctd = pf.checkpoint as TypedData;
    const cdigest = checkTyped(ctd, "Checkpoint", checkpointType, domain, "checkpoint", "bad-checkpoint");
    if (pf.checkpoint_digest !== undefined && String(pf.checkpoint_digest).toLowerCase() !== cdigest) {
      throw new EIP712Error("bad-checkpoint", `the proof says checkpoint digest ${preview(pf.checkpoint_digest)}, its typed data hashes to ${cdigest}`);
    }
    let csigner: string;
    try {
      csigner = recoverAddress(cdigest, pf.checkpoint_signature);
    } catch (e) {
      throw new EIP712Error("bad-checkpoint", `checkpoint signature: ${e instanceof EIP712Error ? e.detail : String(e)}`);
    }
    if (pf.checkpoint_signer !== undefined && !sameAddress(pf.checkpoint_signer, csigner)) {
      throw new EIP712Error("bad-checkpoint", `the proof names checkpoint signer ${preview(pf.checkpoint_signer)}, the signature recovers to ${csigner}`);
    }
    if (!trusted.some((s) => sameAddress(s.address, csigner))) {
      throw new EIP712Error("bad-checkpoint", `the checkpoint is signed by ${csigner}, which is not among the trusted signers`);
    }
    const cm = ctd.message as Loose;
    inPeriod(trusted, csigner, cm.time, "checkpoint");
    pass("checkpoint", `checkpoint ${cdigest} signed by ${csigner}`);
    if (checkpoint) {
      let other: string;
      try {
        other = checkTyped(checkpoint.checkpoint, "Checkpoint", checkpointType, domain, "given checkpoint", "bad-checkpoint");
      } catch (e) {
        throw new EIP712Error("checkpoint-mismatch", e instanceof EIP712Error ? e.detail : String(e));
      }
      if (other !== cdigest) throw new EIP712Error("checkpoint-mismatch", `the proof's checkpoint ${cdigest} is not the given checkpoint ${other}`);
      pass("published-checkpoint", `the proof's checkpoint is the published one (${other})`);
    }
    if (cm.chain !== m.chain) throw new EIP712Error("bad-proof", `the checkpoint covers chain ${preview(cm.chain)}, the receipt is on ${preview(m.chain)}`);
    let leaf: bigint, first: bigint, count: bigint, index: bigint, path: Uint8Array[], root: Uint8Array;
    try {
      leaf = toBigInt(pf.leaf_index, "leaf_index");
      first = toBigInt(cm.first, "first");
      count = toBigInt(cm.count, "count");
      index = toBigInt(m.index, "index");
      if (!Array.isArray(pf.path)) throw new EIP712Error("malformed", "path: want a list of hashes");
      path = pf.path.map((h: unknown) => hexToBytes(h, 32));
      root = hexToBytes(cm.root, 32);
    } catch (e) {
      throw new EIP712Error("bad-proof", e instanceof EIP712Error ? e.detail : String(e));
    }
    if (leaf < 0n || index !== first + leaf) throw new EIP712Error("bad-proof", `leaf ${leaf} of a checkpoint starting at receipt ${first} is not receipt ${index}`);
    if (!verifyInclusion(hexToBytes(digest, 32), leaf, count, path, root)) {
      throw new EIP712Error("bad-proof", `the audit path does not lead from the receipt to the checkpoint's root ${preview(cm.root)}`);
    }
    pass("inclusion", `receipt ${index} is leaf ${leaf} of ${count} under root ${preview(cm.root)}`);
    out.ok = true;
  } catch (e) {
    out.code = e instanceof EIP712Error ? e.code : "error";
    const detail = e instanceof EIP712Error ? e.detail : String(e instanceof Error ? e.message : e);
    out.checks.push({ check: out.code, ok: false, detail });
    out.reason = `${out.code}: ${detail}`;
  }
  return out;
}

function sameAddress(a: unknown, b: unknown): boolean {
  return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
}

// preview shows a value of a document in a reason, cut short.
function preview(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
  return s.length > 80 ? s.slice(0, 77) + "..." : s;
}

// checkTyped checks that typed data is of the documented type, in the
// expected domain, with no message field the type does not sign, and
// returns its digest. A checkpoint's faults all read as (as); a
// receipt's are told apart.
function checkTyped(td: TypedData, primary: string, typeString: string, domain: Domain, what: string, as = ""): string {
  const fail = (code: string, detail: string) => new EIP712Error(as || code, detail);
  const t = td as unknown as Loose;
  if (!t || typeof t !== "object" || !t.types || !t.message || typeof t.message !== "object" || !t.domain) throw fail("malformed", `the ${what} is not EIP-712 typed data`);
  if (t.primaryType !== primary) throw fail("wrong-type", `the ${what} is a ${preview(t.primaryType)}, not a ${primary}`);
  let got: string, dom: string;
  try {
    got = encodeType(primary, t.types);
    dom = encodeType("EIP712Domain", t.types);
  } catch (e) {
    throw fail("wrong-type", e instanceof EIP712Error ? e.detail : String(e));
  }
  if (got !== typeString || dom !== domainType) throw fail("wrong-type", `the ${what}'s types are ${preview(got)}, not the realm's ${typeString}`);
  const fields = t.types[primary] as Array<{ name: string }>;
  for (const k of Object.keys(t.message)) {
    if (!fields.some((f) => f.name === k)) throw fail("wrong-type", `the ${what} carries ${preview(k)}, which its signature does not cover`);
  }
  const d = t.domain as Loose;
  const mismatch: string[] = [];
  if (d.name !== domain.name) mismatch.push(`name ${preview(d.name)}`);
  if (d.version !== domain.version) mismatch.push(`version ${preview(d.version)}`);
  let chain: bigint | null = null;
  try {
    chain = toBigInt(d.chainId, "chainId");
  } catch {
    // reported as a mismatch
  }
  if (chain === null || chain !== toBigInt(domain.chainId, "the expected chainId")) mismatch.push(`chain id ${preview(d.chainId)}`);
  if (!sameAddress(d.verifyingContract, domain.verifyingContract)) mismatch.push(`contract ${preview(d.verifyingContract)}`);
  if (mismatch.length) {
    throw fail("wrong-domain", `the ${what} was signed for ${mismatch.join(", ")}; the realm's domain is ${domain.name} v${domain.version}, chain id ${domain.chainId}, contract ${domain.verifyingContract}`);
  }
  return hashTypedData(td);
}

/** RFC 9162 §2.1.3.2 with keccak-256: does path lead from the leaf at index of a tree of size to root? */
export function verifyInclusion(leafDigest: Uint8Array, index: bigint, size: bigint, path: Uint8Array[], root: Uint8Array): boolean {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1n;
  let r = keccak256(concatBytes(Uint8Array.of(0), leafDigest));
  for (const p of path) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = keccak256(concatBytes(Uint8Array.of(1), p, r));
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = keccak256(concatBytes(Uint8Array.of(1), r, p));
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && r.length === root.length && r.every((x, i) => x === root[i]);
}

interface TrustEntry {
  address: string;
  since: number | null;
  until: number | null;
}

// trustEntries normalizes the signers; what does not parse is dropped, so
// the list only ever trusts less.
function trustEntries(signers: TrustedSigner[]): TrustEntry[] {
  if (!Array.isArray(signers)) return [];
  const seconds = (t: string | null | undefined) => (t === undefined || t === null ? null : Math.floor(Date.parse(t) / 1000));
  const out: TrustEntry[] = [];
  for (const s of signers) {
    if (typeof s !== "string" && (!s || typeof s !== "object" || typeof s.address !== "string")) continue;
    const e = typeof s === "string" ? { address: s, since: null, until: null } : { address: s.address, since: seconds(s.since), until: seconds(s.until) };
    if (!/^0x[0-9a-fA-F]{40}$/.test(e.address) || Number.isNaN(e.since) || Number.isNaN(e.until)) continue;
    out.push(e);
  }
  return out;
}

// inPeriod checks that what signer signed at time (the document's signed
// Unix seconds) falls in a period the holder trusts the key for, and says
// which; it throws outside-period otherwise.
function inPeriod(trusted: TrustEntry[], signer: string, time: unknown, what: string): string {
  const mine = trusted.filter((s) => sameAddress(s.address, signer));
  if (mine.some((s) => s.since === null && s.until === null)) return "";
  let at: number;
  try {
    at = Number(toBigInt(time, `${what} time`));
  } catch {
    throw new EIP712Error("outside-period", `the ${what} carries no time to check against ${signer}'s signing period`);
  }
  const iso = (t: number) => new Date(t * 1000).toISOString().replace(".000Z", "Z");
  const ok = mine.find((s) => (s.since === null || at >= s.since - periodSlackSeconds) && (s.until === null || at <= s.until + periodSlackSeconds));
  if (!ok) {
    const periods = mine.map((s) => `${s.since === null ? "…" : iso(s.since)} to ${s.until === null ? "now" : iso(s.until)}`).join(", ");
    throw new EIP712Error("outside-period", `the ${what} is dated ${iso(at)}, outside the period the holder trusts ${signer} for (${periods})`);
  }
  return `, signing in the period it was trusted for (${ok.since === null ? "…" : iso(ok.since)} to ${ok.until === null ? "now" : iso(ok.until)})`;
}
