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
  /** The value parsed as JSON (throws Reject if invalid); null for a tombstone. */
  json(): any;
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

/** Internal: normalizes a plugin module's export. */
export function resolveTransform(mod: object): {
  create(params: Params): unknown;
  process(event: Event, out: Emitter, state: unknown): void;
};
/** Internal: runs one framed batch (used by the component glue and by testing). */
export function runBatch(transform: ReturnType<typeof resolveTransform>, state: unknown, input: unknown): unknown;
/** Internal: builds the component's `transformer` export (the build generates the call). */
export function exportTransformer(mod: object, info: { name: string; version: string; description?: string }, log?: unknown): unknown;
