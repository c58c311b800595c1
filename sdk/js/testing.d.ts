// Types for @sluice/plugin/testing.

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
