// @sluice/plugin/testing: run a transform natively, in a unit test, through
// the same batch loop the component runs (`runBatch`).
//
//   import { run } from "@sluice/plugin/testing";
//   import * as plugin from "../src/index.js";
//   const out = run(plugin, {}, ['{"a":1}', "[1]"]);
//   assert.deepEqual(out.values, ['{"a":1,"seen":true}']);
//   assert.deepEqual(out.rejected, [[1, "expected a JSON object"]]);

import { Params, resolveTransform, runBatch } from "./index.js";

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
