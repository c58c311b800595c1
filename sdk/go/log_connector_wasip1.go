//go:build wasip1 && sluice_connector

package sluice

import "unsafe"

// Connectors (built with the `sluice_connector` tag by `sluice plugin
// build`) speak contract 0.2.0, whose `log` is the same function at
// another version; the transform glue of abi_wasip1.go is left out.

//go:wasmimport sluice:plugin/log@0.2.0 log
func wasmLog(level uint32, ptr uint32, length uint32)

func hostLog(level Level, msg string) {
	wasmLog(uint32(level), uint32(uintptr(unsafe.Pointer(unsafe.StringData(msg)))), uint32(len(msg)))
}
