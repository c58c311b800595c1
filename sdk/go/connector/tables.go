package connector

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	sluice "sluice.dev/sdk"
)

// The record layouts of contract 0.2.0 (wit/sluice.wit, package comment):
// 48-byte event records and 16-byte header records, little-endian, whose
// spans point into one data buffer.
const (
	eventRecord  = 48
	headerRecord = 16
	flagKey      = 1
	flagValue    = 2
)

var le = binary.LittleEndian

// EncodeBatch packs b into the contract's data, event and header tables.
// Header spans become header-table indexes; parent and stream are 0 (the
// host sets them for a source's events).
func EncodeBatch(b *sluice.Batch) (data, events, headers []byte) {
	events = make([]byte, eventRecord*len(b.Events))
	for i, e := range b.Events {
		r := events[i*eventRecord:]
		var flags uint32
		if e.HasKey {
			flags |= flagKey
			le.PutUint32(r[0:], e.Key.Offset)
			le.PutUint32(r[4:], e.Key.Len)
		}
		if e.HasValue {
			flags |= flagValue
			le.PutUint32(r[8:], e.Value.Offset)
			le.PutUint32(r[12:], e.Value.Len)
		}
		le.PutUint32(r[16:], e.Headers.Offset)
		le.PutUint32(r[20:], e.Headers.Len)
		le.PutUint64(r[24:], uint64(e.TimestampMs))
		le.PutUint32(r[32:], e.Stream)
		le.PutUint32(r[36:], e.Parent)
		le.PutUint32(r[40:], flags)
	}
	headers = make([]byte, headerRecord*len(b.Headers))
	for i, h := range b.Headers {
		r := headers[i*headerRecord:]
		le.PutUint32(r[0:], h.Name.Offset)
		le.PutUint32(r[4:], h.Name.Len)
		le.PutUint32(r[8:], h.Value.Offset)
		le.PutUint32(r[12:], h.Value.Len)
	}
	return b.Data, events, headers
}

// DecodeBatch reads the contract's tables into a Batch, checking every
// record: a table whose length is not a multiple of its record, an unknown
// flag, a span outside data, a header range outside the header table or a
// header name that is not UTF-8 is an error naming the record.
func DecodeBatch(data, events, headers []byte, streams []string) (*sluice.Batch, error) {
	if len(events)%eventRecord != 0 {
		return nil, fmt.Errorf("event table of %d bytes is not a whole number of %d-byte records", len(events), eventRecord)
	}
	if len(headers)%headerRecord != 0 {
		return nil, fmt.Errorf("header table of %d bytes is not a whole number of %d-byte records", len(headers), headerRecord)
	}
	span := func(off, n uint32) (sluice.Span, bool) {
		end := uint64(off) + uint64(n)
		return sluice.Span{Offset: off, Len: n}, end <= uint64(len(data))
	}
	b := &sluice.Batch{Data: data, Streams: streams}
	nh := len(headers) / headerRecord
	b.Headers = make([]sluice.Header, nh)
	for i := range b.Headers {
		r := headers[i*headerRecord:]
		name, ok1 := span(le.Uint32(r[0:]), le.Uint32(r[4:]))
		value, ok2 := span(le.Uint32(r[8:]), le.Uint32(r[12:]))
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("header %d: a span outside the %d data bytes", i, len(data))
		}
		if !utf8.Valid(data[name.Offset : name.Offset+name.Len]) {
			return nil, fmt.Errorf("header %d: the name is not UTF-8", i)
		}
		b.Headers[i] = sluice.Header{Name: name, Value: value}
	}
	b.Events = make([]sluice.RawEvent, len(events)/eventRecord)
	for i := range b.Events {
		r := events[i*eventRecord:]
		flags := le.Uint32(r[40:])
		if flags&^(flagKey|flagValue) != 0 {
			return nil, fmt.Errorf("event %d: unknown flags %#x", i, flags)
		}
		key, ok1 := span(le.Uint32(r[0:]), le.Uint32(r[4:]))
		value, ok2 := span(le.Uint32(r[8:]), le.Uint32(r[12:]))
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("event %d: a span outside the %d data bytes", i, len(data))
		}
		first, n := le.Uint32(r[16:]), le.Uint32(r[20:])
		if uint64(first)+uint64(n) > uint64(nh) {
			return nil, fmt.Errorf("event %d: headers %d..%d outside the %d-record header table", i, first, uint64(first)+uint64(n), nh)
		}
		stream := le.Uint32(r[32:])
		if len(streams) > 0 && int(stream) >= len(streams) {
			return nil, fmt.Errorf("event %d: stream %d of %d", i, stream, len(streams))
		}
		b.Events[i] = sluice.RawEvent{
			Key: key, HasKey: flags&flagKey != 0,
			Value: value, HasValue: flags&flagValue != 0,
			Headers:     sluice.Span{Offset: first, Len: n},
			TimestampMs: int64(le.Uint64(r[24:])),
			Stream:      stream,
			Parent:      uint32(i),
		}
	}
	return b, nil
}
