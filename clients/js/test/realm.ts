// Shared by the tests: the realm scripts/run-tests.mjs started, and
// avatars signed in to it with a software passkey.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { Passkeys, RealmClient, type SignedIn, type WebSocketFactory, type WebSocketLike } from "../src/index.js";
import { SoftwareAuthenticator } from "../src/testing/index.js";
import { startRealm, type RealmProcess } from "./realm-process.js";

/** The URL of the realm under test. */
export function realmURL(): string {
  const url = process.env.ZR_REALM_URL;
  if (!url) throw new Error("ZR_REALM_URL is not set: run the tests with `npm test`, which starts a realm");
  return url;
}

/** A handle no other test uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export interface Avatar {
  client: RealmClient;
  authenticator: SoftwareAuthenticator;
  passkeys: Passkeys;
  signedIn: SignedIn;
}

/**
 * The headers of a client with an address of its own (the realm trusts
 * loopback as a proxy in these tests), so that each test spends its own
 * bucket of the realm's per-address ceremony limit. Its sockets present
 * the same address: a session whose address changes loses trust.
 */
export function ownAddress(address = randomAddress()): { headers: Record<string, string> } {
  return { headers: { "X-Forwarded-For": address } };
}

/** A random address of the benchmarking range 198.18.0.0/15. */
export function randomAddress(): string {
  const b = randomBytes(3);
  return `198.${18 + (b[0]! & 1)}.${b[1]}.${b[2]}`;
}

/** A client of the realm under test (or of the one at url), without a session. */
export function newClient(url = realmURL()): RealmClient {
  return new RealmClient({ baseUrl: url, ...ownAddress() });
}

/** Registers a new avatar with a software passkey; its client holds the bearer token. */
export async function newAvatar(prefix = "sdk", url = realmURL()): Promise<Avatar> {
  const client = newClient(url);
  const authenticator = new SoftwareAuthenticator({ origin: url });
  const passkeys = new Passkeys(client, authenticator);
  const signedIn = await passkeys.register(uniqueName(prefix));
  return { client, authenticator, passkeys, signedIn };
}

/**
 * Signs in as the realm's administrator (admin, operator, supervisor),
 * registered by scripts/run-tests.mjs: one session per process, as a
 * second would lower its trust (concurrent sessions are a penalty).
 * Only one test file may use it (its passkey's counter lives in the
 * process: see run-tests.mjs).
 */
let adminAuthenticator: SoftwareAuthenticator | undefined;
let admin: Avatar | undefined;

export async function adminAvatar(): Promise<Avatar> {
  if (admin) return admin;
  const exported = process.env.ZR_ADMIN_PASSKEYS;
  if (!exported) throw new Error("ZR_ADMIN_PASSKEYS is not set: run the tests with `npm test`");
  const client = newClient();
  if (!adminAuthenticator) {
    adminAuthenticator = new SoftwareAuthenticator({ origin: realmURL() });
    adminAuthenticator.importCredentials(exported);
  }
  const authenticator = adminAuthenticator;
  const passkeys = new Passkeys(client, authenticator);
  const signedIn = await passkeys.signIn();
  admin = { client, authenticator, passkeys, signedIn };
  return admin;
}

/** Node's WebSockets with the bearer header (a browser sends its cookie instead). */
export const nodeWebSocket: WebSocketFactory = (url, headers) => new WebSocket(url, { headers }) as unknown as WebSocketLike;

/**
 * A realm of the test's own, for flags the shared one does not have
 * (started from the binary scripts/run-tests.mjs built, with a fresh data
 * directory); stop removes its directory too.
 */
export async function ownRealm(extraFlags: readonly string[]): Promise<RealmProcess> {
  const bin = process.env.ZR_REALM_BIN;
  if (!bin) throw new Error("ZR_REALM_BIN is not set: run the tests with `npm test`, which builds the realm");
  const dir = await mkdtemp(path.join(tmpdir(), "zerorealm-sdk-realm-"));
  try {
    const realm = await startRealm(bin, path.join(dir, "data"), extraFlags, Boolean(process.env.ZR_REALM_LOG));
    return { ...realm, stop: () => realm.stop().finally(() => rm(dir, { recursive: true, force: true })) };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
