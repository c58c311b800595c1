import { test } from "node:test";
import assert from "node:assert/strict";
import { canonicalJson, exportTransformer, Fatal, Reject, Retry } from "../index.js";
import { batch, run } from "../testing.js";

test("canonical JSON matches serde_json's compact output with sorted keys", () => {
  assert.equal(canonicalJson({ b: 1, a: [true, null, "x"], c: { z: 1, y: 2.5 } }), '{"a":[true,null,"x"],"b":1,"c":{"y":2.5,"z":1}}');
  assert.equal(canonicalJson("tab\t \"q\" \\ \u0001 é"), '"tab\\t \\"q\\" \\\\ \\u0001 é"');
  assert.equal(canonicalJson(1e20), "100000000000000000000");
  assert.equal(canonicalJson(9223372036854775807n), "9223372036854775807");
  // UTF-8 byte order, not UTF-16 order: U+FF5E sorts before U+1F600.
  assert.equal(canonicalJson({ "😀": 1, "～": 2, a: 3 }), '{"a":3,"～":2,"😀":1}');
});

const copy = {
  transform: {
    process(event, out) {
      const v = event.json();
      if (v.reject) {
        out.emitValue("withdrawn");
        throw new Reject(v.reject);
      }
      if (v.retry) throw new Retry("later");
      if (v.fatal) throw new Fatal("broken");
      if (v.bug) null.x;
      out.emitJson({ n: v.n * 2 });
      out.emit({ value: "bare" });
    },
  },
};

test("outputs copy key, headers and timestamp and name their parent; rejects withdraw", () => {
  const out = run(copy, {}, [
    { key: "k1", value: '{"n":1}', headers: [["h", "v"]], timestampMs: 1700000000123 },
    '{"reject":"bad one"}',
    '{"bug":1}',
    "not json",
  ]);
  assert.deepEqual(out.events, [
    { key: "k1", value: '{"n":2}', headers: [["h", "v"]], timestampMs: 1700000000123, parent: 0 },
    { key: null, value: "bare", headers: [], timestampMs: 0, parent: 0 },
  ]);
  assert.equal(out.rejected[0][1], "bad one");
  assert.match(out.rejected[1][1], /^plugin error: /);
  assert.match(out.rejected[2][1], /^value is not valid JSON: /);
  assert.deepEqual(out.rejected.map((r) => r[0]), [1, 2, 3]);
});

test("retry and fatal fail the whole call as the contract's call-error", () => {
  const t = exportTransformer(copy, { name: "x", version: "1" });
  const inst = t.Transform.create([]);
  assert.throws(() => inst.process(batch(['{"retry":1}'])), (e) => e.tag === "retry" && e.val === "later");
  assert.throws(() => inst.process(batch(['{"fatal":1}'])), (e) => e.tag === "fatal" && e.val === "broken");
  assert.deepEqual(t.describe(), { name: "x", version: "1", description: "" });
});

test("parameters: unknown ones are refused with a message; a class works too", () => {
  const t = exportTransformer(copy, { name: "x", version: "1" });
  assert.throws(() => t.Transform.create([{ name: "p", value: "1" }]), (e) => e === "unknown parameter `p`; allowed: ");
  class Transform {
    constructor(params) {
      params.only(["tag"]);
      this.tag = params.required("tag");
    }
    process(event, out) {
      out.emitJson({ tag: this.tag });
    }
  }
  assert.deepEqual(run({ Transform }, { tag: "t" }, ["{}"]).values, ['{"tag":"t"}']);
  assert.throws(() => run({ Transform }, {}, ["{}"]), /parameter `tag` is required/);
});

test("tombstones forward as tombstones", () => {
  const fwd = { transform: { process: (e, out) => out.forward() } };
  const out = run(fwd, {}, [{ key: "k", value: null }]);
  assert.deepEqual(out.events, [{ key: "k", value: null, headers: [], timestampMs: 0, parent: 0 }]);
});
