package sluice

import (
	"errors"
	"reflect"
	"testing"
)

func TestAppendJSONIsCanonical(t *testing.T) {
	v, err := ParseJSON([]byte(`{"b":[1,2.50,"x"],"a":{"é":null,"z":true},"s":"<&>\"\\\n\u0001\u2028","n":12345678901234567890}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := MarshalJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"a\":{\"z\":true,\"é\":null},\"b\":[1,2.50,\"x\"],\"n\":12345678901234567890,\"s\":\"<&>\\\"\\\\\\n\\u0001\u2028\"}"
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if _, err := MarshalJSON(map[string]any{"f": func() {}}); err == nil {
		t.Error("a func encoded")
	}
}

func TestParseJSONRefusesTrailingData(t *testing.T) {
	if _, err := ParseJSON([]byte(`{} {}`)); err == nil {
		t.Error("trailing data accepted")
	}
}

type splitter struct{}

func (splitter) Process(ev *Event, out *Emitter) error {
	v, err := ev.JSON()
	if err != nil {
		return err
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			out.JSON(e)
		}
		if len(x) == 0 {
			return errors.New("empty")
		}
	case string:
		return Retry("later: %s", x)
	default:
		out.Forward()
	}
	return nil
}

func TestRunTransformCopiesMetadataAndWithdrawsRejected(t *testing.T) {
	in := &Batch{Streams: []string{"s"}}
	k := in.push([]byte("key"))
	v := in.push([]byte(`[1,2]`))
	hn, hv := in.push([]byte("h")), in.push([]byte("v"))
	in.Headers = []Header{{Name: hn, Value: hv}}
	in.Events = []RawEvent{
		{Key: k, HasKey: true, Value: v, HasValue: true, Headers: Span{0, 1}, TimestampMs: 7},
		{Value: in.push([]byte(`[]`)), HasValue: true},
		{}, // a tombstone
	}
	out, callErr := RunTransform(splitter{}, in)
	if callErr != nil {
		t.Fatal(callErr)
	}
	res := &TestOutput{Output: out}
	if got, want := res.Values(), []string{"1", "2", "<tombstone>"}; !reflect.DeepEqual(got, want) {
		t.Errorf("values = %q, want %q", got, want)
	}
	if got, want := res.Parents(), []uint32{0, 0, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("parents = %v, want %v", got, want)
	}
	first := out.Events.Events[0]
	if string(out.Events.slice(first.Key)) != "key" || first.TimestampMs != 7 || first.Headers.Len != 1 {
		t.Errorf("metadata not copied: %+v", first)
	}
	if got, want := res.Rejected(), []Rejection{{Index: 1, Reason: "empty"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("rejected = %v, want %v", got, want)
	}
	in.Events = append(in.Events, RawEvent{Value: in.push([]byte(`"x"`)), HasValue: true})
	if _, callErr := RunTransform(splitter{}, in); callErr == nil || !callErr.Retry || callErr.Message != "later: x" {
		t.Errorf("call error = %v", callErr)
	}
}

func TestParams(t *testing.T) {
	p := NewParams(Param{"a", "1"}, Param{"b", "true"})
	if err := p.Only("a"); err == nil || err.Error() != "unknown parameter `b`; allowed: a" {
		t.Errorf("only: %v", err)
	}
	if b, err := p.BoolOr("b", false); err != nil || !b {
		t.Errorf("bool: %v %v", b, err)
	}
	if _, err := p.Required("c"); err == nil || err.Error() != "parameter `c` is required" {
		t.Errorf("required: %v", err)
	}
}
