"""{{name}}: a Sluice transform. Edit `process`; run `python -m unittest`, then
`sluice plugin build .` and `sluice plugin test <wasm> --input events.jsonl`."""

import sluice


class Plugin(sluice.Transform):
    """Marks every JSON object with a field (parameter `field`, default `seen`)."""

    def __init__(self, params: sluice.Params) -> None:
        params.only("field")  # any other parameter fails the deployment
        self.field = params.get("field", "seen")

    def process(self, event: sluice.Event, out: sluice.Emitter) -> None:
        if event.is_tombstone:
            out.forward()  # deletes must survive a transform
            return
        value = event.json()  # invalid JSON is dead-lettered with the reason
        if not isinstance(value, dict):
            raise sluice.Reject("expected a JSON object")
        value[self.field] = True
        out.emit_json(value)
