package main

import (
	"reflect"
	"strings"
	"testing"

	sluice "sluice.dev/sdk"
	"sluice.dev/sdk/connector"
)

var params = map[string]string{"url": "http://hook.test/in"}

func TestPostsTheBatchAsAJSONArray(t *testing.T) {
	var got []string
	defer connector.WithHTTP(func(req connector.Request) (*connector.Response, error) {
		got = append(got, req.Method+" "+string(req.Body))
		return &connector.Response{Status: 200}, nil
	}, "hook.test:80")()
	k, err := connector.NewSinkHarness(Open, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	rejected, err := k.Write(`{"a":1}`, `{"b":2}`)
	if err != nil || len(rejected) != 0 {
		t.Fatalf("rejected %v, err %v", rejected, err)
	}
	if want := []string{`POST [{"a":1},{"b":2}]`}; !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}
}

func TestA4xxDeadLettersAnd5xxRetries(t *testing.T) {
	status := 422
	defer connector.WithHTTP(func(connector.Request) (*connector.Response, error) {
		return &connector.Response{Status: status, Body: []byte("no")}, nil
	})()
	k, _ := connector.NewSinkHarness(Open, params, nil)
	rejected, err := k.Write(`{"a":1}`)
	if want := []sluice.Rejection{{Index: 0, Reason: "HTTP 422: no"}}; err != nil || !reflect.DeepEqual(rejected, want) {
		t.Errorf("rejected %v, err %v", rejected, err)
	}
	status = 503
	_, err = k.Write(`{"a":1}`)
	if ce, ok := err.(*sluice.CallError); !ok || !ce.Retry || ce.Message != "HTTP 503" {
		t.Errorf("err = %#v", err)
	}
}

func TestAHostOutsideTheGrantStopsThePipeline(t *testing.T) {
	defer connector.WithHTTP(func(connector.Request) (*connector.Response, error) {
		return &connector.Response{Status: 200}, nil
	}, "other.test:80")()
	k, _ := connector.NewSinkHarness(Open, params, nil)
	_, err := k.Write(`{"a":1}`)
	ce, ok := err.(*sluice.CallError)
	if !ok || ce.Retry || !strings.Contains(ce.Message, "hook.test:80 is not in this connector's grant") {
		t.Errorf("err = %v", err)
	}
}
