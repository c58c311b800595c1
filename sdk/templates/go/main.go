// {{name}}: a Sluice transform. Edit Process; run `go test`, then
// `sluice plugin build .` and `sluice plugin test <wasm> --input events.jsonl`.
package main

import sluice "sluice.dev/sdk"

// plugin is the transform's state, built once from the stage's parameters.
type plugin struct {
	field string
}

// New validates the stage's parameters and builds the transform.
func New(params *sluice.Params) (sluice.Transform, error) {
	if err := params.Only("field"); err != nil {
		return nil, err
	}
	field, ok := params.Get("field")
	if !ok {
		field = "seen"
	}
	return &plugin{field: field}, nil
}

// Process is called once per input event and emits 0..n events.
func (p *plugin) Process(ev *sluice.Event, out *sluice.Emitter) error {
	if ev.IsTombstone() {
		out.Forward() // deletes must survive a transform
		return nil
	}
	obj, err := ev.JSONObject() // anything but an object is dead-lettered
	if err != nil {
		return err
	}
	obj[p.field] = true
	out.JSON(obj) // copies the input's key, headers and timestamp
	return nil
}

func init() {
	sluice.Export(sluice.Info{Name: "{{name}}", Version: "0.1.0", Description: "A Sluice transform."}, New)
}

// main is never called: the plugin is a library the host calls into.
func main() {}
