// Runs against the tsc output in dist/ (`npm test` compiles first).
import { test } from "node:test";
import assert from "node:assert/strict";
import { run } from "@sluice/plugin/testing";
import * as plugin from "../dist/index.js";

test("normalizes, masks, drops aud and fans out items", () => {
  const out = run(plugin, {}, [
    '{"price":50.5,"currency":"usd","email":"bill@example.com"}',
    '{"price":1,"currency":"aud"}',
    '{"price":1,"currency":"jpy","items":["a","b"]}',
    "[1]",
    null,
  ]);
  assert.deepEqual(out.values, [
    '{"currency":"USD","email":"b***@example.com","price_cents":5050}',
    '{"currency":"JPY","item":"a","item_index":0,"price_cents":1}',
    '{"currency":"JPY","item":"b","item_index":1,"price_cents":1}',
    null,
  ]);
  assert.deepEqual(out.rejected, [[3, "expected a JSON object"]]);
  assert.deepEqual(out.events.map((e) => e.parent), [0, 2, 2, 4]);
});

test("masks by code point and after the last @", () => {
  assert.equal(plugin.mask("ünïcode@exämple.com"), "ü***@exämple.com");
  assert.equal(plugin.mask("😀x@a@b"), "😀***@b");
  assert.equal(plugin.mask("no-at"), "***");
  assert.equal(plugin.mask(""), "***");
});

test("refuses parameters", () => {
  assert.throws(() => run(plugin, { x: "1" }, []), /unknown parameter `x`/);
});

test("64-bit integers come out with the digits they went in with", () => {
  const out = run(plugin, {}, [
    '{"id":9007199254740993,"price":1,"currency":"usd","items":[18446744073709551615],"min":-9223372036854775808}',
  ]);
  assert.deepEqual(out.values, [
    '{"currency":"USD","id":9007199254740993,"item":18446744073709551615,"item_index":0,"min":-9223372036854775808,"price_cents":100}',
  ]);
});
