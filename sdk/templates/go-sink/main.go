// {{name}}: a Sluice sink connector. It POSTs each batch to `url` as a JSON
// array; replace Write with your system's protocol. A 429 or 5xx asks the
// host to write the batch again after a backoff; another 4xx dead-letters
// the batch's events with the response.
package main

import (
	"bytes"
	"fmt"

	sluice "sluice.dev/sdk"
	"sluice.dev/sdk/connector"
	"sluice.dev/sdk/sink"
)

// Sink posts batches to url.
type Sink struct {
	url string
}

// Open checks params (any other parameter fails the deployment).
func Open(params *sluice.Params, position []byte) (connector.Sink, error) {
	if err := params.Only("url"); err != nil {
		return nil, err
	}
	u, err := params.Required("url")
	if err != nil {
		return nil, err
	}
	return &Sink{url: u}, nil
}

// Write posts the batch.
func (s *Sink) Write(events []*sluice.Event, rejected *connector.Rejections) error {
	var body bytes.Buffer
	body.WriteByte('[')
	for i, ev := range events {
		if i > 0 {
			body.WriteByte(',')
		}
		if ev.IsTombstone() {
			body.WriteString("null")
		} else {
			body.Write(ev.Value())
		}
	}
	body.WriteByte(']')
	// Only hosts the pipeline grants (`grants: {http: ["host:port"]}`).
	resp, err := connector.Post(s.url, body.Bytes(), [2]string{"Content-Type", "application/json"})
	if err != nil {
		return err // a timeout is retried, a denied host stops the pipeline
	}
	if resp.Status == 429 || resp.Status >= 500 {
		return sluice.Retry("HTTP %d", resp.Status) // the batch is written again later
	}
	if resp.Status >= 400 {
		for _, ev := range events {
			rejected.Reject(ev, fmt.Sprintf("HTTP %d: %s", resp.Status, resp.Text()))
		}
	}
	return nil
}

// Flush: the writes above are synchronous, nothing is buffered.
func (s *Sink) Flush() ([]byte, error) { return nil, nil }

func init() {
	sink.Export(sluice.Info{Name: "{{name}}", Version: "0.1.0", Description: "posts batches as JSON arrays"}, Open)
}

func main() {}
