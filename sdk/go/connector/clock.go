package connector

// NowMs is wall-clock milliseconds since the Unix epoch (UTC), through the
// host's `clock` import. Only a connector the pipeline grants the clock
// (`grants: {clock: true}`) reads it; without the grant the call stops the
// pipeline with an error naming the grant. Go's time.Now does not reach the
// host inside the sandbox (the build's WASI stub runs a virtual clock), so
// use this. Natively it reads the machine's clock, or WithClock's.
func NowMs() int64 { return nowMs() }

// MonotonicNs is monotonic nanoseconds since a fixed point; it never
// decreases. Use it to measure intervals (a rate limit, a backoff). The
// same grant as NowMs.
func MonotonicNs() uint64 { return monotonicNs() }
