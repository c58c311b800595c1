import { test } from "node:test";
import assert from "node:assert/strict";
import { run } from "@sluice/plugin/testing";
import * as plugin from "../src/index.js";

test("marks objects and rejects the rest", () => {
  const out = run(plugin, {}, ['{"a":1}', "[1]", null]);
  assert.deepEqual(out.values, ['{"a":1,"seen":true}', null]);
  assert.deepEqual(out.rejected, [[1, "expected a JSON object"]]);
});

test("takes the field name as a parameter", () => {
  const out = run(plugin, { field: "ok" }, ['{"a":1}']);
  assert.deepEqual(out.values, ['{"a":1,"ok":true}']);
  assert.throws(() => run(plugin, { nope: "1" }, []), /unknown parameter `nope`/);
});
