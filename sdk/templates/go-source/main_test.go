package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"sluice.dev/sdk/connector"
)

var params = map[string]string{"url": "http://api.test/items"}

// api serves three items two per page.
func api(req connector.Request) (*connector.Response, error) {
	q := req.URL[strings.Index(req.URL, "?")+1:]
	cursor, _ := strconv.Atoi(strings.TrimPrefix(strings.Split(q, "&")[0], "cursor="))
	var items []any
	for i := cursor; i < min(cursor+2, 3); i++ {
		items = append(items, map[string]any{"id": i})
	}
	body, _ := json.Marshal(map[string]any{"items": items, "next": fmt.Sprint(cursor + len(items))})
	return &connector.Response{Status: 200, Body: body}, nil
}

func TestPagesAndResumesFromThePosition(t *testing.T) {
	defer connector.WithHTTP(api, "api.test:80")()
	src, err := connector.NewSourceHarness(Open, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := src.Poll(100)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := first.Values(), []string{`{"id":0}`, `{"id":1}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("values = %q, want %q", got, want)
	}
	if string(first.Position) != "2" {
		t.Errorf("position = %q", first.Position)
	}
	restarted, err := connector.NewSourceHarness(Open, params, first.Position)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := restarted.Poll(100)
	if got := second.Values(); !reflect.DeepEqual(got, []string{`{"id":2}`}) {
		t.Errorf("after a restart: %q", got)
	}
	last, _ := restarted.Poll(100)
	if !last.CaughtUp || last.Done {
		t.Errorf("caught up %v, done %v", last.CaughtUp, last.Done)
	}
}

func TestABoundedReadEndsWhenCaughtUp(t *testing.T) {
	defer connector.WithHTTP(api)()
	src, err := connector.NewSourceHarness(Open, map[string]string{"url": params["url"], "stop_when_caught_up": "true"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	polls, err := src.PollUntilDone(100, 10)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, p := range polls {
		all = append(all, p.Values()...)
	}
	if want := []string{`{"id":0}`, `{"id":1}`, `{"id":2}`}; !reflect.DeepEqual(all, want) {
		t.Errorf("read %q, want %q", all, want)
	}
}

func TestAHostOutsideTheGrantStopsThePipeline(t *testing.T) {
	defer connector.WithHTTP(api, "other.test:80")()
	src, _ := connector.NewSourceHarness(Open, params, nil)
	_, err := src.Poll(100)
	if err == nil || !strings.Contains(err.Error(), "api.test:80 is not in this connector's grant") {
		t.Fatalf("err = %v", err)
	}
}

func TestRefusesUnknownParameters(t *testing.T) {
	if _, err := connector.NewSourceHarness(Open, map[string]string{"url": "x", "urll": "y"}, nil); err == nil {
		t.Error("an unknown parameter was accepted")
	}
}
