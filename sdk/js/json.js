// Zero-copy JSON for @sluice/plugin: read fields of an event value without
// building a tree, and build output objects by splicing the input's bytes.
//
//   const view = event.view();               // checks the value once, indexes its top-level fields
//   const id = view.path("order.customer.id"); // a Raw: the exact text of one value
//   id.text                                  // "9007199254740993", as written
//   const w = new ObjectWriter();
//   w.copyFrom(view, { drop: ["price"], rename: { ts: "time" } }); // raw slices copied
//   w.value("price_cents", 5050);           // only new values are serialized
//   out.emitValue(w.finish());
//
// The same semantics as the Rust SDK's `sluice_sdk::json` (JsonView, Raw,
// ObjectWriter): RFC 8259 JSON, every string checked as UTF-8, nesting capped
// at MAX_DEPTH (128) so hostile input fails with a reason instead of
// exhausting the stack, duplicate keys resolved to the *last* occurrence on
// lookup, and numbers kept as text until read, so a number the plugin does not
// change is copied byte for byte (`9007199254740993` stays itself, `1.50`
// stays `1.50`).
//
// `parseJson` is the tree API's parser (`event.json()`): JSON.parse, except
// that an integer outside ±(2^53 - 1) becomes a BigInt (JSON.parse would round
// it to the nearest double and change an id). `canonicalJson` writes BigInts
// as integers, so a read-modify-write round trip keeps every integer exact.

import { canonicalJson } from "./index.js";

/** Deepest nesting of arrays and objects accepted (serde_json's limit). */
export const MAX_DEPTH = 128;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Why a value is not JSON: `message` and the byte `offset` where it was found. */
export class JsonError extends Error {
  constructor(reason, offset) {
    super(`${reason} at byte ${offset}`);
    this.name = "JsonError";
    this.reason = reason;
    this.offset = offset;
  }
}

function toBytes(v) {
  if (typeof v === "string") return encoder.encode(v);
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError("expected a string or a Uint8Array");
}

// ---------------------------------------------------------------------------
// The validating scanner (a port of sdk/src/json.rs)

const Q = 0x22; // "
const BS = 0x5c; // backslash

function isWs(c) {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function tail(x) {
  return x >= 0x80 && x <= 0xbf;
}

function skipWs(b, p) {
  while (p < b.length && isWs(b[p])) p++;
  return p;
}

class Scanner {
  constructor(b) {
    this.b = b;
    this.p = 0;
  }

  err(reason) {
    return new JsonError(reason, this.p);
  }

  ws() {
    this.p = skipWs(this.b, this.p);
  }

  value(depth) {
    const b = this.b;
    if (this.p >= b.length) throw this.err("EOF while parsing a value");
    const c = b[this.p];
    if (c === 0x7b) return this.object(depth + 1, null);
    if (c === 0x5b) return this.array(depth + 1);
    if (c === Q) return this.string();
    if (c === 0x74) return this.literal("true");
    if (c === 0x66) return this.literal("false");
    if (c === 0x6e) return this.literal("null");
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    throw this.err("expected a value");
  }

  literal(word) {
    const b = this.b;
    for (let i = 0; i < word.length; i++) {
      if (b[this.p + i] !== word.charCodeAt(i)) throw this.err("expected a value");
    }
    this.p += word.length;
  }

  digits() {
    const b = this.b;
    const start = this.p;
    while (this.p < b.length && b[this.p] >= 0x30 && b[this.p] <= 0x39) this.p++;
    return this.p - start;
  }

  number() {
    const b = this.b;
    if (b[this.p] === 0x2d) this.p++;
    const c = b[this.p];
    if (c === 0x30) this.p++;
    else if (c >= 0x31 && c <= 0x39) this.digits();
    else throw this.err("invalid number");
    if (b[this.p] === 0x2e) {
      this.p++;
      if (this.digits() === 0) throw this.err("invalid number");
    }
    if (b[this.p] === 0x65 || b[this.p] === 0x45) {
      this.p++;
      if (b[this.p] === 0x2b || b[this.p] === 0x2d) this.p++;
      if (this.digits() === 0) throw this.err("invalid number");
    }
  }

  hex4() {
    const b = this.b;
    if (this.p + 4 > b.length) throw this.err("EOF while parsing a string");
    let n = 0;
    for (let i = 0; i < 4; i++) {
      const d = b[this.p + i];
      let v;
      if (d >= 0x30 && d <= 0x39) v = d - 0x30;
      else if (d >= 0x61 && d <= 0x66) v = d - 0x61 + 10;
      else if (d >= 0x41 && d <= 0x46) v = d - 0x41 + 10;
      else throw this.err("invalid escape");
      n = n * 16 + v;
    }
    this.p += 4;
    return n;
  }

  /** Scans a string at `"`; returns whether it had an escape. */
  string() {
    const b = this.b;
    const n = b.length;
    let escaped = false;
    let p = this.p + 1;
    for (;;) {
      // Plain text: ASCII or well-formed UTF-8 (Unicode table 3-7). Outside
      // strings the grammar admits only ASCII, so this checks the whole value.
      while (p < n) {
        const c = b[p];
        if (c < 0x80) {
          if (c === Q || c === BS || c < 0x20) break;
          p++;
          continue;
        }
        const t1 = b[p + 1];
        const t2 = b[p + 2];
        const t3 = b[p + 3];
        let width = 0;
        if (c >= 0xc2 && c <= 0xdf) width = tail(t1) ? 2 : 0;
        else if (c === 0xe0) width = t1 >= 0xa0 && t1 <= 0xbf && tail(t2) ? 3 : 0;
        else if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) width = tail(t1) && tail(t2) ? 3 : 0;
        else if (c === 0xed) width = t1 >= 0x80 && t1 <= 0x9f && tail(t2) ? 3 : 0;
        else if (c === 0xf0) width = t1 >= 0x90 && t1 <= 0xbf && tail(t2) && tail(t3) ? 4 : 0;
        else if (c >= 0xf1 && c <= 0xf3) width = tail(t1) && tail(t2) && tail(t3) ? 4 : 0;
        else if (c === 0xf4) width = t1 >= 0x80 && t1 <= 0x8f && tail(t2) && tail(t3) ? 4 : 0;
        if (width === 0) {
          this.p = p;
          throw this.err("invalid UTF-8");
        }
        p += width;
      }
      this.p = p;
      if (p >= n) throw this.err("EOF while parsing a string");
      const c = b[p];
      if (c === Q) {
        this.p = p + 1;
        return escaped;
      }
      if (c !== BS) throw this.err("control character in string");
      escaped = true;
      this.p = p + 1;
      const e = b[this.p];
      if (e === Q || e === BS || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        this.p++;
      } else if (e === 0x75) {
        this.p++;
        const u = this.hex4();
        if (u >= 0xdc00 && u < 0xe000) throw this.err("lone trailing surrogate in hex escape");
        if (u >= 0xd800 && u < 0xdc00) {
          if (b[this.p] !== BS || b[this.p + 1] !== 0x75) throw this.err("lone leading surrogate in hex escape");
          this.p += 2;
          const low = this.hex4();
          if (!(low >= 0xdc00 && low < 0xe000)) throw this.err("lone leading surrogate in hex escape");
        }
      } else if (e === undefined) {
        throw this.err("EOF while parsing a string");
      } else {
        throw this.err("invalid escape");
      }
      p = this.p;
    }
  }

  array(depth) {
    if (depth > MAX_DEPTH) throw this.err("recursion limit exceeded");
    const b = this.b;
    this.p++;
    this.ws();
    if (b[this.p] === 0x5d) {
      this.p++;
      return;
    }
    for (;;) {
      this.ws();
      this.value(depth);
      this.ws();
      if (this.p >= b.length) throw this.err("EOF while parsing a list");
      const c = b[this.p];
      if (c === 0x2c) this.p++;
      else if (c === 0x5d) {
        this.p++;
        return;
      } else throw this.err("expected `,` or `]`");
    }
  }

  /** Scans an object at `{`; pushes [keyStart, keyEnd, valueStart, valueEnd, escaped] into `record`. */
  object(depth, record) {
    if (depth > MAX_DEPTH) throw this.err("recursion limit exceeded");
    const b = this.b;
    this.p++;
    this.ws();
    if (b[this.p] === 0x7d) {
      this.p++;
      return;
    }
    for (;;) {
      this.ws();
      if (this.p >= b.length) throw this.err("EOF while parsing an object");
      if (b[this.p] !== Q) throw this.err("key must be a string");
      const keyStart = this.p + 1;
      const escaped = this.string();
      const keyEnd = this.p - 1;
      this.ws();
      if (this.p >= b.length) throw this.err("EOF while parsing an object");
      if (b[this.p] !== 0x3a) throw this.err("expected `:`");
      this.p++;
      this.ws();
      const valueStart = this.p;
      this.value(depth);
      if (record !== null) record.push(keyStart, keyEnd, valueStart, this.p, escaped ? 1 : 0);
      this.ws();
      if (this.p >= b.length) throw this.err("EOF while parsing an object");
      const c = b[this.p];
      if (c === 0x2c) this.p++;
      else if (c === 0x7d) {
        this.p++;
        return;
      } else throw this.err("expected `,` or `}`");
    }
  }
}

// The fast path. In the sandbox, JavaScript runs in an interpreter (no JIT),
// where a loop over bytes costs far more than the engine's native code. So
// the value is first checked token by token with sticky regular expressions
// (native) over a "binary string" (one char per byte, so string indices are
// byte offsets), and UTF-8 by the native decoder. Anything it cannot decide
// (an error, a surrogate escape) goes to the byte scanner above, which gives
// the reason and offset.

const WS = /[ \t\n\r]*/y;
const STRING = /"(?:[^"\\\x00-\x1f]+|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER_TOKEN = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
// One object member in one exec: key, colon, then a scalar value or the
// opening bracket of a container (checked by the tokenizer).
const STRING_SRC = STRING.source;
const FIELD = new RegExp(
  `(${STRING_SRC})[ \\t\\n\\r]*:[ \\t\\n\\r]*(${STRING_SRC}|-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null|[[{])`,
  "y",
);
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const CHUNK = 8192;

/** One char per byte (Latin-1 code points), so indices are byte offsets. */
function binaryString(bytes) {
  if (bytes.length <= CHUNK) return String.fromCharCode.apply(null, bytes);
  let s = "";
  for (let i = 0; i < bytes.length; i += CHUNK) s += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK));
  return s;
}

class FastScanner {
  constructor(s) {
    this.s = s;
    this.p = 0;
    this.escaped = false;
  }

  ws() {
    const c = this.s.charCodeAt(this.p);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      WS.lastIndex = this.p;
      WS.test(this.s);
      this.p = WS.lastIndex;
    }
  }

  /** Consumes a string token; false if it is not one (or has a lone surrogate). */
  string() {
    STRING.lastIndex = this.p;
    if (!STRING.test(this.s)) return false;
    const end = STRING.lastIndex;
    const token = this.s.slice(this.p, end);
    // A `\u` escape may be a lone surrogate; JSON.parse decodes it, then look.
    this.escaped = token.includes("\\");
    if (this.escaped && token.includes("\\u") && LONE_SURROGATE.test(JSON.parse(token))) return false;
    this.p = end;
    return true;
  }

  value(depth) {
    const s = this.s;
    const c = s.charCodeAt(this.p);
    if (c === 0x22) return this.string();
    if (c === 0x7b || c === 0x5b) return this.container(c, depth + 1, null);
    if (c === 0x74) return this.word("true");
    if (c === 0x66) return this.word("false");
    if (c === 0x6e) return this.word("null");
    NUMBER_TOKEN.lastIndex = this.p;
    if (!NUMBER_TOKEN.test(s)) return false;
    this.p = NUMBER_TOKEN.lastIndex;
    return true;
  }

  word(w) {
    if (!this.s.startsWith(w, this.p)) return false;
    this.p += w.length;
    return true;
  }

  /** An object or array at `{`/`[`; records top-level fields into `record`. */
  container(open, depth, record) {
    if (depth > MAX_DEPTH) return false;
    const s = this.s;
    const isObject = open === 0x7b;
    const close = isObject ? 0x7d : 0x5d;
    this.p++;
    this.ws();
    if (s.charCodeAt(this.p) === close) {
      this.p++;
      return true;
    }
    for (;;) {
      this.ws();
      if (isObject) {
        FIELD.lastIndex = this.p;
        const m = FIELD.exec(s);
        if (m === null) return false;
        const key = m[1];
        const v = m[2];
        const escaped = key.includes("\\");
        if (escaped && key.includes("\\u") && LONE_SURROGATE.test(JSON.parse(key))) return false;
        // Group 2 ends the match, so its place follows from the lengths.
        const scalarEnd = m.index + m[0].length;
        const valueStart = scalarEnd - v.length;
        const open = v.charCodeAt(0);
        if (open === 0x7b || open === 0x5b) {
          this.p = valueStart;
          if (!this.container(open, depth + 1, null)) return false;
        } else {
          if (open === 0x22 && v.includes("\\u") && LONE_SURROGATE.test(JSON.parse(v))) return false;
          this.p = scalarEnd;
        }
        if (record !== null) record.push(m.index + 1, m.index + key.length - 1, valueStart, this.p, escaped ? 1 : 0);
      } else if (!this.value(depth)) {
        return false;
      }
      this.ws();
      const c = s.charCodeAt(this.p);
      if (c === 0x2c) this.p++;
      else if (c === close) {
        this.p++;
        return true;
      } else return false;
    }
  }
}

/** Checks and indexes `bytes` by the fast path; null when it cannot decide. */
function fastScan(bytes, record) {
  let s;
  try {
    s = decoder.decode(bytes); // native UTF-8 check
  } catch {
    return null;
  }
  // As many chars as bytes: all ASCII, so the text is its own binary string.
  if (s.length !== bytes.length) s = binaryString(bytes);
  const f = new FastScanner(s);
  f.ws();
  const ok = s.charCodeAt(f.p) === 0x7b ? f.container(0x7b, 1, record) : f.value(0);
  if (!ok) return null;
  f.ws();
  return f.p === s.length ? s : null;
}

function scanRoot(bytes, record) {
  const s = new Scanner(bytes);
  s.ws();
  if (bytes[s.p] === 0x7b) s.object(1, record);
  else s.value(0);
  s.ws();
  if (s.p !== bytes.length) throw s.err("trailing characters");
}

// Skipping over text the scanner has already checked.

function skipStringChecked(b, p) {
  p++;
  while (p < b.length) {
    const c = b[p];
    if (c === Q) return p + 1;
    p += c === BS ? 2 : 1;
  }
  return b.length;
}

function skipChecked(b, p) {
  const c = b[p];
  if (c === Q) return skipStringChecked(b, p);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    let q = p;
    while (q < b.length) {
      const x = b[q];
      if (x === Q) {
        q = skipStringChecked(b, q);
        continue;
      }
      if (x === 0x7b || x === 0x5b) depth++;
      else if (x === 0x7d || x === 0x5d) {
        depth--;
        if (depth === 0) return q + 1;
      }
      q++;
    }
    return b.length;
  }
  let q = p;
  while (q < b.length) {
    const x = b[q];
    if (x === 0x2c || x === 0x7d || x === 0x5d || isWs(x)) break;
    q++;
  }
  return q;
}

function bytesEqual(a, aStart, aEnd, name) {
  if (aEnd - aStart !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (a[aStart + i] !== name[i]) return false;
  return true;
}

const ONLY_ASCII = /^[\x00-\x7f]*$/;

function hasOnlyAscii(s) {
  return ONLY_ASCII.test(s);
}

/** `name` as UTF-8 bytes, or as char codes when it is ASCII (no allocation of a buffer). */
function nameBytes(name) {
  if (typeof name !== "string") name = String(name);
  if (hasOnlyAscii(name)) {
    const out = new Array(name.length);
    for (let i = 0; i < name.length; i++) out[i] = name.charCodeAt(i);
    return out;
  }
  return encoder.encode(name);
}

/** `name` as a binary string: its UTF-8 bytes as chars (ASCII stays as it is). */
function toBinary(name) {
  return hasOnlyAscii(name) ? name : binaryString(encoder.encode(name));
}

function splitPath(path) {
  if (Array.isArray(path)) return path.map(String);
  return String(path).split(".");
}

// ---------------------------------------------------------------------------
// Views

// Views hold offsets into the event's bytes and its binary string (one char
// per byte); typed-array views and decoded strings are made only on demand,
// since each costs an allocation in the sandbox's interpreter.

/** Text of bytes [a, b): the binary string's slice when the value is ASCII. */
function sliceText(src, a, b) {
  return src.ascii ? src.s.slice(a, b) : decoder.decode(src.b.subarray(a, b));
}

function makeSource(bytes, s) {
  return { b: bytes, s, ascii: s.length === bytes.length && ONLY_ASCII.test(s) };
}

/** An object key as written in the input: its text between the quotes, still escaped. */
export class RawKey {
  constructor(src, start, end, escaped) {
    this._src = src;
    this._a = start;
    this._e = end;
    /** Whether the key contains a backslash escape. */
    this.escaped = escaped;
  }

  /** The escaped UTF-8 text between the quotes (a view, not a copy). */
  get escapedBytes() {
    return this._src.b.subarray(this._a, this._e);
  }

  /** The escaped text between the quotes, as a string. */
  get escapedText() {
    return sliceText(this._src, this._a, this._e);
  }

  /** The key as a string (unescaped). */
  get text() {
    const t = this.escapedText;
    return this.escaped ? JSON.parse(`"${t}"`) : t;
  }

  /** Whether the key is `name`. */
  is(name) {
    if (this.escaped) return this.text === name;
    const bin = toBinary(String(name));
    return this._e - this._a === bin.length && this._src.s.startsWith(bin, this._a);
  }
}

/** The exact text of one checked JSON value; everything is read on demand. */
export class Raw {
  constructor(src, start, end) {
    this._src = src;
    this._a = start;
    this._e = end;
  }

  /** The value's UTF-8 text (a view into the event, not a copy). */
  get bytes() {
    return this._src.b.subarray(this._a, this._e);
  }

  /** The value's JSON text as a string (`"a\"b"` for a string, `9007199254740993` for a number). */
  get text() {
    return sliceText(this._src, this._a, this._e);
  }

  get _first() {
    return this._src.s.charCodeAt(this._a);
  }

  /** "object", "array", "string", "number", "bool" or "null". */
  get kind() {
    switch (this._first) {
      case 0x7b:
        return "object";
      case 0x5b:
        return "array";
      case Q:
        return "string";
      case 0x74:
      case 0x66:
        return "bool";
      case 0x6e:
        return "null";
      default:
        return "number";
    }
  }

  get isNull() {
    return this._first === 0x6e;
  }

  /** `true`/`false`, or `undefined` for other types. */
  asBool() {
    const c = this._first;
    return c === 0x74 ? true : c === 0x66 ? false : undefined;
  }

  /** The string unescaped, or `undefined` for other types. */
  asString() {
    if (this._first !== Q) return undefined;
    const src = this._src;
    const s = src.s;
    const a = this._a + 1;
    const e = this._e - 1;
    if (!s.slice(a, e).includes("\\")) return sliceText(src, a, e);
    return JSON.parse(this.text);
  }

  /** The number as a double (may round: see `asBigInt`), or `undefined` for other types. */
  asNumber() {
    return this.kind === "number" ? Number(this._src.s.slice(this._a, this._e)) : undefined;
  }

  /** An integer number exactly as a BigInt, or `undefined` (not a number, or has a fraction or exponent). */
  asBigInt() {
    if (this.kind !== "number") return undefined;
    const t = this._src.s.slice(this._a, this._e);
    return /^-?\d+$/.test(t) ? BigInt(t) : undefined;
  }

  /** The value as a tree (`parseJson`: integers beyond 2^53 as BigInts). */
  toJson() {
    return parseJson(this.text);
  }

  /** Member `name` of an object (last occurrence), item `name` (all digits) of an array. */
  member(name) {
    const k = this.kind;
    if (k === "object") return this.get(name);
    if (k === "array") {
      const s = String(name);
      if (!/^\d+$/.test(s)) return undefined;
      const index = Number(s);
      let i = 0;
      for (const item of this.items()) if (i++ === index) return item;
    }
    return undefined;
  }

  /** Member `name` of an object (its last occurrence), or `undefined`. */
  get(name) {
    let found;
    for (const [key, value] of this.entries()) if (key.is(name)) found = value;
    return found;
  }

  /** The value at `path` below this one: `"a.b.0"` or `["a", "b", 0]`. */
  path(path) {
    let v = this;
    for (const name of splitPath(path)) {
      v = v.member(name);
      if (v === undefined) return undefined;
    }
    return v;
  }

  /** An object's members as `[RawKey, Raw]`, in input order (none for other types). */
  *entries() {
    if (this._first !== 0x7b) return;
    const src = this._src;
    const b = src.b;
    const end = this._e;
    let p = this._a + 1;
    for (;;) {
      p = skipWs(b, p);
      if (p >= end || b[p] === 0x7d) return;
      if (b[p] === 0x2c) p = skipWs(b, p + 1);
      const keyEnd = skipStringChecked(b, p);
      const key = new RawKey(src, p + 1, keyEnd - 1, src.s.slice(p + 1, keyEnd - 1).includes("\\"));
      p = skipWs(b, keyEnd);
      p = skipWs(b, p + 1); // the colon
      const valueEnd = skipChecked(b, p);
      yield [key, new Raw(src, p, valueEnd)];
      p = valueEnd;
    }
  }

  /** An array's items, in order (none for other types). */
  *items() {
    if (this._first !== 0x5b) return;
    const src = this._src;
    const b = src.b;
    const end = this._e;
    let p = this._a + 1;
    for (;;) {
      p = skipWs(b, p);
      if (p < end && b[p] === 0x2c) p = skipWs(b, p + 1);
      if (p >= end || b[p] === 0x5d) return;
      const valueEnd = skipChecked(b, p);
      yield new Raw(src, p, valueEnd);
      p = valueEnd;
    }
  }
}

/**
 * A checked JSON value with its top-level fields indexed. `JsonView.parse`
 * throws `JsonError` when the bytes are not one JSON value.
 */
export class JsonView {
  constructor(src, table) {
    this._src = src;
    this._t = table;
  }

  /** Checks `value` (a Uint8Array, or a string taken as its UTF-8) and indexes its top-level fields. */
  static parse(value) {
    const bytes = toBytes(value);
    const table = [];
    const s = fastScan(bytes, table);
    if (s === null) {
      table.length = 0;
      scanRoot(bytes, table);
      return new JsonView(makeSource(bytes, binaryString(bytes)), table);
    }
    return new JsonView(makeSource(bytes, s), table);
  }

  /** The whole value. */
  get root() {
    const b = this._src.b;
    const start = skipWs(b, 0);
    let end = b.length;
    while (end > start && isWs(b[end - 1])) end--;
    return new Raw(this._src, start, end);
  }

  get isObject() {
    return this._src.s.charCodeAt(skipWs(this._src.b, 0)) === 0x7b;
  }

  /** Number of top-level fields (duplicates counted). */
  get length() {
    return this._t.length / 5;
  }

  /** Index of the last top-level field named `name`, or -1. */
  find(name) {
    const t = this._t;
    const s = this._src.s;
    const bin = toBinary(String(name));
    const len = bin.length;
    for (let i = t.length - 5; i >= 0; i -= 5) {
      if (t[i + 4]) {
        if (this.key(i / 5).text === name) return i / 5;
      } else if (t[i + 1] - t[i] === len && s.startsWith(bin, t[i])) {
        return i / 5;
      }
    }
    return -1;
  }

  /** Key `i` as a binary string (unescaped), for comparing keys cheaply. */
  _keyId(i) {
    const t = this._t;
    const j = i * 5;
    return t[j + 4] ? toBinary(this.key(i).text) : this._src.s.slice(t[j], t[j + 1]);
  }

  /** Top-level field `name` (its last occurrence), or `undefined`. */
  get(name) {
    const i = this.find(name);
    return i < 0 ? undefined : this.value(i);
  }

  /** The value at a dotted path (`"a.b.c"`, array items by index) or a list of names. */
  path(path) {
    const names = splitPath(path);
    if (names.length === 0) return this.root;
    const first = this.isObject ? this.get(names[0]) : this.root.member(names[0]);
    return first === undefined ? undefined : first.path(names.slice(1));
  }

  /** Key of top-level field `i`. */
  key(i) {
    const t = this._t;
    return new RawKey(this._src, t[i * 5], t[i * 5 + 1], t[i * 5 + 4] === 1);
  }

  /** Value of top-level field `i`. */
  value(i) {
    const t = this._t;
    return new Raw(this._src, t[i * 5 + 2], t[i * 5 + 3]);
  }

  /** Every top-level field as `[RawKey, Raw]`, in input order, duplicates included. */
  *fields() {
    for (let i = 0; i < this.length; i++) yield [this.key(i), this.value(i)];
  }
}

// ---------------------------------------------------------------------------
// Writing

/**
 * Writes one JSON object field by field: raw slices are copied as they are,
 * new values are serialized (`canonicalJson`). It does not check for
 * duplicate keys; the caller decides what goes in once. The output is a
 * string of JSON text (the engine joins the slices without copying them
 * until it is emitted, when it is encoded to UTF-8 once).
 */
export class ObjectWriter {
  constructor(parent) {
    this._root = parent ?? { out: "" };
    this._empty = true;
    this._root.out += "{";
  }

  _key(name) {
    this._root.out += (this._empty ? "" : ",") + JSON.stringify(String(name)) + ":";
    this._empty = false;
  }

  /** Copies an input field: its key as written and its raw value. */
  rawField(key, value) {
    this._root.out += (this._empty ? '"' : ',"') + key.escapedText + '":' + value.text;
    this._empty = false;
    return this;
  }

  /** Writes `name` with a raw value copied as it is (a Raw, or JSON text you vouch for). */
  raw(name, value) {
    this._key(name);
    this._root.out += typeof value === "string" ? value : value.text;
    return this;
  }

  /** Writes `name` with `value` serialized (`canonicalJson`: BigInts as integers). */
  value(name, value) {
    this._key(name);
    this._root.out += canonicalJson(value);
    return this;
  }

  /** Writes `name` and starts an object as its value; `finish()` it before writing on to this one. */
  object(name) {
    this._key(name);
    return new ObjectWriter(this._root);
  }

  /**
   * Copies the top-level fields of `view` (an object JsonView) in input order,
   * skipping those named in `drop` and renaming by `rename` (`{old: "new"}`).
   * Only the last occurrence of a duplicated key is copied.
   */
  copyFrom(view, { drop = [], rename = {} } = {}) {
    // Names compared as binary strings (UTF-8 bytes as chars), like the keys.
    const skip = new Set();
    for (const d of drop) skip.add(toBinary(String(d)));
    const renamed = new Map();
    for (const k of Object.keys(rename)) renamed.set(toBinary(k), rename[k]);
    const n = view.length;
    // Walk backwards so the last occurrence of a duplicate wins, then write forwards.
    const seen = n > 1 ? new Set() : null;
    const keep = [];
    for (let i = n - 1; i >= 0; i--) {
      const id = view._keyId(i);
      if (seen !== null) {
        if (seen.has(id)) continue;
        seen.add(id);
      }
      if (!skip.has(id)) keep.push(i, id);
    }
    for (let j = keep.length - 2; j >= 0; j -= 2) {
      const i = keep[j];
      const to = renamed.get(keep[j + 1]);
      if (to !== undefined) this.raw(to, view.value(i));
      else this.rawField(view.key(i), view.value(i));
    }
    return this;
  }

  /** Closes the object; for the outermost writer, returns the JSON text written (emit it with `out.emitValue`). */
  finish() {
    this._root.out += "}";
    return this._root.out;
  }
}

// ---------------------------------------------------------------------------
// The tree API's parser

// Any integer at or beyond 2^53 has at least 16 digits, so text without a
// run of 16 digits parses exactly with JSON.parse (the fast path).
const LONG_DIGITS = /\d{16}/;
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

/**
 * Parses JSON text as JSON.parse does, except that an integer that is not a
 * safe integer (beyond ±(2^53 - 1)) becomes a BigInt with its exact value.
 * Throws SyntaxError when the text is not JSON.
 */
export function parseJson(text) {
  if (!LONG_DIGITS.test(text)) return JSON.parse(text);
  return parseExact(text);
}

function setMember(obj, key, value) {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

// Iterative, so depth costs heap rather than stack, as JSON.parse does.
function parseExact(text) {
  let p = 0;
  const n = text.length;
  const fail = (what) => {
    throw new SyntaxError(`${what} in JSON at position ${p}`);
  };
  const ws = () => {
    while (p < n) {
      const c = text.charCodeAt(p);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) p++;
      else break;
    }
  };
  const string = () => {
    const start = p;
    p++;
    for (;;) {
      if (p >= n) fail("Unterminated string");
      const c = text.charCodeAt(p);
      if (c === Q) break;
      p += c === BS ? 2 : 1;
    }
    p++;
    return JSON.parse(text.slice(start, p)); // checks escapes and control characters
  };
  const scalar = () => {
    const c = text.charCodeAt(p);
    if (c === Q) return string();
    if (text.startsWith("true", p)) {
      p += 4;
      return true;
    }
    if (text.startsWith("false", p)) {
      p += 5;
      return false;
    }
    if (text.startsWith("null", p)) {
      p += 4;
      return null;
    }
    NUMBER.lastIndex = p;
    const m = NUMBER.exec(text);
    if (m === null) fail(p >= n ? "Unexpected end" : "Unexpected token");
    p = NUMBER.lastIndex;
    const num = Number(m[0]);
    if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(num)) return BigInt(m[0]);
    return num;
  };
  // Each frame: [container, pending key (objects)].
  const stack = [];
  let result;
  let done = false;
  ws();
  for (;;) {
    // Read one value (or open a container).
    let v;
    let opened = false;
    if (p >= n) fail("Unexpected end");
    const c = text.charCodeAt(p);
    if (c === 0x7b || c === 0x5b) {
      p++;
      ws();
      const isObj = c === 0x7b;
      const container = isObj ? {} : [];
      if (text.charCodeAt(p) === (isObj ? 0x7d : 0x5d)) {
        p++;
        v = container;
      } else {
        stack.push([container, undefined]);
        opened = true;
        if (isObj) {
          if (text.charCodeAt(p) !== Q) fail("Expected property name");
          stack[stack.length - 1][1] = string();
          ws();
          if (text.charCodeAt(p) !== 0x3a) fail("Expected ':'");
          p++;
          ws();
        }
      }
    } else {
      v = scalar();
    }
    if (opened) continue;
    // Attach `v` and close containers as far as they end.
    for (;;) {
      if (stack.length === 0) {
        result = v;
        done = true;
        break;
      }
      const frame = stack[stack.length - 1];
      const [container, key] = frame;
      if (Array.isArray(container)) container.push(v);
      else setMember(container, key, v);
      ws();
      const d = text.charCodeAt(p);
      if (d === 0x2c) {
        p++;
        ws();
        if (!Array.isArray(container)) {
          if (text.charCodeAt(p) !== Q) fail("Expected property name");
          frame[1] = string();
          ws();
          if (text.charCodeAt(p) !== 0x3a) fail("Expected ':'");
          p++;
          ws();
        }
        break;
      }
      if (d === (Array.isArray(container) ? 0x5d : 0x7d)) {
        p++;
        stack.pop();
        v = container;
        continue;
      }
      fail(p >= n ? "Unexpected end" : "Unexpected token");
    }
    if (done) break;
  }
  ws();
  if (p !== n) fail("Unexpected non-whitespace character after JSON");
  return result;
}

/** Internal, for the SDK's tests: both scanners, to check that they agree. */
export const _scanners = { fastScan, scanRoot };
