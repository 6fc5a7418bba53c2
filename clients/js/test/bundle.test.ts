import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

test("the web console's bundle of the SDK is what the sources bundle to, and its hash is recorded", async () => {
  // A variable specifier: the script is plain JS, outside the typed build.
  const script = path.join(root, "scripts", "bundle-web.mjs");
  const { bundle, webBundle, vendorReadme, hashRow, sha256 } = (await import(script)) as {
    bundle(): Promise<string>;
    webBundle: string;
    vendorReadme: string;
    hashRow: RegExp;
    sha256(text: string): string;
  };
  const want = await bundle();
  const served = await readFile(webBundle, "utf8");
  assert.ok(served === want, "realm/web/vendor/zerorealm-sdk.js is not the SDK as it is: run `npm run bundle:web` in clients/js and commit");
  const recorded = hashRow.exec(await readFile(vendorReadme, "utf8"))?.[1];
  assert.equal(recorded, sha256(served), "realm/web/vendor/README.md records another hash: run `npm run bundle:web`");
});
