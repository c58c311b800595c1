// The time, for connectors, through the host.
//
//   import { clock } from "@sluice/plugin";
//
//   const stamp = clock.nowMs();          // ms since the Unix epoch (UTC), a Number
//   const started = clock.monotonicNs();  // ns since a fixed point, a BigInt
//
// Inside the sandbox these read the contract's `sluice:plugin/clock` import,
// which answers only for a connector the pipeline grants the clock
// (`grants: {clock: true}`); without the grant the call stops the pipeline
// with an error naming the grant. `Date.now()` does not reach the host's
// clock in a component (the build disables componentize-js's WASI clocks),
// so use these. Natively they read the machine's clock, or the time a test
// fixes with `withClock` from `@sluice/plugin/testing`.

let source = {
  nowMs: () => Date.now(),
  monotonicNs: () =>
    typeof process !== "undefined" && process.hrtime ? process.hrtime.bigint() : BigInt(Date.now()) * 1000000n,
};

/** Points the clock at `next` (`{nowMs, monotonicNs}`); returns the previous one. */
export function setClock(next) {
  const previous = source;
  source = next;
  return previous;
}

/** Wall-clock milliseconds since the Unix epoch (UTC), as a Number. */
export function nowMs() {
  return Number(source.nowMs());
}

/**
 * Monotonic nanoseconds since a fixed point, as a BigInt; never decreases.
 * Use it to measure intervals (a rate limit, a backoff).
 */
export function monotonicNs() {
  return BigInt(source.monotonicNs());
}
