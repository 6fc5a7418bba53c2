// Runs the SDK's tests against a real realm: builds the zerorealm binary
// from this repository (or takes $ZR_REALM_BIN), starts it on a free port
// with a fresh data directory, hands its URL to the tests as
// $ZR_REALM_URL, and stops it when they end.
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const scratch = await mkdtemp(path.join(tmpdir(), "zerorealm-sdk-test-"));
let realm;
let code = 1;
try {
  let bin = process.env.ZR_REALM_BIN;
  if (!bin) {
    bin = path.join(scratch, "zerorealm");
    console.log("run-tests: go build ./cmd/zerorealm (the first build compiles C and takes minutes)");
    const built = spawnSync("go", ["build", "-o", bin, "./cmd/zerorealm"], { cwd: path.join(root, "..", ".."), stdio: "inherit" });
    if (built.status !== 0) throw new Error("go build ./cmd/zerorealm failed");
  }
  // The realm's flags are the tests' own (test/realm-process.ts): a test
  // that needs a realm of its own starts one the same way, from
  // $ZR_REALM_BIN.
  const { startRealm } = await import(path.join(root, "build", "test", "realm-process.js"));
  realm = await startRealm(bin, path.join(scratch, "data"), [], Boolean(process.env.ZR_REALM_LOG));
  // Interrupted, the script still stops the realm it started.
  for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => void realm.stop().then(() => process.exit(130)));
  const url = realm.url;
  console.log(`run-tests: realm at ${url}`);
  // The first avatar of a realm becomes its administrator (with the
  // operator and supervisor roles). It is registered here, before any
  // test, so that the tests that need those roles share one, by its
  // exported software passkey, whatever order they run in.
  const sdk = await import(path.join(root, "build", "src", "index.js"));
  const { SoftwareAuthenticator } = await import(path.join(root, "build", "src", "testing", "index.js"));
  // Not synced: a synced passkey gives less device assurance, and the
  // foundry's policies want an operator trusted. Its signature counter
  // then lives in the process that uses it, so one test file only
  // (admin.test.ts) signs in as the administrator: two would present the
  // same counters and the realm would take the passkey for a clone.
  const admin = new SoftwareAuthenticator({ origin: url });
  const adminClient = new sdk.RealmClient({ baseUrl: url });
  await new sdk.Passkeys(adminClient, admin).register("sdk-admin");
  // Its tests sign in anew; a second live session would cost it trust.
  await new sdk.Sessions(adminClient).signOut();
  process.env.ZR_ADMIN_PASSKEYS = admin.exportCredentials();
  const dir = path.join(root, "build", "test");
  const files = (await readdir(dir)).filter((f) => f.endsWith(".test.js")).map((f) => path.join(dir, f));
  const only = process.argv.slice(2);
  const tests = spawnSync(process.execPath, ["--test", "--test-timeout=60000", ...(only.length ? only : files)], {
    stdio: "inherit",
    env: { ...process.env, ZR_REALM_URL: url, ZR_REALM_BIN: bin },
  });
  code = tests.status ?? 1;
} catch (err) {
  console.error(`run-tests: ${err.message}`);
} finally {
  await realm?.stop();
  await rm(scratch, { recursive: true, force: true });
}
process.exit(code);
