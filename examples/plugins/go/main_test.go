package main

import (
	"reflect"
	"testing"

	sluice "sluice.dev/sdk"
)

func TestNormalizesMasksDropsAUDAndFansOutItems(t *testing.T) {
	out, err := sluice.Run(New, nil, []string{
		`{"price":50.5,"currency":"usd","email":"bill@example.com"}`,
		`{"price":1,"currency":"aud"}`,
		`{"price":1,"currency":"jpy","items":["a","b"]}`,
		`[1]`,
		`{"price":0.125,"currency":"Usd","email":"a@b@c.example","note":"<&>"}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"currency":"USD","email":"b***@example.com","price_cents":5050}`,
		`{"currency":"JPY","item":"a","item_index":0,"price_cents":1}`,
		`{"currency":"JPY","item":"b","item_index":1,"price_cents":1}`,
		`{"currency":"USD","email":"a***@c.example","note":"<&>","price_cents":13}`,
	}
	if got := out.Values(); !reflect.DeepEqual(got, want) {
		t.Errorf("values:\n got %q\nwant %q", got, want)
	}
	if got, want := out.Parents(), []uint32{0, 2, 2, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("parents = %v, want %v", got, want)
	}
	if got, want := out.Rejected(), []sluice.Rejection{{Index: 3, Reason: "expected a JSON object"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("rejected = %v, want %v", got, want)
	}
}

func TestRefusesParameters(t *testing.T) {
	if _, err := sluice.Run(New, map[string]string{"x": "1"}, nil); err == nil {
		t.Error("a parameter was accepted")
	}
}
