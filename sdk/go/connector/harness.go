//go:build !wasip1

package connector

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	sluice "sluice.dev/sdk"
)

// Native stand-ins for the host: who answers Send and what the clock reads.
var (
	transport func(Request) (*Response, error)
	fixedNow  *FixedClock
	started   = time.Now()
)

func send(req Request) (*Response, error) {
	if transport == nil {
		return nil, &HTTPError{Kind: KindDenied, Message: req.URL + ": no HTTP in this native test; answer it with connector.WithHTTP"}
	}
	return transport(req)
}

func nowMs() int64 {
	if fixedNow != nil {
		return fixedNow.NowMs
	}
	return time.Now().UnixMilli()
}

func monotonicNs() uint64 {
	if fixedNow != nil {
		return uint64(max(fixedNow.NowMs, 0)) * 1_000_000
	}
	return uint64(time.Since(started).Nanoseconds())
}

// WithHTTP answers Send with handler until the returned function is
// called. With grant (`host:port` entries, as in the pipeline) a request to
// any other host is refused as the host refuses it (KindDenied, the same
// message) and handler never sees it.
func WithHTTP(handler func(Request) (*Response, error), grant ...string) (restore func()) {
	previous := transport
	transport = func(req Request) (*Response, error) {
		if grant != nil {
			if err := checkGrant(req.URL, grant); err != nil {
				return nil, err
			}
		}
		return handler(req)
	}
	return func() { transport = previous }
}

func checkGrant(raw string, grant []string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return &HTTPError{Kind: KindFailed, Message: fmt.Sprintf("URL `%s` is not http:// or https://", raw)}
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, g := range grant {
		at := strings.LastIndexByte(g, ':')
		if at < 0 {
			continue
		}
		h := strings.TrimSuffix(strings.TrimPrefix(g[:at], "["), "]")
		if strings.EqualFold(h, host) && g[at+1:] == port {
			return nil
		}
	}
	return &HTTPError{Kind: KindDenied, Message: fmt.Sprintf(
		"%s:%s is not in this connector's grant (grants.http: [%s]); add it to the pipeline's `grants.http` if the connector should reach it",
		host, port, strings.Join(grant, ", "))}
}

// FixedClock is the clock WithClock fixes.
type FixedClock struct {
	// NowMs is what NowMs returns; MonotonicNs reads the same instant in
	// nanoseconds.
	NowMs    int64
	previous *FixedClock
}

// Advance moves the wall and the monotonic clock forward by ms.
func (c *FixedClock) Advance(ms int64) { c.NowMs += ms }

// Restore gives the clock back (the machine's, or an outer WithClock's).
func (c *FixedClock) Restore() { fixedNow = c.previous }

// WithClock fixes NowMs at nowMs (and MonotonicNs at the same instant)
// until Restore, so time-dependent code is repeatable in a test.
func WithClock(nowMs int64) *FixedClock {
	c := &FixedClock{NowMs: nowMs, previous: fixedNow}
	fixedNow = c
	return c
}

func params(m map[string]string) []sluice.Param {
	ps := make([]sluice.Param, 0, len(m))
	for k, v := range m {
		ps = append(ps, sluice.Param{Name: k, Value: v})
	}
	return ps
}

// failure turns a call's outcome into the harness's error: the
// *sluice.CallError the host would get, or the crash's error.
func failure(ce *sluice.CallError, crash error) error {
	if ce != nil {
		return ce
	}
	return crash
}

// SourceHarness drives a source natively as the host does: open at a
// position, poll (through the contract's tables and back), commit.
type SourceHarness struct {
	state *SourceState
}

// NewSourceHarness opens a source with params at position (nil: afresh).
func NewSourceHarness(open OpenSource, params_ map[string]string, position []byte) (*SourceHarness, error) {
	s, err := OpenSourceState(open, params(params_), position)
	if err != nil {
		return nil, err
	}
	return &SourceHarness{state: s}, nil
}

// Source is the source under test.
func (h *SourceHarness) Source() Source { return h.state.Source }

// PollResult is what one poll returned, read back from the tables.
type PollResult struct {
	Batch     *sluice.Batch
	Malformed []Malformed
	Position  []byte
	CaughtUp  bool
	Done      bool
}

// Values are the events' values ("<tombstone>" for a tombstone).
func (p *PollResult) Values() []string {
	out := make([]string, len(p.Batch.Events))
	for i := range out {
		ev := p.Batch.EventAt(i)
		if ev.IsTombstone() {
			out[i] = "<tombstone>"
		} else {
			out[i] = string(ev.Value())
		}
	}
	return out
}

// Keys are the events' keys ("" for none).
func (p *PollResult) Keys() []string {
	out := make([]string, len(p.Batch.Events))
	for i := range out {
		k, _ := p.Batch.EventAt(i).Key()
		out[i] = string(k)
	}
	return out
}

// Poll polls once for up to max events. The error is a *sluice.CallError
// (retry or fatal, as the host would be told) or the crash's error. More
// events than max is an error, as the host refuses it.
func (h *SourceHarness) Poll(max int) (*PollResult, error) {
	p, ce, crash := h.state.Poll(uint32(max))
	if p == nil {
		return nil, failure(ce, crash)
	}
	b, err := DecodeBatch(p.Data, p.Events, p.Headers, nil)
	if err != nil {
		return nil, fmt.Errorf("invalid output: %v", err)
	}
	if len(b.Events) > max {
		return nil, fmt.Errorf("invalid output: poll returned %d events but was asked for at most %d", len(b.Events), max)
	}
	return &PollResult{Batch: b, Malformed: p.Malformed, Position: p.Position, CaughtUp: p.CaughtUp, Done: p.Done}, nil
}

// PollUntilDone polls until Done (at most maxPolls times) and returns every poll.
func (h *SourceHarness) PollUntilDone(max, maxPolls int) ([]*PollResult, error) {
	var all []*PollResult
	for range maxPolls {
		p, err := h.Poll(max)
		if err != nil {
			return all, err
		}
		all = append(all, p)
		if p.Done {
			return all, nil
		}
	}
	return all, fmt.Errorf("not done after %d polls", maxPolls)
}

// Commit tells the source position is durable.
func (h *SourceHarness) Commit(position []byte) error {
	ce, crash := h.state.Commit(position)
	return failure(ce, crash)
}

// SinkHarness drives a sink natively as the host does.
type SinkHarness struct {
	Sink Sink
}

// NewSinkHarness opens a sink with params at position (nil: afresh).
func NewSinkHarness(open OpenSink, params_ map[string]string, position []byte) (*SinkHarness, error) {
	k, err := OpenSinkState(open, params(params_), position)
	if err != nil {
		return nil, err
	}
	return &SinkHarness{Sink: k}, nil
}

// Write writes keyless events with these values (through the contract's
// tables) and returns the rejections.
func (h *SinkHarness) Write(values ...string) ([]sluice.Rejection, error) {
	var b sluice.Batch
	b.Streams = []string{"input"}
	for i, v := range values {
		s := sluice.Span{Offset: uint32(len(b.Data)), Len: uint32(len(v))}
		b.Data = append(b.Data, v...)
		b.Events = append(b.Events, sluice.RawEvent{Value: s, HasValue: true, Parent: uint32(i)})
	}
	data, events, headers := EncodeBatch(&b)
	rej, ce, crash := WriteTables(h.Sink, data, events, headers, b.Streams)
	if ce != nil || crash != nil {
		return nil, failure(ce, crash)
	}
	seen := map[uint32]bool{}
	for _, r := range rej {
		if int(r.Index) >= len(values) || seen[r.Index] {
			return nil, fmt.Errorf("invalid output: rejection index %d (a batch of %d, or given twice)", r.Index, len(values))
		}
		seen[r.Index] = true
	}
	return rej, nil
}

// Flush flushes and returns the position.
func (h *SinkHarness) Flush() ([]byte, error) {
	pos, ce, crash := FlushSink(h.Sink)
	if ce != nil || crash != nil {
		return nil, failure(ce, crash)
	}
	return pos, nil
}
