import { p256 } from "@noble/curves/nist.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { randomBytes } from "@noble/hashes/utils.js";
import { decodeBase64url, encodeBase64url } from "../base64url.js";
import { concatBytes } from "../eip712.js";
import type {
  AuthenticationResponseJSON,
  CreationOptionsJSON,
  PasskeyAuthenticator,
  RegistrationResponseJSON,
  RequestOptionsJSON,
} from "../passkeys.js";
import { PasskeyError } from "../passkeys.js";
import { encodeCBOR } from "./cbor.js";

// Authenticator data flags (WebAuthn §6.1).
const flagUP = 0x01;
const flagUV = 0x04;
const flagBE = 0x08;
const flagBS = 0x10;
const flagAT = 0x40;
/** COSE algorithm ES256: ECDSA on P-256 with SHA-256. */
const coseES256 = -7;
// SubjectPublicKeyInfo DER prefix of an uncompressed P-256 point
// (id-ecPublicKey, prime256v1), followed by the 65-byte point.
const spkiP256Prefix = Uint8Array.from([
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
  0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
]);

interface Credential {
  id: Uint8Array;
  rpId: string;
  userHandle: Uint8Array;
  secretKey: Uint8Array;
  counter: number;
  synced: boolean;
}

/** The knobs of a software authenticator. */
export interface SoftwareAuthenticatorOptions {
  /** The web origin the client runs at (clientDataJSON.origin), e.g. the realm's URL. */
  origin: string;
  /** Make new credentials backup eligible and backed up, with a counter that stays 0 (a synced passkey). */
  synced?: boolean;
  /** Set the UV flag (default true). */
  userVerified?: boolean;
}

/**
 * SoftwareAuthenticator is a WebAuthn authenticator and client in
 * software, for tests and headless tools: it creates resident P-256
 * credentials with "none" attestation and signs assertions, answering
 * with exactly the JSON a browser's PublicKeyCredential.toJSON() gives, so
 * the realm's real verification runs end to end without a browser. It
 * follows the specification rather than being configurable; the few knobs
 * are the things a test needs to vary.
 */
export class SoftwareAuthenticator implements PasskeyAuthenticator {
  readonly origin: string;
  readonly aaguid: Uint8Array = new TextEncoder().encode("zr-webauthntest!");
  synced: boolean;
  userVerified: boolean;
  readonly #creds: Credential[] = [];

  constructor(opts: SoftwareAuthenticatorOptions) {
    this.origin = opts.origin;
    this.synced = opts.synced ?? false;
    this.userVerified = opts.userVerified ?? true;
  }

  /**
   * Exports the credentials, private keys included, as JSON: for a tool
   * that keeps its identity between runs, or tests that share one avatar
   * across processes. Whoever reads it holds the passkeys.
   */
  exportCredentials(): string {
    return JSON.stringify(
      this.#creds.map((c) => ({
        id: encodeBase64url(c.id),
        rp_id: c.rpId,
        user_handle: encodeBase64url(c.userHandle),
        secret_key: encodeBase64url(c.secretKey),
        counter: c.counter,
        synced: c.synced,
      })),
    );
  }

  /** Adds the credentials {@link exportCredentials} wrote; throws on anything malformed. */
  importCredentials(json: string): void {
    const list: unknown = JSON.parse(json);
    if (!Array.isArray(list)) throw new TypeError("credentials: want a JSON array");
    const parsed = list.map((v: Record<string, unknown>): Credential => {
      const secretKey = decodeBase64url(String(v.secret_key));
      if (!p256.utils.isValidSecretKey(secretKey)) throw new TypeError("credentials: not a P-256 secret key");
      if (typeof v.rp_id !== "string" || typeof v.counter !== "number") throw new TypeError("credentials: rp_id and counter are required");
      return {
        id: decodeBase64url(String(v.id)),
        rpId: v.rp_id,
        userHandle: decodeBase64url(String(v.user_handle)),
        secretKey,
        counter: v.counter,
        synced: v.synced === true,
      };
    });
    this.#creds.push(...parsed);
  }

  /** The ids of the credentials held, oldest first, base64url. */
  credentialIds(): string[] {
    return this.#creds.map((c) => encodeBase64url(c.id));
  }

  async create(o: CreationOptionsJSON): Promise<RegistrationResponseJSON> {
    const rpId = this.#rpId(o.rp.id);
    if (!o.pubKeyCredParams.some((p) => p.type === "public-key" && p.alg === coseES256)) {
      throw new PasskeyError("NotSupportedError: the relying party does not accept ES256");
    }
    const userHandle = decodeBase64url(o.user.id);
    if (userHandle.length === 0 || userHandle.length > 64) throw new PasskeyError("user.id is not 1..64 bytes");
    decodeBase64url(o.challenge);
    for (const ex of o.excludeCredentials ?? []) {
      const exId = encodeBase64url(decodeBase64url(ex.id));
      if (this.#creds.some((c) => c.rpId === rpId && encodeBase64url(c.id) === exId)) {
        throw new PasskeyError("InvalidStateError: a credential in excludeCredentials is present");
      }
    }
    const secretKey = p256.utils.randomSecretKey();
    const point = p256.getPublicKey(secretKey, false);
    const cred: Credential = { id: randomBytes(32), rpId, userHandle, secretKey, counter: 0, synced: this.synced };
    // A resident credential replaces an older one for the same account.
    for (let i = this.#creds.length - 1; i >= 0; i--) {
      const c = this.#creds[i]!;
      if (c.rpId === rpId && equal(c.userHandle, userHandle)) this.#creds.splice(i, 1);
    }
    this.#creds.push(cred);

    const coseKey = encodeCBOR(
      new Map<number, number | Uint8Array>([
        [1, 2], // kty: EC2
        [3, coseES256],
        [-1, 1], // crv: P-256
        [-2, point.slice(1, 33)],
        [-3, point.slice(33, 65)],
      ]),
    );
    const idLength = Uint8Array.of(cred.id.length >> 8, cred.id.length & 0xff);
    const authData = concatBytes(this.#authData(cred, flagAT, 0), this.aaguid, idLength, cred.id, coseKey);
    const attestationObject = encodeCBOR({ fmt: "none", attStmt: {}, authData });
    const clientData = clientDataJSON("webauthn.create", o.challenge, this.origin);
    return credentialJSON(cred, {
      clientDataJSON: encodeBase64url(clientData),
      authenticatorData: encodeBase64url(authData),
      transports: ["internal", "hybrid"],
      publicKey: encodeBase64url(concatBytes(spkiP256Prefix, point)),
      publicKeyAlgorithm: coseES256,
      attestationObject: encodeBase64url(attestationObject),
    });
  }

  async get(o: RequestOptionsJSON): Promise<AuthenticationResponseJSON> {
    const rpId = this.#rpId(o.rpId);
    decodeBase64url(o.challenge);
    const allowed = (o.allowCredentials ?? []).map((d) => encodeBase64url(decodeBase64url(d.id)));
    const cred = [...this.#creds]
      .reverse()
      .find((c) => c.rpId === rpId && (allowed.length === 0 || allowed.includes(encodeBase64url(c.id))));
    if (!cred) throw new PasskeyError(`NotAllowedError: no credential for ${rpId}`);
    if (!cred.synced) cred.counter++;
    const authData = this.#authData(cred, 0, cred.counter);
    const clientData = clientDataJSON("webauthn.get", o.challenge, this.origin);
    // ES256 signs SHA-256(authData || SHA-256(clientDataJSON)), DER-encoded.
    const signature = p256.sign(concatBytes(authData, sha256(clientData)), cred.secretKey, { format: "der", prehash: true });
    return credentialJSON(cred, {
      clientDataJSON: encodeBase64url(clientData),
      authenticatorData: encodeBase64url(authData),
      signature: encodeBase64url(signature),
      userHandle: encodeBase64url(cred.userHandle),
    });
  }

  #authData(c: Credential, extra: number, counter: number): Uint8Array {
    let flags = flagUP | extra;
    if (this.userVerified) flags |= flagUV;
    if (c.synced) flags |= flagBE | flagBS;
    const counterBytes = Uint8Array.of((counter >>> 24) & 0xff, (counter >> 16) & 0xff, (counter >> 8) & 0xff, counter & 0xff);
    return concatBytes(sha256(new TextEncoder().encode(c.rpId)), Uint8Array.of(flags), counterBytes);
  }

  // The options' RP id, or the origin's host, as a browser defaults it.
  #rpId(rpId: string | undefined): string {
    if (rpId) return rpId;
    return new URL(this.origin).hostname;
  }
}

// credentialJSON wraps a ceremony's response as PublicKeyCredential.toJSON() does.
function credentialJSON<R>(cred: Credential, response: R) {
  return {
    id: encodeBase64url(cred.id),
    rawId: encodeBase64url(cred.id),
    type: "public-key" as const,
    response,
    authenticatorAttachment: "platform",
    clientExtensionResults: {},
  };
}

function clientDataJSON(type: string, challenge: string, origin: string): Uint8Array {
  // Member order as browsers write it.
  return new TextEncoder().encode(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
}


function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
