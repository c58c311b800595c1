//go:build wasip1

// Package cabi holds the canonical-ABI helpers the connector glue shares
// (sluice.dev/sdk/source and sluice.dev/sdk/sink): memory the host writes
// arguments into, results kept alive until the matching cabi_post_* call,
// and strings and lists in linear memory. Only connector builds link it, so
// its cabi_realloc never meets the transform glue's.
package cabi

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"

	sluice "sluice.dev/sdk"
)

var (
	// ArgPins holds cabi_realloc allocations (arguments of the current
	// export, results of imports it calls) until the export returns: Go's GC
	// cannot see the host's pointers.
	ArgPins [][]uint64
	// RetPins holds what the last result points into, until cabi_post_*.
	RetPins []any
)

// LE is the byte order of every record.
var LE = binary.LittleEndian

// Addr is p as a linear-memory address.
func Addr(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }

// Mem views n bytes of linear memory at ptr.
func Mem(ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), n)
}

// Bytes copies n bytes at ptr into Go memory.
func Bytes(ptr, n uint32) []byte {
	return append([]byte(nil), Mem(ptr, n)...)
}

// String copies the string at ptr.
func String(ptr, n uint32) string { return string(Mem(ptr, n)) }

// Alloc returns n zeroed bytes, 8-aligned, kept alive until the next cabi_post_*.
func Alloc(n int) ([]byte, uint32) {
	if n == 0 {
		return nil, 0
	}
	words := make([]uint64, (n+7)/8)
	RetPins = append(RetPins, words)
	p := unsafe.Pointer(unsafe.SliceData(words))
	return unsafe.Slice((*byte)(p), n), Addr(p)
}

// PutBytes writes b's address and length at dst[at:], keeping b alive.
func PutBytes(dst []byte, at int, b []byte) {
	if len(b) > 0 {
		RetPins = append(RetPins, b)
		LE.PutUint32(dst[at:], Addr(unsafe.Pointer(unsafe.SliceData(b))))
	}
	LE.PutUint32(dst[at+4:], uint32(len(b)))
}

// PutString writes s (made valid UTF-8: the host refuses anything else).
func PutString(dst []byte, at int, s string) {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > 0 {
		RetPins = append(RetPins, s)
		LE.PutUint32(dst[at:], Addr(unsafe.Pointer(unsafe.StringData(s))))
	}
	LE.PutUint32(dst[at+4:], uint32(len(s)))
}

// Params reads a list<param> (16-byte records of two strings).
func Params(ptr, n uint32) []sluice.Param {
	raw := Mem(ptr, n*16)
	params := make([]sluice.Param, n)
	for i := range params {
		r := raw[i*16:]
		params[i] = sluice.Param{
			Name:  String(LE.Uint32(r[0:]), LE.Uint32(r[4:])),
			Value: String(LE.Uint32(r[8:]), LE.Uint32(r[12:])),
		}
	}
	return params
}

// Describe writes a plugin-info record and returns its address.
func Describe(info sluice.Info) uint32 {
	RetPins = nil
	area, p := Alloc(24)
	PutString(area, 0, info.Name)
	PutString(area, 8, info.Version)
	PutString(area, 16, info.Description)
	return p
}

// PutCallError writes a call-error variant at dst[at:].
func PutCallError(dst []byte, at int, e *sluice.CallError) {
	if !e.Retry {
		dst[at] = 1
	}
	PutString(dst, at+4, e.Message)
}

// Guard logs a panic through the host, then lets it trap the instance (the
// host reports the call and reopens the connector at a safe position).
func Guard() {
	if r := recover(); r != nil {
		if _, logged := r.(crash); !logged {
			sluice.Logf(sluice.LevelError, "plugin panicked: %v", r)
		}
		panic(r)
	}
}

// crash is the panic of Crash, already logged.
type crash string

// Crash logs err as a crash and traps the instance, as a panic would: an
// error that is neither a retry nor fatal is a bug in the connector.
func Crash(err error) {
	msg := fmt.Sprintf("plugin failed: %v", err)
	sluice.Logf(sluice.LevelError, "%s", msg)
	panic(crash(msg))
}

//go:wasmexport cabi_realloc
func cabiRealloc(oldPtr, oldSize, align, newSize uint32) uint32 {
	if newSize == 0 {
		return align
	}
	words := make([]uint64, (newSize+7)/8)
	p := unsafe.Pointer(unsafe.SliceData(words))
	if oldPtr != 0 && oldSize > 0 {
		copy(unsafe.Slice((*byte)(p), newSize), Mem(oldPtr, min(oldSize, newSize)))
	}
	ArgPins = append(ArgPins, words)
	return Addr(p)
}
