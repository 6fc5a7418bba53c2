// Shared by the tests: the realm scripts/run-tests.mjs started, and
// avatars signed in to it with a software passkey.
import { randomBytes } from "node:crypto";
import { Passkeys, RealmClient, type SignedIn } from "../src/index.js";
import { SoftwareAuthenticator } from "../src/testing/index.js";

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
 * A fetch that presents a client address of its own (the realm trusts
 * loopback as a proxy in these tests), so that each test spends its own
 * bucket of the realm's per-address ceremony limit.
 */
export function fetchFrom(address = randomAddress()): typeof fetch {
  return (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set("X-Forwarded-For", address);
    return fetch(input, { ...init, headers });
  };
}

/** A random address of the benchmarking range 198.18.0.0/15. */
export function randomAddress(): string {
  const b = randomBytes(3);
  return `198.${18 + (b[0]! & 1)}.${b[1]}.${b[2]}`;
}

/** A client of the realm under test, without a session. */
export function newClient(): RealmClient {
  return new RealmClient({ baseUrl: realmURL(), fetch: fetchFrom() });
}

/** Registers a new avatar with a software passkey; its client holds the bearer token. */
export async function newAvatar(prefix = "sdk"): Promise<Avatar> {
  const client = newClient();
  const authenticator = new SoftwareAuthenticator({ origin: realmURL() });
  const passkeys = new Passkeys(client, authenticator);
  const signedIn = await passkeys.register(uniqueName(prefix));
  return { client, authenticator, passkeys, signedIn };
}
