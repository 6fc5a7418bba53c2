import assert from "node:assert/strict";
import { test } from "node:test";
import { Passkeys, ProblemError, Sessions } from "../src/index.js";
import { SoftwareAuthenticator } from "../src/testing/index.js";
import { newAvatar, newClient, realmURL, uniqueName } from "./realm.js";

test("registration signs the new avatar in with a bearer token", async () => {
  const name = uniqueName("reg");
  const client = newClient();
  const passkeys = new Passkeys(client, new SoftwareAuthenticator({ origin: realmURL() }));
  const signedIn = await passkeys.register(name, { displayName: "Ada Lovelace" });
  assert.match(signedIn.token ?? "", /^zrs_/);
  assert.equal(client.token, signedIn.token, "the client keeps the session");
  const me = await client.call("getMe");
  assert.equal(me.avatar.name, name);
  assert.equal(me.avatar.display_name, "Ada Lovelace");
  assert.equal(me.avatar.passkeys?.length, 1);
});

test("sign-in with a discoverable passkey and with a named avatar's", async () => {
  const { authenticator, signedIn } = await newAvatar("login");
  const client = newClient();
  const passkeys = new Passkeys(client, authenticator);
  const discoverable = await passkeys.signIn();
  assert.equal(discoverable.avatar.id, signedIn.avatar.id);
  const named = await passkeys.signIn({ name: signedIn.avatar.name });
  assert.equal(named.avatar.id, signedIn.avatar.id);
  assert.notEqual(named.token, discoverable.token, "each sign-in is a session of its own");
});

test("a passkey the realm does not know is refused with a problem", async () => {
  await newAvatar("known");
  const stranger = new Passkeys(newClient(), new SoftwareAuthenticator({ origin: realmURL() }));
  await assert.rejects(stranger.signIn(), /NotAllowedError/, "the stranger's authenticator holds no credential");
  // A credential made for another origin: the realm checks clientDataJSON.
  const elsewhere = new SoftwareAuthenticator({ origin: "http://localhost:1" });
  await assert.rejects(new Passkeys(newClient(), elsewhere).register(uniqueName("origin")), (err: unknown) => {
    assert.ok(err instanceof ProblemError, String(err));
    assert.equal(err.status, 401);
    assert.ok(err.is("passkey-verification-failed"), err.type);
    return true;
  });
});

test("a step-up bound to an action authorizes it, and only with the avatar's passkey", async () => {
  const { passkeys, client } = await newAvatar("stepup");
  const plain = await passkeys.stepUp();
  assert.equal(plain.verified, true);
  const digest = "0x" + "ab".repeat(32);
  const bound = await passkeys.stepUp(digest);
  assert.equal(bound.verified, true);
  assert.equal(bound.action_digest, digest);
  // Another avatar's passkey cannot step this session up: the realm
  // allows only the avatar's own credentials.
  const other = await newAvatar("other");
  const thief = new Passkeys(client, other.authenticator);
  await assert.rejects(thief.stepUp(digest), /NotAllowedError/);
});

test("adding a passkey steps up with the one held, then registers the new one on the same avatar", async () => {
  const { client, authenticator, passkeys, signedIn } = await newAvatar("add");
  const second = new SoftwareAuthenticator({ origin: realmURL() });
  // The step-up uses the first authenticator, the registration the second.
  const both = new Passkeys(client, {
    create: (o) => second.create(o),
    get: (o) => authenticator.get(o),
  });
  await both.addPasskey();
  const me = await client.call("getMe");
  assert.equal(me.avatar.passkeys?.length, 2);
  // The new passkey signs the same avatar in.
  const viaSecond = await new Passkeys(newClient(), second).signIn();
  assert.equal(viaSecond.avatar.id, signedIn.avatar.id);
  // Without a step-up the realm refuses to add one.
  await assert.rejects(
    client.call("beginRegistration", { body: {} }),
    (err: unknown) => err instanceof ProblemError && err.status === 403,
  );
  void passkeys;
});

test("sessions: list, revoke one, sign out, sign out everywhere", async () => {
  const { client, authenticator } = await newAvatar("sessions");
  const otherClient = newClient();
  await new Passkeys(otherClient, authenticator).signIn();
  const thirdClient = newClient();
  await new Passkeys(thirdClient, authenticator).signIn();

  const sessions = new Sessions(client);
  const list = await sessions.list();
  assert.equal(list.length, 3);
  assert.equal(list.filter((s) => s.current).length, 1);

  const third = (await new Sessions(thirdClient).list()).find((s) => s.current)!;
  await sessions.revoke(third.id);
  await assert.rejects(thirdClient.call("getMe"), (err: unknown) => err instanceof ProblemError && err.is("session-ended"));

  const otherToken = otherClient.token!;
  await new Sessions(otherClient).signOut();
  assert.equal(otherClient.token, undefined, "signing out forgets the token");
  const signedOut = newClient();
  signedOut.setToken(otherToken);
  await assert.rejects(signedOut.call("getMe"), (err: unknown) => err instanceof ProblemError && err.is("session-ended"));
  await client.call("getMe");

  const token = client.token!;
  await sessions.signOutEverywhere();
  const stale = newClient();
  stale.setToken(token);
  await assert.rejects(stale.call("getMe"), (err: unknown) => err instanceof ProblemError && err.status === 401);
});
