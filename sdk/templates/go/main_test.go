package main

import (
	"reflect"
	"testing"

	sluice "sluice.dev/sdk"
)

func TestMarksObjectsAndRejectsTheRest(t *testing.T) {
	out, err := sluice.Run(New, nil, []string{`{"a":1}`, `[1]`})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.Values(), []string{`{"a":1,"seen":true}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("values = %q, want %q", got, want)
	}
	if got, want := out.Rejected(), []sluice.Rejection{{Index: 1, Reason: "expected a JSON object"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("rejected = %v, want %v", got, want)
	}
}

func TestRefusesUnknownParameters(t *testing.T) {
	if _, err := sluice.Run(New, map[string]string{"fild": "x"}, nil); err == nil {
		t.Error("an unknown parameter was accepted")
	}
}
