//go:build wasip1

package connector

import (
	"runtime"
	"unsafe"

	"sluice.dev/sdk/internal/cabi"
)

// sluice:plugin/http@0.2.0 send: the request record flattened (method, url,
// headers, body: four pointer/length pairs) and a pointer to a 24-byte
// return area for result<response, http-error>. Only a connector that calls
// Send imports it (the Go linker drops unused imports), so one that never
// does needs no http grant.
//
//go:wasmimport sluice:plugin/http@0.2.0 send
func wasmSend(mPtr, mLen, uPtr, uLen, hPtr, hLen, bPtr, bLen, ret uint32)

func strAddr(s string) uint32 { return cabi.Addr(unsafe.Pointer(unsafe.StringData(s))) }

func send(req Request) (*Response, error) {
	hdrs := make([]uint32, 4*len(req.Headers))
	for i, h := range req.Headers {
		hdrs[4*i], hdrs[4*i+1] = strAddr(h[0]), uint32(len(h[0]))
		hdrs[4*i+2], hdrs[4*i+3] = strAddr(h[1]), uint32(len(h[1]))
	}
	var ret [3]uint64
	var hp, bp uint32
	if len(hdrs) > 0 {
		hp = cabi.Addr(unsafe.Pointer(unsafe.SliceData(hdrs)))
	}
	if len(req.Body) > 0 {
		bp = cabi.Addr(unsafe.Pointer(unsafe.SliceData(req.Body)))
	}
	wasmSend(strAddr(req.Method), uint32(len(req.Method)), strAddr(req.URL), uint32(len(req.URL)),
		hp, uint32(len(req.Headers)), bp, uint32(len(req.Body)), cabi.Addr(unsafe.Pointer(&ret)))
	runtime.KeepAlive(req)
	runtime.KeepAlive(hdrs)
	area := unsafe.Slice((*byte)(unsafe.Pointer(&ret)), 24)
	le := cabi.LE
	if area[0] != 0 {
		kinds := [...]string{KindDenied, KindTimeout, KindTooLarge, KindFailed}
		kind := KindFailed
		if int(area[4]) < len(kinds) {
			kind = kinds[area[4]]
		}
		return nil, &HTTPError{Kind: kind, Message: cabi.String(le.Uint32(area[8:]), le.Uint32(area[12:]))}
	}
	resp := &Response{Status: int(le.Uint16(area[4:]))}
	n := le.Uint32(area[12:])
	raw := cabi.Mem(le.Uint32(area[8:]), n*16)
	resp.Headers = make([][2]string, n)
	for i := range resp.Headers {
		r := raw[i*16:]
		resp.Headers[i] = [2]string{
			cabi.String(le.Uint32(r[0:]), le.Uint32(r[4:])),
			cabi.String(le.Uint32(r[8:]), le.Uint32(r[12:])),
		}
	}
	resp.Body = cabi.Bytes(le.Uint32(area[16:]), le.Uint32(area[20:]))
	return resp, nil
}
