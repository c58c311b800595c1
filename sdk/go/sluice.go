// Package sluice is the Go SDK for Sluice transforms: implement Transform,
// register it with Export from an init function of package main, and build
// with `sluice plugin build DIR`.
//
//	package main
//
//	import sluice "sluice.dev/sdk"
//
//	type dropAUD struct{}
//
//	func (dropAUD) Process(ev *sluice.Event, out *sluice.Emitter) error {
//		v, err := ev.JSONObject()
//		if err != nil {
//			return err
//		}
//		if v["currency"] != "aud" {
//			out.Forward()
//		}
//		return nil
//	}
//
//	func init() {
//		sluice.Export(sluice.Info{Name: "drop-aud", Version: "0.1.0"},
//			func(p *sluice.Params) (sluice.Transform, error) { return dropAUD{}, p.Only() })
//	}
//
//	func main() {}
//
// Errors: a plain error returned from Process (or Reject) dead-letters this
// event with the error's text; Retry asks the host to retry the whole batch
// later; Fatal stops the stage. Nothing is dropped silently.
//
// The same code runs natively: Run (see testing.go) drives the batch loop for
// `go test`, with no Wasm runtime.
package sluice

import (
	"errors"
	"fmt"
)

// ContractVersion is the version of the sluice:plugin contract this SDK speaks.
const ContractVersion = "0.1.0"

// Span is a byte range inside Batch.Data, or for RawEvent.Headers a range of
// indexes inside Batch.Headers.
type Span struct {
	Offset uint32
	Len    uint32
}

// Header is one header; name (UTF-8) and value are spans into Batch.Data.
type Header struct {
	Name  Span
	Value Span
}

// RawEvent is one event of a framed batch, as it crosses the boundary.
type RawEvent struct {
	Key         Span
	HasKey      bool
	Value       Span
	HasValue    bool // false: a tombstone
	Headers     Span
	TimestampMs int64
	Stream      uint32
	Parent      uint32
}

// Batch is a framed batch: all key, value and header bytes live in Data.
type Batch struct {
	Data    []byte
	Events  []RawEvent
	Headers []Header
	Streams []string
}

// Rejection is one refused input event and why.
type Rejection struct {
	Index  uint32
	Reason string
}

// Output is the result of processing one batch.
type Output struct {
	Events   Batch
	Rejected []Rejection
}

// Transform is a stateless transform: Process is called once per input event
// and emits zero or more events to out.
type Transform interface {
	Process(ev *Event, out *Emitter) error
}

// Factory builds a Transform from the stage's parameters. An error (name the
// parameter and what was expected) fails the deployment.
type Factory func(params *Params) (Transform, error)

// Info is what the plugin says about itself (shown by `sluice plugin inspect`
// and named in every error and dead letter it causes).
type Info struct {
	Name        string
	Version     string
	Description string
}

// CallError fails the whole call rather than one event.
type CallError struct {
	// Retry is true for a transient failure (the host retries the batch),
	// false for a permanent one (the stage stops).
	Retry   bool
	Message string
}

func (e *CallError) Error() string { return e.Message }

// Retry returns an error that makes the host retry the whole batch later.
func Retry(format string, args ...any) error {
	return &CallError{Retry: true, Message: fmt.Sprintf(format, args...)}
}

// Fatal returns an error that stops the stage.
func Fatal(format string, args ...any) error {
	return &CallError{Retry: false, Message: fmt.Sprintf(format, args...)}
}

// Reject returns an error that dead-letters the current event with this
// reason. Any error that is not a *CallError does the same.
func Reject(format string, args ...any) error {
	return errors.New(fmt.Sprintf(format, args...))
}

// Event is one input event, read in place from the batch.
type Event struct {
	batch *Batch
	raw   *RawEvent
}

func (b *Batch) slice(s Span) []byte {
	end := uint64(s.Offset) + uint64(s.Len)
	if end > uint64(len(b.Data)) {
		return nil
	}
	return b.Data[s.Offset:end:end]
}

// Key returns the key bytes and whether the event has a key.
func (e *Event) Key() ([]byte, bool) {
	if !e.raw.HasKey {
		return nil, false
	}
	return e.batch.slice(e.raw.Key), true
}

// Value returns the value bytes (UTF-8 JSON inside a pipeline); nil for a tombstone.
func (e *Event) Value() []byte {
	if !e.raw.HasValue {
		return nil
	}
	v := e.batch.slice(e.raw.Value)
	if v == nil {
		v = []byte{}
	}
	return v
}

// IsTombstone reports whether the event is a tombstone (a delete).
func (e *Event) IsTombstone() bool { return !e.raw.HasValue }

// JSON parses the value (see ParseJSON); a value that is not JSON is an error
// naming the parse error, which rejects the event if returned from Process.
// A tombstone parses as nil.
func (e *Event) JSON() (any, error) {
	if !e.raw.HasValue {
		return nil, nil
	}
	v, err := ParseJSON(e.Value())
	if err != nil {
		return nil, fmt.Errorf("value is not valid JSON: %v", err)
	}
	return v, nil
}

// JSONObject parses the value as a JSON object, or returns an error
// `expected a JSON object` (also for tombstones and invalid JSON).
func (e *Event) JSONObject() (map[string]any, error) {
	v, err := e.JSON()
	if obj, ok := v.(map[string]any); ok && err == nil {
		return obj, nil
	}
	return nil, errors.New("expected a JSON object")
}

// TimestampMs is the event time in milliseconds since the Unix epoch.
func (e *Event) TimestampMs() int64 { return e.raw.TimestampMs }

// Index is the event's index in the input batch.
func (e *Event) Index() uint32 { return e.raw.Parent }

// Stream is the name of the input stream the event arrived on.
func (e *Event) Stream() string {
	if int(e.raw.Stream) < len(e.batch.Streams) {
		return e.batch.Streams[e.raw.Stream]
	}
	return ""
}

// HeaderPair is one header as (name, value).
type HeaderPair struct {
	Name  string
	Value []byte
}

// Headers returns all headers in order.
func (e *Event) Headers() []HeaderPair {
	start := uint64(e.raw.Headers.Offset)
	end := start + uint64(e.raw.Headers.Len)
	if end > uint64(len(e.batch.Headers)) {
		return nil
	}
	out := make([]HeaderPair, 0, end-start)
	for _, h := range e.batch.Headers[start:end] {
		name := e.batch.slice(h.Name)
		value := e.batch.slice(h.Value)
		if (name == nil && h.Name.Len > 0) || (value == nil && h.Value.Len > 0) {
			continue
		}
		out = append(out, HeaderPair{Name: string(name), Value: value})
	}
	return out
}

// Header returns the value of the first header named name.
func (e *Event) Header(name string) ([]byte, bool) {
	for _, h := range e.Headers() {
		if h.Name == name {
			return h.Value, true
		}
	}
	return nil, false
}

// OutEvent is a fully specified output event for Emitter.Emit.
type OutEvent struct {
	Key         []byte // nil: no key
	Value       []byte // nil: a tombstone
	Headers     []HeaderPair
	TimestampMs int64
}

// Emitter receives the output events derived from one input event. Every
// event it writes has that input as parent; the helpers copy the input's
// key, headers and timestamp. If Process then rejects the input, everything
// emitted for it is withdrawn.
type Emitter struct {
	out   *Batch
	input *Event
	err   error
}

func (b *Batch) push(p []byte) Span {
	s := Span{Offset: uint32(len(b.Data)), Len: uint32(len(p))}
	b.Data = append(b.Data, p...)
	return s
}

// Forward emits the input event unchanged.
func (o *Emitter) Forward() {
	key, hasKey := o.input.Key()
	o.push(key, hasKey, o.input.Value(), !o.input.IsTombstone())
}

// Value emits an event with the input's key, headers and timestamp and a new value.
func (o *Emitter) Value(value []byte) {
	key, hasKey := o.input.Key()
	o.push(key, hasKey, value, true)
}

// JSON emits an event with the input's key, headers and timestamp and v
// encoded as canonical JSON (see AppendJSON). A value that cannot be encoded
// rejects the input event.
func (o *Emitter) JSON(v any) {
	key, hasKey := o.input.Key()
	var keySpan Span
	if hasKey {
		keySpan = o.out.push(key)
	}
	start := len(o.out.Data)
	data, err := AppendJSON(o.out.Data, v)
	if err != nil {
		if o.err == nil {
			o.err = err
		}
		return
	}
	o.out.Data = data
	o.finish(keySpan, hasKey, Span{Offset: uint32(start), Len: uint32(len(data) - start)}, true)
}

// Tombstone emits a tombstone with the input's key, headers and timestamp.
func (o *Emitter) Tombstone() {
	key, hasKey := o.input.Key()
	o.push(key, hasKey, nil, false)
}

// Emit emits a fully specified event (nothing is copied from the input
// except its index as parent).
func (o *Emitter) Emit(ev OutEvent) {
	var key, value Span
	if ev.Key != nil {
		key = o.out.push(ev.Key)
	}
	if ev.Value != nil {
		value = o.out.push(ev.Value)
	}
	first := uint32(len(o.out.Headers))
	for _, h := range ev.Headers {
		name := o.out.push([]byte(h.Name))
		val := o.out.push(h.Value)
		o.out.Headers = append(o.out.Headers, Header{Name: name, Value: val})
	}
	o.out.Events = append(o.out.Events, RawEvent{
		Key: key, HasKey: ev.Key != nil, Value: value, HasValue: ev.Value != nil,
		Headers:     Span{Offset: first, Len: uint32(len(ev.Headers))},
		TimestampMs: ev.TimestampMs,
		Parent:      o.input.raw.Parent,
	})
}

func (o *Emitter) push(key []byte, hasKey bool, value []byte, hasValue bool) {
	var k, v Span
	if hasKey {
		k = o.out.push(key)
	}
	if hasValue {
		v = o.out.push(value)
	}
	o.finish(k, hasKey, v, hasValue)
}

func (o *Emitter) finish(key Span, hasKey bool, value Span, hasValue bool) {
	first := uint32(len(o.out.Headers))
	n := uint32(0)
	for _, h := range o.input.Headers() {
		name := o.out.push([]byte(h.Name))
		val := o.out.push(h.Value)
		o.out.Headers = append(o.out.Headers, Header{Name: name, Value: val})
		n++
	}
	o.out.Events = append(o.out.Events, RawEvent{
		Key: key, HasKey: hasKey, Value: value, HasValue: hasValue,
		Headers:     Span{Offset: first, Len: n},
		TimestampMs: o.input.raw.TimestampMs,
		Parent:      o.input.raw.Parent,
	})
}

// RunTransform runs t over one framed batch: the whole batch loop. The Wasm
// export glue and the native test helper both call it, so what you test
// natively is what runs in the sandbox.
func RunTransform(t Transform, input *Batch) (*Output, *CallError) {
	out := &Output{Events: Batch{
		Data:   make([]byte, 0, len(input.Data)),
		Events: make([]RawEvent, 0, len(input.Events)),
	}}
	for i := range input.Events {
		raw := input.Events[i]
		raw.Parent = uint32(i)
		ev := Event{batch: input, raw: &raw}
		mark := [3]int{len(out.Events.Data), len(out.Events.Events), len(out.Events.Headers)}
		em := Emitter{out: &out.Events, input: &ev}
		err := t.Process(&ev, &em)
		if err == nil {
			err = em.err
		}
		if err == nil {
			continue
		}
		var callErr *CallError
		if errors.As(err, &callErr) {
			return nil, callErr
		}
		// Withdraw whatever was emitted for the rejected event.
		out.Events.Data = out.Events.Data[:mark[0]]
		out.Events.Events = out.Events.Events[:mark[1]]
		out.Events.Headers = out.Events.Headers[:mark[2]]
		out.Rejected = append(out.Rejected, Rejection{Index: uint32(i), Reason: err.Error()})
	}
	return out, nil
}

var exported struct {
	info    Info
	factory Factory
}

// Export registers the plugin's transform. Call it once, from an init
// function of package main.
func Export(info Info, factory Factory) {
	exported.info = info
	exported.factory = factory
}

// Level is a log level.
type Level uint32

// Log levels, as in the contract's `log.level`.
const (
	LevelTrace Level = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
)

// Logf logs a line through the host, which tags it with stage, plugin and version.
func Logf(level Level, format string, args ...any) {
	hostLog(level, fmt.Sprintf(format, args...))
}

// EventAt returns event i of b as an input event (its Index is i). The
// connector SDK uses it to hand a sink the events of a written batch.
func (b *Batch) EventAt(i int) *Event {
	raw := b.Events[i]
	raw.Parent = uint32(i)
	return &Event{batch: b, raw: &raw}
}
