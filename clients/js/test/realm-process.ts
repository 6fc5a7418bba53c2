// A realm run as a process of its own, as scripts/run-tests.mjs runs the
// one every test shares and as a test runs one with flags of its own.
import { spawn, type ChildProcess } from "node:child_process";
import readline from "node:readline";

export interface RealmProcess {
  /** Where it serves, as its "ready at" line says. */
  url: string;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  /** Stops it (SIGTERM, then SIGKILL after 15 s) and resolves when it has exited. */
  stop(): Promise<void>;
}

/**
 * The flags of a test realm: its own data directory, on a free port of
 * localhost (passkeys need a domain as the RP id), no NATS listener, and
 * loopback trusted as a proxy, so that each test client presents its own
 * address (X-Forwarded-For) and spends its own bucket of the per-address
 * ceremony limit; a small burst keeps the test that reaches it short.
 */
export function realmArgs(dataDir: string, extra: readonly string[] = []): string[] {
  return [
    "serve",
    "--listen", "localhost:0",
    "--nats-listen", "",
    "--data", dataDir,
    "--log-level", "warn",
    "--trusted-proxies", "127.0.0.0/8,::1/128",
    "--ceremony-burst", "20",
    ...extra,
  ];
}

/**
 * startRealm runs `bin serve` with the flags of {@link realmArgs} and
 * resolves once it says where it is ready; a realm that exits first, or
 * is not ready within two minutes, is an error with what it wrote.
 */
export async function startRealm(bin: string, dataDir: string, extra: readonly string[] = [], echoLog = false): Promise<RealmProcess> {
  const realm = spawn(bin, realmArgs(dataDir, extra), { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  realm.stderr!.on("data", (d) => {
    stderr += d;
    if (echoLog) process.stderr.write(d);
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`realm not ready after 120s:\n${stderr}`)), 120_000);
      realm.on("exit", (c) => {
        clearTimeout(timer);
        reject(new Error(`realm exited (${c}) before ready:\n${stderr}`));
      });
      readline.createInterface({ input: realm.stdout! }).on("line", (line) => {
        const m = /ready at (\S+) /.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    return { url, stderr: () => stderr, stop: () => stopProcess(realm) };
  } catch (err) {
    await stopProcess(realm);
    throw err;
  }
}

async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((resolve) => p.once("exit", resolve));
  p.kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
  clearTimeout(timer);
  if (p.exitCode === null && p.signalCode === null) {
    p.kill("SIGKILL");
    await exited;
  }
}
