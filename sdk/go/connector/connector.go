// Package connector is the Go SDK for custom connectors: components that
// export the `source` or `sink` world of contract 0.2.0.
//
// Implement Source (Poll, optionally Commit) or Sink (Write, Flush), and
// register its open function from an init function of package main with
// sluice.dev/sdk/source's Export or sluice.dev/sdk/sink's Export. HTTP goes
// through the host (Get, Post, Send: only to the hosts the pipeline grants),
// the time through NowMs and MonotonicNs (only with `grants: {clock: true}`).
// SourceHarness and SinkHarness call a connector natively as the host does,
// with WithHTTP and WithClock standing in for the host, so `go test` needs
// no runtime and no server.
//
// Errors: a *sluice.CallError from sluice.Retry makes the host call again
// after a backoff, one from sluice.Fatal stops the pipeline. An *HTTPError
// that escapes is a retry (timeout, failed) or fatal (denied, too-large).
// Any other error, like a panic, is a crash: it is logged, the instance
// traps, and the host reopens the connector at its last safe position.
package connector

import (
	"errors"
	"fmt"

	sluice "sluice.dev/sdk"
)

// ContractVersion is the contract connectors build against.
const ContractVersion = "0.2.0"

// Source is a custom source. The host opens it at the checkpointed position
// and polls it in a loop.
type Source interface {
	// Poll adds up to max events to out, and the position after them.
	// Return quickly with nothing when nothing is there: the host polls
	// again after a pause.
	Poll(max int, out *Poll) error
}

// Committer is implemented by a source that acknowledges upstream (a
// queue's ack, a server-side cursor) once a checkpoint holding position is
// durable; never earlier.
type Committer interface {
	Commit(position []byte) error
}

// Sink is a custom sink.
type Sink interface {
	// Write writes a batch (it may buffer). Refuse an event for good with
	// rejected.Reject(ev, reason): it is dead-lettered with the reason.
	Write(events []*sluice.Event, rejected *Rejections) error
	// Flush makes every write durable and returns the position to
	// checkpoint (nil: none).
	Flush() ([]byte, error)
}

// OpenSource builds a source from its params, resuming after position (nil:
// start afresh). An error fails the deployment.
type OpenSource func(params *sluice.Params, position []byte) (Source, error)

// OpenSink builds a sink from its params, at the position its last
// checkpointed flush returned (nil: start afresh).
type OpenSink func(params *sluice.Params, position []byte) (Sink, error)

// Malformed is an input the source could not turn into an event: it is
// dead-lettered with its raw bytes and the reason.
type Malformed struct {
	Raw    []byte
	Reason string
}

// Poll collects what one poll returns.
type Poll struct {
	batch     sluice.Batch
	malformed []Malformed
	// Position after everything this poll returned; nil: unchanged.
	Position []byte
	// CaughtUp: the backlog that existed at open is delivered. Once set it
	// stays set (the SDK carries it to later polls).
	CaughtUp bool
	// Done: a bounded source is drained; the host stops polling.
	Done bool
}

// Len is the number of events added so far (malformed inputs not counted).
func (p *Poll) Len() int { return len(p.batch.Events) }

// SetPosition sets the position as text (a cursor, an offset).
func (p *Poll) SetPosition(position string) { p.Position = []byte(position) }

func (p *Poll) push(b []byte) sluice.Span {
	s := sluice.Span{Offset: uint32(len(p.batch.Data)), Len: uint32(len(b))}
	p.batch.Data = append(p.batch.Data, b...)
	return s
}

// Emit adds a fully specified event. A Key of nil means no key, a Value of
// nil a tombstone; a TimestampMs of 0 gets the time it was polled.
func (p *Poll) Emit(ev sluice.OutEvent) {
	var key, value sluice.Span
	if ev.Key != nil {
		key = p.push(ev.Key)
	}
	if ev.Value != nil {
		value = p.push(ev.Value)
	}
	first := uint32(len(p.batch.Headers))
	for _, h := range ev.Headers {
		p.batch.Headers = append(p.batch.Headers, sluice.Header{Name: p.push([]byte(h.Name)), Value: p.push(h.Value)})
	}
	p.batch.Events = append(p.batch.Events, sluice.RawEvent{
		Key: key, HasKey: ev.Key != nil, Value: value, HasValue: ev.Value != nil,
		Headers:     sluice.Span{Offset: first, Len: uint32(len(ev.Headers))},
		TimestampMs: ev.TimestampMs,
	})
}

// Value adds a keyless event with this value (UTF-8 JSON).
func (p *Poll) Value(value []byte) {
	if value == nil {
		value = []byte{}
	}
	p.Emit(sluice.OutEvent{Value: value})
}

// JSON adds a keyless event whose value is v as canonical JSON (see
// sluice.AppendJSON; json.Number keeps 64-bit integers exact).
func (p *Poll) JSON(v any) error {
	b, err := sluice.AppendJSON(nil, v)
	if err != nil {
		return err
	}
	p.Value(b)
	return nil
}

// Malformed reports an input that could not be decoded.
func (p *Poll) Malformed(raw []byte, reason string) {
	p.malformed = append(p.malformed, Malformed{Raw: append([]byte(nil), raw...), Reason: reason})
}

// MalformedInputs returns the inputs reported so far.
func (p *Poll) MalformedInputs() []Malformed { return p.malformed }

// Rejections collects the events a sink refuses.
type Rejections struct {
	items []sluice.Rejection
}

// Reject dead-letters ev with reason.
func (r *Rejections) Reject(ev *sluice.Event, reason string) {
	r.RejectIndex(ev.Index(), reason)
}

// RejectIndex dead-letters the event at index i of the batch. The host
// refuses an index outside the batch, or one given twice, as an invalid
// output (the instance is discarded).
func (r *Rejections) RejectIndex(i uint32, reason string) {
	r.items = append(r.items, sluice.Rejection{Index: i, Reason: reason})
}

// Items returns the rejections so far.
func (r *Rejections) Items() []sluice.Rejection { return r.items }

// Outcome classifies an error returned by a connector: a call error the
// host is told (retry or fatal), or a crash (nil CallError).
func Outcome(err error) *sluice.CallError {
	var callErr *sluice.CallError
	if errors.As(err, &callErr) {
		return callErr
	}
	var httpErr *HTTPError
	if errors.As(err, &httpErr) {
		retry := httpErr.Kind == KindTimeout || httpErr.Kind == KindFailed
		return &sluice.CallError{Retry: retry, Message: httpErr.Error()}
	}
	return nil
}

// SourceState is an open source as the glue and the harness drive it.
type SourceState struct {
	Source   Source
	caughtUp bool
}

// OpenSourceState opens a source; a refusal is the open error.
func OpenSourceState(open OpenSource, params []sluice.Param, position []byte) (*SourceState, error) {
	if open == nil {
		return nil, errors.New("this Go connector registered no source: call source.Export from an init function of package main")
	}
	s, err := open(sluice.NewParams(params...), position)
	if err == nil && s == nil {
		err = errors.New("the connector's open function returned no source")
	}
	if err != nil {
		return nil, err
	}
	return &SourceState{Source: s}, nil
}

// Polled is one poll in the contract's tables.
type Polled struct {
	Data, Events, Headers []byte
	Malformed             []Malformed
	Position              []byte
	CaughtUp, Done        bool
}

// Poll polls once. A nil *Polled with a nil *sluice.CallError is a crash,
// whose error is returned too.
func (s *SourceState) Poll(max uint32) (*Polled, *sluice.CallError, error) {
	out := &Poll{}
	if err := s.Source.Poll(int(max), out); err != nil {
		if ce := Outcome(err); ce != nil {
			return nil, ce, nil
		}
		return nil, nil, err
	}
	s.caughtUp = s.caughtUp || out.CaughtUp
	data, events, headers := EncodeBatch(&out.batch)
	return &Polled{
		Data: data, Events: events, Headers: headers,
		Malformed: out.malformed,
		Position:  out.Position,
		CaughtUp:  s.caughtUp,
		Done:      out.Done,
	}, nil, nil
}

// Commit tells the source position is durable.
func (s *SourceState) Commit(position []byte) (*sluice.CallError, error) {
	c, ok := s.Source.(Committer)
	if !ok {
		return nil, nil
	}
	if err := c.Commit(position); err != nil {
		if ce := Outcome(err); ce != nil {
			return ce, nil
		}
		return nil, err
	}
	return nil, nil
}

// OpenSinkState opens a sink; a refusal is the open error.
func OpenSinkState(open OpenSink, params []sluice.Param, position []byte) (Sink, error) {
	if open == nil {
		return nil, errors.New("this Go connector registered no sink: call sink.Export from an init function of package main")
	}
	k, err := open(sluice.NewParams(params...), position)
	if err == nil && k == nil {
		err = errors.New("the connector's open function returned no sink")
	}
	return k, err
}

// WriteTables decodes a batch from the contract's tables and writes it.
func WriteTables(k Sink, data, events, headers []byte, streams []string) ([]sluice.Rejection, *sluice.CallError, error) {
	b, err := DecodeBatch(data, events, headers, streams)
	if err != nil {
		// The host never sends one; refuse rather than index out of range.
		return nil, &sluice.CallError{Message: fmt.Sprintf("the host sent a malformed batch: %v", err)}, nil
	}
	evs := make([]*sluice.Event, len(b.Events))
	for i := range evs {
		evs[i] = b.EventAt(i)
	}
	var rejected Rejections
	if err := k.Write(evs, &rejected); err != nil {
		if ce := Outcome(err); ce != nil {
			return nil, ce, nil
		}
		return nil, nil, err
	}
	return rejected.items, nil, nil
}

// FlushSink flushes.
func FlushSink(k Sink) ([]byte, *sluice.CallError, error) {
	pos, err := k.Flush()
	if err != nil {
		if ce := Outcome(err); ce != nil {
			return nil, ce, nil
		}
		return nil, nil, err
	}
	return pos, nil, nil
}
