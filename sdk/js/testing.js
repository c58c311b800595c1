// @sluice/plugin/testing: run a transform or a connector natively, in a unit
// test, through the same code the component runs (`runBatch` for transforms;
// for connectors the same packing of batches into the contract's tables and
// the same error mapping).
//
//   import { run } from "@sluice/plugin/testing";
//   import * as plugin from "../src/index.js";
//   const out = run(plugin, {}, ['{"a":1}', "[1]"]);
//   assert.deepEqual(out.values, ['{"a":1,"seen":true}']);
//   assert.deepEqual(out.rejected, [[1, "expected a JSON object"]]);

import { Params, resolveTransform, runBatch } from "./index.js";
import * as conn from "./connector.js";
import * as clock from "./clock.js";
import * as http from "./http.js";

export { Response } from "./http.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Builds an input batch from events: each is a value string, `null` (a
 * tombstone), or `{key, value, headers: [[name, value]], timestampMs, stream}`.
 */
export function batch(events, streams = ["input"]) {
  const chunks = [];
  let len = 0;
  const push = (s) => {
    const bytes = typeof s === "string" ? encoder.encode(s) : s;
    chunks.push(bytes);
    len += bytes.length;
    return { offset: len - bytes.length, len: bytes.length };
  };
  const headers = [];
  const raw = events.map((e, i) => {
    const ev = e === null || typeof e === "string" || e instanceof Uint8Array ? { value: e } : e;
    const first = headers.length;
    for (const [name, value] of ev.headers ?? []) headers.push({ name: push(name), value: push(value) });
    return {
      key: ev.key === undefined || ev.key === null ? undefined : push(ev.key),
      value: ev.value === undefined || ev.value === null ? undefined : push(ev.value),
      headers: { offset: first, len: headers.length - first },
      timestampMs: BigInt(ev.timestampMs ?? 0),
      stream: ev.stream ?? 0,
      parent: i,
    };
  });
  const data = new Uint8Array(len);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { data, events: raw, headers, streams };
}

/**
 * Creates the transform exported by `mod` with `params` (an object or
 * `[name, value]` pairs) and runs it over `events` (see `batch`). Returns
 * `{values, rejected, events}`: output values as text (`null` for a
 * tombstone), `[index, reason]` pairs, and decoded output events.
 * `Retry`/`Fatal` and refused parameters throw.
 */
export function run(mod, params, events) {
  const transform = resolveTransform(mod);
  const state = transform.create(new Params(params ?? []));
  const output = runBatch(transform, state, batch(events));
  const { data } = output.events;
  const text = (s) => (s === undefined ? null : decoder.decode(data.subarray(s.offset, s.offset + s.len)));
  const decoded = output.events.events.map((e) => ({
    key: text(e.key),
    value: text(e.value),
    headers: output.events.headers
      .slice(e.headers.offset, e.headers.offset + e.headers.len)
      .map((h) => [text(h.name), text(h.value)]),
    timestampMs: Number(e.timestampMs),
    parent: e.parent,
  }));
  return {
    values: decoded.map((e) => e.value),
    rejected: output.rejected.map((r) => [r.index, r.reason]),
    events: decoded,
  };
}

// ---------------------------------------------------------------------------
// Connectors

function hostPort(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new http.Failed(`URL \`${url}\` is not an absolute http:// or https:// URL`);
  }
  const defaults = { "http:": "80", "https:": "443" };
  if (!(parsed.protocol in defaults)) throw new http.Failed(`URL \`${url}\` is not http:// or https://`);
  return [parsed.hostname.replace(/^\[|\]$/g, ""), parsed.port || defaults[parsed.protocol]];
}

function checkGrant(url, grant) {
  const [host, port] = hostPort(url);
  for (const entry of grant) {
    const at = entry.lastIndexOf(":");
    const h = entry.slice(0, at).replace(/^\[|\]$/g, "");
    if (h.toLowerCase() === host.toLowerCase() && entry.slice(at + 1) === port) return;
  }
  throw new http.Denied(
    `${host}:${port} is not in this connector's grant (grants.http: [${grant.join(", ")}]); add it to the pipeline's \`grants.http\` if the connector should reach it`,
  );
}

/**
 * Answers `http.send` with `handler` while `body` runs (synchronously), then
 * restores the previous transport; returns what `body` returns. `handler`
 * gets each request (`{method, url, headers, body}`, body a `Uint8Array`)
 * and returns a `Response` (or `{status, headers, body}`), or throws an
 * `http.HttpError` (e.g. `new http.Timeout("…")`). With `grant`
 * (`["host:port"]`, as in the pipeline) a request to any other host is
 * refused as the host refuses it (`http.Denied`, same message) and
 * `handler` never sees it.
 */
export function withHttp(handler, body, { grant } = {}) {
  const previous = http.setTransport((request) => {
    if (grant !== undefined) checkGrant(request.url, grant);
    const r = handler(request);
    return r instanceof http.Response ? r : new http.Response(r.status, r.headers ?? [], r.body ?? new Uint8Array());
  });
  try {
    return body();
  } finally {
    http.setTransport(previous);
  }
}

/**
 * Fixes `clock.nowMs()` at `nowMs` (ms since the Unix epoch) while `body`
 * runs, then restores the previous clock; returns what `body` returns.
 * `body` gets a handle whose `advance(ms)` moves the clock; the monotonic
 * clock reads the same instant in nanoseconds and moves with it.
 */
export function withClock(nowMs, body) {
  const fixed = {
    now: Number(nowMs),
    advance(ms) {
      this.now += Number(ms);
    },
  };
  const previous = clock.setClock({
    nowMs: () => fixed.now,
    monotonicNs: () => BigInt(Math.max(fixed.now, 0)) * 1000000n,
  });
  try {
    return body(fixed);
  } finally {
    clock.setClock(previous);
  }
}

/**
 * Drives a `Source` subclass natively as the host does:
 * `new SourceHarness(MySource, {url: "…"}, "42")` builds it as at deployment
 * (a bad parameter throws here). `poll` returns the `Poll` after packing its
 * events into the contract's tables and reading them back.
 */
export class SourceHarness {
  constructor(Cls, params = {}, position = undefined) {
    /** The source under test. */
    this.source = conn.openConnector(Cls, new Params(params ?? []), position);
    this._caughtUp = false;
  }

  /**
   * One poll of up to `maxEvents`. Throws `Retry` or `Fatal` as the host
   * would see them, and an `Error` when the poll breaks the contract (more
   * events than asked for). `caughtUp` carries over from earlier polls, as
   * in the component.
   */
  poll(maxEvents = 1024) {
    const out = conn.pollSource(this.source, maxEvents, this._caughtUp);
    if (out.length > maxEvents) throw new Error(`poll returned ${out.length} events, more than the ${maxEvents} asked for`);
    this._caughtUp = out.caughtUp;
    conn.decodeBatch({ ...out.encode(), streams: [] }); // the tables must read back
    return out;
  }

  /** Polls until `done` (a bounded source); every poll, in order. */
  pollUntilDone(maxEvents = 1024, maxPolls = 10_000) {
    const polls = [];
    for (let i = 0; i < maxPolls; i++) {
      polls.push(this.poll(maxEvents));
      if (polls[polls.length - 1].done) return polls;
    }
    throw new Error(`not done after ${maxPolls} polls`);
  }

  /** Tells the source that a checkpoint holding `position` (string or bytes) is durable. */
  commit(position) {
    conn.call(() => this.source.commit(typeof position === "string" ? encoder.encode(position) : position));
  }
}

/**
 * Drives a `Sink` subclass natively as the host does: batches are packed into
 * the contract's tables and read back before `write` sees them.
 */
export class SinkHarness {
  constructor(Cls, params = {}, position = undefined) {
    /** The sink under test. */
    this.sink = conn.openConnector(Cls, new Params(params ?? []), position);
  }

  /**
   * Writes one batch of events (see `batch`: value strings, `null` for a
   * tombstone, or `{key, value, headers, timestampMs}`); returns the refused
   * events as `[index, reason]`. Throws `Retry` or `Fatal` as the host sees them.
   */
  write(events, stream = "test") {
    const items = events.map((e) => {
      const ev = e === null || typeof e === "string" || e instanceof Uint8Array ? { value: e } : e;
      const b = (x) => (x === undefined || x === null ? undefined : typeof x === "string" ? encoder.encode(x) : x);
      return {
        key: b(ev.key),
        value: b(ev.value),
        headers: (ev.headers ?? []).map(([n, v]) => [encoder.encode(n), b(v) ?? new Uint8Array()]),
        timestampMs: BigInt(ev.timestampMs ?? 0),
      };
    });
    return conn.writeBatch(this.sink, { ...conn.encodeEvents(items), streams: [stream] });
  }

  /** Flushes; returns the position the host would checkpoint, as bytes. */
  flush() {
    return conn.flushPosition(this.sink);
  }

  /** Flushes; returns the position as text. */
  flushText() {
    return decoder.decode(this.flush());
  }
}
