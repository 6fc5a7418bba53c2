// The handle rule in words, from the rule the realm publishes (no realm
// needed: generated/rules.ts is kept equal to the served document by
// http.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkHandle, handleRule } from "../src/index.js";

test("the handle rule says what is wrong, in words", () => {
  assert.equal(handleRule.minLength, 3);
  assert.equal(checkHandle("ada"), "");
  assert.equal(checkHandle("grace_h-1"), "");
  assert.match(checkHandle("nu"), /at least 3 characters; “nu” has 2/);
  assert.match(checkHandle(""), /at least 3 characters; this one is empty/);
  assert.match(checkHandle("a".repeat(33)), /at most 32 characters; this one has 33/);
  assert.match(checkHandle("Ada"), /only lowercase letters a-z, digits 0-9, '_' or '-'; “Ada” has “A” \(capital\)/);
  assert.match(checkHandle("ada lovelace"), /has a space/);
  assert.match(checkHandle("émile"), /has “é”/);
});

test("what checkHandle accepts is exactly what the published pattern matches", () => {
  const pattern = new RegExp(handleRule.pattern);
  const alphabet = [..."abcxyz019_-AZ .é\u0000"];
  let state = 7;
  const rand = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 2000; i++) {
    const n = Math.floor(rand() * 36);
    const name = Array.from({ length: n }, () => alphabet[Math.floor(rand() * alphabet.length)]).join("");
    assert.equal(checkHandle(name) === "", pattern.test(name), `${JSON.stringify(name)}: ${checkHandle(name)}`);
  }
});
