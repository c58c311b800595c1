package sluice

// TestOutput is what Run returns: the output batch and the rejections.
type TestOutput struct {
	Output *Output
}

// Run builds the registered-style transform from factory with params and runs
// it natively over one batch whose events have the given values (no key, no
// headers, timestamp 0), exactly as the Wasm glue would. Use it in `go test`.
func Run(factory Factory, params map[string]string, values []string) (*TestOutput, error) {
	var ps []Param
	for k, v := range params {
		ps = append(ps, Param{Name: k, Value: v})
	}
	t, err := factory(NewParams(ps...))
	if err != nil {
		return nil, err
	}
	in := &Batch{Streams: []string{"input"}}
	for i, v := range values {
		s := in.push([]byte(v))
		in.Events = append(in.Events, RawEvent{Value: s, HasValue: true, Parent: uint32(i)})
	}
	out, callErr := RunTransform(t, in)
	if callErr != nil {
		return nil, callErr
	}
	return &TestOutput{Output: out}, nil
}

// Values returns the output values as strings ("<tombstone>" for tombstones).
func (t *TestOutput) Values() []string {
	vals := make([]string, 0, len(t.Output.Events.Events))
	for _, e := range t.Output.Events.Events {
		if !e.HasValue {
			vals = append(vals, "<tombstone>")
			continue
		}
		vals = append(vals, string(t.Output.Events.slice(e.Value)))
	}
	return vals
}

// Parents returns each output event's parent index.
func (t *TestOutput) Parents() []uint32 {
	ps := make([]uint32, 0, len(t.Output.Events.Events))
	for _, e := range t.Output.Events.Events {
		ps = append(ps, e.Parent)
	}
	return ps
}

// Rejected returns the rejections.
func (t *TestOutput) Rejected() []Rejection {
	return t.Output.Rejected
}
