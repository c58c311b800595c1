package connector

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	sluice "sluice.dev/sdk"
)

type count struct{ next, to int }

func (c *count) Poll(max int, out *Poll) error {
	for out.Len() < max && c.next < c.to {
		out.Emit(sluice.OutEvent{
			Key: []byte{byte('a' + c.next)}, Value: []byte(`{"n":` + string(rune('0'+c.next)) + `}`),
			Headers: []sluice.HeaderPair{{Name: "h", Value: []byte("x")}}, TimestampMs: 1 << 62,
		})
		c.next++
	}
	out.Malformed([]byte("{oops"), "line 7: not JSON")
	out.SetPosition(string(rune('0' + c.next)))
	out.CaughtUp = c.next == c.to
	out.Done = out.CaughtUp
	return nil
}

func TestAPollSurvivesTheContractsTables(t *testing.T) {
	h, err := NewSourceHarness(func(p *sluice.Params, pos []byte) (Source, error) { return &count{to: 3}, nil }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.Poll(2)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Values(); !reflect.DeepEqual(got, []string{`{"n":0}`, `{"n":1}`}) {
		t.Errorf("values %q", got)
	}
	if got := p.Keys(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("keys %q", got)
	}
	ev := p.Batch.EventAt(1)
	if h, _ := ev.Header("h"); string(h) != "x" || ev.TimestampMs() != 1<<62 {
		t.Errorf("header %q, timestamp %d", h, ev.TimestampMs())
	}
	if string(p.Position) != "2" || p.CaughtUp || len(p.Malformed) != 1 || p.Malformed[0].Reason != "line 7: not JSON" {
		t.Errorf("%+v", p)
	}
	last, _ := h.Poll(10)
	if !last.CaughtUp || !last.Done {
		t.Errorf("%+v", last)
	}
}

type liar struct{}

func (liar) Poll(max int, out *Poll) error {
	out.Value([]byte(`{}`))
	out.Value([]byte(`{}`))
	return nil
}

func TestMoreEventsThanAskedForIsAnInvalidOutput(t *testing.T) {
	h, _ := NewSourceHarness(func(*sluice.Params, []byte) (Source, error) { return liar{}, nil }, nil, nil)
	if _, err := h.Poll(1); err == nil || err.Error() != "invalid output: poll returned 2 events but was asked for at most 1" {
		t.Errorf("err = %v", err)
	}
}

func TestMalformedTablesAreRefusedNamingTheRecord(t *testing.T) {
	good := &sluice.Batch{Data: []byte("kv")}
	good.Events = []sluice.RawEvent{{Key: sluice.Span{0, 1}, HasKey: true, Value: sluice.Span{1, 1}, HasValue: true}}
	data, events, headers := EncodeBatch(good)
	if _, err := DecodeBatch(data, events, headers, nil); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(e, h []byte) ([]byte, []byte){
		"event table of 47 bytes is not a whole number of 48-byte records": func(e, h []byte) ([]byte, []byte) { return e[:47], h },
		"header table of 3 bytes":    func(e, h []byte) ([]byte, []byte) { return e, []byte{1, 2, 3} },
		"event 0: unknown flags 0x4": func(e, h []byte) ([]byte, []byte) { e = clone(e); e[40] = 4; return e, h },
		"event 0: a span outside the 2 data bytes": func(e, h []byte) ([]byte, []byte) {
			e = clone(e)
			le.PutUint32(e[12:], 0xffffffff)
			return e, h
		},
		"event 0: headers 0..1 outside the 0-record header table": func(e, h []byte) ([]byte, []byte) {
			e = clone(e)
			le.PutUint32(e[20:], 1)
			return e, h
		},
	}
	for want, mutate := range cases {
		e, h := mutate(events, headers)
		_, err := DecodeBatch(data, e, h, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
	// A sink never sees one: the write fails as fatal, naming it.
	_, ce, crash := WriteTables(nil, data, events[:47], headers, nil)
	if crash != nil || ce == nil || ce.Retry || !strings.HasPrefix(ce.Message, "the host sent a malformed batch: event table of 47 bytes") {
		t.Errorf("ce %+v, crash %v", ce, crash)
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func TestErrorsMapLikeTheOtherSDKs(t *testing.T) {
	for _, c := range []struct {
		err   error
		retry bool
		msg   string
	}{
		{sluice.Retry("later"), true, "later"},
		{sluice.Fatal("never"), false, "never"},
		{&HTTPError{Kind: KindTimeout, Message: "slow"}, true, "timeout: slow"},
		{&HTTPError{Kind: KindFailed, Message: "dns"}, true, "failed: dns"},
		{&HTTPError{Kind: KindDenied, Message: "x:1"}, false, "denied: x:1"},
		{&HTTPError{Kind: KindTooLarge, Message: "big"}, false, "too-large: big"},
	} {
		ce := Outcome(c.err)
		if ce == nil || ce.Retry != c.retry || ce.Message != c.msg {
			t.Errorf("%v -> %+v", c.err, ce)
		}
	}
	if Outcome(json.Unmarshal([]byte("{"), new(any))) != nil {
		t.Error("a plain error is a crash, not a call error")
	}
}

func TestAFixedClockIsReadAndAdvancedAndTheMachinesComesBack(t *testing.T) {
	c := WithClock(1_700_000_000_000)
	start := MonotonicNs()
	c.Advance(1500)
	if NowMs() != 1_700_000_001_500 || MonotonicNs()-start != 1_500_000_000 {
		t.Errorf("now %d, elapsed %d", NowMs(), MonotonicNs()-start)
	}
	c.Restore()
	if d := NowMs() - 1_700_000_001_500; d < 0 {
		t.Errorf("the machine's clock is not back: %d", NowMs())
	}
}

func TestWithHTTPRefusesHostsOutsideTheGrantAsTheHostDoes(t *testing.T) {
	defer WithHTTP(func(Request) (*Response, error) { return &Response{Status: 200}, nil }, "api.test:443")()
	if r, err := Get("https://API.test/x"); err != nil || r.Status != 200 {
		t.Errorf("%v %v", r, err)
	}
	_, err := Get("http://api.test/x")
	want := "denied: api.test:80 is not in this connector's grant (grants.http: [api.test:443]); add it to the pipeline's `grants.http` if the connector should reach it"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v", err)
	}
}
