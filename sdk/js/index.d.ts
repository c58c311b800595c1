// Types for @sluice/plugin (index.js). TypeScript plugins are compiled with
// tsc against these, then bundled and componentized like JavaScript ones.

/** The contract version this SDK speaks. */
export const CONTRACT_VERSION: string;

/** Throw from `process`: dead-letter this one event with `reason`. */
export class Reject extends Error {
  constructor(reason: string);
}
/** Throw from `process`: the host retries the whole batch later. */
export class Retry extends Error {
  constructor(reason: string);
}
/** Throw from `process`: the host stops the stage. */
export class Fatal extends Error {
  constructor(reason: string);
}

/** The stage's parameters from the pipeline file, as text. */
export class Params implements Iterable<[string, string]> {
  constructor(entries?: Iterable<[string, string]> | { name: string; value: string }[] | Record<string, string>);
  get(name: string): string | undefined;
  required(name: string): string;
  bool(name: string, fallback?: boolean): boolean;
  json(name: string): unknown;
  /** Throws when a parameter outside `allowed` is set. */
  only(allowed: readonly string[]): void;
  [Symbol.iterator](): Iterator<[string, string]>;
}

/** Any JSON value `emitJson` writes (BigInts are written as integers). */
export type Json = null | boolean | number | bigint | string | Json[] | { [key: string]: Json | undefined };

/** Compact JSON, object keys sorted by UTF-8 bytes, integers without a decimal point. */
export function canonicalJson(value: unknown): string;

/** One input event; reads are views into the batch. */
export class Event {
  /** Index of the event in its input batch. */
  readonly index: number;
  /** Key bytes, or undefined without a key. */
  readonly key: Uint8Array | undefined;
  readonly keyText: string | undefined;
  /** Value bytes, or undefined for a tombstone. */
  readonly value: Uint8Array | undefined;
  readonly isTombstone: boolean;
  /** Milliseconds since the Unix epoch. */
  readonly timestampMs: number;
  /** Name of the input stream the event arrived on. */
  readonly stream: string;
  /** The value as text (throws Reject if not UTF-8); undefined for a tombstone. */
  text(): string | undefined;
  /**
   * The value parsed as JSON (throws Reject if invalid); null for a tombstone.
   * Integers beyond ±(2^53 - 1) are BigInts, so they survive a round trip.
   */
  json(): any;
  /** The value as a zero-copy view (throws Reject if not JSON); undefined for a tombstone. */
  view(): JsonView | undefined;
  headers(): [string, Uint8Array][];
  header(name: string): Uint8Array | undefined;
}

/** A fully specified output event for `Emitter.emit`. */
export interface OutEvent {
  key?: string | Uint8Array;
  /** undefined: a tombstone. */
  value?: string | Uint8Array;
  headers?: [string, string | Uint8Array][];
  timestampMs?: number | bigint;
}

/** Where `process` writes output events (parent, key, headers and timestamp copied from the input). */
export class Emitter {
  forward(): void;
  emitValue(value: string | Uint8Array): void;
  emitJson(value: unknown): void;
  tombstone(): void;
  emit(event: OutEvent): void;
}

/** A transform as a plain object: `create` returns the state handed to `process`. */
export interface TransformObject<S = unknown> {
  /** Validates the parameters (throw to refuse them). Without `create`, any parameter is refused. */
  create?(params: Params): S;
  process(event: Event, out: Emitter, state: S): void;
}

/** A transform as a class: constructed once per stage with its parameters. */
export interface TransformClass {
  new (params: Params): { process(event: Event, out: Emitter): void };
}

/** Logs through the host; `console.error` natively. */
export const log: Record<"trace" | "debug" | "info" | "warn" | "error", (message: string) => void>;

// ---------------------------------------------------------------------------
// Custom connectors (connector.js): worlds `source` and `sink`, contract 0.2.0

/** The contract version the connector worlds speak. */
export const CONNECTOR_CONTRACT_VERSION: string;

export * as clock from "./clock.js";
export * as http from "./http.js";

/** A position (bytes) as text, or `undefined` for none. */
export function positionText(position: Uint8Array | undefined): string | undefined;

/** Options of `Poll.emit`. */
export interface EmitOptions {
  key?: string | Uint8Array | null;
  headers?: [string, string | Uint8Array][];
  /** 0 (the default): the host stamps the event with the time it was polled. */
  timestampMs?: number | bigint;
}

/** What one `Source.poll` returns. */
export class Poll {
  /** Set a string or bytes: the position after this poll (empty: unchanged). */
  get position(): Uint8Array;
  set position(value: string | Uint8Array);
  /** The backlog is delivered; once set, later polls start with it set and the SDK keeps it set. */
  caughtUp: boolean;
  /** A bounded source is drained: the host stops polling. */
  done: boolean;
  /** Inputs reported with `malformed`. */
  readonly malformedInputs: [Uint8Array, string][];
  /** Events added so far. */
  readonly length: number;
  /** Adds an event (`null`/`undefined` value: a tombstone). */
  emit(value: string | Uint8Array | null | undefined, options?: EmitOptions): void;
  /** Adds an event whose value is `value` as canonical JSON (BigInts exact). */
  emitJson(value: unknown, options?: EmitOptions): void;
  /** Dead-letters an input that could not become an event; the source goes on. */
  malformed(raw: string | Uint8Array, reason: string): void;
  /** For tests: values as text (`null`: tombstone), keys as text, timestamps, the position as text. */
  values(): (string | null)[];
  keys(): (string | null)[];
  timestamps(): bigint[];
  positionText(): string;
  /** The events as the contract's packed tables. */
  encode(): { data: Uint8Array; events: Uint8Array; headers: Uint8Array };
}

/** A custom source connector: extend it and export the class. */
export class Source {
  /** Validate `params` (throw to fail the deployment); resume after `position` (`undefined`: afresh). */
  constructor(params: Params, position: Uint8Array | undefined);
  /** Adds up to `maxEvents` events and the position after them to `out`. */
  poll(maxEvents: number, out: Poll): void;
  /** The checkpoint holding `position` is durable: acknowledge upstream now. */
  commit(position: Uint8Array): void;
}

/** The events of a batch the target refused for good. */
export class Rejections {
  readonly items: [number, string][];
  readonly length: number;
  /** Dead-letters `event` (or its index) with `reason`. */
  reject(event: Event | number, reason: string): void;
}

/** A custom sink connector: extend it and export the class. */
export class Sink {
  /** Validate `params`; restore the state at `position` (what `flush` returned; `undefined`: afresh). */
  constructor(params: Params, position: Uint8Array | undefined);
  /** Writes a batch; refuse events for good with `rejected.reject`. Throw `Retry` or `Fatal` for the whole batch. */
  write(events: Event[], rejected: Rejections): void;
  /** Makes everything written durable; returns the position to checkpoint (may be empty). */
  flush(): string | Uint8Array | undefined | void;
}

/** Internal: packs events into the contract's tables. */
export function encodeEvents(items: unknown[]): { data: Uint8Array; events: Uint8Array; headers: Uint8Array };
/** Internal: unpacks the contract's `batch` record. */
export function decodeBatch(batch: { data: Uint8Array; events: Uint8Array; headers: Uint8Array; streams?: string[] }): unknown;
/** Internal: the component's `reader` / `writer` exports (the build generates the call). */
export function exportReader(mod: object, info: { name: string; version: string; description?: string }, log?: unknown, send?: unknown): unknown;
export function exportWriter(mod: object, info: { name: string; version: string; description?: string }, log?: unknown, send?: unknown): unknown;

/** Internal: normalizes a plugin module's export. */
export function resolveTransform(mod: object): {
  create(params: Params): unknown;
  process(event: Event, out: Emitter, state: unknown): void;
};
/** Internal: runs one framed batch (used by the component glue and by testing). */
export function runBatch(transform: ReturnType<typeof resolveTransform>, state: unknown, input: unknown): unknown;
/** Internal: builds the component's `transformer` export (the build generates the call). */
export function exportTransformer(mod: object, info: { name: string; version: string; description?: string }, log?: unknown): unknown;

// ---------------------------------------------------------------------------
// Zero-copy JSON (json.js)

/** Deepest nesting of arrays and objects a JsonView accepts (128). */
export const MAX_DEPTH: number;

/** Why a value is not JSON. */
export class JsonError extends Error {
  /** What was expected or found. */
  readonly reason: string;
  /** Byte offset in the value where it was found. */
  readonly offset: number;
}

/** JSON.parse, but integers beyond ±(2^53 - 1) become BigInts (exact). */
export function parseJson(text: string): any;

export type JsonKind = "object" | "array" | "string" | "number" | "bool" | "null";

/** An object key as written in the input. */
export class RawKey {
  /** The UTF-8 text between the quotes, still escaped (a view). */
  readonly escapedBytes: Uint8Array;
  /** The text between the quotes, still escaped. */
  readonly escapedText: string;
  readonly escaped: boolean;
  /** The key unescaped. */
  readonly text: string;
  is(name: string): boolean;
}

/** The exact text of one checked JSON value; everything is read on demand. */
export class Raw {
  /** The value's UTF-8 text (a view into the event). */
  readonly bytes: Uint8Array;
  /** The value's JSON text, exactly as written. */
  readonly text: string;
  readonly kind: JsonKind;
  readonly isNull: boolean;
  asBool(): boolean | undefined;
  asString(): string | undefined;
  /** As a double (may round; see asBigInt). */
  asNumber(): number | undefined;
  /** An integer (no fraction or exponent), exactly. */
  asBigInt(): bigint | undefined;
  /** The value as a tree (parseJson). */
  toJson(): any;
  /** Member of an object (last occurrence) or item of an array (all-digit name). */
  member(name: string | number): Raw | undefined;
  get(name: string): Raw | undefined;
  /** `"a.b.0"` or `["a", "b", 0]`. */
  path(path: string | readonly (string | number)[]): Raw | undefined;
  entries(): IterableIterator<[RawKey, Raw]>;
  items(): IterableIterator<Raw>;
}

/** A checked JSON value with its top-level fields indexed. */
export class JsonView {
  /** Throws JsonError when `value` is not one JSON value. */
  static parse(value: string | Uint8Array): JsonView;
  readonly root: Raw;
  readonly isObject: boolean;
  /** Number of top-level fields, duplicates counted. */
  readonly length: number;
  /** Index of the last top-level field named `name`, or -1. */
  find(name: string): number;
  /** Top-level field (last occurrence). */
  get(name: string): Raw | undefined;
  /** `"a.b.c"` (array items by index) or a list of names. */
  path(path: string | readonly (string | number)[]): Raw | undefined;
  key(i: number): RawKey;
  value(i: number): Raw;
  fields(): IterableIterator<[RawKey, Raw]>;
}

/** Writes one JSON object: raw slices copied as they are, new values serialized. */
export class ObjectWriter {
  constructor();
  /** Copies an input field: its key as written and its raw value. */
  rawField(key: RawKey, value: Raw): this;
  /** `name` with a raw value (a Raw, or JSON text you vouch for). */
  raw(name: string, value: Raw | string): this;
  /** `name` with `value` serialized by canonicalJson. */
  value(name: string, value: unknown): this;
  /** Starts an object as the value of `name`; finish() it before writing on. */
  object(name: string): ObjectWriter;
  /** Copies top-level fields of `view` (last occurrence of each), except `drop`, renaming by `rename`. */
  copyFrom(view: JsonView, options?: { drop?: readonly string[]; rename?: Record<string, string> }): this;
  /** Closes the object; the outermost writer returns the JSON text (emit it with `out.emitValue`). */
  finish(): string;
}
