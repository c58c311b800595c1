// A Go test source connector that misbehaves on request, to prove the host
// contains a Go connector as any other. It counts {"n": i} for i in
// 0..count, at most 10 per poll; its position is the next n as text.
//
//   - mode: too_many: every poll returns one event more than asked for.
//   - mode: panic_once_at, at: N: an instance opened afresh panics at N; one
//     reopened at a position goes on.
//   - mode: error_at, at: N: Poll returns a plain error (a crash) at N, once.
//   - mode: clock: each event carries now_ms and mono_ns from the clock.
//   - mode: big_position: the position is 2 MiB (over the host's bound).
package main

import (
	"errors"
	"strconv"
	"strings"

	sluice "sluice.dev/sdk"
	"sluice.dev/sdk/connector"
	"sluice.dev/sdk/source"
)

type counter struct {
	next, count, at int
	mode            string
	fresh           bool
}

func num(p *sluice.Params, name string, def int) (int, error) {
	v, ok := p.Get(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errors.New("`" + name + "` is not a number: " + v)
	}
	return n, nil
}

func open(p *sluice.Params, position []byte) (connector.Source, error) {
	if err := p.Only("count", "mode", "at"); err != nil {
		return nil, err
	}
	c := &counter{fresh: position == nil}
	var err error
	if c.count, err = num(p, "count", 100); err != nil {
		return nil, err
	}
	if c.at, err = num(p, "at", -1); err != nil {
		return nil, err
	}
	c.mode, _ = p.Get("mode")
	if position != nil {
		if c.next, err = strconv.Atoi(string(position)); err != nil {
			return nil, errors.New("damaged position")
		}
	}
	return c, nil
}

func (c *counter) Poll(max int, out *connector.Poll) error {
	if c.mode == "too_many" {
		for i := 0; i <= max; i++ {
			out.Value([]byte(`{"n":0}`))
		}
		return nil
	}
	for out.Len() < min(max, 10) && c.next < c.count {
		if c.next == c.at && c.mode == "panic_once_at" && c.fresh {
			panic("boom on purpose at n = " + strconv.Itoa(c.next))
		}
		if c.next == c.at && c.mode == "error_at" && c.fresh {
			return errors.New("a plain error at n = " + strconv.Itoa(c.next))
		}
		ev := map[string]any{"n": c.next}
		if c.mode == "clock" {
			ev["now_ms"] = connector.NowMs()
			ev["mono_ns"] = connector.MonotonicNs()
		}
		if err := out.JSON(ev); err != nil {
			return err
		}
		c.next++
	}
	if c.mode == "big_position" {
		out.SetPosition(strings.Repeat("9", 2<<20))
	} else {
		out.SetPosition(strconv.Itoa(c.next))
	}
	if c.next >= c.count {
		out.CaughtUp = true
		out.Done = true
	}
	return nil
}

func init() {
	source.Export(sluice.Info{Name: "go-conn-misbehave", Version: "0.1.0"}, open)
}

func main() {}
