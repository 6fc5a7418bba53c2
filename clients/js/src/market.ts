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

/**
 * verifyReceipt checks a receipt offline, trusting only the domain and
 * the signers given: the documented EIP-712 types, the domain, the digest,
 * a low-s signature recovering to a trusted signer within its period,
 * the intent, and, when the document carries one, the RFC 9162 inclusion
 * proof (keccak-256, leaves 0x00 || digest, nodes 0x01 || left || right)
 * in a checkpoint signed by a trusted signer. It never throws: the answer
 * lists the checks and names the first that failed.
 */
export function verifyReceipt(receipt: Receipt | TransferAnswer, opts: VerifyOptions): Verification {
  const out: Verification = { ok: false, checks: [], code: "", reason: "", signer: "", digest: "" };
  const pass = (check: string, detail: string) => out.checks.push({ check, ok: true, detail });
  try {
    const doc = ("sequence" in receipt && "receipt" in receipt && "signature" in receipt.receipt ? receipt.receipt : receipt) as Receipt;
    if (!doc || typeof doc !== "object" || !doc.receipt || typeof doc.signature !== "string") {
      throw new EIP712Error("malformed", "not a receipt document (receipt typed data and signature)");
    }
    const trusted = trustEntries(opts.signers);
    if (trusted.length === 0) throw new EIP712Error("no-signers", "no trusted signer was given: a valid signature by anyone would prove nothing");
    const td = doc.receipt as TypedData;
    const digest = checkTyped(td, "Receipt", receiptType, opts.domain, "receipt");
    out.digest = digest;
    pass("type", "a Receipt of the documented shape, in the realm's domain");
    if (doc.digest !== undefined && doc.digest.toLowerCase() !== digest) {
      throw new EIP712Error("digest-mismatch", `the document says digest ${doc.digest}, its typed data hashes to ${digest}: the receipt was altered`);
    }
    const signer = recoverAddress(digest, doc.signature);
    out.signer = signer;
    if (doc.signer !== undefined && doc.signer.toLowerCase() !== signer.toLowerCase()) {
      throw new EIP712Error("wrong-signer", `the document names ${doc.signer}, the signature recovers to ${signer}`);
    }
    inPeriod(trusted, signer, td.message.time, "receipt");
    pass("signature", `low-s, recovers to ${signer}, a trusted signer`);
    if (opts.intent !== undefined) {
      if (String(td.message.intent).toLowerCase() !== opts.intent.toLowerCase()) {
        throw new EIP712Error("wrong-intent", `the receipt is for intent ${String(td.message.intent)}, not ${opts.intent}`);
      }
      pass("intent", `for intent ${opts.intent}`);
    }
    const pf = doc.proof;
    if (!pf) {
      pass("proof", "none carried: the receipt is signed but not yet shown to be in a checkpoint");
      out.ok = true;
      return out;
    }
    const ctd = pf.checkpoint as TypedData;
    const cdigest = checkTyped(ctd, "Checkpoint", checkpointType, opts.domain, "checkpoint");
    if (pf.checkpoint_digest.toLowerCase() !== cdigest) throw new EIP712Error("bad-checkpoint", `the proof says checkpoint ${pf.checkpoint_digest}, its typed data hashes to ${cdigest}`);
    const csigner = recoverAddress(cdigest, pf.checkpoint_signature);
    inPeriod(trusted, csigner, ctd.message.time, "checkpoint");
    pass("checkpoint", `checkpoint ${cdigest} signed by ${csigner}`);
    const cm = ctd.message;
    if (cm.chain !== td.message.chain) throw new EIP712Error("bad-proof", "the checkpoint covers another chain");
    const leaf = BigInt(pf.leaf_index);
    const index = toBigInt(td.message.index, "index");
    if (leaf < 0n || index !== toBigInt(cm.first, "first") + leaf) throw new EIP712Error("bad-proof", `leaf ${leaf} is not receipt ${index}`);
    const path = pf.path.map((h) => hexToBytes(h, 32));
    if (!verifyInclusion(hexToBytes(digest, 32), leaf, toBigInt(cm.count, "count"), path, hexToBytes(cm.root, 32))) {
      throw new EIP712Error("bad-proof", `the audit path does not lead from the receipt to the checkpoint's root ${String(cm.root)}`);
    }
    pass("inclusion", `receipt ${index} is leaf ${leaf} under root ${String(cm.root)}`);
    out.ok = true;
  } catch (e) {
    out.code = e instanceof EIP712Error ? e.code : "error";
    const detail = e instanceof EIP712Error ? e.detail : String(e);
    out.checks.push({ check: out.code, ok: false, detail });
    out.reason = `${out.code}: ${detail}`;
  }
  return out;
}

function checkTyped(td: TypedData, primary: string, typeString: string, domain: Domain, what: string): string {
  if (!td || typeof td !== "object" || !td.types || !td.message || !td.domain) throw new EIP712Error("malformed", `the ${what} is not EIP-712 typed data`);
  if (td.primaryType !== primary) throw new EIP712Error("wrong-type", `the ${what} is a ${String(td.primaryType)}, not a ${primary}`);
  if (encodeType(primary, td.types) !== typeString || encodeType("EIP712Domain", td.types) !== domainType) {
    throw new EIP712Error("wrong-type", `the ${what}'s types are not the realm's ${typeString}`);
  }
  const fields = td.types[primary] as Array<{ name: string }>;
  for (const k of Object.keys(td.message)) {
    if (!fields.some((f) => f.name === k)) throw new EIP712Error("wrong-type", `the ${what} carries ${k}, which its signature does not cover`);
  }
  const d = td.domain;
  if (
    d.name !== domain.name ||
    d.version !== domain.version ||
    toBigInt(d.chainId, "chainId") !== toBigInt(domain.chainId, "chainId") ||
    String(d.verifyingContract).toLowerCase() !== domain.verifyingContract.toLowerCase()
  ) {
    throw new EIP712Error("wrong-domain", `the ${what} was signed for another domain than ${domain.name} v${domain.version}, chain ${domain.chainId}`);
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
  const seconds = (t: string | null | undefined) => (t === undefined || t === null ? null : Math.floor(Date.parse(t) / 1000));
  const out: TrustEntry[] = [];
  for (const s of signers ?? []) {
    const e = typeof s === "string" ? { address: s, since: null, until: null } : { address: s.address, since: seconds(s.since), until: seconds(s.until) };
    if (!/^0x[0-9a-fA-F]{40}$/.test(e.address) || Number.isNaN(e.since) || Number.isNaN(e.until)) continue;
    out.push(e);
  }
  return out;
}

function inPeriod(trusted: TrustEntry[], signer: string, time: unknown, what: string): void {
  const mine = trusted.filter((s) => s.address.toLowerCase() === signer.toLowerCase());
  if (mine.length === 0) throw new EIP712Error("wrong-signer", `the ${what} is signed by ${signer}, which is not among the trusted signers`);
  if (mine.some((s) => s.since === null && s.until === null)) return;
  const at = Number(toBigInt(time, `${what} time`));
  const ok = mine.some((s) => (s.since === null || at >= s.since - periodSlackSeconds) && (s.until === null || at <= s.until + periodSlackSeconds));
  if (!ok) throw new EIP712Error("outside-period", `the ${what} is dated ${new Date(at * 1000).toISOString()}, outside the period ${signer} is trusted for`);
}
