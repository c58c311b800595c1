// {{name}}: a Sluice transform. Edit `process`; run `npm test`, then
// `sluice plugin build .` and `sluice plugin test <wasm> --input events.jsonl`.

import { Reject } from "@sluice/plugin";

export const transform = {
  // Once per stage: check the parameters (throwing refuses the deployment)
  // and return the state `process` gets.
  create(params) {
    params.only(["field"]);
    return { field: params.get("field") ?? "seen" };
  },

  // Once per input event: emit any number of events to `out`; each carries
  // the input's key, headers and timestamp. Throw `Reject` to dead-letter it.
  process(event, out, state) {
    if (event.isTombstone) return out.forward(); // deletes must survive a transform
    const value = event.json(); // invalid JSON is dead-lettered with the reason
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Reject("expected a JSON object");
    }
    value[state.field] = true;
    out.emitJson(value);
  },
};
