/** Wall-clock milliseconds since the Unix epoch (UTC). Needs `grants: {clock: true}` in a pipeline. */
export function nowMs(): number;
/** Monotonic nanoseconds since a fixed point; never decreases. Needs `grants: {clock: true}` in a pipeline. */
export function monotonicNs(): bigint;
/** Points the clock at `next`; returns the previous one (the test harness uses it). */
export function setClock(next: { nowMs: () => number | bigint; monotonicNs: () => number | bigint }): {
  nowMs: () => number | bigint;
  monotonicNs: () => number | bigint;
};
