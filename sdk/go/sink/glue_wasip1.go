//go:build wasip1

// The canonical-ABI glue for the `writer` export of sluice:plugin@0.2.0
// (see sdk/go/source/glue_wasip1.go for the conventions):
//
//	describe: func() -> plugin-info
//	[static]sink.open: func(params: list<param>, position: option<list<u8>>) -> result<sink, string>
//	[method]sink.write: func(self: borrow<sink>, events: batch) -> result<list<rejection>, call-error>
//	[method]sink.flush: func(self: borrow<sink>) -> result<list<u8>, call-error>
//
// Both method results are 16-byte return areas: the tag, then the list at
// 4 (12-byte rejection records: index, reason), or the call-error's tag at
// 4 and its string at 8.
package sink

import (
	"sluice.dev/sdk/connector"
	"sluice.dev/sdk/internal/cabi"
)

//go:wasmimport [export]sluice:plugin/writer@0.2.0 [resource-new]sink
func resourceNew(rep uint32) uint32

var (
	instances = map[uint32]connector.Sink{}
	nextRep   uint32
)

//go:wasmexport sluice:plugin/writer@0.2.0#describe
func describe() uint32 {
	defer cabi.Guard()
	return cabi.Describe(exported.info)
}

//go:wasmexport cabi_post_sluice:plugin/writer@0.2.0#describe
func postDescribe(uint32) { cabi.RetPins = nil }

//go:wasmexport sluice:plugin/writer@0.2.0#[static]sink.open
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
	k, err := connector.OpenSinkState(exported.open, params, position)
	if err != nil {
		area[0] = 1
		cabi.PutString(area, 4, err.Error())
		return p
	}
	nextRep++
	instances[nextRep] = k
	cabi.LE.PutUint32(area[4:], resourceNew(nextRep))
	return p
}

//go:wasmexport cabi_post_sluice:plugin/writer@0.2.0#[static]sink.open
func postOpen(uint32) { cabi.RetPins = nil }

//go:wasmexport sluice:plugin/writer@0.2.0#[dtor]sink
func dtor(rep uint32) { delete(instances, rep) }

//go:wasmexport sluice:plugin/writer@0.2.0#[method]sink.write
func write(self, dataPtr, dataLen, evPtr, evLen, hdrPtr, hdrLen, strPtr, strLen uint32) uint32 {
	defer cabi.Guard()
	defer func() { cabi.ArgPins = nil }()
	cabi.RetPins = nil
	area, p := cabi.Alloc(16)
	k, ok := instances[self]
	if !ok {
		area[0], area[4] = 1, 1
		cabi.PutString(area, 8, "unknown sink instance")
		return p
	}
	sraw := cabi.Mem(strPtr, strLen*8)
	streams := make([]string, strLen)
	for i := range streams {
		streams[i] = cabi.String(cabi.LE.Uint32(sraw[i*8:]), cabi.LE.Uint32(sraw[i*8+4:]))
	}
	// Data is copied: a sink may keep events past this call, and the host's
	// buffers are released when it returns. The tables are decoded at once.
	rejected, ce, crash := connector.WriteTables(k, cabi.Bytes(dataPtr, dataLen), cabi.Mem(evPtr, evLen), cabi.Mem(hdrPtr, hdrLen), streams)
	if crash != nil {
		cabi.Crash(crash)
	}
	if ce != nil {
		area[0] = 1
		cabi.PutCallError(area, 4, ce)
		return p
	}
	rs, rp := cabi.Alloc(12 * len(rejected))
	for i, r := range rejected {
		cabi.LE.PutUint32(rs[i*12:], r.Index)
		cabi.PutString(rs, i*12+4, r.Reason)
	}
	cabi.LE.PutUint32(area[4:], rp)
	cabi.LE.PutUint32(area[8:], uint32(len(rejected)))
	return p
}

//go:wasmexport cabi_post_sluice:plugin/writer@0.2.0#[method]sink.write
func postWrite(uint32) { cabi.RetPins = nil }

//go:wasmexport sluice:plugin/writer@0.2.0#[method]sink.flush
func flush(self uint32) uint32 {
	defer cabi.Guard()
	defer func() { cabi.ArgPins = nil }()
	cabi.RetPins = nil
	area, p := cabi.Alloc(16)
	k, ok := instances[self]
	if !ok {
		area[0], area[4] = 1, 1
		cabi.PutString(area, 8, "unknown sink instance")
		return p
	}
	pos, ce, crash := connector.FlushSink(k)
	if crash != nil {
		cabi.Crash(crash)
	}
	if ce != nil {
		area[0] = 1
		cabi.PutCallError(area, 4, ce)
		return p
	}
	cabi.PutBytes(area, 4, pos)
	return p
}

//go:wasmexport cabi_post_sluice:plugin/writer@0.2.0#[method]sink.flush
func postFlush(uint32) { cabi.RetPins = nil }
