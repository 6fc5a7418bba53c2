// Runs the SDK's tests against a real realm: builds the zerorealm binary
// from this repository (or takes $ZR_REALM_BIN), starts it on a free port
// with a fresh data directory, hands its URL to the tests as
// $ZR_REALM_URL, and stops it when they end.
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import readline from "node:readline";

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
  const args = [
    "serve",
    // localhost, not 127.0.0.1: passkeys need a domain as the RP id.
    "--listen", "localhost:0",
    "--nats-listen", "",
    "--data", path.join(scratch, "data"),
    "--log-level", "warn",
    // Each test client presents its own address (X-Forwarded-For from
    // loopback), so the per-address ceremony limit is real but per test;
    // a small burst keeps the test that reaches it short.
    "--trusted-proxies", "127.0.0.0/8,::1/128",
    "--ceremony-burst", "20",
  ];
  realm = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  // Interrupted, the script still stops the realm it started.
  for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => (realm.kill("SIGTERM"), process.exit(130)));
  let stderr = "";
  realm.stderr.on("data", (d) => {
    stderr += d;
    if (process.env.ZR_REALM_LOG) process.stderr.write(d);
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`realm not ready after 120s:\n${stderr}`)), 120_000);
    realm.on("exit", (c) => reject(new Error(`realm exited (${c}) before ready:\n${stderr}`)));
    readline.createInterface({ input: realm.stdout }).on("line", (line) => {
      const m = /ready at (\S+) /.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
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
    env: { ...process.env, ZR_REALM_URL: url },
  });
  code = tests.status ?? 1;
} catch (err) {
  console.error(`run-tests: ${err.message}`);
} finally {
  if (realm && realm.exitCode === null) {
    const exited = new Promise((resolve) => realm.on("exit", resolve));
    realm.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (realm.exitCode === null) realm.kill("SIGKILL");
  }
  await rm(scratch, { recursive: true, force: true });
}
process.exit(code);
