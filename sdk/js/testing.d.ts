// Types for @sluice/plugin/testing.

import type { Poll, Sink, Source } from "./index.js";
import type { Request, Response } from "./http.js";

export { Response } from "./http.js";

/** An input event: a value string, null (a tombstone), or all fields. */
export type InputEvent =
  | string
  | null
  | {
      key?: string | Uint8Array | null;
      value?: string | Uint8Array | null;
      headers?: [string, string | Uint8Array][];
      timestampMs?: number | bigint;
      stream?: number;
    };

/** An output event, decoded as text. */
export interface OutputEvent {
  key: string | null;
  value: string | null;
  headers: [string, string][];
  timestampMs: number;
  parent: number;
}

/** Builds a framed input batch. */
export function batch(events: InputEvent[], streams?: string[]): unknown;

/** Runs the transform `mod` exports over `events` through the component's batch loop. */
export function run(
  mod: object,
  params: Record<string, string> | [string, string][] | null | undefined,
  events: InputEvent[],
): { values: (string | null)[]; rejected: [number, string][]; events: OutputEvent[] };

/** Parameters as an object or `[name, value]` pairs. */
export type ParamsArg = Record<string, string> | [string, string][];

/**
 * Answers `http.send` with `handler` while `body` runs; with `grant`
 * (`["host:port"]`) other hosts are refused as the host refuses them.
 */
export function withHttp<T>(
  handler: (request: Required<Request> & { body: Uint8Array }) => Response | { status: number; headers?: [string, string][]; body?: string | Uint8Array },
  body: () => T,
  options?: { grant?: string[] },
): T;

/**
 * Fixes `clock.nowMs()` at `nowMs` while `body` runs; `fixed.advance(ms)`
 * moves it (and the monotonic clock with it).
 */
export function withClock<T>(nowMs: number, body: (fixed: { now: number; advance(ms: number): void }) => T): T;

/** Drives a `Source` subclass as the host does. */
export class SourceHarness<S extends Source = Source> {
  constructor(source: new (params: any, position: Uint8Array | undefined) => S, params?: ParamsArg, position?: string | Uint8Array);
  readonly source: S;
  poll(maxEvents?: number): Poll;
  pollUntilDone(maxEvents?: number, maxPolls?: number): Poll[];
  commit(position: string | Uint8Array): void;
}

/** Drives a `Sink` subclass as the host does. */
export class SinkHarness<S extends Sink = Sink> {
  constructor(sink: new (params: any, position: Uint8Array | undefined) => S, params?: ParamsArg, position?: string | Uint8Array);
  readonly sink: S;
  /** Writes one batch; returns the refused events as `[index, reason]`. */
  write(events: InputEvent[], stream?: string): [number, string][];
  flush(): Uint8Array;
  flushText(): string;
}
