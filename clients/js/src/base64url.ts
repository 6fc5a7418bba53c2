// base64url without padding, as WebAuthn's JSON forms and the realm use it.
// btoa/atob exist in browsers and Node alike; Buffer does not in browsers.

/** Encodes bytes as base64url without padding. */
export function encodeBase64url(bytes: ArrayBuffer | ArrayBufferView): string {
  const view =
    bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let s = "";
  for (let i = 0; i < view.length; i += 0x8000) s += String.fromCharCode(...view.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes canonical base64url (padding optional); throws a TypeError on anything else. */
export function decodeBase64url(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text) || text.replace(/=+$/, "").length % 4 === 1) {
    throw new TypeError(`not base64url: ${JSON.stringify(text.slice(0, 40))}`);
  }
  const s = atob(text.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.replace(/=+$/, "").length + 3) % 4));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  // Unused low bits of the last character must be zero (RFC 4648 §3.5):
  // otherwise two texts would name the same bytes.
  if (encodeBase64url(out) !== text.replace(/=+$/, "")) throw new TypeError(`not canonical base64url: ${JSON.stringify(text.slice(0, 40))}`);
  return out;
}
