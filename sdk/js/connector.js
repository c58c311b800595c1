// Custom connectors: `Source` and `Sink`, the JavaScript side of the
// contract's `source` and `sink` worlds (`sluice:plugin@0.2.0`).
//
// A source is opened at the position the pipeline resumes from, polled, and
// told when a position is durable:
//
//   import { Source, positionText } from "@sluice/plugin";
//
//   export class Count extends Source {
//     constructor(params, position) {      // position: Uint8Array, or undefined afresh
//       super(params, position);
//       params.only(["to"]);
//       this.to = Number(params.get("to") ?? 10);
//       this.next = position === undefined ? 0 : Number(positionText(position));
//     }
//     poll(maxEvents, out) {
//       while (out.length < maxEvents && this.next < this.to) out.emitJson({ n: this.next++ });
//       out.position = String(this.next);  // handed back to the constructor after a restart
//       out.caughtUp = true;
//       out.done = this.next === this.to;
//     }
//   }
//
// A sink is opened at the position its last `flush` returned, written batch
// by batch, and flushed at every checkpoint:
//
//   export class Hook extends Sink {
//     write(events, rejected) {
//       const resp = http.post(this.url, `[${events.map((e) => e.text()).join(",")}]`);
//       if (resp.status >= 500) throw new Retry(`HTTP ${resp.status}`);
//       if (resp.status >= 400) for (const e of events) rejected.reject(e, `HTTP ${resp.status}: ${resp.text()}`);
//     }
//     flush() { return ""; }                // nothing buffered: every write is durable
//   }
//
// Batches cross the boundary in the contract's packed tables (48-byte event
// records, 16-byte header records; wit/sluice.wit). `Poll.encode` packs them
// and `decodeBatch` unpacks them, natively (`@sluice/plugin/testing`) exactly
// as in the component, so a harness test exercises the same bytes.

import { canonicalJson, Event, Fatal, Params, Retry } from "./index.js";
import * as http from "./http.js";

const encoder = new TextEncoder();
const lossy = new TextDecoder("utf-8");

/** The contract version the connector worlds start at. */
export const CONNECTOR_CONTRACT_VERSION = "0.2.0";

// The contract's record layouts (wit/sluice.wit, package comment).
const EVENT_SIZE = 48;
const HEADER_SIZE = 16;
const HAS_KEY = 1;
const HAS_VALUE = 2;
const S64_MIN = -(2n ** 63n);
const S64_MAX = 2n ** 63n - 1n;

function bytes(x) {
  if (typeof x === "string") return encoder.encode(x);
  if (x instanceof Uint8Array) return x;
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError("expected a string or a Uint8Array");
}

/** A position (bytes) as text, or `undefined` for none. */
export function positionText(position) {
  return position === undefined || position === null ? undefined : lossy.decode(position);
}

function timestamp(ms) {
  // BigInt keeps every s64 exact; a number past 2^53 has already lost digits.
  if (typeof ms === "number" && !Number.isSafeInteger(ms)) {
    throw new RangeError(`timestampMs ${ms} is not an exact integer; pass a BigInt`);
  }
  const t = BigInt(ms);
  if (t < S64_MIN || t > S64_MAX) throw new RangeError(`timestampMs ${t} does not fit in 64 bits`);
  return t;
}

// ---------------------------------------------------------------------------
// Framing

/**
 * Packs `[{key, value, headers, timestampMs}]` (key/value `Uint8Array` or
 * `undefined`, headers `[Uint8Array, Uint8Array][]`, timestamp a BigInt) into
 * the contract's `{data, events, headers}` buffers; event `i` has parent `i`.
 */
export function encodeEvents(items) {
  let dataLen = 0;
  let headerCount = 0;
  for (const it of items) {
    dataLen += (it.key?.length ?? 0) + (it.value?.length ?? 0);
    for (const [n, v] of it.headers) dataLen += n.length + v.length;
    headerCount += it.headers.length;
  }
  const data = new Uint8Array(dataLen);
  const events = new Uint8Array(EVENT_SIZE * items.length);
  const headers = new Uint8Array(HEADER_SIZE * headerCount);
  const ev = new DataView(events.buffer);
  const hv = new DataView(headers.buffer);
  let at = 0;
  const put = (b) => {
    data.set(b, at);
    at += b.length;
    return at - b.length;
  };
  let h = 0;
  items.forEach((it, i) => {
    const o = EVENT_SIZE * i;
    let flags = 0;
    if (it.key !== undefined) {
      ev.setUint32(o, put(it.key), true);
      ev.setUint32(o + 4, it.key.length, true);
      flags |= HAS_KEY;
    }
    if (it.value !== undefined) {
      ev.setUint32(o + 8, put(it.value), true);
      ev.setUint32(o + 12, it.value.length, true);
      flags |= HAS_VALUE;
    }
    ev.setUint32(o + 16, h, true);
    ev.setUint32(o + 20, it.headers.length, true);
    for (const [n, v] of it.headers) {
      const ho = HEADER_SIZE * h++;
      hv.setUint32(ho, put(n), true);
      hv.setUint32(ho + 4, n.length, true);
      hv.setUint32(ho + 8, put(v), true);
      hv.setUint32(ho + 12, v.length, true);
    }
    ev.setBigInt64(o + 24, it.timestampMs, true);
    ev.setUint32(o + 32, 0, true);
    ev.setUint32(o + 36, i, true);
    ev.setUint32(o + 40, flags, true);
  });
  return { data, events, headers };
}

/**
 * Unpacks the contract's `batch` record (`{data, events, headers, streams}`,
 * tables as bytes) into the shape `Event` reads. Throws on a table whose
 * length is not a multiple of its record size, an unknown flag or a span
 * outside `data`: the host never sends one, so it means a broken batch.
 */
export function decodeBatch({ data, events, headers, streams = [] }) {
  if (events.length % EVENT_SIZE || headers.length % HEADER_SIZE) {
    throw new Error(`malformed batch: event table of ${events.length} bytes, header table of ${headers.length} bytes`);
  }
  const ev = new DataView(events.buffer, events.byteOffset, events.byteLength);
  const hv = new DataView(headers.buffer, headers.byteOffset, headers.byteLength);
  const span = (view, o) => {
    const offset = view.getUint32(o, true);
    const len = view.getUint32(o + 4, true);
    if (offset + len > data.length) throw new Error(`malformed batch: span ${offset}+${len} outside ${data.length} bytes of data`);
    return { offset, len };
  };
  const hs = [];
  for (let o = 0; o < headers.length; o += HEADER_SIZE) hs.push({ name: span(hv, o), value: span(hv, o + 8) });
  const raw = [];
  for (let o = 0; o < events.length; o += EVENT_SIZE) {
    const flags = ev.getUint32(o + 40, true);
    if (flags & ~(HAS_KEY | HAS_VALUE)) throw new Error(`malformed batch: event ${o / EVENT_SIZE} has unknown flags ${flags}`);
    const first = ev.getUint32(o + 16, true);
    const n = ev.getUint32(o + 20, true);
    if (first + n > hs.length) throw new Error(`malformed batch: event ${o / EVENT_SIZE} names headers outside the table`);
    raw.push({
      key: flags & HAS_KEY ? span(ev, o) : undefined,
      value: flags & HAS_VALUE ? span(ev, o + 8) : undefined,
      headers: { offset: first, len: n },
      timestampMs: ev.getBigInt64(o + 24, true),
      stream: ev.getUint32(o + 32, true),
      parent: ev.getUint32(o + 36, true),
    });
  }
  return { data, events: raw, headers: hs, streams: [...streams] };
}

// ---------------------------------------------------------------------------
// Source

/**
 * What one `Source.poll` returns: events, malformed inputs, the position
 * after all of them, and the `caughtUp` and `done` flags.
 *
 * `position` (set a string or bytes; read as bytes) is handed back to the
 * source's constructor after a restart; leave it unset when it did not
 * change. `caughtUp` tells the host the backlog is delivered (tables the
 * source feeds count as loaded from then on); once a poll sets it, later
 * polls start with it set and the SDK keeps it set. `done`
 * ends a bounded source: the host stops polling.
 */
export class Poll {
  constructor() {
    this._items = [];
    /** Inputs reported with `malformed`: `[raw bytes, reason]`. */
    this.malformedInputs = [];
    this._position = new Uint8Array();
    this.caughtUp = false;
    this.done = false;
  }

  /** The position after this poll (empty: unchanged). */
  get position() {
    return this._position;
  }

  set position(value) {
    this._position = bytes(value ?? "");
  }

  /**
   * Adds an event with `value` (string or bytes; `null`/`undefined` is a
   * tombstone). `timestampMs` 0 (the default) lets the host stamp it with the
   * time it was polled; a BigInt keeps a 64-bit value exact.
   */
  emit(value, { key, headers = [], timestampMs = 0 } = {}) {
    this._items.push({
      key: key === undefined || key === null ? undefined : bytes(key),
      value: value === undefined || value === null ? undefined : bytes(value),
      headers: headers.map(([n, v]) => [bytes(String(n)), bytes(v)]),
      timestampMs: timestamp(timestampMs),
    });
  }

  /** Adds an event whose value is `value` as canonical JSON (BigInts written exactly; see `canonicalJson`). */
  emitJson(value, options = {}) {
    this.emit(canonicalJson(value), options);
  }

  /**
   * Reports an input that could not become an event: it is dead-lettered
   * with `reason` and the raw bytes, and the source goes on.
   */
  malformed(raw, reason) {
    this.malformedInputs.push([bytes(raw), String(reason)]);
  }

  /** Events added so far (malformed inputs not counted). */
  get length() {
    return this._items.length;
  }

  /** The values added, as text (`null` for a tombstone); for tests. */
  values() {
    return this._items.map((e) => (e.value === undefined ? null : lossy.decode(e.value)));
  }

  /** The keys added, as text (`null` where there is none); for tests. */
  keys() {
    return this._items.map((e) => (e.key === undefined ? null : lossy.decode(e.key)));
  }

  /** The timestamps added as BigInts (0n: stamped by the host); for tests. */
  timestamps() {
    return this._items.map((e) => e.timestampMs);
  }

  /** The position as text; for tests. */
  positionText() {
    return lossy.decode(this._position);
  }

  /** The events as the contract's `{data, events, headers}` buffers. */
  encode() {
    return encodeEvents(this._items);
  }
}

/**
 * A custom source connector. Extend it once per plugin and export the class.
 *
 * `constructor(params, position)` validates the parameters (throw to fail
 * the deployment; `params.only([...])` refuses typos) and resumes after
 * `position`: the bytes of the checkpoint the pipeline resumes from, or
 * `undefined` to start afresh.
 */
export class Source {
  // eslint-disable-next-line no-unused-vars
  constructor(params, position) {}

  /**
   * Adds up to `maxEvents` events to `out` (a `Poll`) and the position after
   * them. Return quickly when nothing is there: the host polls again after a
   * pause. Throw `Retry` to be polled again with backoff, `Fatal` to stop the
   * pipeline.
   */
  // eslint-disable-next-line no-unused-vars
  poll(maxEvents, out) {
    throw new Error(`${this.constructor.name}.poll is not implemented`);
  }

  /**
   * A checkpoint holding `position` (bytes) is durable: every sink has it.
   * Acknowledge upstream here, never earlier. Default: nothing to do.
   */
  // eslint-disable-next-line no-unused-vars
  commit(position) {}
}

// ---------------------------------------------------------------------------
// Sink

/**
 * The events of one batch the target refused for good, with its reasons.
 * Each becomes one dead letter (kind `sink`) carrying the reason.
 */
export class Rejections {
  constructor(batchLen) {
    this._n = batchLen;
    /** `[index in the batch, reason]`, in the order refused. */
    this.items = [];
  }

  /** Refuses `event` (an `Event` of the batch, or its index) with `reason`. A second refusal of the same event is ignored. */
  reject(event, reason) {
    const index = typeof event === "number" ? event : event?.index;
    if (!Number.isInteger(index) || index < 0 || index >= this._n) {
      throw new RangeError(`rejected event index ${index} is outside the batch of ${this._n}`);
    }
    if (!this.items.some(([i]) => i === index)) this.items.push([index, String(reason)]);
  }

  get length() {
    return this.items.length;
  }
}

/**
 * A custom sink connector. Extend it once per plugin and export the class.
 *
 * `constructor(params, position)` validates the parameters and restores the
 * state at `position` (what `flush` returned for the checkpoint resumed
 * from; `undefined`: afresh). Events after that checkpoint are written
 * again, so a target that cannot deduplicate gets them at least once.
 */
export class Sink {
  // eslint-disable-next-line no-unused-vars
  constructor(params, position) {}

  /**
   * Writes a batch (`Event[]`; it may buffer). Refuse the events the target
   * refuses for good with `rejected.reject(event, reason)`. Throw `Retry` (a
   * 5xx, a timeout) to have the host write the same batch again after a
   * backoff, `Fatal` to stop.
   */
  // eslint-disable-next-line no-unused-vars
  write(events, rejected) {
    throw new Error(`${this.constructor.name}.write is not implemented`);
  }

  /**
   * Makes everything written so far durable and returns the position to
   * checkpoint (a string or bytes; may be empty). The host commits the source
   * positions the checkpoint covers only after this returns.
   */
  flush() {
    throw new Error(`${this.constructor.name}.flush is not implemented`);
  }
}

// ---------------------------------------------------------------------------
// Calls, shared by the component glue and the native harnesses

/**
 * Calls a connector method as the host does: an `HttpError` that escapes it
 * becomes `Retry` (timeout, failed) or `Fatal` (denied, too large), with its
 * message.
 */
export function call(fn) {
  try {
    return fn();
  } catch (e) {
    if (e instanceof http.Timeout || e instanceof http.Failed) throw new Retry(e.message);
    if (e instanceof http.HttpError) throw new Fatal(e.message);
    throw e;
  }
}

/** Opens a connector class with the host's params (`{name, value}[]` or pairs) and position. */
export function openConnector(Cls, params, position) {
  const p = params instanceof Params ? params : new Params(params ?? []);
  return new Cls(p, position === undefined || position === null ? undefined : bytes(position));
}

/**
 * Runs one poll; returns the `Poll`. `caughtUp` is what the previous polls
 * reported: the contract says it stays true once true, so the SDK carries it
 * over (the poll starts with it set) and keeps it set even if the poll clears
 * it, rather than make every source remember it.
 */
export function pollSource(source, maxEvents, caughtUp = false) {
  const out = new Poll();
  out.caughtUp = caughtUp;
  call(() => source.poll(maxEvents, out));
  out.caughtUp = caughtUp || Boolean(out.caughtUp);
  return out;
}

/** Runs `sink.write` over a contract batch; returns `[index, reason]` pairs. */
export function writeBatch(sink, batch) {
  const decoded = decodeBatch(batch);
  const events = decoded.events.map((raw, i) => new Event(decoded, raw, i));
  const rejected = new Rejections(events.length);
  call(() => sink.write(events, rejected));
  return rejected.items;
}

/** Runs `sink.flush`; returns its position as bytes (`undefined`/`null` is empty). */
export function flushPosition(sink) {
  const position = call(() => sink.flush());
  return position === undefined || position === null ? new Uint8Array() : bytes(position);
}

/**
 * The one exported subclass of `base` in a plugin module, or the class it
 * names in `explicit` (`export const SOURCE = MySource`) when it exports
 * several.
 */
export function findConnector(mod, base, explicit) {
  const what = base.name;
  const isSub = (v) => typeof v === "function" && v.prototype instanceof base;
  if (mod[explicit] !== undefined) {
    if (!isSub(mod[explicit])) throw new Error(`the plugin module's \`${explicit}\` must be a class that extends ${what}`);
    return mod[explicit];
  }
  const found = [...new Set(Object.values(mod).filter(isSub))];
  if (found.length !== 1) {
    const names = found.map((c) => c.name).sort().join(", ") || "none";
    throw new Error(
      `the plugin module must export exactly one class that extends ${what} (found: ${names}), or name the one to use with \`export const ${explicit} = My${what}\``,
    );
  }
  return found[0];
}
