// {{name}}: a Sluice transform. Edit `process`; run `npm test`, then
// `sluice plugin build .` and `sluice plugin test <wasm> --input events.jsonl`.

import { Reject, type Emitter, type Event, type Params, type TransformObject } from "@sluice/plugin";

interface State {
  field: string;
}

export const transform: TransformObject<State> = {
  // Once per stage: check the parameters (throwing refuses the deployment)
  // and return the state `process` gets.
  create(params: Params): State {
    params.only(["field"]);
    return { field: params.get("field") ?? "seen" };
  },

  // Once per input event: emit any number of events to `out`; each carries
  // the input's key, headers and timestamp. Throw `Reject` to dead-letter it.
  process(event: Event, out: Emitter, state: State): void {
    if (event.isTombstone) return out.forward(); // deletes must survive a transform
    const value: unknown = event.json(); // invalid JSON is dead-lettered with the reason
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Reject("expected a JSON object");
    }
    out.emitJson({ ...value, [state.field]: true });
  },
};
