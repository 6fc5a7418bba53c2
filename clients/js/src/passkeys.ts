import { decodeBase64url, encodeBase64url } from "./base64url.js";
import type { components } from "./generated/api.js";
import type { RealmClient } from "./http.js";

type Schemas = components["schemas"];
/** Creation options as the realm sends them (WebAuthn's JSON form). */
export type CreationOptionsJSON = Schemas["PublicKeyCredentialCreationOptionsJSON"];
/** Request options as the realm sends them (WebAuthn's JSON form). */
export type RequestOptionsJSON = Schemas["PublicKeyCredentialRequestOptionsJSON"];
/** A new credential as PublicKeyCredential.toJSON() gives it. */
export type RegistrationResponseJSON = Schemas["RegistrationResponseJSON"];
/** An assertion as PublicKeyCredential.toJSON() gives it. */
export type AuthenticationResponseJSON = Schemas["AuthenticationResponseJSON"];
/** A registration's or sign-in's answer: the session, avatar and trust. */
export type SignedIn = Schemas["SignedIn"];
/** A step-up's answer. */
export type StepUpVerified = Schemas["StepUpVerified"];

/**
 * What creates and uses passkeys: the browser ({@link browserAuthenticator}),
 * or a software authenticator in tests and headless tools
 * (`@zerorealm/sdk/testing`).
 */
export interface PasskeyAuthenticator {
  create(options: CreationOptionsJSON, signal?: AbortSignal): Promise<RegistrationResponseJSON>;
  get(options: RequestOptionsJSON, signal?: AbortSignal): Promise<AuthenticationResponseJSON>;
}

/** The part of `navigator.credentials` passkeys use. */
export interface CredentialsContainerLike {
  create(options?: CredentialCreationOptions): Promise<Credential | null>;
  get(options?: CredentialRequestOptions): Promise<Credential | null>;
}

// The static JSON parsers of WebAuthn Level 3, where the browser has them.
interface PublicKeyCredentialJSONParsers {
  parseCreationOptionsFromJSON?: (o: unknown) => PublicKeyCredentialCreationOptions;
  parseRequestOptionsFromJSON?: (o: unknown) => PublicKeyCredentialRequestOptions;
}

/**
 * browserAuthenticator uses `navigator.credentials` with the JSON forms:
 * the browser's own `parseCreationOptionsFromJSON`/`parseRequestOptionsFromJSON`
 * and `toJSON()` where it has them, and an equivalent encoder where it does
 * not (older Safari and Firefox).
 */
export function browserAuthenticator(
  credentials: CredentialsContainerLike = globalThis.navigator.credentials,
  parsers: PublicKeyCredentialJSONParsers | undefined = (globalThis as { PublicKeyCredential?: PublicKeyCredentialJSONParsers })
    .PublicKeyCredential,
): PasskeyAuthenticator {
  return {
    async create(options, signal) {
      const publicKey = parsers?.parseCreationOptionsFromJSON
        ? parsers.parseCreationOptionsFromJSON(options)
        : creationOptionsFromJSON(options);
      const cred = await credentials.create(signal ? { publicKey, signal } : { publicKey });
      if (!cred) throw new PasskeyError("the browser created no credential");
      return credentialToJSON(cred as PublicKeyCredential) as RegistrationResponseJSON;
    },
    async get(options, signal) {
      const publicKey = parsers?.parseRequestOptionsFromJSON
        ? parsers.parseRequestOptionsFromJSON(options)
        : requestOptionsFromJSON(options);
      const cred = await credentials.get(signal ? { publicKey, signal } : { publicKey });
      if (!cred) throw new PasskeyError("the browser returned no assertion");
      return credentialToJSON(cred as PublicKeyCredential) as AuthenticationResponseJSON;
    },
  };
}

/** A ceremony the authenticator or browser could not complete. */
export class PasskeyError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PasskeyError";
  }
}

/** The fallback of PublicKeyCredential.parseCreationOptionsFromJSON. */
export function creationOptionsFromJSON(o: CreationOptionsJSON): PublicKeyCredentialCreationOptions {
  const out: PublicKeyCredentialCreationOptions = {
    ...(o as unknown as PublicKeyCredentialCreationOptions),
    challenge: decodeBase64url(o.challenge),
    user: { ...o.user, id: decodeBase64url(o.user.id) },
  };
  if (o.excludeCredentials) out.excludeCredentials = o.excludeCredentials.map(descriptorFromJSON);
  return out;
}

/** The fallback of PublicKeyCredential.parseRequestOptionsFromJSON. */
export function requestOptionsFromJSON(o: RequestOptionsJSON): PublicKeyCredentialRequestOptions {
  const out: PublicKeyCredentialRequestOptions = {
    ...(o as unknown as PublicKeyCredentialRequestOptions),
    challenge: decodeBase64url(o.challenge),
  };
  if (o.allowCredentials) out.allowCredentials = o.allowCredentials.map(descriptorFromJSON);
  return out;
}

function descriptorFromJSON(d: { id: string; type: string; transports?: string[] }): PublicKeyCredentialDescriptor {
  return { ...d, type: "public-key", id: decodeBase64url(d.id), transports: d.transports as AuthenticatorTransport[] | undefined } as PublicKeyCredentialDescriptor;
}

/** The fallback of PublicKeyCredential.toJSON(), for both ceremonies. */
export function credentialToJSON(cred: PublicKeyCredential): RegistrationResponseJSON | AuthenticationResponseJSON {
  const withJSON = cred as PublicKeyCredential & { toJSON?: () => unknown };
  if (typeof withJSON.toJSON === "function") return withJSON.toJSON() as RegistrationResponseJSON;
  const r = cred.response as AuthenticatorAttestationResponse & AuthenticatorAssertionResponse;
  const base = {
    id: cred.id,
    rawId: encodeBase64url(cred.rawId),
    type: "public-key" as const,
    clientExtensionResults: cred.getClientExtensionResults() as Record<string, unknown>,
    ...(cred.authenticatorAttachment ? { authenticatorAttachment: cred.authenticatorAttachment } : {}),
  };
  if ("attestationObject" in r && r.attestationObject) {
    const response: RegistrationResponseJSON["response"] = {
      clientDataJSON: encodeBase64url(r.clientDataJSON),
      attestationObject: encodeBase64url(r.attestationObject),
    };
    if (typeof r.getTransports === "function") response.transports = r.getTransports();
    if (typeof r.getAuthenticatorData === "function") response.authenticatorData = encodeBase64url(r.getAuthenticatorData());
    const key = typeof r.getPublicKey === "function" ? r.getPublicKey() : null;
    if (key) response.publicKey = encodeBase64url(key);
    if (typeof r.getPublicKeyAlgorithm === "function") response.publicKeyAlgorithm = r.getPublicKeyAlgorithm();
    return { ...base, response };
  }
  const response: AuthenticationResponseJSON["response"] = {
    clientDataJSON: encodeBase64url(r.clientDataJSON),
    authenticatorData: encodeBase64url(r.authenticatorData),
    signature: encodeBase64url(r.signature),
  };
  if (r.userHandle) response.userHandle = encodeBase64url(r.userHandle);
  return { ...base, response };
}

/** How a ceremony's session is handed over. */
export interface SessionOptions {
  /**
   * Ask for an HttpOnly cookie session (browsers on the realm's origin):
   * the token never reaches script, and the CSRF token is kept by the client.
   * Default false: a bearer token, kept by the client for its next calls.
   */
  useCookie?: boolean;
  signal?: AbortSignal;
}

/**
 * Passkeys runs the realm's WebAuthn ceremonies (registration, sign-in,
 * step-up, adding a passkey) with an authenticator, and keeps the session
 * it yields on the client.
 */
export class Passkeys {
  constructor(
    private readonly client: RealmClient,
    private readonly authenticator: PasskeyAuthenticator = browserAuthenticator(),
  ) {}

  /** Registers a new avatar with a new passkey and signs it in. */
  async register(name: string, opts: SessionOptions & { displayName?: string } = {}): Promise<SignedIn> {
    const body: Schemas["RegisterBeginRequest"] = { name };
    if (opts.displayName) body.display_name = opts.displayName;
    return this.#registerWith(body, opts);
  }

  /**
   * Adds a passkey to the signed-in avatar: a step-up with a passkey it
   * already holds, bound to its `add_passkey_action_digest`, then a
   * registration. The session stays the same.
   */
  async addPasskey(opts: { signal?: AbortSignal } = {}): Promise<SignedIn> {
    const me = await this.client.call("getMe", signalOpt(opts.signal));
    const digest = me.avatar.add_passkey_action_digest;
    if (!digest) throw new PasskeyError("the realm did not name the add-passkey action digest");
    await this.stepUp(digest, opts);
    return this.#registerWith({}, { ...opts, keepSession: true });
  }

  async #registerWith(
    body: Schemas["RegisterBeginRequest"],
    opts: SessionOptions & { keepSession?: boolean },
  ): Promise<SignedIn> {
    const begin = await this.client.call("beginRegistration", { body, ...signalOpt(opts.signal) });
    const credential = await this.authenticator.create(begin.publicKey, opts.signal);
    const finish: Schemas["RegisterFinishRequest"] = { ceremony_id: begin.ceremony_id, credential };
    if (opts.useCookie) finish.use_cookie = true;
    const signedIn = await this.client.call("finishRegistration", { body: finish, ...signalOpt(opts.signal) });
    if (!opts.keepSession) this.#adopt(signedIn);
    return signedIn;
  }

  /**
   * Signs in with a passkey: a discoverable one the authenticator picks, or
   * one of the named avatar's.
   */
  async signIn(opts: SessionOptions & { name?: string } = {}): Promise<SignedIn> {
    const body: Schemas["LoginBeginRequest"] = opts.name ? { name: opts.name } : {};
    const begin = await this.client.call("beginLogin", { body, ...signalOpt(opts.signal) });
    const credential = await this.authenticator.get(begin.publicKey, opts.signal);
    const finish: Schemas["LoginFinishRequest"] = { ceremony_id: begin.ceremony_id, credential };
    if (opts.useCookie) finish.use_cookie = true;
    const signedIn = await this.client.call("finishLogin", { body: finish, ...signalOpt(opts.signal) });
    this.#adopt(signedIn);
    return signedIn;
  }

  /**
   * Steps up: a fresh user-verified assertion. Bound to an action digest
   * (`0x` and 64 hex digits: a high-risk command's hash, a transfer's
   * EIP-712 digest, a deletion's digest), it authorizes that action once;
   * without one it restores a `step-up` trust state.
   */
  async stepUp(actionDigest?: string, opts: { signal?: AbortSignal } = {}): Promise<StepUpVerified> {
    const body = (actionDigest ? { action_digest: actionDigest } : {}) as Schemas["StepUpBeginRequest"];
    const begin = await this.client.call("beginStepUp", { body, ...signalOpt(opts.signal) });
    const credential = await this.authenticator.get(begin.publicKey, opts.signal);
    const finish = { ceremony_id: begin.ceremony_id, credential, ...(actionDigest ? { action_digest: actionDigest } : {}) };
    return this.client.call("finishStepUp", { body: finish as Schemas["StepUpFinishRequest"], ...signalOpt(opts.signal) });
  }

  #adopt(signedIn: SignedIn): void {
    if (signedIn.token) this.client.setToken(signedIn.token);
    if (signedIn.csrf) this.client.setCsrf(signedIn.csrf);
  }
}

/** One session of the avatar. */
export type Session = Schemas["Session"];

/** Sessions lists and ends the avatar's sessions. */
export class Sessions {
  constructor(private readonly client: RealmClient) {}

  /** The avatar's live sessions; `current` marks this one. */
  async list(opts: { signal?: AbortSignal } = {}): Promise<Session[]> {
    return (await this.client.call("listSessions", signalOpt(opts.signal))).sessions;
  }

  /** Ends this session and forgets its token. */
  async signOut(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.client.call("logout", signalOpt(opts.signal));
    this.client.setToken(undefined);
    this.client.setCsrf(undefined);
  }

  /** Ends every session of the avatar, on every node; their sockets close with 4401. */
  async signOutEverywhere(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.client.call("logoutAll", signalOpt(opts.signal));
    this.client.setToken(undefined);
    this.client.setCsrf(undefined);
  }

  /** Ends one of the avatar's sessions. */
  async revoke(id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.client.call("revokeSession", { path: { id }, ...signalOpt(opts.signal) });
  }
}

function signalOpt(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}
