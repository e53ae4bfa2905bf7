// Comparing values the way the interop scripts check what they receive: binary compared byte
// for byte (and required to be binary), objects by their keys, everything shown in failure
// messages with binary as `<bin N: hex...>`.

export const isBinary = (v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v);
export const bytesOf = (v) =>
  v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** JSON for messages, binary shown as `<bin N: hex...>`. */
export function show(v) {
  return JSON.stringify(v, (_k, x) => {
    if (x && typeof x === "object" && x.type === "Buffer" && Array.isArray(x.data)) x = Buffer.from(x.data);
    if (isBinary(x)) {
      const b = bytesOf(x);
      return `<bin ${b.length}: ${Buffer.from(b.subarray(0, 12)).toString("hex")}${b.length > 12 ? "..." : ""}>`;
    }
    if (typeof x === "string" && x.length > 80) return `${x.slice(0, 80)}...(${x.length} chars)`;
    return x;
  });
}

/** Null if `got` equals `want` (binary compared byte for byte, and must be binary), else where it differs. */
export function diff(want, got, path = "$") {
  if (isBinary(want)) {
    if (!isBinary(got)) return `${path}: want binary ${show(want)}, got ${show(got)}`;
    const a = bytesOf(want);
    const b = bytesOf(got);
    if (a.length !== b.length) return `${path}: want ${a.length} bytes, got ${b.length}`;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `${path}: byte ${i} differs`;
    return null;
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(got)) return `${path}: want an array, got ${show(got)}`;
    if (want.length !== got.length) return `${path}: want ${want.length} items, got ${got.length}: ${show(got)}`;
    for (let i = 0; i < want.length; i++) {
      const d = diff(want[i], got[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (want !== null && typeof want === "object") {
    if (got === null || typeof got !== "object" || Array.isArray(got) || isBinary(got)) {
      return `${path}: want an object, got ${show(got)}`;
    }
    const wk = Object.keys(want).sort();
    const gk = Object.keys(got).sort();
    if (wk.join("\u0000") !== gk.join("\u0000")) return `${path}: want keys ${show(wk)}, got ${show(gk)}`;
    for (const k of wk) {
      const d = diff(want[k], got[k], `${path}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return Object.is(want, got) ? null : `${path}: want ${show(want)}, got ${show(got)}`;
}
