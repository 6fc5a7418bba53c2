// The handle rule in words: the realm publishes it in its API description
// (RegisterBeginRequest.name: pattern, minLength, maxLength and the rule
// in words), scripts/generate.mjs copies it into generated/rules.ts, and
// checkHandle says what is wrong with a handle before a ceremony starts,
// so that a person reads the rule instead of a generic refusal.
import { handleRule } from "./generated/rules.js";

export { handleRule };

const pattern = new RegExp(handleRule.pattern);
// The one character class of the pattern ("^[a-z0-9_-]{3,32}$"): which
// characters may appear at all.
const classMatch = /^\^(\[[^\]]+\])/.exec(handleRule.pattern);
const allowed = classMatch ? new RegExp("^" + classMatch[1] + "$") : null;
// The rule's words after its length: "lowercase letters a-z, digits 0-9,
// '_' or '-'".
const characters = handleRule.description.includes(": ") ? handleRule.description.slice(handleRule.description.indexOf(": ") + 2) : handleRule.description;

/**
 * checkHandle says in words why name cannot be an avatar's handle, or
 * answers "" when the realm will accept it (as far as its form goes: the
 * handle may still be taken).
 */
export function checkHandle(name: string): string {
  const chars = [...name];
  if (chars.length < handleRule.minLength) {
    return `A handle has at least ${handleRule.minLength} characters; ${chars.length === 0 ? "this one is empty" : `“${name}” has ${chars.length}`}.`;
  }
  if (chars.length > handleRule.maxLength) return `A handle has at most ${handleRule.maxLength} characters; this one has ${chars.length}.`;
  if (allowed) {
    const bad = [...new Set(chars.filter((c) => !allowed.test(c)))];
    if (bad.length) {
      const shown = bad.slice(0, 5).map((c) => (c === " " ? "a space" : /[A-Z]/.test(c) ? `“${c}” (capital)` : `“${c}”`));
      return `A handle uses only ${characters}; “${name}” has ${shown.join(", ")}${bad.length > 5 ? " and more" : ""}.`;
    }
  }
  if (!pattern.test(name)) return `A handle is ${handleRule.description}.`;
  return "";
}
