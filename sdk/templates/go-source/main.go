// {{name}}: a Sluice source connector. It pages through a JSON API
// (`url?cursor=C&limit=N` answering `{"items": [...], "next": "C2"}`), one
// page per poll; replace Poll with your system's protocol. The position is
// the cursor, so a restart resumes after the last checkpoint. With
// `stop_when_caught_up: true` the read ends at the first empty page.
package main

import (
	"fmt"
	"net/url"

	sluice "sluice.dev/sdk"
	"sluice.dev/sdk/connector"
	"sluice.dev/sdk/source"
)

// Source reads the API from its cursor.
type Source struct {
	url      string
	stop     bool
	cursor   string
	caughtUp bool
}

// Open checks params (any other parameter fails the deployment) and resumes
// at position, the cursor of the last checkpoint (nil: the beginning).
func Open(params *sluice.Params, position []byte) (connector.Source, error) {
	if err := params.Only("url", "stop_when_caught_up"); err != nil {
		return nil, err
	}
	u, err := params.Required("url")
	if err != nil {
		return nil, err
	}
	stop, err := params.BoolOr("stop_when_caught_up", false)
	if err != nil {
		return nil, err
	}
	return &Source{url: u, stop: stop, cursor: string(position)}, nil
}

type page struct {
	Items []any `json:"items"`
	Next  any   `json:"next"`
}

// Poll reads one page.
func (s *Source) Poll(max int, out *connector.Poll) error {
	// Only hosts the pipeline grants (`grants: {http: ["host:port"]}`); another
	// is refused naming the host and the grant, which stops the pipeline.
	resp, err := connector.Get(fmt.Sprintf("%s?cursor=%s&limit=%d", s.url, url.QueryEscape(s.cursor), max))
	if err != nil {
		return err // a timeout is retried, a denied host stops the pipeline
	}
	if resp.Status != 200 {
		return sluice.Retry("HTTP %d", resp.Status) // polled again after a backoff
	}
	var p page
	if err := resp.JSON(&p); err != nil {
		return sluice.Retry("the page is not JSON: %v", err)
	}
	for _, item := range p.Items {
		if _, ok := item.(map[string]any); !ok {
			raw, _ := sluice.AppendJSON(nil, item)
			out.Malformed(raw, "expected a JSON object") // a dead letter
			continue
		}
		if err := out.JSON(item); err != nil {
			return err
		}
	}
	if len(p.Items) == 0 {
		s.caughtUp = true // the backlog is delivered
		out.Done = s.stop
	}
	out.CaughtUp = s.caughtUp
	if p.Next != nil {
		s.cursor = fmt.Sprint(p.Next)
	}
	out.SetPosition(s.cursor)
	return nil
}

func init() {
	source.Export(sluice.Info{Name: "{{name}}", Version: "0.1.0", Description: "pages through a JSON API"}, Open)
}

func main() {}
