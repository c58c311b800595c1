//go:build wasip1

// The canonical-ABI glue for the `reader` export of sluice:plugin@0.2.0,
// written by hand like the transform glue (sdk/go/abi_wasip1.go):
//
//	describe: func() -> plugin-info
//	[static]source.open: func(params: list<param>, position: option<list<u8>>) -> result<source, string>
//	[method]source.poll: func(self: borrow<source>, max-events: u32) -> result<polled, call-error>
//	[method]source.commit: func(self: borrow<source>, position: list<u8>) -> result<_, call-error>
//
// Results that do not fit one value go through a return area:
// result<source, string> is 12 bytes (tag, then handle or string at 4);
// result<polled, call-error> is 56 (tag, then at 4: the batch's four
// lists, malformed, position, caught-up at 52, done at 53; or the
// call-error's tag at 4 and string at 8); result<_, call-error> is 16.
package source

import (
	"sluice.dev/sdk/connector"
	"sluice.dev/sdk/internal/cabi"
)

//go:wasmimport [export]sluice:plugin/reader@0.2.0 [resource-new]source
func resourceNew(rep uint32) uint32

var (
	instances = map[uint32]*connector.SourceState{}
	nextRep   uint32
)

//go:wasmexport sluice:plugin/reader@0.2.0#describe
func describe() uint32 {
	defer cabi.Guard()
	return cabi.Describe(exported.info)
}

//go:wasmexport cabi_post_sluice:plugin/reader@0.2.0#describe
func postDescribe(uint32) { cabi.RetPins = nil }

//go:wasmexport sluice:plugin/reader@0.2.0#[static]source.open
func open(paramsPtr, paramsLen, hasPosition, posPtr, posLen uint32) uint32 {
	defer cabi.Guard()
	defer func() { cabi.ArgPins = nil }()
	cabi.RetPins = nil
	params := cabi.Params(paramsPtr, paramsLen)
	var position []byte
	if hasPosition != 0 {
		position = cabi.Bytes(posPtr, posLen)
		if position == nil {
			position = []byte{}
		}
	}
	area, p := cabi.Alloc(12)
	s, err := connector.OpenSourceState(exported.open, params, position)
	if err != nil {
		area[0] = 1
		cabi.PutString(area, 4, err.Error())
		return p
	}
	nextRep++
	instances[nextRep] = s
	cabi.LE.PutUint32(area[4:], resourceNew(nextRep))
	return p
}

//go:wasmexport cabi_post_sluice:plugin/reader@0.2.0#[static]source.open
func postOpen(uint32) { cabi.RetPins = nil }

//go:wasmexport sluice:plugin/reader@0.2.0#[dtor]source
func dtor(rep uint32) { delete(instances, rep) }

//go:wasmexport sluice:plugin/reader@0.2.0#[method]source.poll
func poll(self, max uint32) uint32 {
	defer cabi.Guard()
	defer func() { cabi.ArgPins = nil }()
	cabi.RetPins = nil
	area, p := cabi.Alloc(56)
	s, ok := instances[self]
	if !ok {
		area[0], area[4] = 1, 1
		cabi.PutString(area, 8, "unknown source instance")
		return p
	}
	polled, ce, crash := s.Poll(max)
	if crash != nil {
		cabi.Crash(crash)
	}
	if ce != nil {
		area[0] = 1
		cabi.PutCallError(area, 4, ce)
		return p
	}
	cabi.PutBytes(area, 4, polled.Data)
	cabi.PutBytes(area, 12, polled.Events)
	cabi.PutBytes(area, 20, polled.Headers)
	// area[28:36]: streams, empty in a source's events.
	mal, mp := cabi.Alloc(16 * len(polled.Malformed))
	for i, m := range polled.Malformed {
		cabi.PutBytes(mal, i*16, m.Raw)
		cabi.PutString(mal, i*16+8, m.Reason)
	}
	cabi.LE.PutUint32(area[36:], mp)
	cabi.LE.PutUint32(area[40:], uint32(len(polled.Malformed)))
	cabi.PutBytes(area, 44, polled.Position)
	if polled.CaughtUp {
		area[52] = 1
	}
	if polled.Done {
		area[53] = 1
	}
	return p
}

//go:wasmexport cabi_post_sluice:plugin/reader@0.2.0#[method]source.poll
func postPoll(uint32) { cabi.RetPins = nil }

//go:wasmexport sluice:plugin/reader@0.2.0#[method]source.commit
func commit(self, posPtr, posLen uint32) uint32 {
	defer cabi.Guard()
	defer func() { cabi.ArgPins = nil }()
	cabi.RetPins = nil
	area, p := cabi.Alloc(16)
	s, ok := instances[self]
	if !ok {
		area[0], area[4] = 1, 1
		cabi.PutString(area, 8, "unknown source instance")
		return p
	}
	ce, crash := s.Commit(cabi.Bytes(posPtr, posLen))
	if crash != nil {
		cabi.Crash(crash)
	}
	if ce != nil {
		area[0] = 1
		cabi.PutCallError(area, 4, ce)
	}
	return p
}

//go:wasmexport cabi_post_sluice:plugin/reader@0.2.0#[method]source.commit
func postCommit(uint32) { cabi.RetPins = nil }
