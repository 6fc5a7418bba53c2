// The few CBOR (RFC 8949) items an authenticator writes: unsigned and
// negative integers, byte and text strings, and maps, in the canonical
// form WebAuthn uses (shortest lengths, definite lengths).

/** A value the encoder takes. */
export type CBORValue = number | string | Uint8Array | Map<number | string, CBORValue> | { [key: string]: CBORValue };

/** Encodes one item. */
export function encodeCBOR(value: CBORValue): Uint8Array<ArrayBuffer> {
  const out: number[] = [];
  write(out, value);
  return Uint8Array.from(out);
}

function head(out: number[], major: number, n: number): void {
  const m = major << 5;
  if (n < 24) out.push(m | n);
  else if (n < 0x100) out.push(m | 24, n);
  else if (n < 0x10000) out.push(m | 25, n >> 8, n & 0xff);
  else if (n <= 0xffffffff) out.push(m | 26, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  else throw new RangeError("cbor: integer beyond 32 bits");
}

function write(out: number[], v: CBORValue): void {
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new TypeError("cbor: only integers are supported");
    if (v >= 0) head(out, 0, v);
    else head(out, 1, -1 - v);
  } else if (typeof v === "string") {
    const bytes = new TextEncoder().encode(v);
    head(out, 3, bytes.length);
    out.push(...bytes);
  } else if (v instanceof Uint8Array) {
    head(out, 2, v.length);
    for (const b of v) out.push(b);
  } else {
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
    head(out, 5, entries.length);
    for (const [k, item] of entries) {
      write(out, k);
      write(out, item);
    }
  }
}
