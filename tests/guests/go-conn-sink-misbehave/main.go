// A Go test sink connector that writes each event's value as a line to
// nowhere but its own count, and misbehaves on request:
//
//   - mode: bad_reject: refuses index 99 of every batch (out of range).
//   - mode: reject_odd: refuses every event whose "n" is odd, with a reason.
//   - mode: retry_first: the first write of each instance asks for a retry.
//
// Flush returns the number of events written so far as the position.
package main

import (
	"strconv"

	sluice "sluice.dev/sdk"
	"sluice.dev/sdk/connector"
	"sluice.dev/sdk/sink"
)

type counter struct {
	mode    string
	written int
	writes  int
}

func open(p *sluice.Params, position []byte) (connector.Sink, error) {
	if err := p.Only("mode"); err != nil {
		return nil, err
	}
	mode, _ := p.Get("mode")
	c := &counter{mode: mode}
	if position != nil {
		n, err := strconv.Atoi(string(position))
		if err != nil {
			return nil, err
		}
		c.written = n
	}
	return c, nil
}

func (c *counter) Write(events []*sluice.Event, rejected *connector.Rejections) error {
	c.writes++
	switch c.mode {
	case "bad_reject":
		rejected.RejectIndex(99, "no such event")
		return nil
	case "retry_first":
		if c.writes == 1 {
			return sluice.Retry("not yet")
		}
	case "reject_odd":
		for _, ev := range events {
			v, err := ev.View()
			if err != nil {
				return err
			}
			n, _ := v.Get("n")
			if i, ok := n.Int64(); ok && i%2 == 1 {
				rejected.Reject(ev, "odd n "+strconv.FormatInt(i, 10))
				continue
			}
			c.written++
		}
		return nil
	}
	c.written += len(events)
	return nil
}

func (c *counter) Flush() ([]byte, error) { return []byte(strconv.Itoa(c.written)), nil }

func init() {
	sink.Export(sluice.Info{Name: "go-conn-sink-misbehave", Version: "0.1.0"}, open)
}

func main() {}
