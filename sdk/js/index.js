// @sluice/plugin: write Sluice transforms and custom connectors (`Source`,
// `Sink`; see connector.js) in JavaScript or TypeScript.
//
//   import { Reject } from "@sluice/plugin";
//
//   export const transform = {
//     create(params) {              // once per stage; throw to refuse the params
//       params.only(["field"]);
//       return { field: params.get("field") ?? "seen" };
//     },
//     process(event, out, state) {  // once per input event; emit 0..n events
//       if (event.isTombstone) return out.forward();
//       const obj = event.json();
//       if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
//         throw new Reject("expected a JSON object");
//       }
//       out.emitJson({ ...obj, [state.field]: true });
//     },
//   };
//
// `sluice plugin build DIR` bundles the plugin with this module (esbuild) and
// turns it into a component (componentize-js); the name, version and
// description it reports come from the plugin's package.json. The batch loop
// (`runBatch`) is the same code natively and in the sandbox, so what
// `@sluice/plugin/testing` runs in a unit test is what runs in a pipeline.
//
// Nothing here touches WASI: the host links only `sluice:plugin/*`.

import { JsonError, JsonView, parseJson } from "./json.js";

export { JsonError, JsonView, MAX_DEPTH, ObjectWriter, parseJson, Raw, RawKey } from "./json.js";
export {
  CONNECTOR_CONTRACT_VERSION,
  decodeBatch,
  encodeEvents,
  Poll,
  positionText,
  Rejections,
  Sink,
  Source,
} from "./connector.js";
export * as clock from "./clock.js";
export * as http from "./http.js";

import * as connector from "./connector.js";
import * as clockModule from "./clock.js";
import * as httpModule from "./http.js";

/** The contract version this SDK's transforms speak (connectors: `CONNECTOR_CONTRACT_VERSION`). */
export const CONTRACT_VERSION = "0.1.0";

/** Throw from `process`: dead-letter this one event with `reason`. */
export class Reject extends Error {
  constructor(reason) {
    super(String(reason));
    this.name = "Reject";
  }
}

/** Throw from `process`: something outside is unavailable; the host retries the batch later. */
export class Retry extends Error {
  constructor(reason) {
    super(String(reason));
    this.name = "Retry";
  }
}

/** Throw from `process`: the plugin cannot go on; the host stops the stage. */
export class Fatal extends Error {
  constructor(reason) {
    super(String(reason));
    this.name = "Fatal";
  }
}

// ---------------------------------------------------------------------------
// Parameters

/** The stage's parameters from the pipeline file, as text. */
export class Params {
  /** @param {Iterable<[string, string]> | {name: string, value: string}[] | Record<string, string>} entries */
  constructor(entries = []) {
    this.entries = [];
    if (Symbol.iterator in Object(entries)) {
      for (const e of entries) {
        this.entries.push(Array.isArray(e) ? [String(e[0]), String(e[1])] : [String(e.name), String(e.value)]);
      }
    } else {
      for (const [k, v] of Object.entries(entries)) this.entries.push([k, String(v)]);
    }
  }

  /** The value of `name`, or `undefined`. */
  get(name) {
    const e = this.entries.find(([k]) => k === name);
    return e === undefined ? undefined : e[1];
  }

  /** The value of `name`, or throws saying it is required. */
  required(name) {
    const v = this.get(name);
    if (v === undefined) throw new Error(`parameter \`${name}\` is required`);
    return v;
  }

  /** `true`/`false`, or `fallback` when unset. */
  bool(name, fallback = false) {
    const v = this.get(name);
    if (v === undefined) return fallback;
    if (v === "true") return true;
    if (v === "false") return false;
    throw new Error(`parameter \`${name}\`: expected \`true\` or \`false\`, found \`${v}\``);
  }

  /** The value parsed as JSON (lists and maps arrive this way), or `undefined` when unset. */
  json(name) {
    const v = this.get(name);
    if (v === undefined) return undefined;
    try {
      return JSON.parse(v);
    } catch (e) {
      throw new Error(`parameter \`${name}\`: expected JSON (${e.message})`);
    }
  }

  /** Throws when a parameter outside `allowed` is set, so a typo fails the deployment. */
  only(allowed) {
    for (const [name] of this.entries) {
      if (!allowed.includes(name)) {
        throw new Error(`unknown parameter \`${name}\`; allowed: ${allowed.join(", ")}`);
      }
    }
  }

  /** All (name, value) pairs in the order given. */
  [Symbol.iterator]() {
    return this.entries[Symbol.iterator]();
  }
}

// ---------------------------------------------------------------------------
// Canonical JSON

function codePointCompare(a, b) {
  // UTF-8 byte order equals code point order. UTF-16 code unit order differs
  // from it only when a surrogate (astral character) meets U+E000..U+FFFF.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        // Move surrogates above U+E000..U+FFFF, where their code points are.
        x = x <= 0xdfff ? x + 0x2000 : x - 0x800;
        y = y <= 0xdfff ? y + 0x2000 : y - 0x800;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

const ASTRAL = /[\ud800-\udfff]/;

function sortedKeys(v) {
  const keys = [];
  for (const k of Object.keys(v)) {
    const x = v[k];
    if (x !== undefined && typeof x !== "function") keys.push(k);
  }
  // The built-in sort (UTF-16 order) is much faster than a comparator and
  // agrees with UTF-8 byte order unless a key has an astral character.
  keys.sort();
  if (keys.length > 1 && ASTRAL.test(keys.join(""))) keys.sort(codePointCompare);
  return keys;
}

function writeJson(v) {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "number":
      if (!Number.isFinite(v)) throw new TypeError(`cannot write ${v} as JSON`);
      // Integers print without a decimal point; other numbers as the shortest
      // text that reads back as the same double.
      return Number.isInteger(v) && Math.abs(v) < 1e21 ? v.toFixed(0) : String(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
    case "object": {
      if (v === null) return "null";
      if (Array.isArray(v)) {
        let s = "[";
        for (let i = 0; i < v.length; i++) {
          if (i) s += ",";
          s += v[i] === undefined ? "null" : writeJson(v[i]);
        }
        return s + "]";
      }
      if (typeof v.toJSON === "function") return writeJson(v.toJSON());
      const keys = sortedKeys(v);
      let s = "{";
      for (let i = 0; i < keys.length; i++) {
        if (i) s += ",";
        s += JSON.stringify(keys[i]) + ":" + writeJson(v[keys[i]]);
      }
      return s + "}";
    }
    default:
      throw new TypeError(`cannot write a ${typeof v} as JSON`);
  }
}

/**
 * Compact JSON with object keys sorted by their UTF-8 bytes at every level,
 * integers without a decimal point (BigInts as integers), and only `"`, `\`
 * and control characters escaped: the same bytes serde_json writes.
 */
export function canonicalJson(value) {
  return writeJson(value);
}

// ---------------------------------------------------------------------------
// Bytes

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const lossy = new TextDecoder("utf-8");

/** A growable byte buffer: the `data` of an output batch. */
class ByteBuf {
  constructor(capacity) {
    this.bytes = new Uint8Array(Math.max(capacity, 256));
    this.len = 0;
  }

  reserve(n) {
    if (this.len + n <= this.bytes.length) return;
    let cap = this.bytes.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.bytes.subarray(0, this.len));
    this.bytes = next;
  }

  /** Appends bytes or a string (as UTF-8); returns the span. */
  push(chunk) {
    const offset = this.len;
    if (typeof chunk === "string") {
      this.reserve(chunk.length * 3);
      this.len += encoder.encodeInto(chunk, this.bytes.subarray(this.len)).written;
    } else {
      this.reserve(chunk.length);
      this.bytes.set(chunk, this.len);
      this.len += chunk.length;
    }
    return { offset, len: this.len - offset };
  }

  finish() {
    return this.bytes.subarray(0, this.len);
  }
}

function slice(data, span) {
  if (span === undefined || span === null) return undefined;
  const end = span.offset + span.len;
  if (end > data.length) return undefined;
  return data.subarray(span.offset, end);
}

function toBytes(v) {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string" || v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError("expected a string or a Uint8Array");
}

// ---------------------------------------------------------------------------
// Events

/** One input event; reads are views into the batch, nothing is copied. */
export class Event {
  constructor(batch, raw, index) {
    this._batch = batch;
    this._raw = raw;
    /** Index of the event in its input batch. */
    this.index = index;
  }

  /** The key bytes, or `undefined` when the event has no key. */
  get key() {
    return slice(this._batch.data, this._raw.key);
  }

  /** The key as UTF-8 text (invalid bytes replaced), or `undefined`. */
  get keyText() {
    const k = this.key;
    return k === undefined ? undefined : lossy.decode(k);
  }

  /** The value bytes (UTF-8 JSON in a pipeline), or `undefined` for a tombstone. */
  get value() {
    return slice(this._batch.data, this._raw.value);
  }

  /** True when the event is a tombstone (a delete): it has no value. */
  get isTombstone() {
    return this._raw.value === undefined || this._raw.value === null;
  }

  /** The value as text; throws `Reject` when it is not UTF-8. `undefined` for a tombstone. */
  text() {
    const v = this.value;
    if (v === undefined) return undefined;
    try {
      return decoder.decode(v);
    } catch {
      throw new Reject("value is not valid UTF-8");
    }
  }

  /**
   * The value parsed as JSON; throws `Reject` naming the error when it is not
   * JSON. A tombstone is `null`. Integers beyond ±(2^53 - 1) are BigInts, so
   * `emitJson` writes them back unchanged (see `parseJson`).
   */
  json() {
    const text = this.text();
    if (text === undefined) return null;
    try {
      return parseJson(text);
    } catch (e) {
      throw new Reject(`value is not valid JSON: ${e.message}`);
    }
  }

  /**
   * The value as a zero-copy `JsonView` (fields by name or path, raw text of
   * each value, nothing built); throws `Reject` naming the error when it is
   * not JSON. `undefined` for a tombstone.
   */
  view() {
    const v = this.value;
    if (v === undefined) return undefined;
    try {
      return JsonView.parse(v);
    } catch (e) {
      if (e instanceof JsonError) throw new Reject(`value is not valid JSON: ${e.message}`);
      throw e;
    }
  }

  /** Milliseconds since the Unix epoch, as a number. */
  get timestampMs() {
    return Number(this._raw.timestampMs);
  }

  /** Name of the input stream the event arrived on. */
  get stream() {
    return this._batch.streams[this._raw.stream] ?? "";
  }

  /** All headers as `[name, value bytes]` pairs. */
  headers() {
    const { offset, len } = this._raw.headers;
    const out = [];
    for (const h of this._batch.headers.slice(offset, offset + len)) {
      const name = slice(this._batch.data, h.name);
      const value = slice(this._batch.data, h.value);
      if (name !== undefined && value !== undefined) out.push([lossy.decode(name), value]);
    }
    return out;
  }

  /** The first header named `name` (its bytes), or `undefined`. */
  header(name) {
    const h = this.headers().find(([n]) => n === name);
    return h === undefined ? undefined : h[1];
  }
}

/**
 * Where `process` writes output events. Every emitted event names its input
 * as `parent` and, unless you use `emit`, carries the input's key, headers and
 * timestamp. If `process` then throws `Reject`, whatever it emitted for that
 * event is withdrawn.
 */
export class Emitter {
  constructor(out, input) {
    this._out = out;
    this._input = input;
  }

  /** Emits the input event unchanged (use it for tombstones). */
  forward() {
    this._push(this._input.value);
  }

  /** Emits `value` (a string or bytes) with the input's key, headers and timestamp. */
  emitValue(value) {
    this._push(toBytes(value));
  }

  /** Emits `value` as canonical JSON (see `canonicalJson`) with the input's key, headers and timestamp. */
  emitJson(value) {
    this._push(canonicalJson(value));
  }

  /** Emits a tombstone with the input's key, headers and timestamp. */
  tombstone() {
    this._push(undefined);
  }

  /**
   * Emits a fully specified event: `{key, value, headers, timestampMs}`;
   * `key`/`value` are strings or bytes (value `undefined` = tombstone),
   * `headers` is `[name, value][]`. Omitted fields are empty, not copied.
   */
  emit({ key, value, headers = [], timestampMs = 0 } = {}) {
    const out = this._out;
    const k = toBytes(key);
    const v = toBytes(value);
    const keySpan = k === undefined ? undefined : out.data.push(k);
    const valueSpan = v === undefined ? undefined : out.data.push(v);
    const first = out.headers.length;
    for (const [name, val] of headers) {
      out.headers.push({ name: out.data.push(String(name)), value: out.data.push(toBytes(val) ?? "") });
    }
    out.events.push({
      key: keySpan,
      value: valueSpan,
      headers: { offset: first, len: headers.length },
      timestampMs: BigInt(timestampMs),
      stream: 0,
      parent: this._input.index,
    });
  }

  _push(value) {
    const out = this._out;
    const input = this._input;
    const key = input.key;
    const keySpan = key === undefined ? undefined : out.data.push(key);
    const valueSpan = value === undefined ? undefined : out.data.push(value);
    const first = out.headers.length;
    const { offset, len } = input._raw.headers;
    const data = input._batch.data;
    let n = 0;
    for (const h of input._batch.headers.slice(offset, offset + len)) {
      const name = slice(data, h.name);
      const val = slice(data, h.value);
      if (name === undefined || val === undefined) continue;
      out.headers.push({ name: out.data.push(name), value: out.data.push(val) });
      n++;
    }
    out.events.push({
      key: keySpan,
      value: valueSpan,
      headers: { offset: first, len: n },
      timestampMs: input._raw.timestampMs,
      stream: 0,
      parent: input.index,
    });
  }
}

// ---------------------------------------------------------------------------
// The batch loop and the component export

function message(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Normalizes what a plugin module exports into `{create(params), process(event, out, state)}`.
 * Accepted: `export const transform = {create?, process}` (`create` returns the
 * state handed to `process`; without `create`, any parameter is refused), or
 * `export class Transform { constructor(params); process(event, out) }`.
 */
export function resolveTransform(mod) {
  const t = mod.transform ?? mod.Transform ?? mod.default;
  if (typeof t === "function" && typeof t.prototype?.process === "function") {
    return {
      create: (params) => new t(params),
      process: (event, out, state) => state.process(event, out),
    };
  }
  if (t && typeof t.process === "function") {
    return {
      create: (params) => {
        if (typeof t.create !== "function") {
          params.only([]);
          return undefined;
        }
        return t.create(params);
      },
      process: (event, out, state) => t.process(event, out, state),
    };
  }
  throw new Error(
    "the plugin module must export `transform = { create(params), process(event, out, state) }` or a class `Transform` with `process(event, out)`",
  );
}

/**
 * Runs `process` over one framed input batch (the contract's `batch` record)
 * and returns the contract's `output` record. Throws `{tag: "retry"|"fatal", val}`
 * (the contract's `call-error`) for `Retry`/`Fatal`. Any other exception
 * rejects the one event with `plugin error: MESSAGE`.
 */
export function runBatch(transform, state, input) {
  const out = { data: new ByteBuf(input.data.length), events: [], headers: [] };
  const rejected = [];
  for (let index = 0; index < input.events.length; index++) {
    const marks = [out.data.len, out.events.length, out.headers.length];
    const event = new Event(input, input.events[index], index);
    try {
      transform.process(event, new Emitter(out, event), state);
    } catch (e) {
      if (e instanceof Retry) throw { tag: "retry", val: e.message };
      if (e instanceof Fatal) throw { tag: "fatal", val: e.message };
      out.data.len = marks[0];
      out.events.length = marks[1];
      out.headers.length = marks[2];
      const reason = e instanceof Reject ? e.message : `plugin error: ${message(e)}`;
      rejected.push({ index, reason });
    }
  }
  return {
    events: { data: out.data.finish(), events: out.events, headers: out.headers, streams: [] },
    rejected,
  };
}

const LEVELS = ["trace", "debug", "info", "warn", "error"];
let hostLog = (level, msg) => console.error(`[${level}] ${msg}`);

/** Logs through the host (tagged with stage, plugin and version); `console.error` natively. */
export const log = Object.fromEntries(LEVELS.map((level) => [level, (msg) => hostLog(level, String(msg))]));

/**
 * Builds the `sluice:plugin/transformer` export from a plugin module. The
 * build calls this in a generated entry; plugin code does not need to.
 */
export function exportTransformer(mod, info, logImport) {
  if (typeof logImport === "function") hostLog = logImport;
  const transform = resolveTransform(mod);
  class Transform {
    constructor(state) {
      this.state = state;
    }

    static create(params) {
      try {
        return new Transform(transform.create(new Params(params)));
      } catch (e) {
        throw message(e);
      }
    }

    process(input) {
      return runBatch(transform, this.state, input);
    }
  }
  return {
    describe: () => ({ name: info.name, version: info.version, description: info.description ?? "" }),
    Transform,
  };
}

// ---------------------------------------------------------------------------
// Connector exports (worlds `source` and `sink`, contract 0.2.0)

/** An exception's one-line description for the host log: name, message, first stack frame. */
function describeException(e) {
  if (!(e instanceof Error)) return `plugin threw ${String(e)}`;
  const frame = String(e.stack ?? "")
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "");
  return `plugin threw ${e.name}: ${e.message}${frame ? ` (at ${frame})` : ""}`;
}

/**
 * Calls a connector method for the host: `Retry`/`Fatal` (and HTTP errors,
 * through `connector.call`) become the call's `call-error`; anything else is
 * a bug, logged to the host and rethrown, which traps the instance (the host
 * discards it and reopens the connector at its last position or flush).
 */
function guarded(fn) {
  try {
    return connector.call(fn);
  } catch (e) {
    if (e instanceof Retry) throw { tag: "retry", val: e.message };
    if (e instanceof Fatal) throw { tag: "fatal", val: e.message };
    hostLog("error", describeException(e));
    throw e;
  }
}

/** Points `log`, `http` and `clock` at the host's imports. */
function installHost(logImport, sendImport, clockImport) {
  if (typeof logImport === "function") hostLog = logImport;
  if (clockImport && typeof clockImport.nowMs === "function") {
    // Without the grant the host stops the pipeline at the first call.
    clockModule.setClock({ nowMs: clockImport.nowMs, monotonicNs: clockImport.monotonicNs });
  }
  if (typeof sendImport === "function") {
    httpModule.setTransport((request) => {
      let resp;
      try {
        resp = sendImport(request);
      } catch (e) {
        // The host's `http-error` arrives as a thrown value carrying the variant.
        throw httpModule.errorFromVariant(e?.payload ?? e);
      }
      return new httpModule.Response(resp.status, resp.headers, resp.body);
    });
  }
}

function open(Cls, Resource, params, position) {
  try {
    return new Resource(connector.openConnector(Cls, params, position));
  } catch (e) {
    throw message(e);
  }
}

function describeInfo(info) {
  return () => ({ name: info.name, version: info.version, description: info.description ?? "" });
}

/**
 * Builds the `sluice:plugin/reader` export from a plugin module exporting a
 * `Source` subclass. The build calls this in a generated entry.
 */
export function exportReader(mod, info, logImport, sendImport, clockImport) {
  installHost(logImport, sendImport, clockImport);
  const Cls = connector.findConnector(mod, connector.Source, "SOURCE");
  class SourceResource {
    constructor(inner) {
      this.inner = inner;
      this.caughtUp = false;
    }

    static open(params, position) {
      return open(Cls, SourceResource, params, position);
    }

    poll(maxEvents) {
      const out = guarded(() => connector.pollSource(this.inner, maxEvents, this.caughtUp));
      this.caughtUp = out.caughtUp;
      const { data, events, headers } = out.encode();
      return {
        events: { data, events, headers, streams: [] },
        malformed: out.malformedInputs.map(([raw, reason]) => ({ raw, reason })),
        position: out.position,
        caughtUp: Boolean(out.caughtUp),
        done: Boolean(out.done),
      };
    }

    commit(position) {
      guarded(() => this.inner.commit(position));
    }
  }
  return { describe: describeInfo(info), Source: SourceResource };
}

/**
 * Builds the `sluice:plugin/writer` export from a plugin module exporting a
 * `Sink` subclass. The build calls this in a generated entry.
 */
export function exportWriter(mod, info, logImport, sendImport, clockImport) {
  installHost(logImport, sendImport, clockImport);
  const Cls = connector.findConnector(mod, connector.Sink, "SINK");
  class SinkResource {
    constructor(inner) {
      this.inner = inner;
    }

    static open(params, position) {
      return open(Cls, SinkResource, params, position);
    }

    write(batch) {
      return guarded(() => connector.writeBatch(this.inner, batch)).map(([index, reason]) => ({ index, reason }));
    }

    flush() {
      return guarded(() => connector.flushPosition(this.inner));
    }
  }
  return { describe: describeInfo(info), Sink: SinkResource };
}
