import { test } from "node:test";
import assert from "node:assert/strict";
import { canonicalJson, JsonError, JsonView, MAX_DEPTH, ObjectWriter, parseJson } from "../index.js";
import { run } from "../testing.js";

test("the tree API keeps 64-bit integers exact through a round trip", () => {
  const input = '{"id":9007199254740993,"max":18446744073709551615,"min":-9223372036854775808,"small":42,"f":0.5}';
  const v = parseJson(input);
  assert.equal(v.id, 9007199254740993n);
  assert.equal(v.max, 18446744073709551615n);
  assert.equal(typeof v.small, "number");
  assert.equal(canonicalJson(v), '{"f":0.5,"id":9007199254740993,"max":18446744073709551615,"min":-9223372036854775808,"small":42}');
  // 2^53 - 1 is still a safe number; 2^53 + 1 is not.
  assert.equal(parseJson("9007199254740991"), 9007199254740991);
  assert.equal(parseJson("[9007199254740993]")[0], 9007199254740993n);
  // Digits inside strings take the exact path too and stay strings.
  assert.deepEqual(parseJson('{"s":"12345678901234567890","__proto__":1}'), JSON.parse('{"s":"12345678901234567890","__proto__":1}'));
});

test("the exact parser refuses what JSON.parse refuses and handles deep nesting", () => {
  for (const bad of ["[1,]", '{"a":1', "[12345678901234567,", "12345678901234567 x", '{"a" 12345678901234567}', "[01234567890123456]"]) {
    assert.throws(() => parseJson(bad), SyntaxError, bad);
  }
  const deep = "[".repeat(10000) + "12345678901234567" + "]".repeat(10000);
  let v = parseJson(deep);
  for (let i = 0; i < 10000; i++) v = v[0];
  assert.equal(v, 12345678901234567n);
});

test("an event's json() and emitJson() do not change an id", () => {
  const t = { transform: { process: (e, out) => out.emitJson(e.json()) } };
  const out = run(t, {}, ['{"id":9007199254740993,"n":[18446744073709551615]}']);
  assert.deepEqual(out.values, ['{"id":9007199254740993,"n":[18446744073709551615]}']);
});

test("a view reads fields by name and path, with raw text, last duplicate winning", () => {
  const v = JsonView.parse('{"a":1,"b":{"c":[10,{"d":"x\\u00e9"}],"c":{"e":true}},"a":9007199254740993, "p":1.50 }');
  assert.ok(v.isObject);
  assert.equal(v.length, 4);
  assert.equal(v.get("a").text, "9007199254740993");
  assert.equal(v.get("a").asBigInt(), 9007199254740993n);
  assert.equal(v.get("p").text, "1.50");
  assert.equal(v.get("p").asNumber(), 1.5);
  assert.equal(v.get("p").asBigInt(), undefined);
  assert.equal(v.path("b.c.e").asBool(), true); // the second "c" wins
  assert.equal(v.path("b.c.0"), undefined);
  assert.equal(v.get("missing"), undefined);
  const b = v.get("b");
  assert.equal(b.kind, "object");
  assert.deepEqual([...b.entries()].map(([k]) => k.text), ["c", "c"]);
  const arr = JsonView.parse('[10,{"d":"x\\u00e9"}]');
  assert.equal(arr.path("1.d").asString(), "xé");
  assert.equal(arr.path("1.d").text, '"x\\u00e9"');
  assert.equal(arr.path(["0"]).asNumber(), 10);
  assert.equal(arr.get("0"), undefined, "top-level get is for object fields");
  assert.deepEqual([...arr.root.items()].map((r) => r.kind), ["number", "object"]);
  assert.deepEqual(v.get("b").toJson(), { c: { e: true } });
  // Escaped keys compare by their unescaped text.
  const esc = JsonView.parse('{"caf\\u00e9":1,"caf\u00e9":2,"q\\"":3}');
  assert.equal(esc.get("café").text, "2");
  assert.equal(esc.get('q"').text, "3");
  assert.ok(esc.key(0).escaped && esc.key(0).is("café"));
});

test("a view refuses hostile and broken input with a reason, never a crash", () => {
  const cases = [
    ["", "EOF while parsing a value"],
    ['{"a":', "EOF while parsing a value"],
    ['{"a":1', "EOF while parsing an object"],
    ['{"a":"x', "EOF while parsing a string"],
    ["[1,2", "EOF while parsing a list"],
    ['{"a":1}x', "trailing characters"],
    ["{a:1}", "key must be a string"],
    ["[01]", "expected `,` or `]`"],
    ["[1.]", "invalid number"],
    ["-", "invalid number"],
    ['"\\x"', "invalid escape"],
    ['"\\ud800"', "lone leading surrogate in hex escape"],
    ['"\\udc00"', "lone trailing surrogate in hex escape"],
    ['"a\nb"', "control character in string"],
    ["tru", "expected a value"],
    ["[".repeat(MAX_DEPTH + 1) + "]".repeat(MAX_DEPTH + 1), "recursion limit exceeded"],
    ['{"a":' + "[".repeat(MAX_DEPTH) + "]".repeat(MAX_DEPTH) + "}", "recursion limit exceeded"],
  ];
  for (const [input, reason] of cases) {
    assert.throws(() => JsonView.parse(input), (e) => e instanceof JsonError && e.reason === reason, JSON.stringify(input));
  }
  assert.ok(JsonView.parse("[".repeat(MAX_DEPTH) + "]".repeat(MAX_DEPTH)).root.kind === "array");
  for (const bytes of [[0x22, 0xff, 0x22], [0x22, 0xc0, 0xaf, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xe2, 0x82, 0x22], [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22]]) {
    assert.throws(() => JsonView.parse(new Uint8Array(bytes)), (e) => e.reason === "invalid UTF-8", String(bytes));
  }
  // Huge numbers are valid JSON and keep their text.
  const huge = "1" + "0".repeat(400);
  assert.equal(JsonView.parse(`{"n":${huge}}`).get("n").text, huge);
  assert.equal(JsonView.parse(`{"n":${huge}}`).get("n").asBigInt(), 10n ** 400n);
});

test("an event's view() rejects a bad value; the writer splices raw slices", () => {
  const t = {
    transform: {
      process(event, out) {
        const v = event.view();
        if (!v.isObject) throw new Error("not an object");
        const w = new ObjectWriter();
        w.copyFrom(v, { drop: ["drop"], rename: { ts: "time" } });
        w.value("big", 18446744073709551615n);
        w.value("new key \"q\"", { b: 1, a: [true] });
        const inner = w.object("nested");
        inner.raw("copy", v.get("id"));
        inner.finish();
        out.emitValue(w.finish());
      },
    },
  };
  const out = run(t, {}, ['{"id":9007199254740993,"drop":1,"ts":"2020","p":1.50,"id":18446744073709551615}', new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), "[1,"]);
  assert.equal(
    out.values[0],
    '{"time":"2020","p":1.50,"id":18446744073709551615,"big":18446744073709551615,"new key \\"q\\"":{"a":[true],"b":1},"nested":{"copy":18446744073709551615}}',
  );
  assert.equal(out.rejected.length, 2);
  assert.match(out.rejected[0][1], /^value is not valid JSON: invalid UTF-8 at byte 2$/);
  assert.match(out.rejected[1][1], /^value is not valid JSON: EOF while parsing a value at byte 3$/);
  const writer = new ObjectWriter();
  assert.equal(writer.finish(), "{}");
  const big = new ObjectWriter();
  for (let i = 0; i < 1000; i++) big.raw(`k${i}`, "12345678901234567890");
  assert.equal(Object.keys(JSON.parse(big.finish())).length, 1000);
});

test("the fast path and the byte scanner agree on what they index", async () => {
  const { _scanners } = await import("../json.js");
  const enc = new TextEncoder();
  const inputs = [
    '{"a":1,"b":[1,{"c":"é"}],"café":"\\u00e9\\n","d":{"e":null},"q\\"":2}',
    ' { "a" : 1.50e-3 , "b" : true , "a" : "x" } ',
    "{}",
    " [1, 2] ",
    '"str"',
    '{"n":1e400,"m":-0,"big":18446744073709551615,"s":"\\ud83d\\ude00"}',
  ];
  for (const input of inputs) {
    const fast = [];
    const slow = [];
    const bytes = enc.encode(input);
    assert.notEqual(_scanners.fastScan(bytes, fast), null, input);
    _scanners.scanRoot(bytes, slow);
    assert.deepEqual(fast, slow, input);
  }
  for (const bad of ['{"a":1.}', '{"a":NaN}', '"\\ud800"', '"\\udc00"', "[".repeat(200) + "]".repeat(200), '{"a":01}', '{"a":1} x', '"a\tb"']) {
    assert.equal(_scanners.fastScan(enc.encode(bad), []), null, bad);
  }
  assert.equal(_scanners.fastScan(new Uint8Array([0x22, 0xc3, 0x28, 0x22]), []), null);
});

test("non-ASCII keys and values splice and compare by their text", () => {
  const v = JsonView.parse('{"naïve":"ünï\\u00e7ödé","😀":[1,"é"],"x":"y","naïve":"last"}');
  assert.equal(v.get("naïve").asString(), "last");
  assert.equal(v.path("😀.1").asString(), "é");
  assert.equal(v.get("😀").text, '[1,"é"]');
  const w = new ObjectWriter();
  w.copyFrom(v, { drop: ["x"], rename: { "😀": "smile" } });
  assert.equal(w.finish(), '{"smile":[1,"é"],"naïve":"last"}');
  const r = run({ transform: { process: (e, out) => out.emitValue(new ObjectWriter().copyFrom(e.view()).finish()) } }, {}, ['{"ü":"ö","a":1.50}']);
  assert.deepEqual(r.values, ['{"ü":"ö","a":1.50}']);
});
