//go:build wasip1

package connector

// sluice:plugin/clock@0.2.0: now-ms () -> s64 and monotonic-ns () -> u64.
// Imported only by a connector that reads the clock.

//go:wasmimport sluice:plugin/clock@0.2.0 now-ms
func wasmNowMs() int64

//go:wasmimport sluice:plugin/clock@0.2.0 monotonic-ns
func wasmMonotonicNs() uint64

func nowMs() int64        { return wasmNowMs() }
func monotonicNs() uint64 { return wasmMonotonicNs() }
