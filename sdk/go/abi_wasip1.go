//go:build wasip1 && !sluice_connector

// The canonical-ABI glue for world `transform` of sluice:plugin@0.1.0, written
// by hand because wit-bindgen-go's runtime module cannot be fetched here. It
// follows the component model's canonical ABI for exactly these signatures:
//
//	describe: func() -> plugin-info
//	[static]transform.create: func(params: list<param>) -> result<transform, string>
//	[method]transform.process: func(self: borrow<transform>, input: batch) -> result<output, call-error>
//	log: func(level: level, message: string)
//
// Memory the host writes arguments into comes from cabi_realloc and is kept
// alive (Go's GC cannot see the host's pointers) until the export returns;
// results stay alive until the matching cabi_post_* call.

package sluice

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"
)

//go:wasmimport sluice:plugin/log@0.1.0 log
func wasmLog(level uint32, ptr uint32, length uint32)

//go:wasmimport [export]sluice:plugin/transformer@0.1.0 [resource-new]transform
func resourceNew(rep uint32) uint32

func hostLog(level Level, msg string) {
	wasmLog(uint32(level), addr(unsafe.Pointer(unsafe.StringData(msg))), uint32(len(msg)))
}

var (
	argPins   [][]uint64 // cabi_realloc allocations for the current call's arguments
	retPins   []any      // what the last result points into, until cabi_post_*
	instances = map[uint32]Transform{}
	nextRep   uint32
)

var le = binary.LittleEndian

func addr(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }

// mem views n bytes of linear memory at ptr.
func mem(ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), n)
}

// alloc returns n zeroed bytes, 8-aligned, kept alive until the next cabi_post_*.
func alloc(n int) ([]byte, uint32) {
	if n == 0 {
		return nil, 0
	}
	words := make([]uint64, (n+7)/8)
	retPins = append(retPins, words)
	p := unsafe.Pointer(unsafe.SliceData(words))
	return unsafe.Slice((*byte)(p), n), addr(p)
}

func bytesAddr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	retPins = append(retPins, b)
	return addr(unsafe.Pointer(unsafe.SliceData(b)))
}

func putString(dst []byte, at int, s string) {
	s = strings.ToValidUTF8(s, "\uFFFD") // the host refuses invalid UTF-8
	if len(s) > 0 {
		retPins = append(retPins, s)
		le.PutUint32(dst[at:], addr(unsafe.Pointer(unsafe.StringData(s))))
	}
	le.PutUint32(dst[at+4:], uint32(len(s)))
}

func readString(ptr, n uint32) string { return string(mem(ptr, n)) }

// guard logs a panic through the host, then lets it trap the instance (the
// host reports the call as failed and instantiates afresh).
func guard() {
	if r := recover(); r != nil {
		hostLog(LevelError, fmt.Sprintf("plugin panicked: %v", r))
		panic(r)
	}
}

//go:wasmexport cabi_realloc
func cabiRealloc(oldPtr, oldSize, align, newSize uint32) uint32 {
	if newSize == 0 {
		return align
	}
	words := make([]uint64, (newSize+7)/8)
	p := unsafe.Pointer(unsafe.SliceData(words))
	if oldPtr != 0 && oldSize > 0 {
		copy(unsafe.Slice((*byte)(p), newSize), mem(oldPtr, min(oldSize, newSize)))
	}
	argPins = append(argPins, words)
	return addr(p)
}

//go:wasmexport sluice:plugin/transformer@0.1.0#describe
func describe() uint32 {
	defer guard()
	retPins = nil
	area, p := alloc(24)
	putString(area, 0, exported.info.Name)
	putString(area, 8, exported.info.Version)
	putString(area, 16, exported.info.Description)
	return p
}

//go:wasmexport cabi_post_sluice:plugin/transformer@0.1.0#describe
func postDescribe(uint32) { retPins = nil }

//go:wasmexport sluice:plugin/transformer@0.1.0#[static]transform.create
func create(ptr, n uint32) uint32 {
	defer guard()
	defer func() { argPins = nil }()
	retPins = nil
	raw := mem(ptr, n*16)
	params := make([]Param, n)
	for i := range params {
		r := raw[i*16:]
		params[i] = Param{
			Name:  readString(le.Uint32(r[0:]), le.Uint32(r[4:])),
			Value: readString(le.Uint32(r[8:]), le.Uint32(r[12:])),
		}
	}
	area, p := alloc(12)
	if exported.factory == nil {
		area[0] = 1
		putString(area, 4, "this Go plugin registered no transform: call sluice.Export from an init function of package main")
		return p
	}
	t, err := exported.factory(NewParams(params...))
	if err == nil && t == nil {
		err = fmt.Errorf("the plugin's factory returned no transform")
	}
	if err != nil {
		area[0] = 1
		putString(area, 4, err.Error())
		return p
	}
	nextRep++
	instances[nextRep] = t
	le.PutUint32(area[4:], resourceNew(nextRep))
	return p
}

//go:wasmexport cabi_post_sluice:plugin/transformer@0.1.0#[static]transform.create
func postCreate(uint32) { retPins = nil }

//go:wasmexport sluice:plugin/transformer@0.1.0#[dtor]transform
func dtor(rep uint32) { delete(instances, rep) }

//go:wasmexport sluice:plugin/transformer@0.1.0#[method]transform.process
func process(self, dataPtr, dataLen, evPtr, evLen, hdrPtr, hdrLen, strPtr, strLen uint32) uint32 {
	defer guard()
	defer func() { argPins = nil }()
	retPins = nil
	area, p := alloc(44)
	t, ok := instances[self]
	if !ok {
		area[0], area[4] = 1, 1
		putString(area, 8, "unknown transform instance")
		return p
	}
	in := &Batch{Data: mem(dataPtr, dataLen)}
	raw := mem(evPtr, evLen*48)
	in.Events = make([]RawEvent, evLen)
	for i := range in.Events {
		r := raw[i*48:]
		in.Events[i] = RawEvent{
			HasKey:      r[0] != 0,
			Key:         Span{le.Uint32(r[4:]), le.Uint32(r[8:])},
			HasValue:    r[12] != 0,
			Value:       Span{le.Uint32(r[16:]), le.Uint32(r[20:])},
			Headers:     Span{le.Uint32(r[24:]), le.Uint32(r[28:])},
			TimestampMs: int64(le.Uint64(r[32:])),
			Stream:      le.Uint32(r[40:]),
			Parent:      le.Uint32(r[44:]),
		}
	}
	hraw := mem(hdrPtr, hdrLen*16)
	in.Headers = make([]Header, hdrLen)
	for i := range in.Headers {
		r := hraw[i*16:]
		in.Headers[i] = Header{
			Name:  Span{le.Uint32(r[0:]), le.Uint32(r[4:])},
			Value: Span{le.Uint32(r[8:]), le.Uint32(r[12:])},
		}
	}
	sraw := mem(strPtr, strLen*8)
	in.Streams = make([]string, strLen)
	for i := range in.Streams {
		in.Streams[i] = readString(le.Uint32(sraw[i*8:]), le.Uint32(sraw[i*8+4:]))
	}

	out, callErr := RunTransform(t, in)
	if callErr != nil {
		area[0] = 1
		if !callErr.Retry {
			area[4] = 1
		}
		putString(area, 8, callErr.Message)
		return p
	}
	b := &out.Events
	le.PutUint32(area[4:], bytesAddr(b.Data))
	le.PutUint32(area[8:], uint32(len(b.Data)))

	evs, evp := alloc(48 * len(b.Events))
	for i, e := range b.Events {
		r := evs[i*48:]
		if e.HasKey {
			r[0] = 1
			le.PutUint32(r[4:], e.Key.Offset)
			le.PutUint32(r[8:], e.Key.Len)
		}
		if e.HasValue {
			r[12] = 1
			le.PutUint32(r[16:], e.Value.Offset)
			le.PutUint32(r[20:], e.Value.Len)
		}
		le.PutUint32(r[24:], e.Headers.Offset)
		le.PutUint32(r[28:], e.Headers.Len)
		le.PutUint64(r[32:], uint64(e.TimestampMs))
		le.PutUint32(r[40:], e.Stream)
		le.PutUint32(r[44:], e.Parent)
	}
	le.PutUint32(area[12:], evp)
	le.PutUint32(area[16:], uint32(len(b.Events)))

	hs, hp := alloc(16 * len(b.Headers))
	for i, h := range b.Headers {
		r := hs[i*16:]
		le.PutUint32(r[0:], h.Name.Offset)
		le.PutUint32(r[4:], h.Name.Len)
		le.PutUint32(r[8:], h.Value.Offset)
		le.PutUint32(r[12:], h.Value.Len)
	}
	le.PutUint32(area[20:], hp)
	le.PutUint32(area[24:], uint32(len(b.Headers)))
	// area[28:36]: streams, empty in outputs.

	rs, rp := alloc(12 * len(out.Rejected))
	for i, rej := range out.Rejected {
		le.PutUint32(rs[i*12:], rej.Index)
		putString(rs, i*12+4, rej.Reason)
	}
	le.PutUint32(area[36:], rp)
	le.PutUint32(area[40:], uint32(len(out.Rejected)))
	return p
}

//go:wasmexport cabi_post_sluice:plugin/transformer@0.1.0#[method]transform.process
func postProcess(uint32) { retPins = nil }
